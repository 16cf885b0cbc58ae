"""The artifact store the settings name (`--artifacts-destination` and its tuning)."""

from __future__ import annotations

from tether.config import Settings
from tether.storage import ArtifactBackend, AzureTuning, create_backend


def artifact_backend(settings: Settings) -> ArtifactBackend:
    return create_backend(
        settings.resolved_artifacts_destination(),
        chunk_size=settings.artifact_chunk_size,
        azure=azure_tuning(settings),
    )


def azure_tuning(settings: Settings) -> AzureTuning:
    return AzureTuning(
        block_size=settings.artifact_block_size,
        upload_concurrency=settings.artifact_upload_concurrency,
        download_concurrency=settings.artifact_download_concurrency,
        connect_timeout=settings.artifact_connect_timeout,
        read_timeout=settings.artifact_read_timeout,
        sas_expiry_seconds=settings.artifact_sas_expiry,
    )
