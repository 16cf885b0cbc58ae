"""The outbox's wire format (`tether.db.outbox`): every record declared once, every op of an
entity mapped to exactly one record, every shape any release has stored still decoded to the
record it meant, and anything else refused with a reason.

`STORED` holds one literal row (payload JSON byte for byte as orjson wrote it) per shape the
writers have produced since the first release, found in the git history of the writers
(`tracking/`, `logged_models/`, `registry/`, `artifacts/`, `sync/outbox.py` -> `db/outbox/`).
Rows written by a deployed release stay in its database until they are synced: never delete an
entry here, add one when a writer's shape changes.
"""

from __future__ import annotations

from typing import Any, get_args

import orjson
import pytest
from sqlalchemy import select

from tether.db import outbox
from tether.db.engine import Database
from tether.db.models import OutboxEntry
from tether.db.outbox import DecodeError, decode, reader
from tether.db.outbox.records import (
    AnyRecord,
    ArtifactDelete,
    ArtifactOp,
    ArtifactPut,
    DatasetInput,
    EntityType,
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
    RunCreate,
    RunDelete,
    RunDeleteTag,
    RunLogBatch,
    RunLogInputs,
    RunLogOutputs,
    RunOp,
    RunRestore,
    RunSetTag,
    RunUpdate,
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
    id_ranges,
)

RUN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
MODEL = "m-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
RUN_FILE = f"1/{RUN}/artifacts/model/weights.bin"
MODEL_FILE = f"1/models/{MODEL}/artifacts/MLmodel"
TRACE = f"tr-{RUN}"


def _tags(**tags: str) -> dict[str, str]:
    return tags


