"""Map every failure to an MLflow-style JSON error body."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.api.responses import JsonResponse
from tether.errors import MlflowError

log = logging.getLogger("tether.api")


def install(app: FastAPI) -> None:
    @app.exception_handler(MlflowError)
    async def _mlflow_error(_: Request, exc: MlflowError) -> JsonResponse:
        return JsonResponse(exc.to_body(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JsonResponse:
        error = MlflowError(f"Invalid request: {exc.errors()[0].get('msg')}")
        return JsonResponse(error.to_body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JsonResponse:
        if exc.status_code == 404:
            body = MlflowError(
                f"No API endpoint at {request.url.path}", "ENDPOINT_NOT_FOUND"
            ).to_body()
        elif exc.status_code == 405:
            body = MlflowError(
                f"Method {request.method} is not allowed for {request.url.path}", "BAD_REQUEST"
            ).to_body()
        else:
            body = {"error_code": "BAD_REQUEST", "message": str(exc.detail)}
        return JsonResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_middleware(CatchAllMiddleware)


class CatchAllMiddleware:
    """Answer an unexpected exception with MLflow's INTERNAL_ERROR body and keep the
    connection usable. (Starlette's own last-resort handler re-raises after responding, and
    uvicorn then resets the keep-alive connection under the client's next request.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("Unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = MlflowError(f"Internal error: {type(exc).__name__}", "INTERNAL_ERROR").to_body()
            await JsonResponse(body, status_code=500)(scope, receive, send)
