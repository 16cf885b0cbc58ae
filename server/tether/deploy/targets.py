"""Which Azure ML workspace a deployment goes to: the one its MLflow workspace is bound to.

`default` is bound by the server's `--azureml-workspace`, any other workspace by `tether
workspaces bind` (tether.sync.bindings); an unbound workspace deploys nowhere.

Invariants:
- the binding is read on every use (one primary-key read), so a bind, rebind or unbind takes
  effect on the next request and the next driver step, without a restart;
- one `OnlineArm` per `Target` (frozen, hashable): a changed binding (another Azure
  workspace, endpoint or credential) is a new Target, so a new arm with its own token
  provider; the replaced one is dropped;
- a named credential missing from the environment raises PermanentError (naming the
  variables, never a secret) and is not cached: setting it takes effect on the next use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tether.config import Settings
from tether.db.engine import Database
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.deploy.arm import OnlineArm
from tether.errors import MlflowError
from tether.sync import bindings
from tether.sync.azureml.client import AzureMLClient, RetryPolicy
from tether.sync.azureml.errors import TransientError
from tether.sync.azureml.workspace import parse_workspace_setting
from tether.sync.bindings import Target


@dataclass(frozen=True)
class Bound:
    """A workspace's Azure ML target and the ARM client for its online endpoints."""

    target: Target
    arm: OnlineArm


class OnlineArms:
    """The ARM client of each bound workspace, cached per Target (thread-safe: the driver
    thread and the API's worker threads share it)."""

    def __init__(self, settings: Settings, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self._stop = stop
        self._lock = threading.Lock()
        self._arms: dict[Target, OnlineArm] = {}

    def lookup(self, session: Session, workspace: str) -> Bound | None:
        """`workspace`'s target and arm; None when it is not bound (kept in Tether only)."""
        target = bindings.azure_target_for(session, workspace, self.settings)
        if target is None:
            return None
        return Bound(target, self.arm(target))

    def of(self, db: Database, workspace: str) -> Bound | None:
        with db.read() as session:
            return self.lookup(session, workspace)

    def require(self, db: Database, workspace: str) -> Target:
        """The workspace's target, or INVALID_STATE (400: the workspace, not the request,
        lacks an Azure ML workspace) saying how to bind it."""
        with db.read() as session:
            target = bindings.azure_target_for(session, workspace, self.settings)
        if target is None:
            raise unbound_error(workspace)
        return target

    def arm(self, target: Target) -> OnlineArm:
        with self._lock:
            arm = self._arms.get(target)
            if arm is not None:
                return arm
        tokens = bindings.token_provider(target)  # PermanentError: credential not configured
        retry = RetryPolicy(attempts=4, max_delay=10.0)  # longer waits: the row's next attempt
        stop = self._stop
        if stop is not None:
            retry.sleep = lambda seconds: _wait_unless_stopped(stop, seconds)
        client = AzureMLClient(tokens, retry=retry, timeout=60.0)
        ref = parse_workspace_setting(target.azureml_workspace)
        arm = OnlineArm(client, self.settings.azureml_arm_endpoint, ref)
        with self._lock:
            for old in [t for t in self._arms if t.workspace == target.workspace]:
                del self._arms[old]  # the workspace was rebound: its old arm is not used again
            return self._arms.setdefault(target, arm)


def unbound_error(workspace: str) -> MlflowError:
    if workspace == DEFAULT_WORKSPACE:
        how = "start the server with --azureml-workspace (and --azureml-endpoint if needed)"
    else:
        how = (
            f"bind it with `tether workspaces bind {workspace} --azureml-workspace <tracking "
            f"URI or ARM id>` (or PUT /api/2.0/tether/workspaces/{workspace}/binding)"
        )
    return MlflowError(
        f"Workspace '{workspace}' is not bound to an Azure ML workspace, so it has nowhere to "
        f"deploy to: {how}, then deploy again.",
        "INVALID_STATE",
    )


def _wait_unless_stopped(stop: threading.Event, seconds: float) -> None:
    if stop.wait(seconds):
        raise TransientError("the deployment driver is stopping")
