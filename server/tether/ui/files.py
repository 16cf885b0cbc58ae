"""Where the MLflow UI's files come from, and `tether ui install`.

The stock UI (a static single-page app, 408 files, 26.6 MB) ships only inside the full
`mlflow` wheel. Tether does not depend on `mlflow` (~55 distributions, ~585 MB); it takes
only `mlflow/server/js/build` out of the wheel of the MLflow version whose API it implements
(`UI_VERSION`): a newer UI calls endpoints Tether does not answer yet.

Looked for, in order (`locate`):
1. an explicit directory (`--ui-dir` / `TETHER_UI_DIR`), used whatever its version;
2. the copy `tether ui install` extracted into this environment (`installed_dir()`:
   `<sys.prefix>/share/tether/mlflow-ui-<UI_VERSION>`);
3. an installed `mlflow` package of exactly `UI_VERSION`, found without importing it
   (`importlib.util.find_spec`: 0.01 s, where `import mlflow` costs 0.95 s and 173 MB).
None found: `/` explains how to get it (`tether.ui.static`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tether import MLFLOW_VERSION
from tether.config import Settings

log = logging.getLogger(__name__)

UI_VERSION = MLFLOW_VERSION  # the MLflow version whose REST API and UI Tether implements
_BUILD_IN_WHEEL = "mlflow/server/js/build/"
MARKER = ".tether-ui.json"  # written by `tether ui install` next to index.html


@dataclass(frozen=True)
class UiFiles:
    """The UI's build directory (None: not found) and how it was found, or why not."""

    directory: Path | None
    source: str

    @property
    def index(self) -> Path | None:
        return None if self.directory is None else self.directory / "index.html"


def installed_dir() -> Path:
    """Where `tether ui install` puts the build by default: per Python environment, so a
    venv (or the image's /opt/tether) carries its own copy, matching its Tether."""
    return Path(sys.prefix) / "share" / "tether" / f"mlflow-ui-{UI_VERSION}"


def locate(settings: Settings) -> UiFiles:
    if settings.ui_dir is not None:
        directory = Path(settings.ui_dir).resolve()
        if (directory / "index.html").is_file():
            return UiFiles(directory, f"--ui-dir {directory}")
        log.warning("--ui-dir %s has no index.html: the UI is not served", directory)
        return UiFiles(None, f"--ui-dir {directory} has no index.html")
    copy = installed_dir()
    if (copy / "index.html").is_file():
        return UiFiles(copy, f"installed by `tether ui install` in {copy}")
    return _from_mlflow_package()


def _from_mlflow_package() -> UiFiles:
    try:
        spec = importlib.util.find_spec("mlflow")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return UiFiles(None, "not installed")
    build = Path(spec.origin).parent / "server" / "js" / "build"
    if not (build / "index.html").is_file():  # mlflow-skinny, or a source checkout
        return UiFiles(None, f"the installed mlflow package at {build.parent} has no UI build")
    try:
        version = importlib.metadata.version("mlflow")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if version != UI_VERSION:
        log.warning(
            "the installed mlflow %s's UI is not used: Tether serves the UI of MLflow %s "
            "(run `tether ui install`)",
            version,
            UI_VERSION,
        )
        return UiFiles(None, f"the installed mlflow is {version}, not {UI_VERSION}")
    return UiFiles(build, f"the installed mlflow {version} package")


# `tether ui install` ----------------------------------------------------------------------


def download_wheel(into: Path) -> Path:
    """The pinned `mlflow` wheel, fetched by pip (its index and proxy settings), no deps."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(into),
            f"mlflow=={UI_VERSION}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wheels = sorted(into.glob(f"mlflow-{UI_VERSION}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip downloaded no mlflow-{UI_VERSION} wheel into {into}")
    return wheels[0]


def extract_build(wheel: Path, target: Path) -> tuple[int, int]:
    """Unpack only `mlflow/server/js/build/` of `wheel` into `target` (replaced whole, via a
    sibling temporary directory and a rename, so a server never sees half a build).
    Returns (files, bytes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tether-ui-", dir=target.parent))
    files = size = 0
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                if member.is_dir() or not member.filename.startswith(_BUILD_IN_WHEEL):
                    continue
                relative = Path(member.filename[len(_BUILD_IN_WHEEL) :])
                if relative.is_absolute() or ".." in relative.parts:
                    raise RuntimeError(f"unsafe path in {wheel.name}: {member.filename}")
                out = staging / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                files += 1
                size += member.file_size
        if not (staging / "index.html").is_file():
            raise RuntimeError(f"{wheel.name} has no {_BUILD_IN_WHEEL}index.html")
        marker = {"mlflow_version": UI_VERSION, "wheel": wheel.name, "files": files, "bytes": size}
        (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the files from other users
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return files, size
