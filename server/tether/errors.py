"""MLflow-style errors: an `error_code` from MLflow's protocol and the HTTP status it implies."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

# The HTTP statuses `mlflow server` answers for each error code it uses (except INVALID_STATE).
_STATUS_BY_CODE: dict[str, int] = {
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    # MLflow answers 500 (and its client retries); a request the current state refuses is the
    # client's to fix, so Tether answers 400 with MLflow's code and message.
    "INVALID_STATE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "NOT_IMPLEMENTED": 501,
}


@with_config(ConfigDict(extra="ignore"))  # open: MLflow's own may carry more (error_class)
class ErrorResponse(TypedDict):
    """MLflow's error body, for every 4xx and 5xx answer of the API."""

    error_code: Annotated[
        str, Field(examples=["INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"])
    ]
    message: str


class MlflowError(Exception):
    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    @property
    def http_status(self) -> int:
        return _STATUS_BY_CODE.get(self.error_code, 500)

    def to_body(self) -> ErrorResponse:
        return {"error_code": self.error_code, "message": self.message}


def invalid_parameter(message: str) -> MlflowError:
    return MlflowError(message, "INVALID_PARAMETER_VALUE")


def not_found(message: str) -> MlflowError:
    return MlflowError(message, "RESOURCE_DOES_NOT_EXIST")


def already_exists(message: str) -> MlflowError:
    return MlflowError(message, "RESOURCE_ALREADY_EXISTS")


API_DOCS_HINT = " See the API docs for more information about request parameters."


def missing_value(path: str) -> MlflowError:
    """MLflow's wording for a required request field that is absent or empty."""
    return invalid_parameter(f"Missing value for required parameter '{path}'." + API_DOCS_HINT)
