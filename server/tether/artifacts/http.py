"""What endpoints that serve artifacts use, in this domain and in others (the registry's and
logged models' file downloads): the artifact service as a dependency, and a download as a
streamed HTTP answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.responses import StreamingResponse

from tether.api.deps import provider
from tether.artifacts.service import ArtifactService, Download

Artifacts = Annotated[ArtifactService, Depends(provider(ArtifactService))]


def streamed(download: Download) -> StreamingResponse:
    """Send the file chunk by chunk (never whole in memory), with its download headers."""
    return StreamingResponse(download.chunks, headers=download.headers)
