"""Request bodies of the artifact endpoints (MLflow's mlflow_artifacts.proto messages)."""

from __future__ import annotations

from typing import ClassVar

from tether.wire import Int64, RequestModel, Str


class CreateMultipartUpload(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("path",)
    path: Str  # the client's local file name; its basename names the artifact
    num_parts: Int64 = 1


class Part(RequestModel):
    part_number: Int64 = 0
    etag: Str = ""
    url: Str = ""


class CompleteMultipartUpload(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("path", "parts")
    path: Str
    upload_id: Str | None = None
    parts: list[Part]


class AbortMultipartUpload(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("path",)
    path: Str
    upload_id: Str | None = None


class ListRunArtifacts(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: Str
    path: Str = ""
    page_token: Str = ""


class ListArtifacts(RequestModel):
    path: Str = ""


class GetArtifact(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "path")
    run_id: Str
    path: Str
