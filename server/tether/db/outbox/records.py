"""Every outbox record, by entity: the one declaration writers construct and the sync worker
matches on. Each union below lists exactly the records its entity's rows can hold (checked
against the op enums by the tests); a handler matching on one ends in `assert_never`, so mypy
proves it handles every op.
"""

from __future__ import annotations

from tether.db.outbox.artifacts import ArtifactDelete, ArtifactOp, ArtifactPut
from tether.db.outbox.base import EntityType, IdRange, Record, id_ranges
from tether.db.outbox.registry import (
    ModelVersionCreate,
    ModelVersionDelete,
    ModelVersionDeleteTag,
    ModelVersionOp,
    ModelVersionSetTag,
    ModelVersionTransitionStage,
    ModelVersionUpdate,
    RegisteredModelCreate,
    RegisteredModelDelete,
    RegisteredModelDeleteAlias,
    RegisteredModelDeleteTag,
    RegisteredModelOp,
    RegisteredModelRename,
    RegisteredModelSetAlias,
    RegisteredModelSetTag,
    RegisteredModelUpdate,
)
from tether.db.outbox.traces import (
    TraceDelete,
    TraceDeleteAssessment,
    TraceDeleteTag,
    TraceEnd,
    TraceLinkPrompts,
    TraceLinkRun,
    TraceLogSpans,
    TraceOp,
    TraceSetAssessment,
    TraceSetTag,
    TraceStart,
)
from tether.db.outbox.tracking import (
    DatasetInput,
    ExperimentCreate,
    ExperimentDelete,
    ExperimentDeleteTag,
    ExperimentOp,
    ExperimentRename,
    ExperimentRestore,
    ExperimentSetTag,
    LoggedModelCreate,
    LoggedModelDelete,
    LoggedModelDeleteTag,
    LoggedModelFinalize,
    LoggedModelLogParams,
    LoggedModelOp,
    LoggedModelSetTags,
    ModelOutput,
    RunCreate,
    RunData,
    RunDelete,
    RunDeleteTag,
    RunLogBatch,
    RunLogInputs,
    RunLogOutputs,
    RunOp,
    RunRestore,
    RunSetTag,
    RunUpdate,
    Tags,
)

ArtifactRecord = ArtifactPut | ArtifactDelete
ExperimentRecord = (
    ExperimentCreate
    | ExperimentDelete
    | ExperimentRestore
    | ExperimentRename
    | ExperimentSetTag
    | ExperimentDeleteTag
)
RunRecord = (
    RunCreate
    | RunUpdate
    | RunDelete
    | RunRestore
    | RunSetTag
    | RunDeleteTag
    | RunLogBatch
    | RunLogInputs
    | RunLogOutputs
    | ArtifactRecord
)
LoggedModelRecord = (
    LoggedModelCreate
    | LoggedModelFinalize
    | LoggedModelDelete
    | LoggedModelSetTags
    | LoggedModelDeleteTag
    | LoggedModelLogParams
    | ArtifactRecord
)
RegisteredModelRecord = (
    RegisteredModelCreate
    | RegisteredModelUpdate
    | RegisteredModelRename
    | RegisteredModelDelete
    | RegisteredModelSetTag
    | RegisteredModelDeleteTag
    | RegisteredModelSetAlias
    | RegisteredModelDeleteAlias
)
ModelVersionRecord = (
    ModelVersionCreate
    | ModelVersionUpdate
    | ModelVersionTransitionStage
    | ModelVersionDelete
    | ModelVersionSetTag
    | ModelVersionDeleteTag
)
TraceRecord = (
    TraceStart
    | TraceEnd
    | TraceLogSpans
    | TraceSetTag
    | TraceDeleteTag
    | TraceSetAssessment
    | TraceDeleteAssessment
    | TraceLinkRun
    | TraceLinkPrompts
    | TraceDelete
)
AnyRecord = (
    ExperimentRecord
    | RunRecord
    | LoggedModelRecord
    | RegisteredModelRecord
    | ModelVersionRecord
    | ArtifactRecord
    | TraceRecord
)

__all__ = [
    "AnyRecord",
    "ArtifactDelete",
    "ArtifactOp",
    "ArtifactPut",
    "ArtifactRecord",
    "DatasetInput",
    "EntityType",
    "ExperimentCreate",
    "ExperimentDelete",
    "ExperimentDeleteTag",
    "ExperimentOp",
    "ExperimentRecord",
    "ExperimentRename",
    "ExperimentRestore",
    "ExperimentSetTag",
    "IdRange",
    "LoggedModelCreate",
    "LoggedModelDelete",
    "LoggedModelDeleteTag",
    "LoggedModelFinalize",
    "LoggedModelLogParams",
    "LoggedModelOp",
    "LoggedModelRecord",
    "LoggedModelSetTags",
    "ModelOutput",
    "ModelVersionCreate",
    "ModelVersionDelete",
    "ModelVersionDeleteTag",
    "ModelVersionOp",
    "ModelVersionRecord",
    "ModelVersionSetTag",
    "ModelVersionTransitionStage",
    "ModelVersionUpdate",
    "Record",
    "RegisteredModelCreate",
    "RegisteredModelDelete",
    "RegisteredModelDeleteAlias",
    "RegisteredModelDeleteTag",
    "RegisteredModelOp",
    "RegisteredModelRecord",
    "RegisteredModelRename",
    "RegisteredModelSetAlias",
    "RegisteredModelSetTag",
    "RegisteredModelUpdate",
    "RunCreate",
    "RunData",
    "RunDelete",
    "RunDeleteTag",
    "RunLogBatch",
    "RunLogInputs",
    "RunLogOutputs",
    "RunOp",
    "RunRecord",
    "RunRestore",
    "RunSetTag",
    "RunUpdate",
    "Tags",
    "TraceDelete",
    "TraceDeleteAssessment",
    "TraceDeleteTag",
    "TraceEnd",
    "TraceLinkPrompts",
    "TraceLinkRun",
    "TraceLogSpans",
    "TraceOp",
    "TraceRecord",
    "TraceSetAssessment",
    "TraceSetTag",
    "TraceStart",
    "id_ranges",
]
