"""Test-side handle of the stand-in workspace: starts it, and drives its control API."""

from __future__ import annotations

import json
import shutil
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from azure.storage.blob import ContainerClient

from standin.artifacts import RUN_ORIGIN, blob_name, run_container
from standin.front import StandinConfig
from standin.identity import ManagedIdentityEndpoint
from standin.procs import mlflow_backend_process, python_app_process
from standin.tls import make_tls_files
from support import free_port
from support.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from support.procs import ManagedProcess

STARTUP_TIMEOUT = 90.0


class StandinStartError(RuntimeError):
    pass


class WorkspaceArtifacts:
    """Reads what was uploaded, straight from Azurite (account key, no SAS)."""

    def __init__(self, endpoint: str, container: str, account_name: str, account_key: str) -> None:
        self.endpoint = endpoint
        self.container = container
        self._credential = {"account_name": account_name, "account_key": account_key}

    def container_client(self) -> ContainerClient:
        return ContainerClient(self.endpoint, self.container, credential=self._credential)

    def blob_names(self, prefix: str = "") -> list[str]:
        with self.container_client() as client:
            return sorted(b.name for b in client.list_blobs(name_starts_with=prefix or None))

    def run_files(self, run_id: str) -> list[str]:
        """Artifact paths of a run that have bytes in storage (whatever the index says)."""
        prefix = blob_name(RUN_ORIGIN, run_container(run_id), "")
        return [name[len(prefix) :] for name in self.blob_names(prefix)]

    def read_blob(self, name: str) -> bytes:
        with self.container_client() as client:
            return client.download_blob(name).readall()

    def read(self, run_id: str, path: str) -> bytes:
        return self.read_blob(blob_name(RUN_ORIGIN, run_container(run_id), path))


