"""Turn an HTTP request into a typed request model, the way `mlflow server` reads it.

GET requests carry their fields in the query string (repeated fields as repeated keys);
other methods carry a JSON body. Validation failures become MLflow's INVALID_PARAMETER_VALUE
errors with MLflow's wording, never FastAPI's 422.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr, ValidationError

from tether.errors import MlflowError, invalid_parameter

_API_DOCS_HINT = " See the API docs for more information about request parameters."


def _int64(value: Any) -> Any:
    """Accept what protobuf's JSON parser accepts for int64: ints, integral floats, digits."""
    if isinstance(value, bool):
        raise ValueError("bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("not an int64")


def _double(value: Any) -> Any:
    """Accept numbers and the strings protobuf's JSON accepts ("NaN", "Infinity", "1.5")."""
    if isinstance(value, bool):
        raise ValueError("bool")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("not a double")


def _bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("not a bool")


Int64 = Annotated[int, BeforeValidator(_int64)]
Double = Annotated[float, BeforeValidator(_double)]
Bool = Annotated[bool, BeforeValidator(_bool)]
Str = StrictStr


class RequestModel(BaseModel):
    """Base for request bodies. `required` lists fields MLflow rejects when missing or empty."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    required: ClassVar[tuple[str, ...]] = ()


M = TypeVar("M", bound=RequestModel)


async def read_request_data(request: Request, model: type[RequestModel]) -> dict[str, Any]:
    if request.method == "GET" and request.query_params:
        data: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            if name not in request.query_params:
                continue
            if _is_list(field.annotation):
                data[name] = request.query_params.getlist(name)
            else:
                data[name] = request.query_params[name]
        return data
    body = await request.body()
    if not body.strip():
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            # orjson refuses NaN/Infinity literals, which Python's json (and MLflow) accept.
            parsed = json.loads(body)
        except ValueError as exc:
            raise MlflowError(f"Malformed JSON request body: {exc}", "MALFORMED_REQUEST") from exc
    if isinstance(parsed, str):
        # Some older clients double-encode the body; MLflow accepts that.
        try:
            parsed = json.loads(parsed)
        except ValueError:
            pass
    if not isinstance(parsed, dict):
        raise MlflowError("Request body must be a JSON object.", "MALFORMED_REQUEST")
    return parsed


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    if "run_id" in model.model_fields and not data.get("run_id") and data.get("run_uuid"):
        data = {**data, "run_id": data["run_uuid"]}
    for name in model.required:
        value = data.get(name)
        if value is None or value == "":
            raise invalid_parameter(f"Missing value for required parameter '{name}'." + _API_DOCS_HINT)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_mlflow_error(exc, data) from None


async def parse_request(request: Request, model: type[M]) -> M:
    return parse_model(model, await read_request_data(request, model))


def _to_mlflow_error(exc: ValidationError, data: dict[str, Any]) -> MlflowError:
    error = exc.errors()[0]
    loc = error["loc"]
    path = _json_path(loc)
    if error["type"] == "missing":
        return invalid_parameter(f"Missing value for required parameter '{path}'." + _API_DOCS_HINT)
    value = error.get("input")
    hint = f" Hint: Value was of type '{type(value).__name__}'."
    return invalid_parameter(
        f"Invalid value {_dump(value)} for parameter '{path}' supplied: {hint}" + _API_DOCS_HINT
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


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)
