"""Differential testing helpers: send one request to the reference `mlflow server` and to
Tether, normalise what legitimately differs, and compare the rest exactly.

What is normalised (and only this):
- generated ids: experiment and run ids are replaced by symbols (`<exp:1>`, `<run:2>`), assigned
  per side in order of registration (ids the test created) or of first appearance;
- server-assigned times: `creation_time` / `last_update_time` become "<ts>" (must be ints);
- artifact locations / URIs: ids inside them are mapped like ids, the rest compared exactly;
- page tokens: opaque, "<token>" (tests follow them and compare the pages instead).
Lists are compared in order: a run's params, tags and metrics and an experiment's tags come in
the order they were first written on both servers.

Nothing else is dropped: a field one side answers and the other does not is a difference,
unless `compat.allowed_differences` lists it with its reason (and `assert_error`, which
compares only the code and perhaps the message, still checks that both error bodies have
the same fields).

Request bodies may contain `Ref` objects (an id with one value per server); `Pair` substitutes
the right value for each side. Paths may too: `pair.same("GET", ("logged-models/", model))`
sends each server its own id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compat.allowed_differences import allowed
from support import MlflowRest, RestResponse, unique_name

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_TIME_FIELDS = ("creation_time", "last_update_time")
_ARTIFACT_PATH = re.compile(r"(?P<root>.*?)(?:/(?P<exp>\d+))?(?:/(?P<run>[0-9a-f]{32})/artifacts)?")
# Where an experiment id shows inside an error message.
_EXP_ID_IN_TEXT = re.compile(r"(?<=id=)\d+|(?<=id )\d+|(?<=[Ee]xperiment )\d+")
_RANDOM_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{1,3}$")


@dataclass(frozen=True)
class Ref:
    """One logical entity (experiment or run) with its id on each server."""

    symbol: str
    ref: str
    tet: str

    def side(self, side: str) -> str:
        return self.ref if side == "ref" else self.tet


@dataclass
class Side:
    """Id -> symbol mapping of one server: registered ids, plus the ids first seen in the
    body being normalised (numbered from 1 in each body, so both sides agree)."""

    name: str
    symbols: dict[str, str] = field(default_factory=lambda: {"0": "<exp:0>"})
    unseen: dict[str, str] = field(default_factory=dict)

    def symbol_for(self, value: str, kind: str) -> str:
        if value in self.symbols:
            return self.symbols[value]
        if value not in self.unseen:
            self.unseen[value] = f"<{kind}?{len(self.unseen) + 1}>"
        return self.unseen[value]

    def lookup(self, value: str) -> str:
        return self.symbols.get(value) or self.unseen.get(value) or value


def substitute(value: Any, side: str) -> Any:
    """A request body with every `Ref` replaced by that side's id."""
    if isinstance(value, Ref):
        return value.side(side)
    if isinstance(value, dict):
        return {k: substitute(v, side) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, side) for v in value]
    return value


