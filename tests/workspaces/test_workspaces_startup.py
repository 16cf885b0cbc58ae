"""Workspaces and the Azure ML sync are not combined until each workspace has its own Azure
ML binding (issue 17, phase 2): one shared Azure ML workspace would merge the workspaces'
same-named experiments and models. `tether serve` refuses the pair before it starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.servers import clean_env, tether_command


def test_serve_refuses_workspaces_with_azureml_sync(tmp_path: Path) -> None:
    argv = [
        *tether_command(),
        "serve",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'tether.db'}",
        "--enable-workspaces",
        "--azureml-workspace",
        "subscriptions/s/resourceGroups/rg/workspaces/ws",
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=clean_env(), cwd=tmp_path
    )
    assert done.returncode != 0
    assert "--enable-workspaces cannot be combined with --azureml-workspace" in done.stderr
