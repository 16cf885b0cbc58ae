"""The deployment driver: follows each deployment row to its end, one ARM step at a time.

States (users see them): PENDING_SYNC -> CREATING -> READY | FAILED; READY -> UPDATING ->
READY (traffic, scale); READY -> PENDING_SYNC -> UPDATING -> READY (a new model version);
any -> DELETING -> DELETED. `step` is the place inside a state:

  sync -> endpoint -> endpoint_wait -> deployment -> deployment_wait -> traffic ->
  traffic_wait -> ready;   failure: cleanup -> cleanup_wait -> (FAILED);
  update: update_sync -> update -> update_wait -> update_done;  scale -> scale_wait ->
  update_done;  failure: (READY, the previous deployment serving, with the reason);
  delete: delete -> delete_wait -> (DELETED)

Invariants:
- a row is worked on by the one driver holding its lease (claimed with SKIP LOCKED on
  PostgreSQL, BEGIN IMMEDIATE on SQLite, as sync_entities); every commit checks the lease;
- the step is committed after each ARM call, and before a create the resource is looked up
  first: a resource carrying this row's REQUEST_TAG is ours and is waited for, never created
  again (a restart after kill -9 resumes polling); one carrying another tag is refused;
- an update's target is `progress["update"]`; before its PUT (PATCH) the deployment is read,
  and one already showing the target is our request sent before a restart: waited for, never
  sent again. Azure ML keeps the previous deployment serving when an update fails, so a
  failed update leaves the row READY with the previous model and the reason in `error`;
- waits are never slept with the lease held: the row is released with `next_attempt_at`
  (the operation's Retry-After, else POLL_S), transient ARM failures with a backoff;
- a row goes to the Azure ML workspace its MLflow workspace is bound to (deploy.targets),
  read at every step. The first step pins that target's identity (`progress["azure_target"]`):
  a row whose workspace is unbound, or bound to another Azure workspace since, is held (its
  reason in `error`) and touches no Azure workspace until the binding is back; the model
  version's Azure id is used only when its sync entity's workspace is bound to that target
  (an Azure id is valid only in the Azure workspace it was synced to).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update

from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import Deployment, ModelVersion, SyncEntity
from tether.deploy.arm import MANAGED_TAG, REQUEST_TAG, OnlineArm, Poll
from tether.deploy.targets import OnlineArms, unbound_error
from tether.observability import events
from tether.sync import bindings
from tether.sync.azureml.errors import PermanentError, TransientError
from tether.sync.bindings import Target

log = logging.getLogger("tether.deploy")
ACTIVE = ("PENDING_SYNC", "CREATING", "UPDATING", "DELETING")
POLL_S = 2.0
HOLD_S = 10.0  # a row held for its workspace's binding looks again this often
HELD = "waiting: "  # the start of a held row's reason
LEASE_MS = 60_000
LOG_TAIL = 100


class _LeaseLost(Exception):
    """Our lease expired, or the row's state changed under the step (a delete request)."""


@dataclass
class Wait(Exception):
    """Look again later (an operation running, the model version not synced yet); with a
    `reason`, the row shows it in `error` meanwhile."""

    seconds: float
    reason: str | None = None


@dataclass
class DriverStats:
    steps: int = 0
    waits: int = 0
    transient_failures: int = 0
    failed: int = 0
    last_error: str | None = None