class Normaliser:
    def __init__(self, side: Side) -> None:
        self.side = side

    def __call__(self, body: Any) -> Any:
        self.side.unseen.clear()
        return self._value(body, ())

    def _value(self, value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return self._dict(value, path)
        if isinstance(value, list):
            return self._list_order([self._value(v, path) for v in value], path)
        if isinstance(value, str):
            return self._string(value, path[-1] if path else "")
        return value

    def _dict(self, value: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if allowed(key, self.side.name, top_of_error=not path and "error_code" in value):
                continue
            if key in _TIME_FIELDS:
                assert isinstance(item, int), f"{key} should be an int, got {item!r}"
                out[key] = "<ts>"
            elif key == "next_page_token":
                assert isinstance(item, str) and item, f"bad page token {item!r}"
                out[key] = "<token>"
            else:
                out[key] = self._value(item, (*path, key))
        return out

    def _list_order(self, items: list[Any], path: tuple[str, ...]) -> list[Any]:
        """A list as compared: as answered here. Subclasses sort the lists whose order
        MLflow leaves undefined (its queries have no ORDER BY there)."""
        return items

    def _string(self, value: str, key: str) -> str:
        if key in ("experiment_id", "experiment_ids"):
            return self.side.symbol_for(value, "exp")
        if key in ("run_id", "run_uuid") and _RUN_ID.fullmatch(value):
            return self.side.symbol_for(value, "run")
        if key in ("artifact_location", "artifact_uri"):
            return self._artifact_path(value)
        value = _RUN_ID.sub(lambda m: self.side.lookup(m.group(0)), value)
        if key == "message":
            value = _EXP_ID_IN_TEXT.sub(lambda m: self.side.lookup(m.group(0)), value)
        return value

    def _artifact_path(self, value: str) -> str:
        """`<root>/<exp_id>[/<run_id>/artifacts]` with both ids mapped; the root is kept.

        An explicit artifact_location is kept as it is (with the run's part mapped)."""
        match = _ARTIFACT_PATH.fullmatch(value)
        assert match is not None
        out = match["root"]
        if match["exp"]:
            out += f"/{self.side.symbol_for(match['exp'], 'exp')}"
        if match["run"]:
            out += f"/{self.side.symbol_for(match['run'], 'run')}/artifacts"
        return out


Path = str | Sequence["str | Ref"]


def substitute_path(path: Path, side: str) -> str:
    """A request path with every `Ref` part replaced by that side's id."""
    if isinstance(path, str):
        return path
    return "".join(str(substitute(part, side)) for part in path)


@dataclass
class Outcome:
    """The normalised answers of both servers to one request."""

    ref: RestResponse
    tet: RestResponse
    ref_body: Any
    tet_body: Any

    @property
    def status(self) -> int:
        return self.tet.status

    @property
    def body(self) -> Any:
        return self.tet_body


class Pair:
    """The reference server and Tether side by side."""

    def __init__(self, ref: MlflowRest, tet: MlflowRest) -> None:
        self.rest = {"ref": ref, "tet": tet}
        self.sides = {"ref": Side("ref"), "tet": Side("tet")}
        self.norm = {name: Normaliser(side) for name, side in self.sides.items()}
        self._count = 0

    # -------------------------------------------------------------------- raw requests

    def send(self, method: str, path: Path, body: Mapping[str, Any] | None = None) -> Outcome:
        answers: dict[str, RestResponse] = {}
        for name, rest in self.rest.items():
            payload = substitute(dict(body or {}), name)
            target = substitute_path(path, name)
            if method == "GET":
                answers[name] = rest.get(target, _query(payload))
            else:
                answers[name] = rest.request(method, target, json=payload)
        return self._outcome(answers)

    def send_raw(self, path: str, content: Callable[[str], bytes], **headers: str) -> Outcome:
        """POST a hand-made body; `content(side)` builds it (ids differ per side)."""
        answers = {
            name: rest.request("POST", path, content=content(name), headers=headers)
            for name, rest in self.rest.items()
        }
        return self._outcome(answers)

    def _outcome(self, answers: Mapping[str, RestResponse]) -> Outcome:
        ref, tet = answers["ref"], answers["tet"]
        return Outcome(ref, tet, self.norm["ref"](ref.json), self.norm["tet"](tet.json))

    # ---------------------------------------------------------------------- assertions

    def same(
        self,
        method: str,
        path: Path,
        body: Mapping[str, Any] | None = None,
        *,
        status: int | None = None,
    ) -> Any:
        """Both answer the same status and the same normalised body; returns that body."""
        out = self.send(method, path, body)
        assert_same(out, status)
        return out.tet_body

    def same_error(
        self,
        method: str,
        path: Path,
        body: Mapping[str, Any] | None = None,
        *,
        status: int = 400,
        code: str = "INVALID_PARAMETER_VALUE",
        message: bool = True,
        mentions: tuple[str, ...] = (),
    ) -> Outcome:
        """Both refuse with `status` and `code`; messages equal (or both mention `mentions`)."""
        out = self.send(method, path, body)
        assert_error(out, status, code, message=message, mentions=mentions)
        return out

    # ----------------------------------------------------------------------- fixtures

    def register(self, kind: str, ref_id: str, tet_id: str) -> Ref:
        self._count += 1
        symbol = f"<{kind}:{self._count}>"
        self.sides["ref"].symbols[ref_id] = symbol
        self.sides["tet"].symbols[tet_id] = symbol
        return Ref(symbol, ref_id, tet_id)

    def experiment(self, name: str | None = None, **extra: Any) -> Ref:
        body = {"name": name or unique_name("diff"), **extra}
        out = self.send("POST", "experiments/create", body)
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
        return self.register("exp", out.ref.json["experiment_id"], out.tet.json["experiment_id"])

    def run(self, experiment: Ref | str, **extra: Any) -> Ref:
        body = {"experiment_id": experiment, "start_time": 1_700_000_000_000, "run_name": "r"}
        body.update(extra)
        out = self.send("POST", "runs/create", body)
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
        ref_id = out.ref.json["run"]["info"]["run_id"]
        return self.register("run", ref_id, out.tet.json["run"]["info"]["run_id"])

    def snapshot(self, run: Ref) -> Any:
        """The run as both servers show it (already asserted equal)."""
        return self.same("GET", "runs/get", {"run_id": run}, status=200)


def _query(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """Query parameters as the MLflow client sends them: lists as repeated keys."""
    items: list[tuple[str, str]] = []
    for key, value in payload.items():
        for item in value if isinstance(value, list) else [value]:
            items.append((key, item if isinstance(item, str) else json.dumps(item)))
    return items


def assert_same(out: Outcome, status: int | None = None) -> None:
    assert (out.ref.status, out.ref_body) == (out.tet.status, out.tet_body), (
        f"reference answered {out.ref.status}, Tether {out.tet.status}"
    )
    if status is not None:
        assert out.tet.status == status, out.tet.json


def assert_error(
    out: Outcome,
    status: int,
    code: str,
    *,
    message: bool = True,
    mentions: tuple[str, ...] = (),
) -> None:
    for name, answer in (("reference", out.ref), ("tether", out.tet)):
        assert (answer.status, answer.error_code) == (status, code), (name, answer.text[:2000])
    assert sorted(out.tet_body) == sorted(out.ref_body), (out.ref_body, out.tet_body)
    ref_msg, tet_msg = out.ref_body.get("message"), out.tet_body.get("message")
    if message:
        assert tet_msg == ref_msg
    for fact in mentions:
        assert fact in ref_msg and fact in tet_msg, (fact, ref_msg, tet_msg)


def is_random_run_name(name: str) -> bool:
    return bool(_RANDOM_NAME.match(name))