# (origin, entity type, entity id, op, payload as stored, the record it means, still written
# byte for byte by this release). Origins: 92d8b82 is the first release (tracking, outbox);
# 0b63ce7 added artifacts, logged models and the registry; i15 (issue 15's branch) traces.
STORED: list[tuple[str, str, str, str, str, AnyRecord, bool]] = [
    # Experiments (92d8b82)
    (
        "92d8b82 default experiment",
        "experiment",
        "0",
        "create",
        '{"name":"Default","artifact_location":"/data/mlruns/0","tags":{}}',
        ExperimentCreate("0", name="Default", artifact_location="/data/mlruns/0", tags={}),
        True,
    ),
    (
        "92d8b82 experiments/create",
        "experiment",
        "1",
        "create",
        '{"name":"vision","artifact_location":"mlflow-artifacts:/1","tags":{"team":"cv"}}',
        ExperimentCreate(
            "1", name="vision", artifact_location="mlflow-artifacts:/1", tags=_tags(team="cv")
        ),
        True,
    ),
    (
        "92d8b82 experiments/delete",
        "experiment",
        "1",
        "delete",
        f'{{"run_ids":["{RUN}"]}}',
        ExperimentDelete("1", run_ids=(RUN,)),
        True,
    ),
    (
        "92d8b82 experiments/restore",
        "experiment",
        "1",
        "restore",
        '{"run_ids":[]}',
        ExperimentRestore("1", run_ids=()),
        True,
    ),
    (
        "92d8b82 experiments/update",
        "experiment",
        "1",
        "rename",
        '{"name":"vision-2"}',
        ExperimentRename("1", name="vision-2"),
        True,
    ),
    (
        "92d8b82 experiments/set-experiment-tag",
        "experiment",
        "1",
        "set_tag",
        '{"key":"team","value":"nlp"}',
        ExperimentSetTag("1", key="team", value="nlp"),
        True,
    ),
    (
        "92d8b82 experiments/delete-experiment-tag",
        "experiment",
        "1",
        "delete_tag",
        '{"key":"team"}',
        ExperimentDeleteTag("1", key="team"),
        True,
    ),
    # Runs (92d8b82)
    (
        "92d8b82 runs/create",
        "run",
        RUN,
        "create",
        '{"experiment_id":"1","name":"r","user_id":null,"start_time":5,'
        f'"artifact_uri":"mlflow-artifacts:/1/{RUN}/artifacts","tags":{{"mlflow.runName":"r"}}}}',
        RunCreate(
            RUN,
            experiment_id="1",
            name="r",
            user_id=None,
            start_time=5,
            artifact_uri=f"mlflow-artifacts:/1/{RUN}/artifacts",
            tags={"mlflow.runName": "r"},
        ),
        True,
    ),
    ("92d8b82 runs/update, nothing", "run", RUN, "update", "{}", RunUpdate(RUN), True),
    (
        "92d8b82 runs/update",
        "run",
        RUN,
        "update",
        '{"status":"FINISHED","end_time":99,"run_name":"final"}',
        RunUpdate(RUN, status="FINISHED", end_time=99, run_name="final"),
        True,
    ),
    (
        "92d8b82 runs/update, end time 0",
        "run",
        RUN,
        "update",
        '{"end_time":0}',
        RunUpdate(RUN, end_time=0),
        True,
    ),
    ("92d8b82 runs/delete", "run", RUN, "delete", "{}", RunDelete(RUN), True),
    ("92d8b82 runs/restore", "run", RUN, "restore", "{}", RunRestore(RUN), True),
    (
        "92d8b82 runs/set-tag",
        "run",
        RUN,
        "set_tag",
        '{"key":"k","value":"v"}',
        RunSetTag(RUN, key="k", value="v"),
        True,
    ),
    (
        "92d8b82 runs/delete-tag",
        "run",
        RUN,
        "delete_tag",
        '{"key":"k"}',
        RunDeleteTag(RUN, key="k"),
        True,
    ),
    (
        "92d8b82 runs/log-parameter: a log_batch with only params",
        "run",
        RUN,
        "log_batch",
        '{"params":{"depth":"3"}}',
        RunLogBatch(RUN, params={"depth": "3"}),
        True,
    ),
    (
        "92d8b82 runs/log-metric",
        "run",
        RUN,
        "log_batch",
        '{"metric_ids":[[41,41]]}',
        RunLogBatch(RUN, metric_ids=((41, 41),)),
        True,
    ),
    (
        "92d8b82 runs/log-batch",
        "run",
        RUN,
        "log_batch",
        '{"params":{"lr":"0.1"},"tags":{"stage":"train"},"metric_ids":[[1,3],[7,7]]}',
        RunLogBatch(
            RUN, params={"lr": "0.1"}, tags={"stage": "train"}, metric_ids=((1, 3), (7, 7))
        ),
        True,
    ),
    (
        "92d8b82 runs/log-inputs: datasets only (no models key before 0b63ce7)",
        "run",
        RUN,
        "log_inputs",
        '{"datasets":[{"name":"d","digest":"ab12","tags":{"mlflow.data.context":"train"}}]}',
        RunLogInputs(
            RUN,
            datasets=(
                DatasetInput(name="d", digest="ab12", tags={"mlflow.data.context": "train"}),
            ),
        ),
        True,
    ),
    # Runs (0b63ce7: logged models)
    (
        "0b63ce7 runs/log-batch with logged-model metrics",
        "run",
        RUN,
        "log_batch",
        '{"metric_ids":[[10,11]],"model_metric_ids":[[11,11]]}',
        RunLogBatch(RUN, metric_ids=((10, 11),), model_metric_ids=((11, 11),)),
        True,
    ),
    (
        "0b63ce7 runs/log-inputs: logged models only",
        "run",
        RUN,
        "log_inputs",
        f'{{"models":["{MODEL}"]}}',
        RunLogInputs(RUN, models=(MODEL,)),
        True,
    ),
    (
        "0b63ce7 runs/log-inputs: both",
        "run",
        RUN,
        "log_inputs",
        f'{{"datasets":[{{"name":"d","digest":"ab12","tags":{{}}}}],"models":["{MODEL}"]}}',
        RunLogInputs(
            RUN, datasets=(DatasetInput(name="d", digest="ab12", tags={}),), models=(MODEL,)
        ),
        True,
    ),
    (
        "0b63ce7 runs/outputs",
        "run",
        RUN,
        "log_outputs",
        f'{{"models":[{{"model_id":"{MODEL}","step":3}}]}}',
        RunLogOutputs(RUN, models=(ModelOutput(model_id=MODEL, step=3),)),
        True,
    ),
    # Artifacts (0b63ce7)
    (
        "0b63ce7 a run's file",
        "run",
        RUN,
        "artifact_put",
        f'{{"path":"{RUN_FILE}","size":5}}',
        ArtifactPut(RUN, entity_type=EntityType.RUN, path=RUN_FILE, size=5),
        True,
    ),
    (
        "0b63ce7 a run's file deleted",
        "run",
        RUN,
        "artifact_delete",
        f'{{"path":"1/{RUN}/artifacts/model","size":null}}',
        ArtifactDelete(RUN, entity_type=EntityType.RUN, path=f"1/{RUN}/artifacts/model"),
        True,
    ),
    (
        "0b63ce7 a logged model's file",
        "logged_model",
        MODEL,
        "artifact_put",
        f'{{"path":"{MODEL_FILE}","size":0}}',
        ArtifactPut(MODEL, entity_type=EntityType.LOGGED_MODEL, path=MODEL_FILE, size=0),
        True,
    ),
    (
        "0b63ce7 a file outside runs and models",
        "artifact",
        "shared/x.bin",
        "artifact_delete",
        '{"path":"shared/x.bin","size":null}',
        ArtifactDelete("shared/x.bin", entity_type=EntityType.ARTIFACT, path="shared/x.bin"),
        True,
    ),
    # Logged models (0b63ce7)
    (
        "0b63ce7 logged-models create",
        "logged_model",
        MODEL,
        "create",
        '{"experiment_id":"1","name":"ob","model_type":null,"source_run_id":null,'
        f'"artifact_location":"mlflow-artifacts:/1/models/{MODEL}/artifacts","status":"PENDING",'
        '"creation_timestamp_ms":1700000000000,"params":{"p":"1"},"tags":{}}',
        LoggedModelCreate(
            MODEL,
            experiment_id="1",
            name="ob",
            model_type=None,
            source_run_id=None,
            artifact_location=f"mlflow-artifacts:/1/models/{MODEL}/artifacts",
            status="PENDING",
            creation_timestamp_ms=1_700_000_000_000,
            params={"p": "1"},
            tags={},
        ),
        True,
    ),
    (
        "0b63ce7 logged-models finalize",
        "logged_model",
        MODEL,
        "finalize",
        '{"status":"READY","last_updated_timestamp_ms":1700000000001}',
        LoggedModelFinalize(MODEL, status="READY", last_updated_timestamp_ms=1_700_000_000_001),
        True,
    ),
    (
        "0b63ce7 logged-models delete",
        "logged_model",
        MODEL,
        "delete",
        "{}",
        LoggedModelDelete(MODEL),
        True,
    ),
    (
        "0b63ce7 logged-models set tags",
        "logged_model",
        MODEL,
        "set_tag",
        '{"tags":{"t":"v","u":"w"}}',
        LoggedModelSetTags(MODEL, tags={"t": "v", "u": "w"}),
        True,
    ),
    (
        "0b63ce7 the registry's mlflow.modelVersions tag on a logged model, one key/value "
        "(written up to the typed records, now {'tags': {...}})",
        "logged_model",
        MODEL,
        "set_tag",
        '{"key":"mlflow.modelVersions","value":"[{\\"name\\": \\"m\\", \\"version\\": \\"1\\"}]"}',
        LoggedModelSetTags(MODEL, tags={"mlflow.modelVersions": '[{"name": "m", "version": "1"}]'}),
        False,
    ),
    (
        "0b63ce7 logged-models delete tag",
        "logged_model",
        MODEL,
        "delete_tag",
        '{"key":"t"}',
        LoggedModelDeleteTag(MODEL, key="t"),
        True,
    ),
    (
        "0b63ce7 logged-models log params",
        "logged_model",
        MODEL,
        "log_params",
        '{"params":{"q":"2"}}',
        LoggedModelLogParams(MODEL, params={"q": "2"}),
        True,
    ),
    # Registered models (0b63ce7)
    (
        "0b63ce7 registered-models/create",
        "registered_model",
        "7",
        "create",
        '{"name":"m","description":"","tags":{"k":"v"}}',
        RegisteredModelCreate("7", name="m", description="", tags={"k": "v"}),
        True,
    ),
    (
        "0b63ce7 registered-models/update",
        "registered_model",
        "7",
        "update",
        '{"name":"m","description":null}',
        RegisteredModelUpdate("7", name="m", description=None),
        True,
    ),
    (
        "0b63ce7 registered-models/rename",
        "registered_model",
        "7",
        "rename",
        '{"old_name":"m","name":"m2"}',
        RegisteredModelRename("7", name="m2", old_name="m"),
        True,
    ),
    (
        "0b63ce7 registered-models/delete",
        "registered_model",
        "7",
        "delete",
        '{"name":"m2"}',
        RegisteredModelDelete("7", name="m2"),
        True,
    ),
    (
        "0b63ce7 registered-models/set-tag",
        "registered_model",
        "7",
        "set_tag",
        '{"name":"m","key":"k","value":"v"}',
        RegisteredModelSetTag("7", name="m", key="k", value="v"),
        True,
    ),
    (
        "0b63ce7 registered-models/delete-tag",
        "registered_model",
        "7",
        "delete_tag",
        '{"name":"m","key":"k"}',
        RegisteredModelDeleteTag("7", name="m", key="k"),
        True,
    ),
    (
        "0b63ce7 registered-models/alias",
        "registered_model",
        "7",
        "set_alias",
        '{"name":"m","alias":"champion","version":"1"}',
        RegisteredModelSetAlias("7", name="m", alias="champion", version="1"),
        True,
    ),
    (
        "0b63ce7 registered-models/alias delete",
        "registered_model",
        "7",
        "delete_alias",
        '{"name":"m","alias":"champion"}',
        RegisteredModelDeleteAlias("7", name="m", alias="champion"),
        True,
    ),
    # Model versions (0b63ce7)
    (
        "0b63ce7 model-versions/create",
        "model_version",
        "7/1",
        "create",
        f'{{"name":"m","version":"1","source":"runs:/{RUN}/model",'
        f'"storage_location":"mlflow-artifacts:/1/{RUN}/artifacts/model","run_id":"{RUN}",'
        '"run_link":"","description":"","model_id":null,"tags":{},"status":"READY"}',
        ModelVersionCreate(
            "7/1",
            name="m",
            version="1",
            source=f"runs:/{RUN}/model",
            storage_location=f"mlflow-artifacts:/1/{RUN}/artifacts/model",
            run_id=RUN,
            run_link="",
            description="",
            model_id=None,
            tags={},
            status="READY",
        ),
        True,
    ),
    (
        "0b63ce7 model-versions/create from a logged model",
        "model_version",
        "7/2",
        "create",
        f'{{"name":"m","version":"2","source":"models:/{MODEL}","storage_location":null,'
        f'"run_id":null,"run_link":"","description":null,"model_id":"{MODEL}",'
        '"tags":{"k":"v"},"status":"READY"}',
        ModelVersionCreate(
            "7/2",
            name="m",
            version="2",
            source=f"models:/{MODEL}",
            storage_location=None,
            run_id=None,
            run_link="",
            description=None,
            model_id=MODEL,
            tags={"k": "v"},
            status="READY",
        ),
        True,
    ),
    (
        "0b63ce7 model-versions/update",
        "model_version",
        "7/1",
        "update",
        '{"name":"m","version":"1","description":"better"}',
        ModelVersionUpdate("7/1", name="m", version="1", description="better"),
        True,
    ),
    (
        "0b63ce7 model-versions/transition-stage",
        "model_version",
        "7/1",
        "transition_stage",
        '{"name":"m","version":"1","stage":"Production","archive_existing_versions":true,'
        '"archived_versions":["2"]}',
        ModelVersionTransitionStage(
            "7/1",
            name="m",
            version="1",
            stage="Production",
            archive_existing_versions=True,
            archived_versions=("2",),
        ),
        True,
    ),
    (
        "0b63ce7 model-versions/delete",
        "model_version",
        "7/1",
        "delete",
        '{"name":"m","version":"1","deleted_aliases":["champion"]}',
        ModelVersionDelete("7/1", name="m", version="1", deleted_aliases=("champion",)),
        True,
    ),
    (
        "0b63ce7 model-versions/set-tag",
        "model_version",
        "7/1",
        "set_tag",
        '{"name":"m","version":"1","key":"k","value":"v"}',
        ModelVersionSetTag("7/1", name="m", version="1", key="k", value="v"),
        True,
    ),
    (
        "0b63ce7 model-versions/delete-tag",
        "model_version",
        "7/1",
        "delete_tag",
        '{"name":"m","version":"1","key":"k"}',
        ModelVersionDeleteTag("7/1", name="m", version="1", key="k"),
        True,
    ),
    # Traces (issue 15): kept in Tether, never synced
    (
        "i15 traces (v3 start)",
        "trace",
        TRACE,
        "start",
        '{"experiment_id":"1","state":"OK"}',
        TraceStart(TRACE, experiment_id="1", state="OK"),
        True,
    ),
    (
        "i15 traces (v2 start)",
        "trace",
        TRACE,
        "start",
        '{"experiment_id":"1","state":"IN_PROGRESS"}',
        TraceStart(TRACE, experiment_id="1", state="IN_PROGRESS"),
        True,
    ),
    (
        "i15 traces/{request_id} (v2 end)",
        "trace",
        TRACE,
        "end",
        '{"state":"OK"}',
        TraceEnd(TRACE, state="OK"),
        True,
    ),
    (
        "i15 /v1/traces",
        "trace",
        TRACE,
        "log_spans",
        '{"experiment_id":"1","spans":3,"bytes":2048}',
        TraceLogSpans(TRACE, experiment_id="1", spans=3, bytes=2048),
        True,
    ),
    (
        "i15 traces/{id}/tags PATCH",
        "trace",
        TRACE,
        "set_tag",
        '{"key":"k","value":"v"}',
        TraceSetTag(TRACE, key="k", value="v"),
        True,
    ),
    (
        "i15 traces/{id}/tags DELETE",
        "trace",
        TRACE,
        "delete_tag",
        '{"key":"k"}',
        TraceDeleteTag(TRACE, key="k"),
        True,
    ),
    (
        "i15 traces/{id}/assessments",
        "trace",
        TRACE,
        "set_assessment",
        '{"assessment_id":"a-1","name":"quality"}',
        TraceSetAssessment(TRACE, assessment_id="a-1", name="quality"),
        True,
    ),
    (
        "i15 traces/{id}/assessments/{a} DELETE",
        "trace",
        TRACE,
        "delete_assessment",
        '{"assessment_id":"a-1"}',
        TraceDeleteAssessment(TRACE, assessment_id="a-1"),
        True,
    ),
    (
        "i15 traces/link-to-run",
        "trace",
        TRACE,
        "link_run",
        '{"run_id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0"}',
        TraceLinkRun(TRACE, run_id=RUN),
        True,
    ),
    (
        "i15 traces/link-prompts",
        "trace",
        TRACE,
        "link_prompts",
        '{"prompts":["p/1"]}',
        TraceLinkPrompts(TRACE, prompts=("p/1",)),
        True,
    ),
    (
        "i15 traces/delete-traces",
        "trace",
        TRACE,
        "delete",
        '{"experiment_id":"1"}',
        TraceDelete(TRACE, experiment_id="1"),
        True,
    ),
]


