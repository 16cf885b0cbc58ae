"""A run artifact whose path is already taken in Azure (409 on `If-None-Match: *`): the worker
compares more than the size. A replay of our own bytes is done (the blob's Content-MD5, which
every upload of ours records, or the bytes read through when a foreign blob has none); other
content of the same size is a conflict: the blob is left as it is and the file is reported
`skipped` with both MD5s (write-once in Azure ML, docs/azureml-protocol.md §5.2, §7.3)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import TYPE_CHECKING

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobBlock

from standin.artifacts import RUN_ORIGIN, blob_name, run_container
from sync.sync_tether import Tether
from tether.sync.state import Key
from tether.sync.worker import drain_exit_code

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

pytestmark = pytest.mark.timeout(120)

BIG = 4 * 1024 * 1024 + 5  # more than one block: Put Block + Put Block List


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _synced_run(tether: Tether) -> tuple[str, str]:
    """A run that is in Azure already, without files: (local id, Azure id)."""
    run_id = tether.run(tether.experiment())
    assert drain_exit_code(tether.drain()) == 0
    return run_id, tether.azure_id(Key("run", run_id))


def _foreign_blob(
    ws: AzuremlWorkspace, azure_run: str, path: str, data: bytes, *, md5: bool
) -> None:
    """Someone else's blob at the run's `path`, written straight to storage: with a Content-MD5
    (a single Put Blob: storage computes it) or without (a block list: it computes none)."""
    name = blob_name(RUN_ORIGIN, run_container(azure_run), path)
    with ws.artifacts.container_client() as container:
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        blob = container.get_blob_client(name)
        if md5:
            blob.upload_blob(data)
        else:
            blob.stage_block("YmxvY2stMA==", data)
            blob.commit_block_list([BlobBlock(block_id="YmxvY2stMA==")])
        has_md5 = blob.get_blob_properties().content_settings.content_md5 is not None
    assert has_md5 == md5, "the stand-in's storage must behave as assumed"


def _reports(tether: Tether, run_id: str) -> dict[str, str]:
    detail = tether.detail(Key("run_artifacts", run_id))
    return {r["subject"]: r["reason"] for r in detail["report"]}


@pytest.mark.parametrize("foreign_md5", [True, False], ids=["content-md5", "no-content-md5"])
def test_equal_size_other_content_is_a_reported_conflict(tether: Tether, foreign_md5: bool) -> None:
    run_id, azure_run = _synced_run(tether)
    theirs, ours = b"weights: A" * 100, b"weights: B" * 100  # same size, other bytes
    _foreign_blob(tether.ws, azure_run, "model.bin", theirs, md5=foreign_md5)
    tether.put_file(run_id, "model.bin", ours)
    tether.put_file(run_id, "notes.txt", b"after the conflict")

    assert drain_exit_code(tether.drain()) == 0  # a conflict is reported, not a dead letter

    assert tether.ws.artifacts.read(azure_run, "model.bin") == theirs, "not overwritten"
    assert tether.ws.artifacts.read(azure_run, "notes.txt") == b"after the conflict"
    reason = _reports(tether, run_id)["file:model.bin"]
    assert "write-once" in reason and _md5(ours) in reason and _md5(theirs) in reason
    assert f"{len(theirs)} bytes" in reason
    entity = tether.entity(Key("run_artifacts", run_id))
    assert entity.status == "synced" and entity.last_error is None


def test_equal_bytes_without_content_md5_are_taken_as_done(tether: Tether) -> None:
    run_id, azure_run = _synced_run(tether)
    data = b"identical bytes, uploaded by someone else first"
    _foreign_blob(tether.ws, azure_run, "same.txt", data, md5=False)
    tether.put_file(run_id, "same.txt", data)

    assert drain_exit_code(tether.drain()) == 0

    assert tether.ws.artifacts.read(azure_run, "same.txt") == data
    assert _reports(tether, run_id) == {}


def test_a_replayed_block_list_upload_compares_its_recorded_md5(tether: Tether) -> None:
    """Our own multi-block upload, replayed after a lost cursor: its Content-MD5 (which storage
    does not compute for block lists: we set it) says it is ours; nothing is reported."""
    run_id, azure_run = _synced_run(tether)
    big = bytes(range(256)) * (BIG // 256) + b"tail!"
    tether.put_file(run_id, "weights.bin", big)
    assert drain_exit_code(tether.drain()) == 0
    with tether.ws.artifacts.container_client() as container:
        name = blob_name(RUN_ORIGIN, run_container(azure_run), "weights.bin")
        recorded = container.get_blob_client(name).get_blob_properties().content_settings
    assert recorded.content_md5 is not None
    assert base64.b64encode(bytes(recorded.content_md5)).decode() == _md5(big)
    tether.rewind(
        Key("run_artifacts", run_id)
    )  # as after a kill -9 between blob and cursor commits
    mark = tether.ws.mark()

    assert drain_exit_code(tether.drain()) == 0

    assert tether.ws.requests(mark, path="batch/metadata$"), "the file was really replayed"
    assert tether.ws.artifacts.read(azure_run, "weights.bin") == big
    assert _reports(tether, run_id) == {}


def test_a_write_only_sas_is_checked_through_a_read_sas(tether: Tether) -> None:
    """If the upload SAS may not read (Azure's permissions there are unverified), the 409 is
    checked through a read SAS from `contentinfo`: a replay is done, other bytes a conflict."""
    tether.ws.quirks(write_sas_reads=False)
    run_id, azure_run = _synced_run(tether)
    theirs, ours = b"x" * 64, b"y" * 64
    _foreign_blob(tether.ws, azure_run, "taken.bin", theirs, md5=True)
    tether.put_file(run_id, "taken.bin", ours)
    tether.put_file(run_id, "mine.bin", b"replayed later")
    assert drain_exit_code(tether.drain()) == 0
    tether.rewind(Key("run_artifacts", run_id))  # replay both rows, as after a lost cursor
    mark = tether.ws.mark()

    assert drain_exit_code(tether.drain()) == 0

    reads = tether.ws.requests(mark, path="artifacts/contentinfo$")
    assert sorted(e["query"].split("path=")[1] for e in reads) == ["mine.bin", "taken.bin"]
    assert tether.ws.artifacts.read(azure_run, "taken.bin") == theirs
    assert tether.ws.artifacts.read(azure_run, "mine.bin") == b"replayed later"
    assert list(_reports(tether, run_id)) == ["file:taken.bin"]
