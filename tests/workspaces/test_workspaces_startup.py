"""`tether serve --enable-workspaces` startup checks: the workspace store it accepts. (With
`--azureml-workspace` too it starts: each workspace syncs into its own Azure ML workspace,
tests/sync/test_sync_workspaces.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.net import free_port
from support.servers import clean_env, tether_command


def _serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    argv = [
        *tether_command(),
        "serve",
        "--port",
        str(free_port()),
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'tether.db'}",
        *args,
    ]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )


def test_workspace_store_uri_other_than_the_backend_store_is_refused(tmp_path: Path) -> None:
    """MLflow's --workspace-store-uri may name another database or a plugin's store: Tether
    keeps workspaces with what they hold, so it refuses anything but the backend store."""
    for other in (f"sqlite:///{tmp_path / 'workspaces.db'}", "kubernetes://cluster"):
        done = _serve(tmp_path, "--enable-workspaces", "--workspace-store-uri", other)
        out, _ = done.communicate(timeout=120)
        assert done.returncode != 0, out
        assert "--workspace-store-uri" in out and "must name the backend store" in out, out
        assert other not in out  # the URI (it may hold a password) is not echoed


def test_workspace_store_uri_naming_the_backend_store_is_accepted(tmp_path: Path) -> None:
    """The same database written otherwise (a relative path) is the backend store."""
    (tmp_path / "sub").mkdir()
    same = "sqlite:///sub/../tether.db"
    for args in (
        ("--enable-workspaces", "--workspace-store-uri", same),
        ("--workspace-store-uri", "sqlite:///elsewhere.db"),
    ):
        server = _serve(tmp_path, *args)
        try:
            assert server.stdout is not None
            seen = []
            for line in server.stdout:  # read until it serves (or dies)
                seen.append(line)
                if "Uvicorn running" in line or "Application startup complete" in line:
                    break
            assert server.poll() is None, "".join(seen)
            if "--enable-workspaces" not in args:
                assert any("Ignoring --workspace-store-uri" in line for line in seen), seen
        finally:
            server.terminate()
            server.wait(timeout=60)