@pytest.mark.parametrize(
    ("entity_type", "entity_id", "op", "payload", "record", "current"),
    [row[1:] for row in STORED],
    ids=[row[0] for row in STORED],
)
def test_every_stored_shape_decodes_to_its_record(
    entity_type: str, entity_id: str, op: str, payload: str, record: AnyRecord, current: bool
) -> None:
    decoded = decode(entity_type, entity_id, op, payload)
    assert decoded == record
    assert (decoded.entity_type, decoded.op) == (entity_type, op)
    written = orjson.loads(orjson.dumps(decoded.payload()))
    # This release writes the same shape again, or (a changed shape) one that decodes the same.
    assert (written == orjson.loads(payload)) is current
    assert decode(entity_type, entity_id, op, orjson.dumps(written)) == record


def test_every_record_and_op_has_a_stored_row() -> None:
    covered = {type(row[5]) for row in STORED}
    assert covered == set(get_args(AnyRecord))


OPS = {
    reader.EXPERIMENT: {*ExperimentOp},
    reader.RUN: {*RunOp, *ArtifactOp},
    reader.RUN_FILES: {*ArtifactOp},
    reader.LOGGED_MODEL: {*LoggedModelOp, *ArtifactOp},
    reader.REGISTERED_MODEL: {*RegisteredModelOp},
    reader.MODEL_VERSION: {*ModelVersionOp},
    reader.ARTIFACT: {*ArtifactOp},
    reader.TRACE: {*TraceOp},
}


