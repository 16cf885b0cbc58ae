"""Deployment requests: validate, record, read back, ask for deletion or new traffic, predict.

Invariants:
- a request is checked completely (names, model, flavours, environment, sizing) before its
  row exists; a refused request changes nothing;
- accepting a request is one transaction that inserts its row (PENDING_SYNC): the driver
  (driver.py) follows it from there, across restarts;
- a live name (any state but DELETED) is unique across the server, as Azure endpoint names
  are per region; a deployment on an endpoint Tether did not create for it must be on an
  endpoint another Tether deployment of the same workspace created (MANAGED_TAG);
- a deployment belongs to the MLflow workspace it was requested in (`workspace_scope`): its
  model_uri resolves there, and only requests of that workspace see, change or call it;
- an update is recorded in the transaction that accepts it (`progress["update"]`, the target)
  while the columns keep describing what serves; the driver copies the target over once
  Azure ML has rolled it out, and drops it on failure (the previous deployment serves on);
- users never see endpoint keys: `predict` fetches them server-side;
- a workspace deploys into the Azure ML workspace it is bound to (deploy.targets): a create
  or update in an unbound workspace is refused (INVALID_STATE) before anything is recorded,
  and `predict` asks that Azure workspace for the endpoint's key.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import workspace_scope
from tether.db.engine import Database
from tether.db.models import Deployment, ModelVersion, RegisteredModel, RegisteredModelAlias
from tether.db.visibility import EVERYTHING, Visibility
from tether.deploy import preflight
from tether.deploy.schemas import DeploymentView
from tether.deploy.targets import OnlineArms, unbound_error
from tether.errors import MlflowError, already_exists, invalid_parameter, not_found
from tether.storage import locations
from tether.storage.base import ArtifactBackend
from tether.sync.azureml.client import tls_trust
from tether.sync.azureml.errors import SyncError
from tether.sync.bindings import Target
from tether.threads import blocking

LIVE = ("PENDING_SYNC", "CREATING", "READY", "UPDATING", "FAILED", "DELETING")
# States in which a deployment serves (an update's PENDING_SYNC: the previous model serves).
SERVING = ("READY", "UPDATING", "PENDING_SYNC")
MODEL_URI_RE = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")
MAX_FILE = 1 << 20  # MLmodel and conda.yaml are small; a bigger one is not read whole


class DeployService:
    def __init__(
        self, db: Database, backend: ArtifactBackend, arms: OnlineArms | None = None
    ) -> None:
        self.db = db
        self.backend = backend
        self.arms = arms  # None: reads only (`tether deployments`)
        self._keys: dict[tuple[str, str], str] = {}  # (Azure workspace, endpoint) -> key

    def _require_bound(self) -> Target:
        """The request's workspace's Azure ML target; INVALID_STATE (400: the workspace, not
        the request, lacks it; never a 5xx) when it is not bound."""
        workspace = workspace_scope.current()
        if self.arms is None:
            raise unbound_error(workspace)
        return self.arms.require(self.db, workspace)

    def _arms(self) -> OnlineArms:
        assert self.arms is not None, "a service without ARM clients only reads"
        return self.arms

    # ------------------------------------------------------------------------- create

    async def create(
        self, name: str, model_uri: str, config: dict[str, str], endpoint: str | None
    ) -> DeploymentView:
        await blocking(self._require_bound)
        preflight.check_name(name)
        if endpoint is not None:
            preflight.check_name(endpoint, "endpoint")
        _known_keys(config, {"instance_type", "instance_count", "keep_failed"})
        instance_type = config.get("instance_type") or preflight.DEFAULT_INSTANCE_TYPE
        instance_count = _count(config.get("instance_count"), 1)
        preflight.check_sizing(instance_type, instance_count)
        model_id, model_name, version = await self._checked_model(model_uri)
        row = Deployment(
            id=uuid.uuid4().hex,
            workspace=workspace_scope.current(),
            name=name,
            endpoint=endpoint or name,
            owns_endpoint=endpoint is None,
            model_uri=model_uri,
            registered_model_id=model_id,
            model_name=model_name,
            model_version=version,
            instance_type=instance_type,
            instance_count=instance_count,
            state="PENDING_SYNC",
            step="sync",
            progress="{}",
            keep_failed=config.get("keep_failed", "").lower() in ("1", "true", "yes"),
            attempts=0,
            next_attempt_at=0,
        )
        return await blocking(self._insert, row)

    async def _checked_model(self, model_uri: str) -> tuple[int, str, int]:
        """The registered model id, name and version `model_uri` names in the request's
        workspace, after the preflight checks of its files."""
        model_id, model_name, version, location = await blocking(self._resolve_model, model_uri)
        mlmodel, conda = await self._model_files(location)
        if mlmodel is not None or location is not None:
            preflight.check_model(mlmodel, conda, model_uri)
        return model_id, model_name, version

    def _resolve_model(self, uri: str) -> tuple[int, str, int, str | None]:
        match = MODEL_URI_RE.match(uri)
        if match is None:
            raise invalid_parameter(
                f"model_uri must be models:/NAME/VERSION or models:/NAME@ALIAS (got {uri!r})"
            )
        with self.db.read() as session:
            model = session.execute(
                select(RegisteredModel).where(
                    RegisteredModel.workspace == workspace_scope.current(),
                    RegisteredModel.name == match["name"],
                )
            ).scalar_one_or_none()
            if model is None:
                raise not_found(f"Registered Model with name={match['name']} not found")
            version = int(match["version"]) if match["version"] else None
            if match["alias"]:
                alias = session.get(RegisteredModelAlias, (model.id, match["alias"]))
                if alias is None:
                    raise not_found(f"Registered model alias {match['alias']} not found.")
                version = alias.version
            mv = session.get(ModelVersion, (model.id, version))
            if mv is None or mv.deleted:
                raise not_found(f"Model Version (name={model.name}, version={version}) not found")
            return model.id, model.name, int(mv.version), mv.storage_location or mv.source

    async def _model_files(self, location: str | None) -> tuple[str | None, str | None]:
        """MLmodel and conda.yaml of the version, read from Tether's store (None: absent)."""
        if not location:
            return None, None
        texts: list[str | None] = []
        for name in ("MLmodel", "conda.yaml"):
            try:
                path = locations.resolve(self.backend, location, name)
                size, chunks = await self.backend.open_read(path)
            except (MlflowError, FileNotFoundError, OSError):
                texts.append(None)
                continue
            data = b""
            async for chunk in chunks:
                data += chunk
                if len(data) > MAX_FILE:
                    break
            texts.append(data.decode("utf-8", "replace") if size <= MAX_FILE else None)
        return texts[0], texts[1]

    def _insert(self, row: Deployment) -> DeploymentView:
        now = now_ms()
        row.created_at = row.updated_at = now
        with self.db.write() as session:
            named = _live(session, row.name, None)
            if named is not None and named.workspace == row.workspace:
                raise already_exists(f"Deployment {row.name!r} already exists")
            if named is not None:
                raise already_exists(
                    f"Deployment name {row.name!r} is taken in another workspace: deployment "
                    "names are unique across the server (Azure ML endpoint names are unique per "
                    "region); choose another name"
                )
            if row.owns_endpoint:
                taken = session.execute(
                    select(Deployment.name).where(
                        Deployment.endpoint == row.endpoint, Deployment.state.in_(LIVE)
                    )
                ).first()
                if taken is not None:
                    raise already_exists(f"Endpoint {row.endpoint!r} is used by {taken[0]!r}")
            else:
                owner = session.execute(
                    select(Deployment.name).where(
                        Deployment.endpoint == row.endpoint,
                        Deployment.workspace == row.workspace,
                        Deployment.owns_endpoint.is_(True),
                        Deployment.state.in_(SERVING),
                    )
                ).first()
                if owner is None:
                    raise invalid_parameter(
                        f"Endpoint {row.endpoint!r} is not a ready endpoint that Tether created"
                    )
            session.add(row)
            session.flush()
            return view(row)

    # -------------------------------------------------------------------------- reads

    def get(self, name: str) -> DeploymentView:
        with self.db.read() as session:
            return view(_require(session, name))

    def list(
        self,
        endpoint: str | None = None,
        *,
        include_deleted: bool = False,
        readable: Visibility = EVERYTHING,
        every_workspace: bool = False,
    ) -> list[DeploymentView]:
        """Oldest first; only the deployments of registered models `readable` lets through,
        of the request's workspace (`every_workspace`: all, for `tether deployments` and the
        sync page)."""
        with self.db.read() as session:
            query = select(Deployment)
            if not every_workspace:
                query = query.where(Deployment.workspace == workspace_scope.current())
            clause = readable.registered_model_clause(RegisteredModel.name)
            if clause is not None:
                query = query.where(
                    Deployment.registered_model_id.in_(select(RegisteredModel.id).where(clause))
                )
            if not include_deleted:
                query = query.where(Deployment.state != "DELETED")
            if endpoint:
                query = query.where(Deployment.endpoint == endpoint)
            rows = session.execute(query.order_by(Deployment.created_at)).scalars()
            return [view(r) for r in rows]

    # ------------------------------------------------------------------ delete, traffic

    def delete(self, name: str) -> DeploymentView:
        """Ask for removal (the driver does it); deleting what is being deleted is a no-op."""
        with self.db.write() as session:
            row = _require(session, name)
            if row.state == "DELETING":
                return view(row)
            if row.owns_endpoint:
                others = session.execute(
                    select(Deployment.name).where(
                        Deployment.endpoint == row.endpoint,
                        Deployment.id != row.id,
                        Deployment.state.in_(LIVE),
                    )
                ).first()
                if others is not None:
                    raise invalid_parameter(
                        f"Endpoint {row.endpoint!r} still has deployment {others[0]!r}: "
                        "delete it first"
                    )
            progress = json.loads(row.progress or "{}")
            if progress.pop("update", None) is not None:  # an update asked for is dropped
                row.progress = json.dumps(progress, sort_keys=True)
            _restart(row, "DELETING", "delete")
            row.error = None
            return view(row)

    def update_traffic(self, endpoint: str, traffic: dict[str, int]) -> DeploymentView:
        """New traffic weights for an endpoint Tether created: the owning row applies them."""
        if sum(traffic.values()) != 100 or any(v < 0 for v in traffic.values()):
            raise invalid_parameter(f"traffic must be non-negative and sum to 100: {traffic}")
        with self.db.write() as session:
            owner = session.execute(
                select(Deployment).where(
                    Deployment.endpoint == endpoint,
                    Deployment.workspace == workspace_scope.current(),
                    Deployment.owns_endpoint.is_(True),
                    Deployment.state.in_(LIVE),
                )
            ).scalar_one_or_none()
            if owner is None:
                raise not_found(f"No endpoint {endpoint!r} created by Tether")
            if owner.state != "READY":
                raise invalid_parameter(f"Endpoint {endpoint!r} is {owner.state}, not READY")
            ready = set(
                session.execute(
                    select(Deployment.name).where(
                        Deployment.endpoint == endpoint,
                        Deployment.workspace == owner.workspace,
                        Deployment.state == "READY",
                    )
                ).scalars()
            )
            if not set(traffic) <= ready:
                raise invalid_parameter(
                    f"traffic names deployments that are not READY on {endpoint!r}: "
                    f"{sorted(set(traffic) - ready)}"
                )
            progress = json.loads(owner.progress or "{}")
            progress["traffic"] = traffic
            owner.progress = json.dumps(progress, sort_keys=True)
            owner.error = None
            _restart(owner, "UPDATING", "traffic")
            return view(owner)

    # ------------------------------------------------------------------------- update

    async def update(
        self, name: str, model_uri: str | None, config: dict[str, str]
    ) -> DeploymentView:
        """Ask for a new model version and/or instance count in place (the driver does it).
        Checked as a create is; the instance type is Azure's to fix at creation (D§1)."""
        _known_keys(config, {"instance_type", "instance_count"})
        if model_uri is None and not config:
            raise invalid_parameter(
                "Nothing to update: give a model_uri (-m models:/NAME/VERSION) and/or "
                "config instance_count (-C instance_count=N)."
            )
        current = await blocking(self.get, name)
        await blocking(self._require_bound)  # unbound since its creation: nowhere to update
        instance_type = config.get("instance_type") or current["instance_type"]
        if instance_type != current["instance_type"]:
            raise invalid_parameter(
                f"instance_type cannot change in place: Azure ML fixes a deployment's instance "
                f"type when it is created ({name!r} runs on {current['instance_type']}). Create "
                f"a deployment with the new type on the endpoint (--endpoint "
                f"{current['endpoint']}) and move traffic with update-endpoint."
            )
        instance_count = _count(config.get("instance_count"), current["instance_count"])
        preflight.check_sizing(instance_type, instance_count)
        target: dict[str, Any] = {"instance_count": instance_count}
        if model_uri is not None:
            model_id, model_name, version = await self._checked_model(model_uri)
            target.update(
                model_uri=model_uri,
                registered_model_id=model_id,
                model_name=model_name,
                model_version=version,
            )
        return await blocking(self._record_update, name, target)

    def _record_update(self, name: str, target: dict[str, Any]) -> DeploymentView:
        with self.db.write() as session:
            row = _require(session, name)
            if row.state != "READY":
                raise MlflowError(
                    f"Deployment {name!r} is {row.state}, not READY: update it when the "
                    "running operation has ended",
                    "INVALID_STATE",
                )
            new_model = "model_version" in target and (
                target["registered_model_id"],
                target["model_version"],
            ) != (row.registered_model_id, row.model_version)
            if not new_model and target["instance_count"] == row.instance_count:
                # What serves already (a repeated update, or back to the version that kept
                # serving after a failed one): nothing to do in Azure, no failure to report.
                row.error = row.logs = None
                return view(row)
            target.setdefault("model_uri", row.model_uri)
            target.setdefault("registered_model_id", row.registered_model_id)
            target.setdefault("model_name", row.model_name)
            target.setdefault("model_version", row.model_version)
            if not new_model:
                target["model_uri"] = row.model_uri
                target["azure_model_id"] = row.azure_model_id
            progress = json.loads(row.progress or "{}")
            progress["update"] = target
            row.progress = json.dumps(progress, sort_keys=True)
            row.error = row.logs = None
            if new_model:  # the new version is synced to Azure ML first, as for a create
                _restart(row, "PENDING_SYNC", "update_sync")
            else:
                _restart(row, "UPDATING", "scale")
            return view(row)

    # ------------------------------------------------------------------------ predict

    def predict(self, name: str, inputs: Any) -> Any:
        """POST `input_data` to the deployment through its endpoint's key (D§3)."""
        with self.db.read() as session:
            row = _require(session, name)
            if row.state not in SERVING or not row.scoring_uri:
                raise MlflowError(f"Deployment {name!r} is {row.state}, not READY", "INVALID_STATE")
            endpoint, uri, dep = row.endpoint, row.scoring_uri, row.name
        target = self._require_bound()  # the key is asked of the workspace's Azure ML
        cached = (target.identity, endpoint)
        try:
            online = self._arms().arm(target)  # SyncError: its credential is not configured
            key = self._keys.get(cached)
            for attempt in range(2):
                if key is None:
                    key = str(online.post(f"/onlineEndpoints/{endpoint}/listKeys")["primaryKey"])
                    self._keys[cached] = key
                response = httpx.post(
                    uri,
                    json={"input_data": inputs},
                    headers={"Authorization": f"Bearer {key}", "azureml-model-deployment": dep},
                    timeout=180.0,  # Azure's maximum request timeout (D§5)
                    verify=tls_trust(),
                    trust_env=False,
                )
                if response.status_code != 401 or attempt:
                    break
                key = None  # regenerated keys: ask again once
        except (SyncError, httpx.HTTPError) as exc:
            raise MlflowError(
                f"Cannot reach the deployment: {exc}", "TEMPORARILY_UNAVAILABLE"
            ) from None
        if response.status_code != 200:
            reason = response.headers.get("ms-azureml-model-error-reason") or response.text[:500]
            raise MlflowError(
                f"The deployment answered {response.status_code}: {reason}",
                "INVALID_PARAMETER_VALUE"
                if response.status_code in (400, 424)
                else "INTERNAL_ERROR",
            )
        return response.json()


