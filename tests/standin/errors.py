"""Azure-shaped error bodies (docs/azureml-protocol.md §7.2).

Three families:
- MLflow routes (`/mlflow/v*/.../api/2.0/mlflow/...`): an `Error` envelope plus MLflow's
  `error_code`, and no top-level `message` (seen verbatim in mlflow#11462 and mlflow#10694).
- Run-history / artifact routes: the `ErrorResponse` model of azureml-mlflow's vendored REST
  client (camelCase `error` root error, `correlation`, `componentName`, ...).
- ARM: `{"error": {"code", "message"}}`.
Unknown endpoints answer 404 with an *empty* body (§7.2, azure-sdk-for-python#44896).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from starlette.responses import Response

LIMITS_DOC = "See https://aka.ms/azure-machine-learning-limits for service limits documentation."

# MLflow error_code -> Azure `Error.Code`. Seen: INVALID_PARAMETER_VALUE/ValidationError and
# BAD_REQUEST/UserError (§7.2); the others are assumptions [INF].
AZURE_CODE = {
    "INVALID_PARAMETER_VALUE": "ValidationError",
    "BAD_REQUEST": "UserError",
    "RESOURCE_DOES_NOT_EXIST": "UserError",
    "RESOURCE_ALREADY_EXISTS": "UserError",
    "INVALID_STATE": "UserError",
    "UNAUTHENTICATED": "AuthenticationError",
    "PERMISSION_DENIED": "AuthorizationError",
    "REQUEST_LIMIT_EXCEEDED": "TooManyRequests",
    "TEMPORARILY_UNAVAILABLE": "ServiceUnavailable",
    "INTERNAL_ERROR": "SystemError",
}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")


def _correlation() -> dict[str, str]:
    return {"operation": uuid.uuid4().hex, "request": uuid.uuid4().hex[:16]}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def empty_404() -> Response:
    return Response(b"", status_code=404)


def mlflow_error_body(
    status: int, error_code: str, message: str, *, location: str, azure_code: str | None = None
) -> dict[str, Any]:
    return {
        "Error": {
            "Code": azure_code or AZURE_CODE.get(error_code, "UserError"),
            "Severity": None,
            "Message": message,
            "MessageFormat": None,
            "MessageParameters": None,
            "ReferenceCode": None,
            "DetailsUri": None,
            "Target": None,
            "Details": [],
            "InnerError": None,
            "DebugInfo": None,
            "AdditionalInfo": None,
        },
        "Correlation": _correlation(),
        "Environment": location,
        "Location": location,
        "Time": _now(),
        "ComponentName": "mlflow",
        "statusCode": status,
        "error_code": error_code,
    }


def mlflow_error(
    status: int,
    error_code: str,
    message: str,
    *,
    location: str,
    azure_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = mlflow_error_body(status, error_code, message, location=location, azure_code=azure_code)
    return json_response(body, status, headers)


def size_limit_error(field: str, limit: int, size: int, *, location: str) -> Response:
    """The 400 Azure gives for its per-request / per-run limits (mlflow#11462, sdk#35685)."""
    message = (
        f"A field of the entity is over the size limit. FieldName={field}, Limit={limit}, "
        f"Size={size}. {LIMITS_DOC}"
    )
    return mlflow_error(400, "INVALID_PARAMETER_VALUE", message, location=location)


def history_error_body(
    status: int, code: str, message: str, *, location: str, inner: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "severity": None,
            "message": message,
            "messageFormat": None,
            "messageParameters": None,
            "referenceCode": None,
            "detailsUri": None,
            "target": None,
            "details": [],
            "innerError": {"code": inner, "innerError": None} if inner else None,
            "debugInfo": None,
            "additionalInfo": None,
        },
        "correlation": _correlation(),
        "environment": location,
        "location": location,
        "time": _now(),
        "componentName": "run-history",
        "statusCode": status,
    }


def history_error(
    status: int,
    code: str,
    message: str,
    *,
    location: str,
    inner: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = history_error_body(status, code, message, location=location, inner=inner)
    return json_response(body, status, headers)


def arm_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def from_mlflow_body(status: int, body: Any, *, location: str) -> dict[str, Any] | None:
    """MLflow's `{"error_code", "message"}` rewritten in Azure's shape; None if not one."""
    if not isinstance(body, dict) or "error_code" not in body:
        return None
    return mlflow_error_body(
        status, str(body["error_code"]), str(body.get("message", "")), location=location
    )


def storage_error(status: int) -> Response:
    """Blob Storage's XML error (`x-ms-error-code` too) for an injected status."""
    code = {503: "ServerBusy", 500: "InternalError", 403: "AuthenticationFailed"}.get(
        status, "InternalError"
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>'
        f"{code}</Code><Message>Injected storage failure ({status}).</Message></Error>"
    )
    return Response(body, status, {"x-ms-error-code": code}, media_type="application/xml")
