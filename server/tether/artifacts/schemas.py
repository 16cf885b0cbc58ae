"""Request bodies and answers of the artifact endpoints (MLflow's mlflow_artifacts.proto
messages, and the tracking API's `ListArtifacts`)."""

from __future__ import annotations

from typing import ClassVar, NotRequired

from typing_extensions import TypedDict

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


class UploadArtifact(RequestModel):
    """The UI's upload-artifact (ajax-api only): the run and path in the query string, the
    file as the body. Nothing is required here: the endpoint refuses what MLflow's handler
    refuses, in its order and with its wording."""

    in_query: ClassVar[bool] = True
    run_uuid: Str = ""
    path: Str = ""


class GetArtifact(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "path")
    run_id: Str
    path: Str


# Answers -----------------------------------------------------------------------------------


class FileInfo(TypedDict):
    # A listing entry (`file_size` left out for directories and empty files).
    path: str
    is_dir: bool
    file_size: NotRequired[int]


class ListRunArtifactsResponse(TypedDict):
    """`ListArtifacts.Response` of the tracking API (and of a logged model's directories)."""

    root_uri: NotRequired[str]
    files: NotRequired[list[FileInfo]]
    next_page_token: NotRequired[str]


class ListProxyArtifactsResponse(TypedDict):
    """`mlflow_artifacts.proto` `ListArtifacts.Response`."""

    files: NotRequired[list[FileInfo]]


class MultipartUploadCredential(TypedDict):
    url: str
    part_number: int
    headers: NotRequired[dict[str, str]]


class CreateMultipartUploadResponse(TypedDict):
    upload_id: NotRequired[str]
    credentials: NotRequired[list[MultipartUploadCredential]]


class ServerInfo(TypedDict):
    """`/api/3.0/mlflow/server-info`: what MLflow 3 clients may use on this server."""

    store_type: str
    workspaces_enabled: bool
    trace_archival_enabled: bool
    multipart_uploads_enabled: bool
    multipart_downloads_enabled: bool
    presigned_upload_run_id_supported: bool
    presigned_upload_model_id_supported: bool
    features_enabled: dict[str, bool]