def test_each_op_of_an_entity_is_exactly_one_record() -> None:
    assert set(reader.DECODERS.values()) | {reader.RUN_FILES} == set(OPS)
    for decoder, ops in OPS.items():
        assert sorted(decoder.ops) == sorted(str(op) for op in ops)
        assert len(decoder.classes) == len(set(decoder.classes.values())), decoder.entity_type
        for op, cls in decoder.classes.items():
            assert op == cls.OP


def test_sparse_records_store_only_what_is_there() -> None:
    assert RunUpdate(RUN).payload() == {}
    assert RunUpdate(RUN, end_time=0, run_name="").payload() == {"end_time": 0, "run_name": ""}
    assert RunLogBatch(RUN, params={"p": "1"}, metric_ids=()).payload() == {"params": {"p": "1"}}
    assert RunLogInputs(RUN, models=(MODEL,)).payload() == {"models": (MODEL,)}


def test_run_data_records_read_alike() -> None:
    """`RunSetTag` and `RunLogBatch` expose params, tags and metric ids the same way."""
    tag = RunSetTag(RUN, key="k", value="v")
    batch = RunLogBatch(RUN, tags={"k": "v"})
    for attr in ("params", "tags", "metric_ids", "model_metric_ids"):
        assert getattr(tag, attr) == getattr(batch, attr), attr


