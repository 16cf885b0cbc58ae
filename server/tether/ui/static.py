"""The UI's files, served as `mlflow server` serves them.

- `GET /`: index.html with `Cache-Control: no-cache` (it names the hashed bundles of this
  build, so it must be revalidated); without a build, an HTML page saying how to get one.
- `GET /static-files/{path}`: the build's files, cacheable for 28 days (their names carry
  content hashes), with ETag / If-None-Match (304) and Range (starlette's FileResponse).
The UI routes by the URL's fragment (`#/experiments/1`), so no other path needs index.html.

Content types come from the table below before Python's `mimetypes`, which reads
/etc/mime.types when present: slim images have none, and a font or module script served as
application/octet-stream is refused by the browser under `X-Content-Type-Options: nosniff`.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.responses import FileResponse

from tether.api.access import PUBLIC, SIGNED_IN, guard
from tether.errors import MlflowError
from tether.threads import blocking
from tether.ui.files import UI_VERSION, UiFiles

router = APIRouter(include_in_schema=False)

STATIC_MAX_AGE = 2419200  # 28 days, as mlflow server
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".wasm": "application/wasm",
}


def content_type(path: Path) -> str:
    known = _TYPES.get(path.suffix.lower())
    if known:
        return known
    import mimetypes

    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _ui(request: Request) -> UiFiles:
    found: UiFiles = request.app.state.ui_files
    return found


@router.api_route("/", methods=["GET", "HEAD"], dependencies=[guard(SIGNED_IN)])
async def index(request: Request) -> Response:
    found = _ui(request)
    if found.index is None:
        return HTMLResponse(_no_ui_page(found))
    return await _file(request, found.index, {"Cache-Control": "no-cache"})


@router.api_route(
    "/static-files/{path:path}", methods=["GET", "HEAD"], dependencies=[guard(PUBLIC)]
)
async def static_file(request: Request, path: str) -> Response:
    found = _ui(request)
    if found.directory is None:
        raise _missing(path)
    target = await blocking(_inside, found.directory, path)
    if target is None:
        raise _missing(path)
    return await _file(request, target, {"Cache-Control": f"public, max-age={STATIC_MAX_AGE}"})


def _inside(root: Path, path: str) -> Path | None:
    """The regular file `path` names under `root`, or None (also for anything that leaves
    it: `..`, absolute paths, symlinks pointing out)."""
    if "\x00" in path or "\\" in path:
        return None
    try:
        candidate = (root / path).resolve()
        if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
            return None
    except OSError:  # a name too long for the file system (ENAMETOOLONG), ...: not one of ours
        return None
    return candidate


async def _file(request: Request, path: Path, headers: dict[str, str]) -> Response:
    stat = await blocking(os.stat, path)
    response = FileResponse(path, stat_result=stat, media_type=content_type(path), headers=headers)
    if _not_modified(request, response.headers.get("etag")):
        kept = {k: v for k, v in response.headers.items() if k in ("etag", "cache-control")}
        return Response(status_code=304, headers=kept)
    return response


def _not_modified(request: Request, etag: str | None) -> bool:
    wanted = request.headers.get("if-none-match")
    if not wanted or etag is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in wanted.split(",")]
    return "*" in tags or etag in tags


def _missing(path: str) -> MlflowError:
    return MlflowError(f"No file {path!r} in the UI's build", "RESOURCE_DOES_NOT_EXIST")


def _no_ui_page(found: UiFiles) -> str:
    reason = html.escape(found.source)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether: no web UI installed</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
line-height:1.5}}code,pre{{background:#f3f3f3;padding:.1rem .3rem}}pre{{padding:.6rem;
overflow-x:auto}}</style></head>
<body>
<h1>Tether is running, without its web UI</h1>
<p>The MLflow API answers here (point <code>MLFLOW_TRACKING_URI</code> at this address), but the
web UI's files were not found ({reason}).</p>
<p>Tether serves the stock MLflow {UI_VERSION} UI. Get it once, then restart the server:</p>
<pre>tether ui install</pre>
<p>It downloads the <code>mlflow=={UI_VERSION}</code> wheel with pip (no dependencies) and keeps
only its UI build (26.6 MB). Offline, pass a wheel you have: <code>tether ui install --wheel
mlflow-{UI_VERSION}-py3-none-any.whl</code>; or point the server at a build with
<code>--ui-dir DIR</code> (<code>TETHER_UI_DIR</code>). An installed
<code>mlflow=={UI_VERSION}</code> package is used too.</p>
<p>The sync to Azure ML has its own page: <a href="tether/">tether/</a>.</p>
</body></html>
"""
