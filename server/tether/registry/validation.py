"""MLflow's validation rules for registry input (`mlflow.utils.validation`), with its wording.

Also the limits our schema imposes where MLflow's would fail inside the database (a name or
run id longer than its column): Tether refuses those with INVALID_PARAMETER_VALUE up front, on
both backends, rather than answer 500 on PostgreSQL only.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from tether.errors import invalid_parameter
from tether.tracking.validation import invalid_value

MAX_MODEL_NAME_LENGTH = 256  # registered_models.name
MAX_TAG_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 100_000
MAX_ALIAS_LENGTH = 255
MAX_RUN_ID_LENGTH = 32  # model_versions.run_id
MAX_VERSION = 2**31 - 1  # model_versions.version is an INTEGER

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
ALL_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)
_CANONICAL_STAGES = {stage.lower(): stage for stage in ALL_STAGES}

IS_PROMPT_TAG_KEY = "mlflow.prompt.is_prompt"
PROMPT_TEXT_TAG_KEY = "mlflow.prompt.text"
PROMPT_SOURCE_PLACEHOLDERS = frozenset({"dummy-source", "prompt-template"})
LATEST_ALIAS = "latest"

_TAG_NAME_RE = re.compile(r"^[/\w.\- :]*$")
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)
_BAD_ALIAS_CHARACTERS = "Names may only contain alphanumerics, underscores (_), and dashes (-)."

Tags = Sequence[tuple[str | None, str | None]]  # as the request lists them


def missing_value(path: str) -> str:
    return f"Missing value for required parameter '{path}'."


def exceeds_maximum_length(path: str, limit: int) -> str:
    return f"'{path}' exceeds the maximum length of {limit} characters"


def _path_not_unique(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith("..") or norm.startswith("/")


def _bad_path_message(name: str) -> str:
    return (
        "Names may be treated as files in certain cases, and must not resolve to other names"
        f" when treated as such. This name would resolve to {posixpath.normpath(name)!r}"
    )


def validate_model_name(name: str | None, path: str = "name") -> str:
    if name is None or name.strip() == "":
        raise invalid_parameter(missing_value(path))
    if "/" in name or ":" in name:
        raise invalid_parameter(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if _path_not_unique(name):
        raise invalid_parameter(invalid_value("name", name, _bad_path_message(name)))
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise invalid_parameter(exceeds_maximum_length(path, MAX_MODEL_NAME_LENGTH))
    return name


def validate_new_model_name(new_name: str | None) -> str:
    if new_name is None or new_name.strip() == "":
        raise invalid_parameter(missing_value("new_name"))
    return validate_model_name(new_name, path="new_name")


def validate_tag_name(key: str | None) -> str:
    if key is None:
        raise invalid_parameter(missing_value("key"))
    if not _TAG_NAME_RE.match(key):
        raise invalid_parameter(invalid_value("key", key, _BAD_CHARACTERS))
    if _path_not_unique(key):
        raise invalid_parameter(invalid_value("key", key, _bad_path_message(key)))
    return key


def _check_length(path: str, limit: int, value: str | None) -> None:
    if value is not None and len(value) > limit:
        raise invalid_parameter(exceeds_maximum_length(path, limit))


def validate_registered_model_tag(key: str | None, value: str | None) -> None:
    validate_tag_name(key)
    _check_length("key", MAX_TAG_KEY_LENGTH, key)
    _check_length("value", MAX_TAG_VALUE_LENGTH, value)


def validate_model_version_tag(key: str | None, value: str | None) -> None:
    validate_tag_name(key)
    if value is None:
        raise invalid_parameter("Tag value cannot be None")
    _check_length("key", MAX_TAG_KEY_LENGTH, key)
    if key == PROMPT_TEXT_TAG_KEY and len(value) > MAX_TAG_VALUE_LENGTH:
        raise invalid_parameter(
            f"Prompt text exceeds max length of {MAX_TAG_VALUE_LENGTH} characters."
        )
    _check_length("value", MAX_TAG_VALUE_LENGTH, value)


def parse_version(version: str | int | None) -> int:
    """MLflow's `_validate_model_version`: Python's int() of the text (so " 1" and "01" are 1)."""
    try:
        return int(version)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise invalid_parameter(
            f"Parameter 'version' must be an integer, got '{version}'."
        ) from None


def storable_version(version: int) -> bool:
    """Whether `version` can be a stored version number (else it is simply not found)."""
    return 1 <= version <= MAX_VERSION


def validate_alias_name(alias: str | None) -> str:
    if alias is None or alias == "":
        raise invalid_parameter("Registered model alias name cannot be empty.")
    if not _ALIAS_RE.match(alias):
        raise invalid_parameter(f"Invalid alias name: '{alias}'. {_BAD_ALIAS_CHARACTERS}")
    _check_length("Registered model alias name", MAX_ALIAS_LENGTH, alias)
    return alias


def validate_alias_not_reserved(alias: str) -> None:
    if alias.lower() == LATEST_ALIAS:
        raise invalid_parameter("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS_RE.match(alias):
        raise invalid_parameter(f"Version alias name '{alias}' is reserved.")


def canonical_stage(stage: str) -> str:
    canonical = _CANONICAL_STAGES.get(stage.lower())
    if canonical is None:
        raise invalid_parameter(
            f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(ALL_STAGES)}."
        )
    return canonical


def validate_run_id_length(run_id: str | None) -> None:
    _check_length("run_id", MAX_RUN_ID_LENGTH, run_id)


def is_prompt_tags(tags: dict[str, str]) -> bool:
    """MLflow's `_is_prompt_request`: the last value of the prompt tag, case-insensitively."""
    return tags.get(IS_PROMPT_TAG_KEY, "false").lower() == "true"


def tag_map(tags: Tags) -> dict[str, str]:
    """Tags as protobuf reads them (a missing key or value is ""), the last value winning."""
    return {key or "": value or "" for key, value in tags}
