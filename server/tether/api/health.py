"""Liveness and version, at the paths `mlflow server` serves them."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from tether import __version__

router = APIRouter(tags=["health"])


@router.get("/health", response_class=PlainTextResponse)
async def health() -> str:
    return "OK"


@router.get("/version", response_class=PlainTextResponse)
async def version() -> str:
    return __version__
