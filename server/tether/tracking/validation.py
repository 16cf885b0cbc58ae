"""MLflow's validation rules for tracking data, with MLflow's error wording."""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from tether.errors import invalid_parameter

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
# MLflow means to cap log-batch bodies at 1 MB, but its check measures the parsed dict, so it
# never fires, and MLflow clients (which split batches by count only) do send larger bodies:
# 100 params of 6000 chars plus 100 tags of 8000 chars is 1.4 MB before any \u-escaping. This
# cap only stops bodies no valid batch could need (every key and value \u-escaped).
MAX_BATCH_LOG_REQUEST_SIZE = 32 * 1024 * 1024
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_ENTITY_KEY_LENGTH = 250
MAX_RESULTS_SEARCH_RUNS = 50000
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")  # RunStatus 1..5
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500

_NAME_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)
_MISSING_KEY = "A key name must be provided."
_API_DOCS_HINT = " See the API docs for more information about request parameters."


def invalid_value(path: str, value: Any, message: str | None = None) -> str:
    formatted = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if message:
        return f"Invalid value {formatted} for parameter '{path}' supplied: {message}"
    return f"Invalid value {formatted} for parameter '{path}' supplied."


def json_path(base: str, leaf: str) -> str:
    return f"{base}.{leaf}" if base else leaf


def _check_name(name: str, path: str) -> None:
    if not _NAME_RE.match(name):
        raise invalid_parameter(invalid_value(path, name, _BAD_CHARACTERS))
    normalized = posixpath.normpath(name)
    if (
        normalized != name
        or normalized == "."
        or normalized.startswith("..")
        or normalized.startswith("/")
    ):
        raise invalid_parameter(
            invalid_value(
                path,
                name,
                "Names may be treated as files in certain cases, and must not resolve to other"
                f" names when treated as such. This name would resolve to {normalized!r}",
            )
        )


def _check_length(entity: str, limit: int, value: str | None) -> None:
    if value is not None and len(value) > limit:
        raise invalid_parameter(f"'{entity}' exceeds the maximum length of {limit} characters")


def truncate(value: str, limit: int) -> str:
    """MLflow truncates over-long param and tag values (MLFLOW_TRUNCATE_LONG_VALUES)."""
    return value if len(value) <= limit else value[:limit]


def validate_metric(
    key: str | None, value: float | None, timestamp: int | None, step: int | None, path: str = ""
) -> None:
    name_path = json_path(path, "name")
    if key is None:
        raise invalid_parameter(
            invalid_value(name_path, None, f"Metric name cannot be None. {_MISSING_KEY}")
        )
    _check_name(key, name_path)
    if value is None:
        raise invalid_parameter(
            f"Missing value for required parameter '{json_path(path, 'value')}'."
        )
    if timestamp is None or timestamp < 0:
        raise invalid_parameter(
            invalid_value(
                json_path(path, "timestamp"),
                timestamp,
                f"metric '{key}' (value={value}). "
                "Timestamp must be a nonnegative long (64-bit integer) ",
            )
        )
    _check_length("Metric name", MAX_ENTITY_KEY_LENGTH, key)


def validate_param(key: str | None, value: str | None, path: str = "") -> str:
    """Validate a param; returns the value to store (truncated like MLflow)."""
    key_path = json_path(path, "key")
    if key is None:
        raise invalid_parameter(invalid_value(key_path, "", _MISSING_KEY))
    _check_name(key, key_path)
    _check_length("Param key", MAX_ENTITY_KEY_LENGTH, key)
    return truncate(value or "", MAX_PARAM_VAL_LENGTH)


def validate_tag(key: str | None, value: str | None, path: str = "") -> str:
    """Validate a run tag; returns the value to store (truncated like MLflow)."""
    key_path = json_path(path, "key")
    if key is None:
        raise invalid_parameter(f"Missing value for required parameter '{key_path}'.")
    _check_name(key, key_path)
    _check_length(key_path, MAX_ENTITY_KEY_LENGTH, key)
    return truncate(value or "", MAX_TAG_VAL_LENGTH)


