"""`compat.diff` extended to logged models: model ids (`m-<32 hex>`) become symbols like run
ids do, model timestamps become "<ts>", `<root>/<exp>/models/<model>/artifacts` locations map
both ids, and a run's `model_inputs` / `model_outputs` (ordered by id) are sorted.

Paths may name entities too (see `compat.diff.Path`).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from compat.diff import (
    Normaliser,
    Pair,
    Ref,
    Side,
)
from support import MlflowRest

MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
_MODEL_TIMES = ("creation_timestamp_ms", "last_updated_timestamp_ms")
_MODEL_LOCATION = re.compile(
    r"(?P<root>.*)/(?P<exp>\d+)/models/(?P<model>m-[0-9a-f]{32})/artifacts"
)
_RUN_HEX = re.compile(r"^[0-9a-f]{32}$")


class ModelNormaliser(Normaliser):
    def _dict(self, value: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        times = {}
        rest = {}
        for key, item in value.items():
            if key in _MODEL_TIMES:
                assert isinstance(item, int), f"{key} should be an int, got {item!r}"
                times[key] = "<ts>"
            else:
                rest[key] = item
        out = super()._dict(rest, path)
        out.update(times)
        return out

    def _list_order(self, items: list[Any], path: tuple[str, ...]) -> list[Any]:
        if path and path[-1] in ("model_inputs", "model_outputs"):
            return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
        return super()._list_order(items, path)

    def _string(self, value: str, key: str) -> str:
        if key in ("artifact_uri", "artifact_location", "root_uri") and (
            match := _MODEL_LOCATION.fullmatch(value)
        ):
            exp = self.side.symbol_for(match["exp"], "exp")
            model = self.side.symbol_for(match["model"], "model")
            return f"{match['root']}/{exp}/models/{model}/artifacts"
        if key == "source_run_id" and _RUN_HEX.match(value):
            return self.side.symbol_for(value, "run")
        value = MODEL_ID.sub(lambda m: self.side.symbol_for(m.group(0), "model"), value)
        return super()._string(value, key)


class ModelPair(Pair):
    def __init__(self, ref: MlflowRest, tet: MlflowRest) -> None:
        super().__init__(ref, tet)
        self.sides = {"ref": Side("ref"), "tet": Side("tet")}
        self.norm = {name: ModelNormaliser(side) for name, side in self.sides.items()}

    def model(self, experiment: Ref, **extra: Any) -> Ref:
        """A logged model created on both servers (creation times a few ms apart, so the
        default creation-time order never falls back to the random ids)."""
        extra.setdefault("name", f"model-{self._count + 1}")  # random names would differ
        out = self.send("POST", "logged-models", {"experiment_id": experiment, **extra})
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
        time.sleep(0.005)
        return self.register(
            "model",
            out.ref.json["model"]["info"]["model_id"],
            out.tet.json["model"]["info"]["model_id"],
        )

    def names(self, body: Any) -> list[str]:
        """The model names of a search answer, in order."""
        return [m["info"]["name"] for m in body.get("models", [])]
