"""Path safety: nothing outside the artifact root is ever readable or writable.

Attacks go out as raw HTTP (http.client sends the path byte for byte: no normalisation of
`..`, no re-encoding), on both stores; afterwards the store and its surroundings are checked
for anything written. Symlinks planted in a local store must not lead out of it either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artifacts.helpers import PROXY, ArtifactServer, new_run, raw_request
from tether.errors import MlflowError
from tether.storage.paths import (
    MAX_PATH_LENGTH,
    MAX_PATH_SEGMENTS,
    UnsafePathError,
    safe_directory_path,
    safe_relative_path,
    sync_entity,
    uri_to_path,
)

ATTACKS = [
    "../escape.txt",
    "../../escape.txt",
    "a/../../escape.txt",
    "%2e%2e/escape.txt",
    "%2E%2E/%2e%2e/escape.txt",
    "..%2fescape.txt",
    "..%2Fescape.txt",
    "a%2f..%2f..%2fescape.txt",
    "%252e%252e/escape.txt",
    "%25252e%25252e/escape.txt",
    "a%252f..%252f..%252fescape.txt",
    "..\\escape.txt",
    "..%5cescape.txt",
    "%5c..%5cescape.txt",
    "/etc/escape.txt",
    "%2fetc%2fescape.txt",
    "C:%5cescape.txt",
    "a%00b.txt",
    "x/%00/escape.txt",
    "a//escape.txt",
    "./escape.txt",
    "a/./escape.txt",
    "%c0%ae%c0%ae/escape.txt",  # overlong UTF-8 for ".."
    "%ff%fe.txt",
    "a%23escape.txt",  # '#'
]
# A newline never matches the router's path pattern: 404 ENDPOINT_NOT_FOUND, equally refused.
ROUTER_REFUSED = ["a%0aescape.txt", "a%0d%0aescape.txt"]


@pytest.mark.parametrize("attack", ATTACKS + ROUTER_REFUSED)
def test_traversal_refused(artifact_server: ArtifactServer, attack: str) -> None:
    url = artifact_server.url
    expected = 404 if attack in ROUTER_REFUSED else 400
    for method, body in (("PUT", b"pwned"), ("GET", None), ("DELETE", None)):
        for prefix in (
            "/api/2.0/mlflow-artifacts/artifacts/",
            "/ajax-api/2.0/mlflow-artifacts/artifacts/",
        ):
            status, answer = raw_request(url, method, prefix + attack, body)
            assert status == expected, (method, prefix + attack, status, answer)
            if expected == 400:
                assert answer == {
                    "error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Invalid path",
                }
    for action in ("create", "complete", "abort"):
        status, _ = raw_request(url, "POST", f"/api/2.0/mlflow-artifacts/mpu/{action}/{attack}")
        assert status == expected, (action, attack)


def test_nothing_written_outside(artifact_server: ArtifactServer) -> None:
    """Runs after the attacks above (same module server): the store holds none of them."""
    assert not any("escape" in p or "pwned" in p for p in artifact_server.stored_files())
    if artifact_server.kind == "local":
        tmpdir = artifact_server.server.tmpdir
        written = [p for p in tmpdir.rglob("*") if p.is_file() and "escape" in p.name]
        assert written == []
        assert not any(Path("/etc").glob("escape*"))
    else:
        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(
            artifact_server.azurite.connection_string
        ) as service:
            for container in service.list_containers():
                names = [b.name for b in service.get_container_client(container).list_blobs()]
                assert not [n for n in names if "escape" in n or "pwned" in n]


LIST_ATTACKS = ["../x", "..", "a/../..", "/etc", "a\\b", "a\x00b", "a//b", "%2e%2e", "%252e%252e/x"]


@pytest.mark.parametrize("attack", LIST_ATTACKS)
def test_listing_and_tracking_paths_refused(artifact_server: ArtifactServer, attack: str) -> None:
    with artifact_server.rest() as rest:
        run_id, _ = new_run(rest)
        answers = [
            rest.get(PROXY, {"path": attack}),
            rest.get("artifacts/list", {"run_id": run_id, "path": attack}),
            rest.get("/get-artifact", {"run_id": run_id, "path": attack}),
        ]
        for answer in answers:
            assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")


def test_multipart_file_name_is_checked(artifact_server: ArtifactServer) -> None:
    with artifact_server.rest() as rest:
        for client_file in ("/tmp/..", "..", "C:\\Users\\x\\..", "a\x00b"):
            answer = rest.post(
                "/api/2.0/mlflow-artifacts/mpu/create/0/x", {"path": client_file, "num_parts": 1}
            )
            assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")


def test_refusals_are_logged_with_client_address(artifact_server: ArtifactServer) -> None:
    start = artifact_server.server.log_size()
    raw_request(artifact_server.url, "GET", "/api/2.0/mlflow-artifacts/artifacts/..%2fsecret")
    log = artifact_server.server.log_text(start)
    assert "refused artifact path '..%2fsecret' from 127.0.0.1:" in log


# Symlinks (local store) ------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["local"], indirect=True)
def test_symlinks_do_not_escape(artifact_server: ArtifactServer, tmp_path: Path) -> None:
    root = Path(artifact_server.server.artifacts_destination)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (root / "links").mkdir(exist_ok=True)
    os.symlink(outside, root / "links" / "out-dir")
    os.symlink(outside / "secret.txt", root / "links" / "out-file.txt")
    (root / "links" / "inside.txt").write_bytes(b"fine")
    os.symlink(root / "links" / "inside.txt", root / "links" / "in-link.txt")

    with artifact_server.rest() as rest:
        for path in ("links/out-dir/secret.txt", "links/out-file.txt"):
            answer = rest.get(f"{PROXY}/{path}")
            assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
            put = rest.request("PUT", f"{PROXY}/{path}", content=b"overwritten")
            assert (put.status, put.error_code) == (400, "INVALID_PARAMETER_VALUE")
        put = rest.request("PUT", f"{PROXY}/links/out-dir/new.txt", content=b"new")
        assert put.status == 400
        assert rest.get(PROXY, {"path": "links/out-dir"}).status == 400
        listing = rest.get(PROXY, {"path": "links"}).json
        assert [f["path"] for f in listing["files"]] == ["in-link.txt", "inside.txt"]
        assert rest.get(f"{PROXY}/links/in-link.txt").text == "fine"
        assert rest.delete(f"{PROXY}/links/out-dir/secret.txt").status == 400
        # Deleting a link removes the link, never what it points to.
        assert rest.delete(f"{PROXY}/links/out-dir").status == 200
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret"


# The path functions themselves -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("a/b.txt", "a/b.txt"),
        ("a%20b/c%C3%A9.txt", "a b/cé.txt"),
        ("a%2520b", "a b"),  # decoded until stable, as MLflow does
        ("100%.txt", "100%.txt"),
        ("a..b/..c", "a..b/..c"),
        ("ünï ✓/名前", "ünï ✓/名前"),
    ],
)
def test_safe_relative_path_accepts(raw: str, expected: str) -> None:
    assert safe_relative_path(raw) == expected


@pytest.mark.parametrize("raw", [*ATTACKS, *ROUTER_REFUSED, "a\nb", "/", "a/"])
def test_safe_relative_path_refuses(raw: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_relative_path(raw)


def test_directory_paths_and_uris() -> None:
    assert safe_directory_path("a/b/") == "a/b"
    assert safe_directory_path("/") == ""
    assert uri_to_path("mlflow-artifacts:/1/abc/artifacts") == "1/abc/artifacts"
    assert uri_to_path("mlflow-artifacts://host:5000/1/abc/artifacts") == "1/abc/artifacts"
    assert uri_to_path("mlflow-artifacts:///1/x") == "1/x"
    assert uri_to_path("mlflow-artifacts:") == ""
    with pytest.raises(UnsafePathError):
        uri_to_path("mlflow-artifacts:/1/../../etc")
    with pytest.raises(MlflowError):
        uri_to_path("s3://bucket/x")


def test_sync_entities() -> None:
    run = "a" * 32
    assert sync_entity(f"1/{run}/artifacts/m/x.pkl") == ("run", run)
    assert sync_entity(f"1/{run}/artifacts") == ("run", run)
    assert sync_entity("1/models/m-123/artifacts/MLmodel") == ("logged_model", "m-123")
    assert sync_entity("misc/file.txt") == ("artifact", "misc/file.txt")
    kind, key = sync_entity("x/" * 40)
    assert kind == "artifact" and len(key) == 64
    # A workspace's experiments live under `workspaces/<name>/` (issue 17): same owners.
    assert sync_entity(f"workspaces/team-b/7/{run}/artifacts/m/x.pkl") == ("run", run)
    assert sync_entity("workspaces/team-b/7/models/m-9/artifacts/MLmodel") == (
        "logged_model",
        "m-9",
    )
    assert sync_entity("workspaces/team-b/notes.txt") == ("artifact", "workspaces/team-b/notes.txt")


# Bounds: a path's length and number of segments ----------------------------------------------


def test_paths_are_bounded(artifact_server: ArtifactServer) -> None:
    """2,000 segments made `mkdir(parents=True)` raise RecursionError (a 500 and a 3 MB log
    line); every route refuses paths over the bounds with a clear 400."""
    deep = "/".join(["d"] * 2000) + "/f.txt"
    long = "x/" + "y" * (MAX_PATH_LENGTH + 1)
    url = artifact_server.url
    with artifact_server.rest() as rest:
        run_id, _ = new_run(rest)
        for path, reason in ((deep, "too many segments"), (long, "too long")):
            answers = [
                rest.request("PUT", f"{PROXY}/{path}", content=b"x"),
                rest.get(f"{PROXY}/{path}"),
                rest.delete(f"{PROXY}/{path}"),
                rest.get(PROXY, {"path": path}),
                rest.get("artifacts/list", {"run_id": run_id, "path": path}),
                rest.get("/get-artifact", {"run_id": run_id, "path": path}),
                rest.post(
                    f"/api/2.0/mlflow-artifacts/mpu/create/{path}", {"path": "f", "num_parts": 1}
                ),
            ]
            for answer in answers:
                assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
                assert reason in answer.json["message"], answer.json
        # Encoded many times over, before decoding: refused as cheaply.
        status, answer = raw_request(url, "GET", f"{PROXY}/{'%2525' * 20000}")
        assert status == 400, answer
        # Within the bounds: stored and read back (Azure allows 254 segments in a blob name,
        # "store/" included).
        within = "/".join(["d"] * 250) + "/f.txt"
        assert rest.request("PUT", f"{PROXY}/{within}", content=b"deep").status == 200
        assert rest.get(f"{PROXY}/{within}").text == "deep"
        at_limit = "/".join(["d"] * (MAX_PATH_SEGMENTS - 1)) + "/f.txt"
        answer = rest.request("PUT", f"{PROXY}/{at_limit}", content=b"x")
        if artifact_server.kind == "local":
            assert answer.status == 200
        else:  # beyond Azure's own limit: refused before Azure would answer 400 (a 500 here)
            assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
            assert "Azure Blob Storage" in answer.json["message"]
        assert rest.get("/health").status == 200
