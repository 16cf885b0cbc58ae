"""Differential checks against the reference `mlflow server` (serving artifacts from a local
directory): listing shapes, download headers and error codes must match, on both of
Tether's stores.

Deliberate deviations (asserted where they show):
- a directory download answers MLflow's error JSON (400 INVALID_PARAMETER_VALUE); the
  reference's native route answers FastAPI's `{"detail": ...}` with the same status;
- error bodies carry `error_code` and `message` only (no `sqlstate` / `error_class`);
- names MLflow accepts but Tether refuses (backslashes, NUL, empty segments): see
  test_artifacts_paths.py;
- multipart upload on Azure Blob is supported (the reference here serves a local directory).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from artifacts.helpers import PROXY, ArtifactServer, new_run
from support import MlflowRest, ReferenceServer

FILES = {
    "a.txt": b"hello",
    "empty": b"",
    "data.csv": b"x,y\n1,2\n",
    "dir/b.bin": b"\x00\x01\x02",
    "dir/sub/c.json": b"{}",
    "dir/sub/MLmodel": b"flavors: {}\n",
    "spaced name/ünï ✓.yaml": "k: ✓".encode(),
}


class Side:
    def __init__(self, rest: MlflowRest) -> None:
        self.rest = rest
        self.run_id, self.root = new_run(rest)
        for name, content in FILES.items():
            answer = rest.request("PUT", f"{PROXY}/{self.root}/{name}", content=content)
            assert answer.status == 200, answer.text

    def norm(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(self.root, "<root>").replace(self.run_id, "<run>")
        if isinstance(value, dict):
            return {
                k: self.norm(v) for k, v in value.items() if k not in ("sqlstate", "error_class")
            }
        if isinstance(value, list):
            return [self.norm(v) for v in value]
        return value

    def sub(self, template: str) -> str:
        return template.replace("{root}", self.root).replace("{run}", self.run_id)


@pytest.fixture(scope="module")
def sides(
    reference_server: ReferenceServer, artifact_server: ArtifactServer
) -> Iterator[tuple[Side, Side]]:
    with reference_server.rest() as ref, artifact_server.rest() as tet:
        yield Side(ref), Side(tet)


def _both(sides: tuple[Side, Side], method: str, path: str, params: Any = None, **kw: Any) -> Any:
    ref, tet = sides
    out = []
    for side in (ref, tet):
        p = {k: side.sub(v) for k, v in (params or {}).items()}
        answer = side.rest.request(method, side.sub(path), params=p or None, **kw)
        out.append(answer)
    return out


LISTINGS = [
    {"path": "{root}"},
    {"path": "{root}/dir"},
    {"path": "{root}/dir/"},
    {"path": "{root}/dir/sub"},
    {"path": "{root}/spaced name"},
    {"path": "{root}/a.txt"},
    {"path": "{root}/no/such/dir"},
]


@pytest.mark.parametrize("params", LISTINGS, ids=lambda p: p["path"])
def test_proxy_listing(sides: tuple[Side, Side], params: dict[str, str]) -> None:
    ref, tet = _both(sides, "GET", PROXY, params)
    assert (tet.status, tet.json) == (ref.status, ref.json)


RUN_LISTINGS = [
    {"run_id": "{run}"},
    {"run_id": "{run}", "path": ""},
    {"run_id": "{run}", "path": "dir"},
    {"run_id": "{run}", "path": "dir/sub/"},
    {"run_id": "{run}", "path": "a.txt"},
    {"run_id": "{run}", "path": "missing"},
    {"run_uuid": "{run}", "path": "spaced name"},
]


@pytest.mark.parametrize("params", RUN_LISTINGS, ids=lambda p: p.get("path", "<none>"))
def test_run_listing(sides: tuple[Side, Side], params: dict[str, str]) -> None:
    for prefix in ("artifacts/list", "/ajax-api/2.0/mlflow/artifacts/list"):
        ref, tet = _both(sides, "GET", prefix, params)
        assert tet.status == ref.status == 200
        assert sides[1].norm(tet.json) == sides[0].norm(ref.json)


DOWNLOADS = [
    ("GET", PROXY + "/{root}/a.txt", None),
    ("GET", PROXY + "/{root}/empty", None),
    ("GET", PROXY + "/{root}/data.csv", None),
    ("GET", PROXY + "/{root}/dir/b.bin", None),
    ("GET", PROXY + "/{root}/dir/sub/MLmodel", None),
    ("GET", PROXY + "/{root}/spaced name/ünï ✓.yaml", None),
    ("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/{root}/dir/sub/c.json", None),
    ("GET", "/get-artifact", {"run_id": "{run}", "path": "dir/sub/c.json"}),
    ("GET", "/get-artifact", {"run_uuid": "{run}", "path": "spaced name/ünï ✓.yaml"}),
]
HEADERS = ("content-type", "content-disposition", "content-length", "x-content-type-options")


@pytest.mark.parametrize(("method", "path", "params"), DOWNLOADS, ids=lambda v: str(v))
def test_downloads(sides: tuple[Side, Side], method: str, path: str, params: Any) -> None:
    ref, tet = _both(sides, method, path, params)
    assert tet.status == ref.status == 200
    assert tet.text == ref.text
    assert {h: tet.headers.get(h) for h in HEADERS} == {h: ref.headers.get(h) for h in HEADERS}


ERRORS = [
    ("GET", PROXY + "/{root}/missing.txt", None, 404),
    ("GET", PROXY + "/{root}/dir", None, 400),
    ("GET", PROXY + "/{root}/%2e%2e/%2e%2e/x", None, 400),
    ("GET", PROXY + "/..%2f..%2fetc/passwd", None, 400),
    ("PUT", PROXY + "/%252e%252e/x", None, 400),
    ("PUT", PROXY + "/{root}/dir/", None, 400),
    ("GET", PROXY, {"path": "../x"}, 400),
    ("GET", PROXY, {"path": "/etc"}, 400),
    ("DELETE", PROXY + "/{root}/never-there", None, 200),
    ("GET", "artifacts/list", {"run_id": "f" * 32}, 404),
    ("GET", "artifacts/list", {"path": "x"}, 400),
    ("GET", "artifacts/list", {"run_id": "{run}", "path": "../x"}, 400),
    ("GET", "/get-artifact", {"run_id": "f" * 32, "path": "a.txt"}, 404),
    ("GET", "/get-artifact", {"run_id": "{run}", "path": "missing.txt"}, 404),
    ("GET", "/get-artifact", {"run_id": "{run}", "path": "dir"}, 400),
    ("GET", "/get-artifact", {"run_id": "{run}", "path": "../../x"}, 400),
    ("GET", "/api/2.0/mlflow-artifacts/presigned/{root}/a.txt", None, 501),
]


@pytest.mark.parametrize(("method", "path", "params", "status"), ERRORS, ids=lambda v: str(v))
def test_error_codes(
    sides: tuple[Side, Side], method: str, path: str, params: Any, status: int
) -> None:
    content = b"x" if method == "PUT" else None
    ref, tet = _both(sides, method, path, params, content=content)
    assert tet.status == ref.status == status, (ref.text, tet.text)
    if ref.error_code is not None:  # the reference's native routes answer {"detail": ...}
        assert tet.error_code == ref.error_code
        assert sides[1].norm(tet.json["message"]) == sides[0].norm(ref.json["message"])


def test_multipart_answers(sides: tuple[Side, Side], artifact_server: ArtifactServer) -> None:
    body = {"path": "/tmp/local/big.bin", "num_parts": 2}
    missing = _both(sides, "POST", "/api/2.0/mlflow-artifacts/mpu/create/{root}", json={})
    assert [a.status for a in missing] == [400, 400]
    assert missing[1].json["message"] == missing[0].json["message"]
    ref, tet = _both(sides, "POST", "/api/2.0/mlflow-artifacts/mpu/create/{root}", json=body)
    assert (ref.status, ref.error_code) == (501, "NOT_IMPLEMENTED")
    if artifact_server.kind == "local":
        assert (tet.status, tet.json) == (501, {k: ref.json[k] for k in ("error_code", "message")})
    else:
        assert tet.status == 200 and len(tet.json["credentials"]) == 2


def test_server_info(sides: tuple[Side, Side], artifact_server: ArtifactServer) -> None:
    ref, tet = _both(sides, "GET", "/api/3.0/mlflow/server-info")
    assert set(tet.json) == set(ref.json)
    assert tet.json["store_type"] == ref.json["store_type"]
    assert tet.json["multipart_downloads_enabled"] is False
    assert tet.json["multipart_uploads_enabled"] is (artifact_server.kind == "azurite")
