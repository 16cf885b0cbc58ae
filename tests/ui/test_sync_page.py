"""The sync page (`/tether/`) of a Tether server syncing into the stand-in Azure ML workspace,
in headless Chromium on a desktop and a phone-sized screen: synced runs with their links
into the studio, a dead letter with its error and a retry button that works, the oldest
unsynced write, and no sideways scrolling on the phone.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support import MlflowRest, TetherServer, unique_name
from ui.browser import DESKTOP, PHONE, chromium

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support.servers import TetherServerStarter

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True),
]

TENANT = "72f988bf-0000-4000-8000-00000000abcd"


def _status(server: TetherServer) -> dict[str, Any]:
    with server.rest() as rest:
        body: dict[str, Any] = rest.get("/api/2.0/tether/sync/status").json
    return body


def _wait(server: TetherServer, done: Any, what: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = _status(server)
        if done(body):
            return body
        assert time.monotonic() < deadline, f"{what}: {body}"
        time.sleep(0.2)


@pytest.fixture
def synced_server(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> TetherServer:
    ws = azureml_workspace
    env = {
        **azureml_identity.env,
        **ws.env,
        "AZURE_TENANT_ID": TENANT,
        "TETHER_AZUREML_ARM_ENDPOINT": ws.arm_endpoint,
        "TETHER_SYNC_POLL_SECONDS": "0.2",
        "TETHER_SYNC_BACKOFF_BASE_SECONDS": "0.05",
        "TETHER_SYNC_BACKOFF_MAX_SECONDS": "0.5",
    }
    return start_tether_server(extra_args=["--azureml-workspace", ws.arm_id], env=env)


def test_sync_page_shows_what_reached_azure_ml(
    chromium_binary: str, synced_server: TetherServer, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    server = synced_server
    rest: MlflowRest
    with server.rest() as rest:
        good = rest.post("experiments/create", {"name": unique_name("synced")}).json
        run = rest.post("runs/create", {"experiment_id": good["experiment_id"], "run_name": "fit"})
        run_id = run.json["run"]["info"]["run_id"]
        rest.post("runs/log-param", {"run_id": run_id, "key": "k", "value": "v"})
    _wait(
        server,
        lambda b: b["entities"]["synced"] >= 3 and not b["entities"]["pending"],
        "the run did not sync",
    )
    refusal = {"error_code": "INVALID_PARAMETER_VALUE", "message": "no (injected refusal)"}
    ws.faults(path="experiments/create$", action="status", status=400, body=refusal, times=None)
    with server.rest() as rest:
        bad_name = unique_name("refused")
        bad = rest.post("experiments/create", {"name": bad_name}).json["experiment_id"]
    _wait(server, lambda b: b["entities"]["dead"] == 1, "no dead letter")
    with server.rest() as rest:
        azure_run = rest.get("/api/2.0/tether/sync/status", {"entity": f"run:{run_id}"})
    azure_run_id = azure_run.json["azure_id"]

    with (
        chromium(server.url, DESKTOP) as browser,
        browser.visit("/tether/", "sync-desktop") as visit,
    ):
        visit.shown("Sync to Azure ML", "fit", bad_name, "no (injected refusal)")
        page = visit.page
        assert page.get_by_text("Sync is on, into").count() == 1
        # The synced run links into the studio, with the workspace and the tenant.
        studio = page.locator(f"a[href*='/runs/{azure_run_id}?']")
        assert studio.first.inner_text() == "open in studio"
        href = studio.first.get_attribute("href")
        assert href is not None
        parts = urlsplit(href)
        assert (parts.scheme, parts.netloc, parts.path) == (
            "https",
            "ml.azure.com",
            f"/runs/{azure_run_id}",
        )
        query = parse_qs(parts.query)
        assert query["wsid"] == [
            f"/subscriptions/{ws.subscription}/resourcegroups/{ws.resource_group}"
            f"/workspaces/{ws.workspace_name}"
        ]
        assert query["tid"] == [TENANT]
        # The run links back into the MLflow UI.
        ui_link = page.get_by_role("link", name="fit").first.get_attribute("href")
        assert ui_link == f"../#/experiments/{good['experiment_id']}/runs/{run_id}"
        assert not visit.failed(), visit.failed()
        # Retry the dead letter once the workspace accepts it again.
        ws.clear_faults()
        page.get_by_role("button", name=f"Retry experiment:{bad}").first.click()
        visit.shown(f"Queued again: experiment:{bad}.")
        assert not visit.failed(), visit.failed()
    _wait(
        server,
        lambda b: b["entities"]["dead"] == 0 and not b["entities"]["pending"],
        "the retried experiment did not sync",
    )

    with chromium(server.url, PHONE) as browser, browser.visit("/tether/", "sync-phone") as visit:
        visit.shown("Sync to Azure ML", "fit", bad_name)
        width = visit.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways on a phone: {width} px"
        assert visit.page.get_by_role("button", name=re.compile("^Retry")).count() == 0
        assert not visit.failed(), visit.failed()


def test_sync_page_without_sync_and_its_refusals(tether_server: TetherServer) -> None:
    """Sync off: the page says so and counts the writes waiting in the outbox; the retry
    form refuses bad input and cross-origin posts."""
    with tether_server.rest() as rest:
        rest.post("experiments/create", {"name": unique_name("waiting")})
    with httpx.Client(base_url=tether_server.url, trust_env=False, follow_redirects=False) as http:
        page = http.get("/tether/")
        assert page.status_code == 200 and "Sync is off" in page.text
        assert "writes not yet picked up" in page.text
        redirect = http.get("/tether")
        assert (redirect.status_code, redirect.headers["location"]) == (308, "tether/")
        assert http.get("/tether/?status=bogus").status_code == 400
        form = {"content-type": "application/x-www-form-urlencoded"}
        assert http.post("/tether/retry", content="entity=nocolon", headers=form).status_code == 400
        assert http.post("/tether/retry", content="", headers=form).status_code == 400
        nothing = http.post("/tether/retry", content="entity=run:abc", headers=form)
        assert nothing.status_code == 303 and nothing.headers["location"] == "./?retried=0"
        assert "Nothing to retry" in http.get("/tether/" + nothing.headers["location"][2:]).text
        cross = http.post(
            "/tether/retry",
            content="all=dead",
            headers={**form, "Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
