"""The Azure ML behaviours the stand-in adds on top of real MLflow, each switchable.

Every field names the section of docs/azureml-protocol.md (§n) it models.
Numbers are limits (None or 0 switches a limit off); booleans switch a behaviour on/off.
The pure checks below are used by the stand-in and unit-tested on their own.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Quirks:
    # §4.1 + §7.2 + §8.2.1: logged-models endpoints and /api/3.0 -> 404, empty body.
    logged_models_404: bool = True
    # §4.1 + §8.2.2: experiment names 1-256 of [A-Za-z0-9_-], first alphanumeric -> else 400.
    experiment_name_charset: bool = True
    # §4.1 (azure-sdk-for-python#45209): "/" names are created but not found by get-by-name or
    # search. Off by default: it contradicts the charset rule, which would refuse them first;
    # turning it on lets "/" through the charset check.
    slash_names_unfindable: bool = False
    # §4.1 + §8.2.2: experiments/update (rename) refused.
    no_experiment_rename: bool = True
    # §4.2 + §8.2.3: limits, answered with Azure's "over the size limit" 400.
    max_metrics_per_batch: int | None = 250
    max_params_per_run: int | None = 200
    max_tags_per_run: int | None = 50
    max_tag_key_length: int | None = 100
    max_tag_value_length: int | None = 1000
    # §4.1 + §4.2 (mlflow#10694): metrics/get-history needs max_results < this (BAD_REQUEST).
    history_max_results_below: int | None = 1000
    # §4.2 (ultralytics#3223): paths per artifact batch/metadata call.
    max_artifact_batch: int | None = 100
    # §7.2 + §8.2.4: MLflow's own error bodies re-shaped into Azure's envelope.
    azure_error_bodies: bool = True
    # §5.1: run artifact_uri = azureml://<host>/mlflow/v2.0/<scope>/experiments/<e>/runs/<r>/artifacts
    rewrite_artifact_uri: bool = True
    # §6 + §8.2.9: a new model version is PENDING_REGISTRATION until it was read this many
    # times with model-versions/get AND this many seconds passed (0 and 0: READY at once).
    # Both are read when a get arrives, so a test can shorten a long delay.
    registry_pending_gets: int = 2
    registry_pending_seconds: float = 0.0
    # §6 + §8.2.9: registered-model aliases -> 404 empty (unverified, assumed unsupported).
    registry_aliases_404: bool = True
    # §6 + §8.2.9: registered models cannot be renamed or deleted.
    registry_no_rename_delete: bool = True
    # §6 + §8.2.9: model-version sources other than runs:/, the run's azureml:// artifact URI
    # or azureml://artifacts/LocalUpload/... -> 400.
    registry_source_check: bool = True
    # §4.1 + §8.2.10: runs/search refuses OR, != on tags, order_by on metrics/params/tags.
    search_restrictions: bool = True
    # §5.2 + §8.2.8: lifetime of the SAS URLs handed out (negative: already expired).
    sas_ttl_seconds: float = 8 * 3600.0
    # §4.1: preview log-batch-async; get-run-data-status reports is_complete after this delay.
    async_logging_delay: float = 0.0
    # §5.2: page size of the run artifact listing (continuationToken beyond it) [INF].
    artifact_list_page_size: int = 100
    # §5.2 + §7.3: whether the write SAS from batch/metadata may also read (HEAD/GET) the
    # blob [INF: azureml-mlflow never reads through it]. Off: create+write only, so a 409
    # must be checked through a read SAS from `contentinfo`.
    write_sas_reads: bool = True
    # Test visibility, not an Azure behaviour: SAS URLs handed out point at the front's
    # `/_storage/` pass-through to Azurite (same SAS), so blob requests appear in the request
    # log (family "blob") and fault rules apply to them. Off: straight to Azurite, as Azure.
    blob_via_front: bool = False
    # §7.1 (a normal Azure round trip is ~100 ms [INF]): every Azure request (all families but
    # the control API and storage) waits this long before anything else happens to it, so
    # throughput under latency and concurrency can be measured. 0: answer at once.
    latency_ms: float = 0.0
    # Test visibility: keep each request's JSON body (<= 64 KiB) in the request log. A long
    # benchmark turns it off (the counts per request are kept either way).
    log_request_bodies: bool = True
    # Online endpoints (online.py, docs/azureml-deploy.md): how long each long-running
    # operation takes here (Azure: minutes, real durations unconfirmed), the Retry-After the
    # operation URLs send (the spec's range is 10-600 s; short so tests run), the
    # subscription's vCPU quota for deployments (D§2: ceil(1.2 n) x cores needed), endpoint
    # names taken by someone else in the region, and the 2026 no-code score script (crashes
    # without azureml-ai-monitoring or with mlflow 3.x in the model's conda.yaml, D§1).
    endpoint_provisioning_seconds: float = 0.5
    deployment_provisioning_seconds: float = 1.0
    update_seconds: float = 0.3
    delete_seconds: float = 0.5
    lro_retry_after: int = 1
    vcpu_quota: int = 32
    endpoint_names_taken: list[str] = dataclasses.field(default_factory=list)
    score_script_2026: bool = True

    def update(self, changes: dict[str, Any]) -> None:
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in fields:
                raise ValueError(f"unknown quirk {name!r}; known: {sorted(fields)}")
            default = fields[name].default
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ValueError(f"quirk {name!r} takes true/false")
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------ pure checks

EXPERIMENT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,255}")
EXPERIMENT_NAME_MESSAGE = (
    "Experiment name must be 1-256 characters, start with a letter or a number, and can only "
    "contain letters, numbers, underscores, and dashes."
)


def experiment_name_ok(name: str, *, allow_slash: bool = False) -> bool:
    # A leading "/" becomes "-", which the first-character rule still refuses.
    candidate = name.replace("/", "-") if allow_slash else name
    return EXPERIMENT_NAME_RE.fullmatch(candidate) is not None


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_BACKTICKED = re.compile(r"`[^`]*`")


def _mask_literals(text: str) -> str:
    """Quoted strings -> '', backticked identifiers -> `x`: keywords inside them don't count."""
    return _BACKTICKED.sub("`x`", _QUOTED.sub("''", text))


