"""Request bodies and answers of MLflow 3.17's workspace API (`Workspace`, `CreateWorkspace`,
`UpdateWorkspace` in its service.proto)."""

from __future__ import annotations

from typing import ClassVar, NotRequired

from typing_extensions import TypedDict

from tether.wire import RequestModel, Str


class CreateWorkspace(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str
    description: Str | None = None
    default_artifact_root: Str | None = None


class UpdateWorkspace(RequestModel):
    """Only the fields present change; `default_artifact_root: ""` clears it."""

    description: Str | None = None
    default_artifact_root: Str | None = None


class Workspace(TypedDict):
    name: str
    description: NotRequired[str]
    default_artifact_root: NotRequired[str]


class WorkspaceResponse(TypedDict):
    workspace: Workspace


class ListWorkspacesResponse(TypedDict):
    workspaces: NotRequired[list[Workspace]]