def validate_experiment_tag(key: str, value: str | None) -> None:
    _check_name(key, "key")
    _check_length("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, key)
    _check_length("value", MAX_EXPERIMENT_TAG_VAL_LENGTH, value)


def validate_experiment_name(name: str | None) -> str:
    if not name:
        raise invalid_parameter(f"Invalid experiment name: '{name}'")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise invalid_parameter(
            f"'name' exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters"
        )
    return name


def validate_run_id(run_id: str) -> None:
    if _RUN_ID_RE.match(run_id) is None:
        raise invalid_parameter(invalid_value("run_id", run_id))


def validate_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    for entity, limit, count in (
        ("metrics", MAX_METRICS_PER_BATCH, n_metrics),
        ("params", MAX_PARAMS_TAGS_PER_BATCH, n_params),
        ("tags", MAX_PARAMS_TAGS_PER_BATCH, n_tags),
        ("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, n_metrics + n_params + n_tags),
    ):
        if count > limit:
            raise invalid_parameter(
                f"A batch logging request can contain at most {limit} {entity}. "
                f"Got {count} {entity}. Please split up {entity} across multiple"
                " requests and try again."
            )


def validate_batch_log_request_size(size: int) -> None:
    if size > MAX_BATCH_LOG_REQUEST_SIZE:
        raise invalid_parameter(
            f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, "
            f"got a request of size {size}."
        )


def validate_unique_param_keys(keys: list[str]) -> None:
    seen: set[str] = set()
    dupes = [k for k in keys if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    if dupes:
        raise invalid_parameter(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure "
            "the request contains only one param value per param key."
        )


def validate_dataset(
    name: str | None,
    digest: str | None,
    source_type: str | None,
    source: str | None,
    schema: str | None,
    profile: str | None,
    tags: list[tuple[str | None, str | None]],
) -> None:
    for field, value in (
        ("name", name),
        ("digest", digest),
        ("source_type", source_type),
        ("source", source),
    ):
        if value is None:
            raise invalid_parameter(f"Dataset {field} cannot be None")
    for field, limit, text in (
        ("name", MAX_DATASET_NAME_SIZE, name),
        ("digest", MAX_DATASET_DIGEST_SIZE, digest),
        ("source", MAX_DATASET_SOURCE_SIZE, source),
        ("schema", MAX_DATASET_SCHEMA_SIZE, schema),
        ("profile", MAX_DATASET_PROFILE_SIZE, profile),
    ):
        _check_length(field, limit, text)
    for key, value in tags:
        if key is None:
            raise invalid_parameter("InputTag key cannot be None")
        if value is None:
            raise invalid_parameter("InputTag value cannot be None")
        _check_length("key", MAX_INPUT_TAG_KEY_SIZE, key)
        _check_length("value", MAX_INPUT_TAG_VALUE_SIZE, value)


def run_status(value: str | int | None) -> str | None:
    """A RunStatus given by name or enum number (protobuf's JSON allows both); None if absent.

    MLflow silently ignores an unknown status name; Tether refuses it.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.isdecimal():  # what int() takes (not "²")
        value = int(value)
    if isinstance(value, int):
        if 1 <= value <= len(RUN_STATUSES):
            return RUN_STATUSES[value - 1]
        raise invalid_parameter(
            invalid_value("status", value, " Hint: Value was of type 'int'.") + _API_DOCS_HINT
        )
    if value not in RUN_STATUSES:
        raise invalid_parameter(
            f"Invalid value {value!r} for parameter 'status': "
            f"expected one of {', '.join(RUN_STATUSES)}"
        )
    return value


def validate_search_runs_max_results(max_results: int) -> None:
    """The request-level bound MLflow applies to runs/search (the store checks the rest)."""
    if max_results > MAX_RESULTS_SEARCH_RUNS:
        raise invalid_parameter(
            invalid_value("max_results", max_results, " Hint: Value was of type 'int'.")
            + _API_DOCS_HINT
        )