def search_restriction(filter_string: str | None, order_by: list[str] | None) -> str | None:
    """Why Azure would refuse this runs/search, or None (§4.1 support matrix)."""
    if filter_string:
        masked = _mask_literals(filter_string)
        if re.search(r"\bOR\b", masked, re.IGNORECASE):
            return "The OR operator is not supported in filter expressions; use AND only."
        if re.search(r"\btags?\.(?:`x`|[\w.]+)\s*!=", masked, re.IGNORECASE):
            return "The != comparator is not supported on tags."
    for clause in order_by or []:
        key = clause.strip().lower()
        if key.startswith(("metrics.", "metric.", "params.", "param.", "tags.", "tag.")):
            return (
                f"order_by {clause!r} is not supported: runs can be ordered by attributes only "
                "(not by metrics, params or tags)."
            )
    return None


_RUN_ARTIFACT_SOURCE = re.compile(
    r"azureml://[^/]+/mlflow/v[12]\.0/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/[^/]+/experiments/[^/]+/runs/[^/]+/artifacts"
    r"(/.*)?",
    re.IGNORECASE,
)


def model_source_ok(source: str) -> bool:
    """§6: runs:/<run>/<path>, the run's azureml:// artifact URI, or a LocalUpload location."""
    if re.fullmatch(r"runs:/[^/]+(/.*)?", source):
        return True
    if source.startswith("azureml://artifacts/LocalUpload/"):
        return True
    return _RUN_ARTIFACT_SOURCE.fullmatch(source) is not None


def new_keys(existing: set[str], incoming: list[str]) -> int:
    """How many distinct keys `incoming` adds to `existing` (overwrites don't count)."""
    return len({k for k in incoming if k not in existing})
