"""Tracking records: experiments (entity id: the experiment id), runs (the run id) and MLflow 3
logged models (the model id). Their files are `artifacts` records of the same entity.

Bulk data is referenced, never copied: a log-batch record carries the id ranges of the metric
points it stored, so appending stays one small insert whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from tether.db.outbox.base import STRICT, EntityType, IdRange, Record

Tags = Mapping[str, str]


class ExperimentOp(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    RESTORE = "restore"
    RENAME = "rename"
    SET_TAG = "set_tag"
    DELETE_TAG = "delete_tag"


class RunOp(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"
    SET_TAG = "set_tag"
    DELETE_TAG = "delete_tag"
    LOG_BATCH = "log_batch"  # runs/log-batch, log-metric and log-parameter
    LOG_INPUTS = "log_inputs"
    LOG_OUTPUTS = "log_outputs"


class LoggedModelOp(StrEnum):
    CREATE = "create"
    FINALIZE = "finalize"
    DELETE = "delete"
    SET_TAG = "set_tag"
    DELETE_TAG = "delete_tag"
    LOG_PARAMS = "log_params"


# Experiments ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Experiment(Record):
    entity_type: ClassVar[EntityType] = EntityType.EXPERIMENT


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentCreate(_Experiment):
    name: str
    artifact_location: str | None
    tags: Tags

    OP: ClassVar[StrEnum] = ExperimentOp.CREATE


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentDelete(_Experiment):
    run_ids: tuple[str, ...]  # its active runs, deleted with it

    OP: ClassVar[StrEnum] = ExperimentOp.DELETE


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentRestore(_Experiment):
    run_ids: tuple[str, ...]  # its runs deleted with it, restored with it

    OP: ClassVar[StrEnum] = ExperimentOp.RESTORE


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentRename(_Experiment):
    name: str

    OP: ClassVar[StrEnum] = ExperimentOp.RENAME


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentSetTag(_Experiment):
    key: str
    value: str

    OP: ClassVar[StrEnum] = ExperimentOp.SET_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentDeleteTag(_Experiment):
    key: str

    OP: ClassVar[StrEnum] = ExperimentOp.DELETE_TAG


# Runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run(Record):
    entity_type: ClassVar[EntityType] = EntityType.RUN


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCreate(_Run):
    experiment_id: str
    name: str
    user_id: str | None
    start_time: int | None
    artifact_uri: str | None
    tags: Tags  # mlflow.runName included

    OP: ClassVar[StrEnum] = RunOp.CREATE


@dataclass(frozen=True, slots=True, kw_only=True)
class RunUpdate(_Run):
    """runs/update: only what the request changed (possibly nothing)."""

    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None

    OP: ClassVar[StrEnum] = RunOp.UPDATE
    SPARSE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class RunDelete(_Run):
    OP: ClassVar[StrEnum] = RunOp.DELETE


@dataclass(frozen=True, slots=True)
class RunRestore(_Run):
    OP: ClassVar[StrEnum] = RunOp.RESTORE


class RunData(Protocol):
    """A run's params, tags and metric points, as `RunSetTag` and `RunLogBatch` both carry
    them: consecutive records of one run can be read (and sent) as one batch."""

    @property
    def params(self) -> Mapping[str, str]: ...
    @property
    def tags(self) -> Tags: ...
    @property
    def metric_ids(self) -> tuple[IdRange, ...]: ...
    @property
    def model_metric_ids(self) -> tuple[IdRange, ...]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSetTag(_Run):
    key: str
    value: str

    OP: ClassVar[StrEnum] = RunOp.SET_TAG

    # RunData
    @property
    def params(self) -> Mapping[str, str]:
        return {}

    @property
    def tags(self) -> Tags:
        return {self.key: self.value}

    @property
    def metric_ids(self) -> tuple[IdRange, ...]:
        return ()

    @property
    def model_metric_ids(self) -> tuple[IdRange, ...]:
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDeleteTag(_Run):
    key: str

    OP: ClassVar[StrEnum] = RunOp.DELETE_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLogBatch(_Run):
    """What one write stored: new params (re-logged equal ones left out), tags, and the ids of
    the new metric points; points logged for a logged model are also in `model_metric_ids`.
    A single runs/log-parameter or log-metric writes this record too (one param, one point)."""

    params: Mapping[str, str] = field(default_factory=dict)
    tags: Tags = field(default_factory=dict)
    metric_ids: tuple[IdRange, ...] = ()
    model_metric_ids: tuple[IdRange, ...] = ()

    OP: ClassVar[StrEnum] = RunOp.LOG_BATCH
    SPARSE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetInput:
    """A dataset newly logged as the run's input, by (name, digest) within its experiment (the
    dataset's fields are read from the store), with the input's tags."""

    name: str
    digest: str
    tags: Tags

    __pydantic_config__: ClassVar = STRICT


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLogInputs(_Run):
    datasets: tuple[DatasetInput, ...] = ()
    models: tuple[str, ...] = ()  # logged-model ids newly linked as inputs

    OP: ClassVar[StrEnum] = RunOp.LOG_INPUTS
    SPARSE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOutput:
    model_id: str
    step: int

    __pydantic_config__: ClassVar = STRICT


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLogOutputs(_Run):
    models: tuple[ModelOutput, ...]

    OP: ClassVar[StrEnum] = RunOp.LOG_OUTPUTS


# Logged models -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LoggedModel(Record):
    entity_type: ClassVar[EntityType] = EntityType.LOGGED_MODEL


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelCreate(_LoggedModel):
    experiment_id: str
    name: str
    model_type: str | None
    source_run_id: str | None
    artifact_location: str
    status: str
    creation_timestamp_ms: int
    params: Mapping[str, str]
    tags: Tags

    OP: ClassVar[StrEnum] = LoggedModelOp.CREATE


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelFinalize(_LoggedModel):
    status: str  # READY or FAILED (or back to PENDING)
    last_updated_timestamp_ms: int

    OP: ClassVar[StrEnum] = LoggedModelOp.FINALIZE


@dataclass(frozen=True, slots=True)
class LoggedModelDelete(_LoggedModel):
    OP: ClassVar[StrEnum] = LoggedModelOp.DELETE


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelSetTags(_LoggedModel):
    """logged-models/tags, and the registry's `mlflow.modelVersions` tag on a registered model's
    source model."""

    tags: Tags

    OP: ClassVar[StrEnum] = LoggedModelOp.SET_TAG

    @classmethod
    def upgrade(cls, payload: dict[str, Any]) -> dict[str, Any]:
        # Up to the typed records, the registry wrote its one tag as {"key": k, "value": v}
        # (version_lineage.link_logged_model), while the service wrote {"tags": {k: v}}.
        if "tags" not in payload and "key" in payload:
            rest = {k: v for k, v in payload.items() if k not in ("key", "value")}
            return {"tags": {payload["key"]: payload.get("value")}, **rest}
        return payload


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelDeleteTag(_LoggedModel):
    key: str

    OP: ClassVar[StrEnum] = LoggedModelOp.DELETE_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelLogParams(_LoggedModel):
    params: Mapping[str, str]

    OP: ClassVar[StrEnum] = LoggedModelOp.LOG_PARAMS
