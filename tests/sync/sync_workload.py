"""A training workload through a running `tether serve` (REST, as the MLflow client sends it):
runs with metrics and params, files through the artifact proxy, registered model versions
from a run's `model/` folder. It remembers what it logged, and checks that the stand-in
workspace ended with exactly that: the fidelity check of every run, each metric point sent
once, every file's bytes with one artifact record per path, one READY version per local
version (found by its `tether.source_version` tag)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from support import TetherServer, unique_name
from sync.sync_fidelity import InnerMlflow, assert_fidelity, sent_points
from tether.db.engine import Database
from tether.sync import state
from tether.sync.limits import SOURCE_VERSION_TAG
from tether.sync.state import Key

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

MLMODEL = b"artifact_path: model\nflavors:\n  python_function: {loader_module: m}\n"


@dataclass
class Workload:
    """What was logged, to compare with Azure at the end."""

    points: dict[str, int] = field(default_factory=dict)  # run -> metric points logged
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # run -> path -> bytes
    versions: dict[str, list[str]] = field(default_factory=dict)  # model -> run per version
    roots: dict[str, str] = field(default_factory=dict)  # run -> artifact root in the proxy

    @property
    def runs(self) -> list[str]:
        return sorted(self.points)

    def experiment(self, server: TetherServer) -> str:
        with server.rest() as rest:
            response = rest.post("experiments/create", {"name": unique_name("wl")})
        assert response.status == 200, response.text
        experiment_id: str = response.json["experiment_id"]
        return experiment_id

    def run(self, server: TetherServer, experiment_id: str, points: int = 300) -> str:
        with server.rest() as rest:
            response = rest.post("runs/create", {"experiment_id": experiment_id})
            assert response.status == 200, response.text
            info = response.json["run"]["info"]
            run_id: str = info["run_id"]
            self.roots[run_id] = info["artifact_uri"].split("mlflow-artifacts:/", 1)[1]
            self.points[run_id] = 0
            self.files[run_id] = {}
            params = [{"key": "lr", "value": "0.01"}, {"key": "seed", "value": run_id[:6]}]
            response = rest.post("runs/log-batch", {"run_id": run_id, "params": params})
            assert response.status == 200, response.text
        self.log(server, run_id, points)
        return run_id

    def log(self, server: TetherServer, run_id: str, points: int) -> None:
        first = self.points[run_id]
        with server.rest() as rest:
            for start in range(first, first + points, 1000):
                metrics = [
                    {"key": "loss", "value": i / 7, "timestamp": 1_700_000_000_000 + i, "step": i}
                    for i in range(start, min(first + points, start + 1000))
                ]
                response = rest.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
                assert response.status == 200, response.text
        self.points[run_id] = first + points

    def put(self, server: TetherServer, run_id: str, path: str, data: bytes) -> None:
        url = f"/api/2.0/mlflow-artifacts/artifacts/{self.roots[run_id]}/{path}"
        with server.rest() as rest:
            response = rest.request("PUT", url, content=data)
        assert response.status == 200, response.text
        self.files[run_id][path] = data

    def files_of(self, server: TetherServer, run_id: str, n: int, size: int = 4096) -> None:
        for i in range(n):
            self.put(server, run_id, f"out/part-{i:02d}.bin", os.urandom(size + i))

    def model(self, server: TetherServer, run_id: str, name: str | None = None) -> str:
        """A new version of model `name` (created when new) from the run's `model/` folder."""
        if "model/MLmodel" not in self.files[run_id]:
            self.put(server, run_id, "model/MLmodel", MLMODEL)
            self.put(server, run_id, "model/weights.bin", os.urandom(3000))
        with server.rest() as rest:
            if name is None:
                name = unique_name("model")
                response = rest.post("registered-models/create", {"name": name})
                assert response.status == 200, response.text
            body = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
            response = rest.post("model-versions/create", body)
        assert response.status == 200, response.text
        self.versions.setdefault(name, []).append(run_id)
        return name

    # --------------------------------------------------------------------------- checks

    def check(self, backend_uri: str, ws: AzuremlWorkspace, mark: int) -> None:
        """Exact fidelity, nothing twice (see the module docstring), against the store at
        `backend_uri`."""
        db = Database(backend_uri)
        try:
            self._check(db, ws, mark)
        finally:
            db.dispose()

    def _check(self, db: Database, ws: AzuremlWorkspace, mark: int) -> None:
        assert_fidelity(db, ws.mlflow_url, runs=self.runs)
        azure = _azure_ids(db, self.runs)
        batches = ws.requests(mark, path="runs/log-batch$")
        for run_id, n in self.points.items():
            sent = sent_points(batches, azure[run_id])
            assert sum(sent.values()) == n and set(sent.values()) <= {1}, (run_id, "twice")
            files = self.files[run_id]
            if not files:
                continue
            assert sorted(ws.artifacts.run_files(azure[run_id])) == sorted(files), run_id
            for path, data in files.items():
                assert ws.artifacts.read(azure[run_id], path) == data, (run_id, path)
            if ws.quirks()["blob_via_front"]:  # every storage write was seen: count them
                commits = ws.blob_commits(mark)
                for path in files:
                    statuses = commits.get(f"ExperimentRun/dcid.{azure[run_id]}/{path}", [])
                    written = statuses.count(201) == 1 and set(statuses) <= {201, 409, 503}
                    assert written, ("written once", path, statuses)
            records = Counter(r["path"] for r in ws.artifact_index(azure[run_id]))
            assert records == Counter(list(files)), ("one artifact record per file", records)
        inner = InnerMlflow(ws.mlflow_url)
        for name, sources in self.versions.items():
            found = inner.get("model-versions/search", filter=f"name='{name}'")
            versions = found.get("model_versions", [])
            markers = Counter(
                {t["key"]: t["value"] for t in v.get("tags", [])}.get(SOURCE_VERSION_TAG)
                for v in versions
            )
            assert len(versions) == len(sources), json.dumps(versions)
            assert set(markers.values()) == {1} and None not in markers, "one per source tag"
            assert all(v["status"] == "READY" for v in versions)
            expected = sorted(f"runs:/{_azure_ids(db, [r])[r]}/model" for r in sources)
            assert sorted(v["source"] for v in versions) == expected


def _azure_ids(db: Database, runs: list[str]) -> dict[str, str]:
    with db.read() as session:
        found = {r: state.get(session, Key("run", r)) for r in runs}
    out = {}
    for run_id, entity in found.items():
        assert entity is not None and entity.azure_id, run_id
        out[run_id] = entity.azure_id
    return out
