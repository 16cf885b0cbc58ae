"""Typed dependencies: an endpoint asks for the service it needs by the service's class.

The composition root (`tether.app`) puts every service it built on `app.state.services` as
a `ServiceRegistry`; this module knows no domain, so the HTTP toolkit never imports one. Each
domain names its own dependencies, e.g. in `tether.tracking.deps`:

    Runs = Annotated[RunService, Depends(provider(RunService))]

A provider is a plain `f(request)` function, so `tether.api.dispatch` calls it directly,
without FastAPI's dependency solving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from fastapi import Request

T = TypeVar("T")


class ServiceRegistry:
    """The services of one app, found by their class (one instance per class)."""

    def __init__(self, services: Iterable[object]) -> None:
        self._by_type: dict[type[Any], object] = {}
        for service in services:
            if type(service) in self._by_type:
                raise ValueError(f"two services of type {type(service).__name__}")
            self._by_type[type(service)] = service

    def get(self, cls: type[T]) -> T:
        try:
            return cast(T, self._by_type[cls])
        except KeyError:
            raise LookupError(f"no {cls.__name__} was registered with the app") from None


def provider(cls: type[T]) -> Callable[[Request], T]:
    """A dependency function that returns the app's instance of `cls`."""

    def provide(request: Request) -> T:
        registry: ServiceRegistry = request.app.state.services
        return registry.get(cls)

    provide.__name__ = f"provide_{cls.__name__}"
    provide.__qualname__ = provide.__name__
    return provide
