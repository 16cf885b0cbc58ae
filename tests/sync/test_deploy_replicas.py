"""Two `tether serve` replicas on one PostgreSQL store: each deployment is driven by one of
them at a time (leased rows), so every endpoint and deployment is created exactly once, and
every update is sent exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from support import unique_name
from sync.sync_deploy import train, wait_state
from sync.sync_servers import SyncedServerStarter

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("backend_kind", ["postgres"], indirect=True)
def test_two_replicas_create_each_resource_once(
    start_synced_server: SyncedServerStarter,
    azureml_workspace: AzuremlWorkspace,
    backend_kind: str,
) -> None:
    ws = azureml_workspace
    first = start_synced_server()
    second = start_synced_server(first.backend_uri)
    model = unique_name("clf").replace("_", "-")
    train(first.url, model)
    mark = ws.mark()
    names = [f"dep-rep-{i}" for i in range(3)]
    for i, name in enumerate(names):
        with (first if i % 2 else second).rest() as rest:
            body = {"name": name, "model_uri": f"models:/{model}/1"}
            assert rest.post("/api/2.0/tether/deployments/create", body).status == 200
    for name in names:
        assert wait_state(second, name, {"READY", "FAILED"})["state"] == "READY"
    assert sorted(e["name"] for e in ws.online()) == names
    for name in names:
        for tail in (f"onlineEndpoints/{name}$", f"deployments/{name}$"):
            created = [r for r in ws.requests(mark, path=tail, method="PUT") if r["status"] == 201]
            assert len(created) == 1, (tail, created)

    train(first.url, model, flip=True)  # version 2
    mark = ws.mark()
    for i, name in enumerate(names):
        with (second if i % 2 else first).rest() as rest:
            body = {"name": name, "model_uri": f"models:/{model}/2"}
            assert rest.post("/api/2.0/tether/deployments/update", body).status == 200
    for name in names:
        found = wait_state(first, name, {"READY", "FAILED"})
        assert (found["state"], found["model_version"]) == ("READY", "2"), found
        sent = ws.requests(mark, path=f"deployments/{name}$", method="PUT")
        assert [r["status"] for r in sent] == [200], (name, sent)