def _live(session: Session, name: str, workspace: str | None) -> Deployment | None:
    """The live deployment `name` of `workspace` (None: of any workspace)."""
    query = select(Deployment).where(Deployment.name == name, Deployment.state != "DELETED")
    if workspace is not None:
        query = query.where(Deployment.workspace == workspace)
    return session.execute(query).scalar_one_or_none()


def _require(session: Session, name: str) -> Deployment:
    """The request's workspace's live deployment `name`; one of another workspace is answered
    as one that does not exist."""
    row = _live(session, name, workspace_scope.current())
    if row is None:
        raise not_found(f"Deployment {name!r} not found")
    return row


def _known_keys(config: dict[str, str], known: set[str]) -> None:
    unknown = set(config) - known
    if unknown:
        raise invalid_parameter(f"Unknown config keys {sorted(unknown)}")


def _count(given: str | None, default: int) -> int:
    try:
        return int(given or default)
    except ValueError:
        raise invalid_parameter("instance_count must be an integer") from None


def _restart(row: Deployment, state: str, step: str) -> None:
    row.state, row.step = state, step
    row.attempts, row.next_attempt_at = 0, 0
    row.updated_at = now_ms()


def view(row: Deployment) -> DeploymentView:
    found: DeploymentView = {
        "name": row.name,
        "workspace": row.workspace,
        "endpoint": row.endpoint,
        "model_uri": row.model_uri,
        "model_name": row.model_name,
        "model_version": str(row.model_version),
        "state": row.state,
        "instance_type": row.instance_type,
        "instance_count": row.instance_count,
        "owns_endpoint": row.owns_endpoint,
        "flavor": "python_function",
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if row.scoring_uri and row.state in SERVING:
        found["scoring_uri"] = row.scoring_uri
    if row.error:
        found["error"] = row.error
    if row.logs:
        found["logs"] = row.logs
    progress = json.loads(row.progress or "{}")
    if progress.get("traffic"):
        found["traffic"] = progress["traffic"]
    if progress.get("update"):
        target = progress["update"]
        found["update"] = {
            "model_uri": target["model_uri"],
            "instance_count": target["instance_count"],
        }
    return found