class AzuremlWorkspace:
    """The stand-in workspace (front + inner `mlflow server` + Azurite unless one is given).

    Blob storage: `blob_endpoint` (+ `blob_account`), else what `shared_blob()` returns
    (called after the MLflow backend was started, so both boot together), else an own Azurite.

    Addresses: `.tracking_uri` (azureml://127.0.0.1:<tls>/mlflow/v1.0/<scope>, what ARM
    returns), `.https_base` (TLS, trusted via `.ca_file` / `.env`), `.http_base` (same app
    without TLS, for clients that cannot be given a CA), `.arm_endpoint` (ARM discovery is
    served by the same host), `.arm_id`, `.scope`, `.mlflow_url` (the inner MLflow, no auth,
    no quirks), `.artifacts` (WorkspaceArtifacts).
    Control: `.faults()`, `.clear_faults()`, `.requests()`, `.mark()`, `.quirks()`, `.reset()`.
    """

    def __init__(
        self,
        identity: ManagedIdentityEndpoint,
        *,
        blob_endpoint: str | None = None,
        blob_account: tuple[str, str] = (ACCOUNT, ACCOUNT_KEY),
        shared_blob: Callable[[], tuple[str, tuple[str, str]] | None] | None = None,
        quirks: dict[str, Any] | None = None,
        subscription: str = "00000000-0000-4000-8000-5ab5c41b7e00",
        resource_group: str = "rg-tether-standin",
        workspace: str = "ws-standin",
    ) -> None:
        self.identity = identity
        self.tmpdir = Path(tempfile.mkdtemp(prefix="tether-azws-"))
        self.log_path = self.tmpdir / "workspace.log"
        self._processes: list[ManagedProcess] = []
        self.subscription = subscription
        self.resource_group = resource_group
        self.workspace_name = workspace
        self.workspace_id = str(uuid.uuid4())
        self.tls = make_tls_files(self.tmpdir / "tls")
        self.ca_file = str(self.tls.ca_file)
        self.ca_bundle = str(self.tls.bundle_file)
        tls_port, http_port, mlflow_port = free_port(), free_port(), free_port()
        self.netloc = f"127.0.0.1:{tls_port}"
        self.https_base = f"https://{self.netloc}"
        self.url, self.port = self.https_base, tls_port  # as on support.ServerProcess
        self.http_base = f"http://127.0.0.1:{http_port}"
        self.arm_endpoint = self.https_base
        self.mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        self.scope = (
            f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{workspace}"
        )
        self.arm_id = (
            f"subscriptions/{subscription}/resourceGroups/{resource_group}/workspaces/{workspace}"
        )
        self.tracking_uri = f"azureml://{self.netloc}/mlflow/v1.0{self.scope}"
        self.placeholder_root = "azureml://standin-placeholder/artifacts"
        try:
            self._processes.append(
                mlflow_backend_process(
                    mlflow_port, self.tmpdir, self.log_path, self.placeholder_root
                )
            )
            self.azurite: Azurite | None = None
            # Asked only now, so that Azurite starts while MLflow boots.
            shared = shared_blob() if shared_blob is not None and blob_endpoint is None else None
            if shared is not None:
                blob_endpoint, blob_account = shared
            if blob_endpoint is None:
                self.azurite = Azurite()
                blob_endpoint = self.azurite.blob_endpoint
                blob_account = (ACCOUNT, ACCOUNT_KEY)
            self.blob_endpoint = blob_endpoint.rstrip("/")
            self.config = StandinConfig(
                tls_port=tls_port,
                http_port=http_port,
                certfile=str(self.tls.cert_file),
                keyfile=str(self.tls.key_file),
                mlflow_url=self.mlflow_url,
                blob_endpoint=self.blob_endpoint,
                account_name=blob_account[0],
                account_key=blob_account[1],
                subscription=subscription,
                resource_group=resource_group,
                workspace=workspace,
                workspace_id=self.workspace_id,
                token_secret=identity.secret,
                placeholder_root=self.placeholder_root,
                tenant_id=identity.tenant_id,
                quirks=dict(quirks or {}),
            )
            config_path = self.tmpdir / "standin.json"
            config_path.write_text(json.dumps(asdict(self.config)))
            self.front = python_app_process(
                "azureml-standin", "standin.front", config_path, self.log_path
            )
            self._processes.append(self.front)
            self.artifacts = WorkspaceArtifacts(
                self.blob_endpoint, self.config.container, blob_account[0], blob_account[1]
            )
            self._control = httpx.Client(base_url=self.http_base, timeout=30.0, trust_env=False)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------------- start/stop

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        self._wait(self._front_healthy, deadline, "stand-in front and its mlflow backend")

    def _front_healthy(self) -> bool:
        try:
            return self._control.get("/health", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        while not ready():
            dead = [p.name for p in self._processes if not p.alive()]
            if dead or time.monotonic() > deadline:
                reason = f"{', '.join(dead)} exited" if dead else "timed out"
                raise StandinStartError(
                    f"{what} did not become ready ({reason}).\n"
                    f"--- log ---\n{self.log_text()[-20000:]}"
                    + (
                        f"\n--- azurite ---\n{self.azurite.log_text()[-5000:]}"
                        if self.azurite
                        else ""
                    )
                )
            time.sleep(0.1)

    def alive(self) -> bool:
        return all(p.alive() for p in self._processes)

    def log_text(self, start: int = 0) -> str:
        """The front's and the inner MLflow's log (one file), from byte offset `start`."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        azurite = getattr(self, "azurite", None)  # None, or not set yet: __init__ failed early
        if azurite is not None:
            azurite.stop()
        control = getattr(self, "_control", None)
        if control is not None:
            control.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -------------------------------------------------------------------------- addresses

    def mlflow_api(self, version: str = "v2.0", *, base: str | None = None) -> str:
        """`<base>/mlflow/<version>/<scope>/api/2.0/mlflow` (base: https_base by default)."""
        return f"{base or self.https_base}/mlflow/{version}{self.scope}/api/2.0/mlflow"

    def history_api(self, *, base: str | None = None) -> str:
        return f"{base or self.https_base}/history/v1.0{self.scope}"

    @property
    def env(self) -> dict[str, str]:
        """For a client process: trust the stand-in's CA (plus the usual public roots)."""
        return {"SSL_CERT_FILE": self.ca_bundle, "REQUESTS_CA_BUNDLE": self.ca_bundle}

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the stand-in's CA only (httpx `verify=`)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on `https_base` trusting the CA, sending `token` when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.https_base,
            verify=self.ssl_context(),
            headers=headers,
            timeout=kwargs.pop("timeout", 60.0),
            trust_env=False,
            **kwargs,
        )

    # ------------------------------------------------------------------------ control API

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._control.request(method, path, **kwargs)
        if response.status_code != 200:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def faults(self, *rules: dict[str, Any], **rule: Any) -> list[dict[str, Any]]:
        """Add fault rules (see faults.py): `.faults(path="runs/create$", action="drop")`."""
        plan = [*rules, *([rule] if rule else [])]
        result: list[dict[str, Any]] = self._call("POST", "/_standin/faults", json=plan)["rules"]
        return result

    def fault_rules(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/_standin/faults")["rules"]
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/_standin/faults")

    def mark(self) -> int:
        """The sequence number of the last request so far: `requests(since=mark)`."""
        result: int = self._call("GET", "/_standin/requests", params={"since": 1 << 62})["last_seq"]
        return result

    def requests(
        self,
        since: int = 0,
        *,
        path: str | None = None,
        method: str | None = None,
        brief: bool = False,
    ) -> list[dict[str, Any]]:
        """Logged Azure requests after `since`: seq, time (arrival), done (answered), method,
        path, query, status, auth, fault, dropped, counts (run data it carried: run_id,
        metrics, params, tags), json (request body; left out when `brief`). `path` is a regex
        searched in the path."""
        import re

        params: dict[str, Any] = {"since": since}
        if brief:
            params["brief"] = 1
        entries: list[dict[str, Any]] = self._call("GET", "/_standin/requests", params=params)[
            "requests"
        ]
        if path is not None:
            entries = [e for e in entries if re.search(path, e["path"])]
        if method is not None:
            entries = [e for e in entries if e["method"] == method.upper()]
        return entries

    def counts(self, since: int = 0) -> dict[str, int]:
        """Azure requests after `since` and the run data they applied, by kind (front.py
        `request_counts`): requests, applied, throttled, unavailable, metric_requests,
        metric_points, param_requests, params, tag_requests, tags."""
        result: dict[str, int] = self._call("GET", "/_standin/counts", params={"since": since})
        return result

    def latency(self, ms: float) -> None:
        """Every Azure request waits `ms` first, from now on (until `reset()`)."""
        self.quirks(latency_ms=float(ms))

    def blob_commits(self, since: int = 0) -> dict[str, list[int]]:
        """Blob name -> statuses of the committing writes (Put Blob, Put Block List) seen by
        the storage pass-through after `since` (quirk `blob_via_front`): 201 = written,
        409 = refused as already there. Paths are unquoted blob names."""
        from urllib.parse import unquote

        prefix = f"/_storage/{self.config.account_name}/{self.config.container}/"
        out: dict[str, list[int]] = {}
        for entry in self.requests(since):
            if entry["family"] != "blob" or entry["method"] != "PUT":
                continue
            if entry["query"] not in ("", "comp=blocklist") or entry["status"] is None:
                continue
            name = unquote(entry["path"][len(prefix) :])
            out.setdefault(name, []).append(int(entry["status"]))
        return out

    def quirks(self, **changes: Any) -> dict[str, Any]:
        """Current quirk switches; keyword arguments change them (until `reset()`)."""
        if changes:
            result: dict[str, Any] = self._call("POST", "/_standin/quirks", json=changes)
        else:
            result = self._call("GET", "/_standin/quirks")
        return result

    def reset(self) -> None:
        """Clear fault rules, restore the start-up quirks and forget every online endpoint
        (the request log is kept)."""
        self._call("POST", "/_standin/reset")

    def online(self) -> list[dict[str, Any]]:
        """The online endpoints that exist (with their deployments), as online.py has them."""
        result: list[dict[str, Any]] = self._call("GET", "/_standin/online")["endpoints"]
        return result

    def artifact_index(self, run_id: str) -> list[dict[str, Any]]:
        """The artifact records of a run (what list/contentinfo answer from)."""
        result: list[dict[str, Any]] = self._call(
            "GET",
            "/_standin/artifacts",
            params={"origin": RUN_ORIGIN, "container": run_container(run_id)},
        )["records"]
        return result

    def __repr__(self) -> str:
        return f"<AzuremlWorkspace {self.https_base} ws={self.workspace_name}>"
