"""MLflow's JSON request messages, as typed models, independent of HTTP.

A request model (`RequestModel`) declares one MLflow request message: its fields with
protobuf's JSON types (`Int64`, `Double`, `Bool`, `Str`), and in `required` the fields
MLflow's handler refuses when missing or empty. `RequestModel.parse` turns the message's JSON
(a dict: the parsed body, or the query string's fields) into the model, and words every
refusal as MLflow does (INVALID_PARAMETER_VALUE, "Missing value for required parameter ..." /
"Invalid value ... for parameter ..."), never as pydantic does.

Reading the message out of an HTTP request (query string or JSON body, content type) is the
HTTP toolkit's (`tether.api.request`); this module knows no HTTP, so a domain's `schemas.py`
(request models and response shapes side by side) stays importable by its services.
"""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictStr,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from tether.db.int64 import INT64_MAX, INT64_MIN
from tether.errors import API_DOCS_HINT, MlflowError, invalid_parameter, missing_value


def _int64(value: Any) -> Any:
    """Accept what protobuf's JSON parser accepts for int64: ints, integral floats, digits,
    within int64's range (a larger number is refused like any invalid value, never sent to
    the database)."""
    if isinstance(value, bool):
        raise ValueError("bool")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = int(value.strip())
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("not an int64")
    return number


def _double(value: Any) -> Any:
    """Accept numbers and the strings protobuf's JSON accepts ("NaN", "Infinity", "1.5").
    An integer beyond a double's range (a 400-digit number) is refused like any invalid value
    (`float()` raises OverflowError on it; "1e400" as a literal or a string is Infinity, as in
    Python's json and MLflow)."""
    if isinstance(value, bool):
        raise ValueError("bool")
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except (ValueError, OverflowError):
            pass
    raise ValueError("not a double")


def _bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("not a bool")


_NUL_MESSAGE = "strings may not contain NUL (\\u0000) characters"


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it everywhere keeps both backends identical.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", _NUL_MESSAGE)
    return value


Int64 = Annotated[
    int,
    BeforeValidator(_int64),
    WithJsonSchema(
        {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX}
    ),
]
Double = Annotated[float, BeforeValidator(_double)]
Bool = Annotated[bool, BeforeValidator(_bool)]
Str = Annotated[StrictStr, AfterValidator(_no_nul)]


def _document_required(schema: dict[str, Any], cls: type[Any]) -> None:
    """JSON schema (OpenAPI) of a request model: the fields in `required` are required there
    too, not nullable, and non-empty when strings, as `parse_model` enforces."""
    names: tuple[str, ...] = getattr(cls, "required", ())
    if not names:
        return
    properties: dict[str, Any] = schema.get("properties", {})
    listed: list[str] = schema.setdefault("required", [])
    for name in names:
        field = cls.model_fields[name]
        key = field.alias or name
        prop = properties.get(key)
        if prop is None:
            continue
        prop.pop("default", None)
        options = prop.get("anyOf")
        if options is not None:
            options = [o for o in options if o.get("type") != "null"]
            if len(options) == 1:
                del prop["anyOf"]
                prop.update(options[0])
            else:
                prop["anyOf"] = options
        if prop.get("type") == "string":
            prop["minLength"] = 1
        if key not in listed:
            listed.append(key)


class RequestModel(BaseModel):
    """Base for request messages. `required` lists fields MLflow rejects when missing or empty.

    Two hooks, for the messages that need them: `check_size` refuses a body by its size before
    it is parsed (log-batch's limit), and `parse` may take a cheaper road to the same result
    (log-batch's plain points). `in_query`: the fields are in the query string whatever the
    method, and the body is the endpoint's own (the UI's artifact upload)."""

    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, json_schema_extra=_document_required
    )
    required: ClassVar[tuple[str, ...]] = ()
    in_query: ClassVar[bool] = False

    @classmethod
    def check_size(cls, size: int) -> None:
        """Refuse a body of `size` bytes (an MlflowError); any size is fine by default."""

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Self:
        """The message from its JSON fields, or MLflow's error for the first bad one."""
        return parse_model(cls, data)


M = TypeVar("M", bound=RequestModel)


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    if "run_id" in model.model_fields and not data.get("run_id") and data.get("run_uuid"):
        data = {**data, "run_id": data["run_uuid"]}
    _check_required(model.required, data)
    _check_required_items(model, data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_mlflow_error(exc, data) from None


def is_list(annotation: Any) -> bool:
    """Whether a field's annotation is a list (read from repeated query keys on GET)."""
    return getattr(annotation, "__origin__", None) is list


def _check_required(names: tuple[str, ...], data: dict[str, Any], prefix: str = "") -> None:
    for name in names:
        value = data.get(name)
        if value is None or value == "":
            raise missing_value(f"{prefix}{name}")


def _check_required_items(model: type[RequestModel], data: dict[str, Any]) -> None:
    """Required fields of list items (log-batch's metrics[i].key ...), as MLflow checks them."""
    for name, required in _required_in_items(model):
        items = data.get(name)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if isinstance(item, dict):
                _check_required(required, item, prefix=f"{name}[{index}].")


@functools.cache
def _required_in_items(model: type[RequestModel]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(list field, its items' required fields) of a request model: read once per model."""
    found = []
    for name, field in model.model_fields.items():
        item_model = _list_item_model(field.annotation)
        if item_model is not None and item_model.required:
            found.append((name, item_model.required))
    return tuple(found)


def _list_item_model(annotation: Any) -> type[RequestModel] | None:
    if not is_list(annotation):
        return None
    (item,) = annotation.__args__
    return item if isinstance(item, type) and issubclass(item, RequestModel) else None


def _to_mlflow_error(exc: ValidationError, data: dict[str, Any]) -> MlflowError:
    error = exc.errors()[0]
    if error["type"] == "missing":
        return missing_value(_json_path(error["loc"]))
    path = _data_path(error["loc"], data)
    value = error.get("input")
    if error["type"] == "nul_character":
        return invalid_parameter(f"Invalid value for parameter '{path}' supplied: {_NUL_MESSAGE}.")
    hint = f" Hint: Value was of type '{type(value).__name__}'."
    return invalid_parameter(
        f"Invalid value {_dump(value)} for parameter '{path}' supplied: {hint}" + API_DOCS_HINT
    )


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not path:
            path = part
        else:
            path += f".{part}"
    return path


def _data_path(loc: tuple[int | str, ...], data: Any) -> str:
    """The JSON path of `loc` within `data`, without pydantic's union-member labels."""
    path = ""
    for part in loc:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            path += f"[{part}]"
        elif isinstance(part, str) and isinstance(data, dict) and part in data:
            path = f"{path}.{part}" if path else part
        else:
            break
        data = data[part]
    return path


_DUMP_CHARS = 1_000


def _dump(value: Any) -> str:
    """The value as the error message quotes it, cut to `_DUMP_CHARS` (a refused value may be
    a body's worth of data) and ASCII-escaped (it may hold any character)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = ascii(value)
    return text if len(text) <= _DUMP_CHARS else text[:_DUMP_CHARS] + "...(truncated)"
