"""Serving the UI as `mlflow server` does, over HTTP: `/` and `/static-files/` (cache headers,
ETag/304, Range, content types, no way out of the build), the page shown without a build,
`--static-prefix`, the Host allow-list, CORS and the security headers (compared with the
reference server where it has the same rule), and `tether ui install | where`.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from support import ReferenceServer, TetherServer
from support.servers import clean_env, tether_command

if TYPE_CHECKING:
    from support.servers import TetherServerStarter

# The API's backends are tested elsewhere: these run on SQLite only.
SQLITE = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)

INDEX_JS = re.compile(r'src="(static-files/static/js/main\.[0-9a-f]+\.js)"')


@pytest.fixture
def http(tether_server: TetherServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tether_server.url, trust_env=False, timeout=30) as client:
        yield client


def _main_js(client: httpx.Client) -> str:
    match = INDEX_JS.search(client.get("/").text)
    assert match is not None
    return "/" + match.group(1)


@SQLITE
def test_index_and_static_files(http: httpx.Client) -> None:
    index = http.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.headers["cache-control"] == "no-cache"
    assert '<div id="root"' in index.text
    js = http.get(_main_js(http))
    assert js.status_code == 200
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert js.headers["cache-control"] == "public, max-age=2419200"
    assert len(js.content) == int(js.headers["content-length"]) > 1_000_000
    for answer in (index, js):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    assert http.head("/").status_code == 200


@SQLITE
def test_etag_and_range(http: httpx.Client) -> None:
    path = _main_js(http)
    first = http.get(path)
    etag = first.headers["etag"]
    again = http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert http.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    part = http.get(path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == first.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(first.content)}"


@SQLITE
def test_content_types_of_fonts_and_modules(
    http: httpx.Client, tether_server: TetherServer
) -> None:
    found = subprocess.run(
        [*tether_command(), "ui", "where"], capture_output=True, text=True, env=clean_env()
    )
    build = Path(found.stdout.split(" (", 1)[0])
    expected = {
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".ttf": "font/ttf",
        ".eot": "application/vnd.ms-fontobject",
        ".mjs": "text/javascript; charset=utf-8",
        ".svg": "image/svg+xml",
        ".css": "text/css; charset=utf-8",
    }
    for suffix, content_type in expected.items():
        sample = next(build.rglob(f"*{suffix}"))
        answer = http.get("/static-files/" + sample.relative_to(build).as_posix())
        assert (answer.status_code, answer.headers["content-type"]) == (200, content_type)


@SQLITE
@pytest.mark.parametrize(
    "path",
    [
        "/static-files/../../pyproject.toml",
        "/static-files/%2e%2e/%2e%2e/etc/passwd",
        "/static-files/static/../../../../etc/passwd",
        "/static-files//etc/passwd",
        "/static-files/nope.js",
        "/static-files/static",  # a directory
    ],
)
def test_nothing_outside_the_build(http: httpx.Client, path: str) -> None:
    answer = http.get(path)
    assert answer.status_code == 404
    assert "root:" not in answer.text and "[project]" not in answer.text


@SQLITE
def test_reference_serves_the_same_files(
    http: httpx.Client, reference_server: ReferenceServer
) -> None:
    with httpx.Client(base_url=reference_server.url, trust_env=False) as ref:
        path = _main_js(ref)
        assert path == _main_js(http)  # the same pinned build
        theirs, ours = ref.get(path), http.get(path)
        assert theirs.content == ours.content
        for name in ("cache-control", "x-content-type-options", "x-frame-options"):
            assert theirs.headers[name] == ours.headers[name], name
        assert ref.get("/").headers["cache-control"] == http.get("/").headers["cache-control"]


@SQLITE
def test_host_allow_list_and_cross_origin_writes(
    http: httpx.Client, reference_server: ReferenceServer
) -> None:
    """The same answers as mlflow server 3.17 with its default settings."""
    cases = [
        ("GET", "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0", {"Host": "evil.example"}),
        ("GET", "/", {"Host": "rebind.example:5000"}),
        ("GET", "/health", {"Host": "evil.example"}),  # probes are exempt
        ("GET", "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0", {"Host": "10.1.2.3:5000"}),
        ("GET", "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0", {"Host": "localhost"}),
        ("POST", "/ajax-api/2.0/mlflow/experiments/search", {"Origin": "http://evil.example"}),
        ("POST", "/ajax-api/2.0/mlflow/experiments/search", {"Origin": "http://localhost:3000"}),
        ("POST", "/api/2.0/mlflow/experiments/search", {"Origin": "http://10.0.0.5:5000"}),
        ("GET", "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0", {"Origin": "http://x.io"}),
    ]
    with httpx.Client(base_url=reference_server.url, trust_env=False) as ref:
        for method, path, headers in cases:
            kwargs = {"json": {"max_results": 1}} if method == "POST" else {}
            theirs = ref.request(method, path, headers=headers, **kwargs)
            ours = http.request(method, path, headers=headers, **kwargs)
            assert ours.status_code == theirs.status_code, (method, path, headers)
            if theirs.status_code == 403:
                assert ours.text == theirs.text
            allow = "access-control-allow-origin"
            assert ours.headers.get(allow) == theirs.headers.get(allow), (path, headers)


@SQLITE
def test_preflight(http: httpx.Client) -> None:
    allowed = http.options(
        "/api/2.0/mlflow/runs/search",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    refused = http.options(
        "/api/2.0/mlflow/runs/search",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400


@SQLITE
def test_allowed_hosts_and_origins_flags(start_tether_server: TetherServerStarter) -> None:
    server = start_tether_server(
        extra_args=[
            "--allowed-hosts",
            "tether.example.com,*.corp.example",
            "--cors-allowed-origins",
            "https://tether.example.com",
            "--x-frame-options",
            "DENY",
        ]
    )
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        assert client.get("/", headers={"Host": "127.0.0.1"}).status_code == 403
        ok = client.get("/", headers={"Host": "a.corp.example"})
        assert ok.status_code == 200 and ok.headers["x-frame-options"] == "DENY"
        search = "/ajax-api/2.0/mlflow/experiments/search"
        host = {"Host": "tether.example.com"}
        same_site = {**host, "Origin": "https://tether.example.com"}
        assert client.post(search, json={}, headers=same_site).status_code == 200
        other = {**host, "Origin": "https://other.example.com"}
        assert client.post(search, json={}, headers=other).status_code == 403


@SQLITE
def test_no_ui_explains_how_to_get_it(
    start_tether_server: TetherServerStarter, tmp_path: Path
) -> None:
    empty = tmp_path / "no-ui"
    empty.mkdir()
    server = start_tether_server(extra_args=["--ui-dir", str(empty)])
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "tether ui install" in page.text and "has no index.html" in page.text
        assert client.get("/static-files/index.html").status_code == 404
        # The API answers as ever.
        assert client.get("/api/2.0/mlflow/experiments/get?experiment_id=0").status_code == 200


@SQLITE
def test_static_prefix(start_tether_server: TetherServerStarter) -> None:
    server = start_tether_server(extra_args=["--static-prefix", "/mlflow"])
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        index = client.get("/mlflow/")
        assert index.status_code == 200 and '<div id="root"' in index.text
        js = INDEX_JS.search(index.text)
        assert js is not None and client.get("/mlflow/" + js.group(1)).status_code == 200
        api = client.get("/mlflow/ajax-api/2.0/mlflow/experiments/get?experiment_id=0")
        assert api.status_code == 200 and api.json()["experiment"]["name"] == "Default"
        graphql = client.post(
            "/mlflow/graphql", json={"query": '{ test(inputString: "p") { output } }'}
        )
        assert graphql.json() == {"data": {"test": {"output": "p"}}, "errors": None}
        assert client.get("/mlflow/tether/").status_code == 200
        redirect = client.get("/mlflow")
        assert (redirect.status_code, redirect.headers["location"]) == (308, "/mlflow/")
        outside = client.get("/api/2.0/mlflow/experiments/get?experiment_id=0")
        assert (outside.status_code, outside.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
        assert client.get("/").status_code == 404
        for probe in ("/health", "/mlflow/health"):  # probes answer at both places
            assert client.get(probe).text == "OK"
    # The MLflow client with the prefixed tracking URI.
    import mlflow

    client3 = mlflow.MlflowClient(tracking_uri=server.url + "/mlflow")
    assert client3.get_experiment("0").name == "Default"


def test_static_prefix_validation() -> None:
    for bad in ("mlflow", "/mlflow/", "/{x}"):
        done = subprocess.run(
            [*tether_command(), "serve", "--static-prefix", bad],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert done.returncode == 2 and "--static-prefix" in done.stderr, done.stderr


def test_ui_install_from_a_wheel(tmp_path: Path) -> None:
    """`tether ui install` downloads the pinned wheel with pip and keeps only the build."""
    target = tmp_path / "ui"
    done = subprocess.run(
        [*tether_command(), "ui", "install", "--target", str(target)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "408 files" in done.stdout
    assert (target / "index.html").is_file()
    assert not list(target.rglob("*.py"))  # the UI only: nothing of mlflow's Python code
    where = subprocess.run(
        [*tether_command(), "ui", "where", "--ui-dir", str(target)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert where.returncode == 0 and str(target) in where.stdout
    # Offline: from a wheel file, and a broken one is refused without touching the copy.
    broken = tmp_path / "mlflow-3.17.2-py3-none-any.whl"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("mlflow/__init__.py", "")
    refused = subprocess.run(
        [*tether_command(), "ui", "install", "--target", str(target), "--wheel", str(broken)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert refused.returncode == 1 and "no mlflow/server/js/build/index.html" in refused.stderr
    assert (target / "index.html").is_file()