class DeployDriver:
    def __init__(self, db: Database, arms: OnlineArms, *, poll_s: float = POLL_S) -> None:
        self.db = db
        self.arms = arms
        self.arm: OnlineArm | None = None  # the row's workspace's, set by each step
        self._target: Target | None = None
        self.poll_s = poll_s
        self.owner = f"deploy:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = DriverStats()
        self.stop_event = threading.Event()
        self._locations: dict[Target, str] = {}
        self._state = ""  # the state of the row being stepped, as loaded

    # ------------------------------------------------------------------ loop and lease

    def run_forever(self) -> None:
        while not self.stop_event.is_set():
            if not self.run_once():
                self.stop_event.wait(min(self.poll_s, 1.0))

    def run_once(self) -> bool:
        """Claim one due row and step it until it waits or ends; False when none was due."""
        row_id = self._claim()
        if row_id is None:
            return False
        try:
            while not self.stop_event.is_set():
                if not self._step(row_id):
                    break
        except _LeaseLost:
            log.warning("deploy: %s changed or its lease was lost; claimed again later", row_id)
        finally:
            self._release(row_id)
        return True

    def _claim(self) -> str | None:
        now = now_ms()
        with self.db.write() as session:
            row = session.execute(
                select(Deployment)
                .where(
                    Deployment.state.in_(ACTIVE),
                    Deployment.next_attempt_at <= now,
                    or_(Deployment.lease_owner.is_(None), Deployment.lease_expires_at < now),
                )
                .order_by(Deployment.next_attempt_at, Deployment.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if row is None:
                return None
            row.lease_owner, row.lease_expires_at = self.owner, now + LEASE_MS
            return row.id

    def _release(self, row_id: str) -> None:
        with self.db.write() as session:
            session.execute(
                update(Deployment)
                .where(Deployment.id == row_id, Deployment.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    def _save(self, row_id: str, **values: Any) -> None:
        """Commit the step, only while the lease is ours and the state is the one the step
        began in: a user's delete (state DELETING) is never overwritten by a create step that
        was in flight; the row is then given back and claimed again for the new state."""
        values.setdefault("lease_expires_at", now_ms() + LEASE_MS)
        values["updated_at"] = now_ms()
        if "progress" in values and not isinstance(values["progress"], str):
            values["progress"] = json.dumps(values["progress"], sort_keys=True)
        with self.db.write() as session:
            result = session.execute(
                update(Deployment)
                .where(
                    Deployment.id == row_id,
                    Deployment.lease_owner == self.owner,
                    Deployment.state == self._state,
                )
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise _LeaseLost(row_id)
        self._state = values.get("state", self._state)

    def _load(self, row_id: str) -> Deployment:
        with self.db.read() as session:
            row = session.get(Deployment, row_id)
            assert row is not None
            session.expunge(row)
            return row

    # --------------------------------------------------------------------------- steps

    def _step(self, row_id: str) -> bool:
        """One step; True to continue with the next step at once."""
        row = self._load(row_id)
        self._state = row.state
        if row.state not in ACTIVE:
            return False
        progress: dict[str, Any] = json.loads(row.progress or "{}")
        self.stats.steps += 1
        try:
            self._bind(row, progress)
            handler = getattr(self, f"_do_{row.step}")
            handler(row, progress)
        except Wait as wait:
            self.stats.waits += 1
            # A failure's reason stays while its cleanup is held (as while it is retried).
            shown = wait.reason is not None and not row.step.startswith("cleanup")
            held = {"error": str(wait.reason)[:4000]} if shown else {}
            self._save(row_id, next_attempt_at=now_ms() + int(wait.seconds * 1000), **held)
            return False
        except TransientError as exc:
            self.stats.transient_failures += 1
            self.stats.last_error = exc.reason
            events.count("deploy_transient_failures", row.state)
            delay = max(exc.retry_after or 0.0, min(60.0, 2.0 ** min(row.attempts, 6)))
            self._save(
                row_id,
                attempts=row.attempts + 1,
                # a failure's reason stays while its cleanup is retried
                error=row.error
                if row.step.startswith("cleanup")
                else f"retrying: {exc.reason}"[:2000],
                next_attempt_at=now_ms() + int(delay * 1000),
            )
            return False
        except PermanentError as exc:
            self._fail(row, progress, _sentence(exc.reason))
        return True

    def _fail(self, row: Deployment, progress: dict[str, Any], reason: str) -> None:
        """Record the reason, then clean up what was created for the request."""
        self.stats.failed += 1
        self.stats.last_error = reason
        events.count("deploy_failures", row.state)
        if row.state == "DELETING" or row.step.startswith("cleanup"):
            # Deleting failed for good: keep the row visible with the reason; `delete` again.
            self._save(row.id, state="FAILED", error=reason[:4000])
            return
        target = progress.pop("update", None)
        if target is not None:  # an update: Azure ML keeps the previous deployment serving
            progress.pop("op", None)
            progress.pop("location", None)
            what = (
                f"to {target['model_uri']}"
                if target["model_uri"] != row.model_uri
                else f"to {target['instance_count']} instances"
            )
            reason = (
                f"Updating {what} failed: {reason}. The previous deployment still serves "
                f"({row.model_uri} on {row.instance_count} x {row.instance_type})."
            )
            self._save(row.id, state="READY", step="ready", progress=progress, error=reason[:4000])
            return
        if row.state == "UPDATING":
            progress.pop("op", None)
            self._save(row.id, state="READY", step="ready", progress=progress, error=reason)
            return
        step = "cleanup" if not row.keep_failed else "failed"
        self._save(
            row.id,
            state="CREATING" if step == "cleanup" else "FAILED",
            step=step,
            error=reason[:4000],
            progress=progress,
        )

    def _bind(self, row: Deployment, progress: dict[str, Any]) -> None:
        """Point `arm` at the Azure ML workspace of the row's MLflow workspace; hold the row
        (Wait with the reason) while there is none, or another than the one it was pinned to."""
        self.arm = self._target = None
        try:
            bound = self.arms.of(self.db, row.workspace)
        except PermanentError as exc:  # the binding's named credential is not configured
            raise Wait(
                HOLD_S,
                f"{HELD}cannot connect to workspace {row.workspace!r}'s Azure ML: {exc.reason}",
            ) from None
        if bound is None:
            raise Wait(HOLD_S, f"{HELD}{unbound_error(row.workspace).message}")
        pinned = progress.get("azure_target")
        if pinned is not None and pinned != bound.target.identity:
            raise Wait(
                HOLD_S,
                f"{HELD}this deployment is in Azure ML workspace {pinned}, but workspace "
                f"{row.workspace!r} is now bound to {bound.target.identity}; bind it to "
                f"{pinned} again to go on",
            )
        self.arm, self._target = bound.arm, bound.target
        if row.error and row.error.startswith(HELD):
            self._save(row.id, error=None)  # the binding is back: no longer held

    def _online(self) -> OnlineArm:
        assert self.arm is not None, "set by _bind before every step"
        return self.arm

    def _region(self) -> str:
        assert self._target is not None
        location = self._locations.get(self._target)
        if location is None:
            location = self._locations[self._target] = self._online().workspace_location()
        return location

    def _ep(self, row: Deployment) -> str:
        return f"/onlineEndpoints/{row.endpoint}"

    def _dep(self, row: Deployment) -> str:
        return f"/onlineEndpoints/{row.endpoint}/deployments/{row.name}"

    def _wait_op(self, row: Deployment, progress: dict[str, Any], then: str, tail: str) -> None:
        """Follow the saved Azure-AsyncOperation URL; after a restart without one, the
        resource's provisioningState."""
        url = progress.get("op")
        if url:
            poll = self._online().operation(url)
        else:
            found = self._online().get(tail)
            state = str(((found or {}).get("properties") or {}).get("provisioningState", ""))
            if found is None:
                raise PermanentError(f"{tail} disappeared while it was being created")
            poll = Poll(
                state.lower() in ("succeeded", "failed", "canceled"),
                failed=state.lower() in ("failed", "canceled"),
                error=f"provisioningState {state}",
            )
        if not poll.done:
            raise Wait(poll.retry_after or self.poll_s)
        progress.pop("op", None)
        if poll.failed:
            raise PermanentError(poll.error or "the operation failed")
        self._save(row.id, step=then, progress=progress, attempts=0)

    def _do_sync(self, row: Deployment, progress: dict[str, Any]) -> None:
        """PENDING_SYNC: the version's Azure id comes from the sync state, never guessed."""
        model_id = self._azure_model_id(row.registered_model_id, row.model_version, row.model_uri)
        first = "endpoint" if row.owns_endpoint else "check_endpoint"
        assert self._target is not None
        progress.setdefault("azure_target", self._target.identity)  # where it is created
        self._save(
            row.id,
            state="CREATING",
            step=first,
            azure_model_id=model_id,
            error=None,
            progress=progress,
        )

    def _still_registered(self, model_id: int, version: int, uri: str) -> None:
        """Fail fast (before anything billable) when the version was deleted meanwhile."""
        with self.db.read() as session:
            mv = session.get(ModelVersion, (model_id, version))
            if mv is None or mv.deleted:
                raise PermanentError(
                    f"model version {uri} was deleted after the deployment was requested; "
                    "nothing was deployed"
                )

    def _azure_model_id(self, model_id: int, version: int, uri: str) -> str:
        """The ARM id of the synced Azure model version; Wait while it is being synced."""
        self._still_registered(model_id, version, uri)
        with self.db.read() as session:
            entity = session.get(SyncEntity, ("model_version", f"{model_id}/{version}"))
            if entity is None or entity.status != "synced" or not entity.azure_id:
                if entity is not None and entity.status == "dead":
                    raise PermanentError(
                        f"the model version could not be synced to Azure ML: {entity.last_error}"
                    )
                raise Wait(self.poll_s / 2)
            state = json.loads(entity.state or "{}")
            synced_to = bindings.azure_target_for(session, entity.workspace, self.arms.settings)
        assert self._target is not None
        if synced_to is None or synced_to.identity != self._target.identity:
            # An Azure id is valid only in the Azure workspace it was synced to.
            where = synced_to.identity if synced_to is not None else "no Azure ML workspace"
            raise Wait(
                HOLD_S,
                f"{HELD}model version {uri} belongs to workspace {entity.workspace!r} "
                f"({where}), not to {self._target.identity} where this deployment goes",
            )
        if state.get("skipped") or not state.get("name"):
            raise PermanentError(
                "the model version is not in Azure ML (its files are not in a run's artifacts)"
            )
        return self._online().model_id(state["name"], entity.azure_id)

    def _tags(self, row: Deployment) -> dict[str, str]:
        return {MANAGED_TAG: "true", REQUEST_TAG: row.id, "tether.model": row.model_uri}

    def _do_check_endpoint(self, row: Deployment, progress: dict[str, Any]) -> None:
        found = self._online().get(self._ep(row))
        if found is None or (found.get("tags") or {}).get(MANAGED_TAG) != "true":
            raise PermanentError(
                f"endpoint {row.endpoint} does not exist or was not created by Tether"
            )
        self._save(row.id, step="deployment")

    def _do_endpoint(self, row: Deployment, progress: dict[str, Any]) -> None:
        found = self._online().get(self._ep(row))
        if found is not None:
            if (found.get("tags") or {}).get(REQUEST_TAG) != row.id:
                raise PermanentError(
                    f"an endpoint named {row.endpoint} already exists (not created by Tether for "
                    "this deployment): choose another name"
                )
            self._save(row.id, step="endpoint_wait")  # ours: created before a restart
            return
        body = {
            "location": self._region(),
            "identity": {"type": "SystemAssigned"},
            "tags": self._tags(row),
            "properties": {
                "authMode": "Key",
                "description": f"Tether deployment of {row.model_uri}",
                "properties": {MANAGED_TAG: "true"},
            },
        }
        progress["op"] = self._put_once(row, self._ep(row), body)
        self._save(row.id, step="endpoint_wait", progress=progress)

    def _put_once(self, row: Deployment, tail: str, body: dict[str, Any]) -> str | None:
        """PUT a new resource. A 409 after a resend (the first answer lost, its operation now
        running) is our own PUT when the resource carries this row's tag: wait for it."""
        try:
            return self._online().put(tail, body)
        except PermanentError as exc:
            if exc.status != 409:
                raise
            found = self._online().get(tail)
            if found is None or (found.get("tags") or {}).get(REQUEST_TAG) != row.id:
                raise
            return None  # polled through the resource's provisioningState

    def _do_endpoint_wait(self, row: Deployment, progress: dict[str, Any]) -> None:
        self._still_registered(row.registered_model_id, row.model_version, row.model_uri)
        self._wait_op(row, progress, "deployment", self._ep(row))

    def _do_deployment(self, row: Deployment, progress: dict[str, Any]) -> None:
        found = self._online().get(self._dep(row))
        if found is not None:
            if (found.get("tags") or {}).get(REQUEST_TAG) != row.id:
                raise PermanentError(f"deployment {row.name} exists on {row.endpoint} already")
            self._save(row.id, step="deployment_wait")
            return
        # The version may have been deleted while the endpoint was provisioning: the
        # deployment would only fail in Azure after billing starts (ModelRegistryError, D§2).
        self._still_registered(row.registered_model_id, row.model_version, row.model_uri)
        body = self._deployment_body(
            row, row.model_uri, str(row.azure_model_id), row.instance_count
        )
        progress["op"] = self._put_once(row, self._dep(row), body)
        self._save(row.id, step="deployment_wait", progress=progress)

    def _deployment_body(
        self, row: Deployment, model_uri: str, model_id: str, count: int
    ) -> dict[str, Any]:
        """The no-code deployment (D§1): no environment, no scoring code."""
        return {
            "location": self._region(),
            "tags": {**self._tags(row), "tether.model": model_uri},
            "sku": {"name": "Default", "capacity": count},
            "properties": {
                "endpointComputeType": "Managed",
                "instanceType": row.instance_type,
                "model": model_id,
                "requestSettings": {
                    "requestTimeout": "PT60S",
                    "maxConcurrentRequestsPerInstance": 1,
                },
            },
        }

    def _do_deployment_wait(self, row: Deployment, progress: dict[str, Any]) -> None:
        try:
            self._wait_op(
                row, progress, "traffic" if row.owns_endpoint else "ready", self._dep(row)
            )
        except PermanentError as exc:
            logs = self._logs(row)
            self._save(row.id, logs=logs)
            raise PermanentError(f"{exc.reason}{_log_hint(logs)}") from None

    def _logs(self, row: Deployment) -> str | None:
        parts = []
        for container in ("StorageInitializer", "InferenceServer"):
            try:
                got = self._online().post(
                    f"{self._dep(row)}/getLogs", {"containerType": container, "tail": LOG_TAIL}
                )
            except (PermanentError, TransientError):
                continue
            if got and got.get("content"):
                parts.append(f"--- {container}\n{got['content']}")
        return "\n".join(parts) or None

    def _do_traffic(self, row: Deployment, progress: dict[str, Any]) -> None:
        """Traffic by GET, edit, full PUT (D§1: not PATCH)."""
        found = self._online().get(self._ep(row))
        if found is None:
            raise PermanentError(f"endpoint {row.endpoint} disappeared")
        traffic = progress.get("traffic") or {row.name: 100}
        body: dict[str, Any] = {
            k: found[k] for k in ("location", "identity", "tags", "kind") if k in found
        }
        props = {
            k: v
            for k, v in (found.get("properties") or {}).items()
            if k in ("authMode", "description", "properties", "mirrorTraffic")
        }
        body["properties"] = {**props, "traffic": traffic}
        progress["op"] = self._online().put(self._ep(row), body)
        progress["traffic"] = traffic
        self._save(row.id, step="traffic_wait", progress=progress)

    def _do_traffic_wait(self, row: Deployment, progress: dict[str, Any]) -> None:
        self._wait_op(row, progress, "ready", self._ep(row))

    def _do_ready(self, row: Deployment, progress: dict[str, Any]) -> None:
        found = self._online().get(self._ep(row))
        uri = ((found or {}).get("properties") or {}).get("scoringUri")
        if not uri:
            raise PermanentError(f"endpoint {row.endpoint} has no scoringUri")
        self._save(row.id, state="READY", step="ready", scoring_uri=uri, error=None, attempts=0)
        log.info("deploy: %s is READY at %s", row.name, uri)

    # ------------------------------------------------------------------------ update

    def _do_update_sync(self, row: Deployment, progress: dict[str, Any]) -> None:
        """An update's PENDING_SYNC: the new version's Azure id, as for a create."""
        target = progress["update"]
        target["azure_model_id"] = self._azure_model_id(
            target["registered_model_id"], target["model_version"], target["model_uri"]
        )
        self._save(row.id, state="UPDATING", step="update", progress=progress, error=None)

    def _do_update(self, row: Deployment, progress: dict[str, Any]) -> None:
        """PUT the deployment with the target model (and count). One that shows the target
        already is ours, sent before a restart: followed, never sent again."""
        target = progress["update"]
        found = self._found_deployment(row)
        if _shows(found, target):
            self._save(row.id, step="update_wait")
            return
        if _busy(found):
            raise Wait(self.poll_s)  # another operation (a traffic change) runs on it
        if target["model_uri"] != row.model_uri:
            self._still_registered(
                target["registered_model_id"], target["model_version"], target["model_uri"]
            )
        body = self._deployment_body(
            row, target["model_uri"], target["azure_model_id"], target["instance_count"]
        )
        self._mark_sent(row, progress)
        try:
            progress["op"] = self._online().put(self._dep(row), body)
        except PermanentError as exc:
            if exc.status != 409:  # 409: an operation runs on the endpoint: later
                raise
            raise Wait(self.poll_s) from None
        self._save(row.id, step="update_wait", progress=progress)

    def _do_update_wait(self, row: Deployment, progress: dict[str, Any]) -> None:
        try:
            self._wait_op(row, progress, "update_done", self._dep(row))
        except PermanentError as exc:
            logs = self._logs(row)
            self._save(row.id, logs=logs)
            raise PermanentError(f"{exc.reason}{_log_hint(logs)}") from None

    def _do_scale(self, row: Deployment, progress: dict[str, Any]) -> None:
        """A new instance count only: PATCH the deployment's sku (D§1: the stable PATCH body
        holds tags and sku), followed by Location polling (D§2)."""
        target = progress["update"]
        found = self._found_deployment(row)
        model = str((found.get("properties") or {}).get("model", ""))
        if model.lower() != str(row.azure_model_id).lower():
            # A failed update left another model in Azure's spec: PUT the whole deployment.
            self._save(row.id, step="update")
            return
        if _shows(found, target):
            self._save(row.id, step="update_wait")
            return
        if _busy(found):
            raise Wait(self.poll_s)
        sku = {"name": "Default", "capacity": target["instance_count"]}
        self._mark_sent(row, progress)
        try:
            progress["location"] = self._online().patch(self._dep(row), {"sku": sku})
        except PermanentError as exc:
            if exc.status != 409:
                raise
            raise Wait(self.poll_s) from None
        self._save(row.id, step="scale_wait", progress=progress)

    def _do_scale_wait(self, row: Deployment, progress: dict[str, Any]) -> None:
        url = progress.get("location")
        if not url:
            self._wait_op(row, progress, "update_done", self._dep(row))
            return
        poll = self._online().location(url)
        if not poll.done:
            raise Wait(poll.retry_after or self.poll_s)
        if poll.failed:
            raise PermanentError(poll.error or "scaling failed")
        progress.pop("location", None)
        self._save(row.id, step="update_done", progress=progress, attempts=0)

    def _do_update_done(self, row: Deployment, progress: dict[str, Any]) -> None:
        """Azure ML serves the target: the row describes it from now on."""
        target = progress.pop("update")
        self._save(
            row.id,
            state="READY",
            step="ready",
            progress=progress,
            model_uri=target["model_uri"],
            registered_model_id=target["registered_model_id"],
            model_name=target["model_name"],
            model_version=target["model_version"],
            instance_count=target["instance_count"],
            azure_model_id=target["azure_model_id"],
            error=None,
            attempts=0,
        )
        log.info("deploy: %s now serves %s", row.name, target["model_uri"])

    def _mark_sent(self, row: Deployment, progress: dict[str, Any]) -> None:
        """Committed before the PUT (PATCH): after a restart, a deployment that shows the
        target and Failed is this update's failure, not an older one to send again."""
        progress["update"]["sent"] = True
        self._save(row.id, progress=progress)

    def _found_deployment(self, row: Deployment) -> dict[str, Any]:
        found = self._online().get(self._dep(row))
        if found is None or (found.get("tags") or {}).get(REQUEST_TAG) != row.id:
            raise PermanentError(
                f"deployment {row.name} is no longer in Azure ML on endpoint {row.endpoint}"
            )
        return found

    # ------------------------------------------------------------ cleanup and delete

    def _do_cleanup(self, row: Deployment, progress: dict[str, Any]) -> None:
        url = self._remove(row)
        progress["location"] = url
        self._save(row.id, step="cleanup_wait", progress=progress)

    def _do_cleanup_wait(self, row: Deployment, progress: dict[str, Any]) -> None:
        self._wait_gone(row, progress)
        self._save(row.id, state="FAILED", step="failed", progress=progress)

    def _do_delete(self, row: Deployment, progress: dict[str, Any]) -> None:
        if not row.owns_endpoint:
            found = self._online().get(self._ep(row))
            traffic = dict(((found or {}).get("properties") or {}).get("traffic") or {})
            if traffic.get(row.name):
                raise PermanentError(
                    f"deployment {row.name} still takes {traffic[row.name]}% of {row.endpoint}'s "
                    "traffic: move it with update_endpoint first"
                )
        progress["location"] = self._remove(row)
        self._save(row.id, step="delete_wait", progress=progress)

    def _do_delete_wait(self, row: Deployment, progress: dict[str, Any]) -> None:
        self._wait_gone(row, progress)
        self._save(row.id, state="DELETED", step="deleted", scoring_uri=None, progress=progress)

    def _remove(self, row: Deployment) -> str | None:
        """DELETE what this row created: its endpoint (with the deployment), or the deployment.
        None: nothing to poll a Location for (gone, not ours, or already being deleted; then
        `_wait_gone` watches the resource itself)."""
        tail = self._tail(row)
        found = self._online().get(tail)
        if found is None:
            return None
        if (found.get("tags") or {}).get(REQUEST_TAG) != row.id:
            return None  # not ours (a name taken by someone else): never touched
        state = str((found.get("properties") or {}).get("provisioningState", ""))
        if state.lower() == "deleting":  # our DELETE went out before a restart
            return None
        try:
            return self._online().delete(tail)
        except PermanentError as exc:
            if exc.status != 409:  # 409: an operation runs (our resent DELETE): wait
                raise
            return None

    def _tail(self, row: Deployment) -> str:
        return self._ep(row) if row.owns_endpoint else self._dep(row)

    def _wait_gone(self, row: Deployment, progress: dict[str, Any]) -> None:
        url = progress.get("location")
        if url:
            poll = self._online().location(url)
            if not poll.done:
                raise Wait(poll.retry_after or self.poll_s)
            if poll.failed:
                raise PermanentError(poll.error or "deletion failed")
        else:
            found = self._online().get(self._tail(row))
            if found is not None and (found.get("tags") or {}).get(REQUEST_TAG) == row.id:
                state = str((found.get("properties") or {}).get("provisioningState", ""))
                if state.lower() != "deleting":  # a create still ran when we asked: ask again
                    again = "delete" if row.state == "DELETING" else "cleanup"
                    self._save(row.id, step=again, progress=progress)
                raise Wait(self.poll_s)
        progress.pop("location", None)


def _shows(found: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether an Azure deployment's spec is the update's target (model and count), and not
    the failure of an earlier update to the same target (this one not sent yet)."""
    props = found.get("properties") or {}
    model = str(props.get("model", ""))
    count = (found.get("sku") or {}).get("capacity")
    failed = str(props.get("provisioningState", "")).lower() in ("failed", "canceled")
    same = model.lower() == str(target["azure_model_id"]).lower()
    return same and count == target["instance_count"] and (not failed or bool(target.get("sent")))


def _busy(found: dict[str, Any]) -> bool:
    state = str((found.get("properties") or {}).get("provisioningState", "")).lower()
    return state in ("creating", "updating", "scaling", "deleting")


def _sentence(reason: str) -> str:
    """ARM's 'PUT /path -> 400: Code message' as one line for users (no query strings)."""
    return reason.replace("\n", " ").strip()[:2000]


def _log_hint(logs: str | None) -> str:
    if not logs:
        return ""
    last = [line for line in logs.splitlines() if line.strip()][-1]
    return f" (last log line: {last[:300]})"