@pytest.mark.parametrize(
    ("ids", "ranges"),
    [
        ([], ()),
        ([5], ((5, 5),)),
        ([3, 4, 5, 6], ((3, 6),)),
        ([6, 3, 5, 4], ((3, 6),)),
        ([1, 2, 4, 7, 8, 9], ((1, 2), (4, 4), (7, 9))),
        ([9, 1, 8, 2], ((1, 2), (8, 9))),
    ],
)
def test_id_ranges(ids: list[int], ranges: tuple[tuple[int, int], ...]) -> None:
    assert id_ranges(ids) == ranges


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (("run", RUN, "frobnicate", "{}"), "unknown op 'frobnicate' for run rows"),
        (("spaceship", "1", "create", "{}"), "unknown entity type 'spaceship'"),
        (
            ("run", RUN, "set_tag", '{"key":"k"'),
            "malformed run 'set_tag' record: the payload is not JSON",
        ),
        (
            ("run", RUN, "set_tag", '["k","v"]'),
            "malformed run 'set_tag' record: the payload is not a JSON object",
        ),
        (
            ("run", RUN, "set_tag", '{"key":"k"}'),
            "malformed run 'set_tag' record: value: Field required",
        ),
        (("run", RUN, "set_tag", '{"key":"k","value":1}'), "value: Input should be a valid string"),
        (("run", RUN, "log_batch", '{"metric_ids":[[1]]}'), "metric_ids.0.1: Field required"),
        (("run", RUN, "log_batch", '{"params":{"p":"1"},"flags":1}'), "flags: unknown key"),
        (
            ("run", RUN, "log_inputs", '{"datasets":[{"name":"d","digest":"x","tags":{},"n":1}]}'),
            "datasets.0.n: unknown key",
        ),
        (
            ("run", RUN, "delete", f'{{"entity_id":"{RUN}"}}'),
            "unexpected key 'entity_id' in the payload",
        ),
        (("experiment", "1", "log_batch", "{}"), "unknown op 'log_batch' for experiment rows"),
        (
            ("logged_model", MODEL, "set_tag", '{"key":"k"}'),
            "tags.k: Input should be a valid string",
        ),
    ],
)
def test_what_does_not_decode_is_refused_with_its_reason(
    row: tuple[str, str, str, str], reason: str
) -> None:
    with pytest.raises(DecodeError) as refused:
        decode(*row)
    assert reason in str(refused.value)


def test_a_run_files_decoder_refuses_the_runs_other_rows() -> None:
    with pytest.raises(DecodeError, match="unknown op 'set_tag'"):
        reader.RUN_FILES(RUN, "set_tag", '{"key":"k","value":"v"}')


def test_append_stores_plain_columns_and_the_payload(db: Database) -> None:
    """On both backends: the op and entity type are stored as their values (psycopg would bind
    an Enum by its member name), and what is stored decodes to what was appended."""
    records = [row[5] for row in STORED]
    with db.write() as session:
        for record in records:
            outbox.append(session, record)
    with db.read() as session:
        rows: list[Any] = session.execute(
            select(
                OutboxEntry.entity_type,
                OutboxEntry.entity_id,
                OutboxEntry.op,
                OutboxEntry.payload,
            ).order_by(OutboxEntry.id)
        ).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (str(r.entity_type), r.entity_id, r.op) for r in records
    ]
    assert [decode(*r) for r in rows] == records
