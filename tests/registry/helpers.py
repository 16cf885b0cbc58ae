"""The registry's differential-test helpers: a registry-aware normaliser and `RegistryPair`.

On top of `compat.diff`'s normalisation (run / experiment ids, run-id text in messages):
- `creation_timestamp` / `last_updated_timestamp` become "<ts>" (asserted to be ints);
- `latest_versions` are sorted by version, version `aliases` by name, model `aliases` by alias:
  MLflow's order there comes from its query plan, not from a rule;
- experiment and run ids inside `mlflow-artifacts:/<exp>/<run>/artifacts/...` sources and
  download URIs are mapped like other ids.
"""

from __future__ import annotations

import re
from typing import Any

from compat.diff import Normaliser, Outcome, Pair
from support import MlflowRest, unique_name
from support.compare import sorted_sets

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_ARTIFACT_EXP = re.compile(r"mlflow-artifacts:/(\d+)/")
_TS_FIELDS = ("creation_timestamp", "last_updated_timestamp")
_ARTIFACT_SOURCE = re.compile(r"mlflow-artifacts:/(?P<exp>\d+)/(?P<run>[0-9a-f]{32})(?P<rest>/.*)?")


class RegistryNormaliser(Normaliser):
    def _dict(self, value: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        value = dict(value)
        for key in _TS_FIELDS:
            if key in value:
                assert isinstance(value[key], int), f"{key} should be an int, got {value[key]!r}"
                value[key] = "<ts>"
        return super()._dict(value, path)

    def _list_order(self, items: list[Any], path: tuple[str, ...]) -> list[Any]:
        if path and path[-1] == "latest_versions":
            return sorted(items, key=lambda v: int(v["version"]))
        if path and path[-1] == "aliases":
            if all(isinstance(i, str) for i in items):
                return sorted(items)
            return sorted(items, key=lambda a: a["alias"])
        return super()._list_order(items, path)

    def _string(self, value: str, key: str) -> str:
        if key in ("source", "artifact_uri") and (match := _ARTIFACT_SOURCE.fullmatch(value)):
            exp = self.side.symbol_for(match["exp"], "exp")
            run = self.side.symbol_for(match["run"], "run")
            return f"mlflow-artifacts:/{exp}/{run}{match['rest'] or ''}"
        if key == "message":
            value = _ARTIFACT_EXP.sub(
                lambda m: f"mlflow-artifacts:/{self.side.lookup(m.group(1))}/", value
            )
        if key == "artifact_uri":  # a download URI, not a run's artifact root
            return _RUN_ID.sub(lambda m: self.side.lookup(m.group(0)), value)
        return super()._string(value, key)


class RegistryPair(Pair):
    """`Pair` plus registry helpers; model names are the same on both sides."""

    def __init__(self, ref: MlflowRest, tet: MlflowRest) -> None:
        super().__init__(ref, tet)
        self.norm = {name: RegistryNormaliser(side) for name, side in self.sides.items()}

    def model(self, name: str | None = None, **extra: Any) -> str:
        name = name or unique_name("rm")
        out = self.send("POST", "registered-models/create", {"name": name, **extra})
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
        assert out.ref_body == out.tet_body
        return name

    def version(self, name: str, source: str = "s3://bucket/path/model", **extra: Any) -> str:
        out = self.send("POST", "model-versions/create", {"name": name, "source": source, **extra})
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
        assert out.ref_body == out.tet_body
        version: str = out.tet.json["model_version"]["version"]
        return version

    def get_model(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.same("GET", "registered-models/get", {"name": name}, status=200)
        return body["registered_model"]

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        body: dict[str, Any] = self.same(
            "GET", "model-versions/get", {"name": name, "version": version}, status=200
        )
        return body["model_version"]

    def same_error_sets(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        status: int = 400,
        code: str = "INVALID_PARAMETER_VALUE",
    ) -> Outcome:
        """`same_error`, the items of set literals in the messages compared in sorted order
        (MLflow prints Python sets in hash order, which changes from process to process)."""
        out = self.same_error(method, path, body, status=status, code=code, message=False)
        assert sorted_sets(out.tet_body["message"]) == sorted_sets(out.ref_body["message"])
        return out

    def raw(self, side: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One side's raw (un-normalised) JSON answer."""
        rest = self.rest[side]
        if method == "GET":
            return rest.get(path, body).json
        return rest.request(method, path, json=body or {}).json
