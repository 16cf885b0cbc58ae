"""The SQL schema. Alembic migrations in `alembic/versions/` create exactly these tables."""

from tether.db.models.auth import AuthRole, AuthRolePermission, AuthToken, AuthUser, AuthUserRole
from tether.db.models.base import Base, BigId
from tether.db.models.deploy import Deployment
from tether.db.models.logged_models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    RunModelLink,
)
from tether.db.models.registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from tether.db.models.sync import OutboxEntry, SyncEntity, SyncMeta, SyncReport
from tether.db.models.traces import (
    Assessment,
    TraceInfo,
    TraceMetadata,
    TracePromptLink,
    TraceRunLink,
    TraceSpan,
    TraceSpanSegment,
    TraceTag,
)
from tether.db.models.tracking import (
    Dataset,
    Experiment,
    ExperimentTag,
    InputTag,
    LatestMetric,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
)
from tether.db.models.workspaces import Workspace, WorkspaceBinding

__all__ = [
    "Assessment",
    "AuthRole",
    "AuthRolePermission",
    "AuthToken",
    "AuthUser",
    "AuthUserRole",
    "Base",
    "BigId",
    "Dataset",
    "Deployment",
    "Experiment",
    "ExperimentTag",
    "InputTag",
    "LatestMetric",
    "LoggedModel",
    "LoggedModelMetric",
    "LoggedModelParam",
    "LoggedModelTag",
    "Metric",
    "ModelVersion",
    "ModelVersionTag",
    "OutboxEntry",
    "Param",
    "RegisteredModel",
    "RegisteredModelAlias",
    "RegisteredModelTag",
    "Run",
    "RunInput",
    "RunModelLink",
    "RunTag",
    "SyncEntity",
    "SyncMeta",
    "SyncReport",
    "TraceInfo",
    "TraceMetadata",
    "TracePromptLink",
    "TraceRunLink",
    "TraceSpan",
    "TraceSpanSegment",
    "TraceTag",
    "Workspace",
    "WorkspaceBinding",
]
