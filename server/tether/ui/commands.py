"""`tether ui install | where`: get the pinned MLflow UI, and tell which one `serve` uses."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from tether.config import Settings
from tether.ui import files


@click.group("ui")
def ui() -> None:
    """The MLflow web UI served at / (see README "Web UI")."""


@ui.command("install")
@click.option(
    "--target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to put the build in (default: this environment's "
    f"share/tether/mlflow-ui-{files.UI_VERSION}, where `tether serve` looks).",
)
@click.option(
    "--wheel",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help=f"Use this mlflow-{files.UI_VERSION} wheel instead of downloading it with pip.",
)
def install(target: Path | None, wheel: Path | None) -> None:
    """Extract the UI of MLflow (the pinned version) from its wheel: 26.6 MB, no import."""
    target = target or files.installed_dir()
    with tempfile.TemporaryDirectory(prefix="tether-ui-wheel-") as tmp:
        if wheel is None:
            click.echo(f"downloading mlflow=={files.UI_VERSION} (the wheel only, no dependencies)")
            try:
                wheel = files.download_wheel(Path(tmp))
            except (subprocess.CalledProcessError, RuntimeError) as exc:
                raise click.ClickException(f"cannot download the mlflow wheel: {exc}") from None
        try:
            count, size = files.extract_build(wheel, target)
        except (OSError, RuntimeError) as exc:
            raise click.ClickException(f"cannot install the UI into {target}: {exc}") from None
    click.echo(f"installed the MLflow {files.UI_VERSION} UI: {count} files, {size / 1e6:.1f} MB")
    click.echo(f"into {target}")
    if target != files.installed_dir():
        click.echo(f"serve it with: tether serve --ui-dir {target}")


@ui.command("where")
@click.option("--ui-dir", default=None, help="As given to `tether serve` (env TETHER_UI_DIR).")
def where(**options: Any) -> None:
    """Which UI files `tether serve` would use (exit 1 when none is found)."""
    given = {k: v for k, v in options.items() if v is not None}
    found = files.locate(Settings(**given))
    if found.directory is None:
        click.echo(f"no UI: {found.source}; run `tether ui install`", err=True)
        raise SystemExit(1)
    click.echo(f"{found.directory} ({found.source})")
