"""Deep links into Azure ML studio for what the sync created there.

The studio's addresses, as the Azure ML SDK builds them (`get_portal_url`):
`<studio>/runs/<run id>?wsid=/subscriptions/<sub>/resourcegroups/<rg>/workspaces/<ws>`,
experiments at `<studio>/experiments/id/<experiment id>?wsid=...`, and `&tid=<tenant>` when
the tenant is known (`AZURE_TENANT_ID`), which spares a multi-tenant user the tenant picker.
`<studio>` is https://ml.azure.com (`TETHER_AZUREML_STUDIO_URL` for other clouds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

from tether.config import Settings
from tether.errors import MlflowError
from tether.sync.azureml.workspace import parse_workspace_setting


@dataclass(frozen=True)
class Studio:
    base: str
    wsid: str
    tenant: str | None

    def _link(self, path: str) -> str:
        tid = f"&tid={quote(self.tenant, safe='')}" if self.tenant else ""
        return f"{self.base}{path}?wsid={self.wsid}{tid}"

    def run(self, azure_run_id: str) -> str:
        return self._link(f"/runs/{quote(azure_run_id, safe='')}")

    def experiment(self, azure_experiment_id: str) -> str:
        return self._link(f"/experiments/id/{quote(azure_experiment_id, safe='')}")


def studio(settings: Settings) -> Studio | None:
    """None when sync is off (or the workspace setting does not parse: the worker says why)."""
    if not settings.azureml_workspace:
        return None
    try:
        ref = parse_workspace_setting(settings.azureml_workspace)
    except MlflowError:
        return None
    wsid = "/".join(
        quote(part, safe="")
        for part in (
            "",
            "subscriptions",
            ref.subscription,
            "resourcegroups",
            ref.resource_group,
            "workspaces",
            ref.name,
        )
    )
    return Studio(settings.azureml_studio_url.rstrip("/"), wsid, os.environ.get("AZURE_TENANT_ID"))
