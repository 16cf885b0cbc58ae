"""The routing artifact store (tether.storage.routed) over real local stores: each workspace's
files at its destination's root, the server store for everything else, reads that fall back
to where files were before a bind or rebind, merged listings, deletes everywhere (also once
the route is gone), moves that are idempotent, and direct URIs located back to store paths.
The route table is a plain dict the test changes, as a bind changes the table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from tether.errors import MlflowError
from tether.storage import LocalBackend, MultipartBackend
from tether.storage.routed import Destination, Route, RoutedBackend, routed

TEAM = "workspaces/team-b"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read(backend: RoutedBackend, path: str) -> bytes:
    size, chunks = await backend.open_read(path)
    data = b"".join([c async for c in chunks])
    assert len(data) == size
    return data


class Table:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.reads = 0

    def __call__(self) -> Mapping[str, Route]:
        self.reads += 1
        return dict(self.routes)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Path, Path, Path]:
    return tmp_path / "server", tmp_path / "dest-1", tmp_path / "dest-2"


def _routed(server: Path, table: Table, refresh: float = 0.0) -> RoutedBackend:
    return routed(
        LocalBackend(server),
        table,
        lambda d: LocalBackend(Path(d.uri)),
        refresh_seconds=refresh,
    )


def test_writes_go_to_the_destination_root_and_reads_fall_back(
    stores: tuple[Path, Path, Path],
) -> None:
    server, dest1, dest2 = stores
    table = Table()

    async def scenario() -> None:
        store = _routed(server, table)
        assert not isinstance(store, MultipartBackend)  # the server store takes none
        # Before any bind: the server store, under the workspace's prefix.
        await store.write(f"{TEAM}/1/r/artifacts/old.txt", _one(b"old"))
        await store.write("0/r0/artifacts/default.txt", _one(b"default"))
        assert (server / TEAM / "1/r/artifacts/old.txt").read_bytes() == b"old"

        table.routes["team-b"] = Route(Destination(str(dest1)))
        await store.write(f"{TEAM}/1/r/artifacts/new.txt", _one(b"new"))
        await store.write("0/r0/artifacts/default2.txt", _one(b"d2"))
        # The destination's root is the workspace's prefix; default stays on the server.
        assert (dest1 / "1/r/artifacts/new.txt").read_bytes() == b"new"
        assert not (server / TEAM / "1/r/artifacts/new.txt").exists()
        assert (server / "0/r0/artifacts/default2.txt").exists()
        assert not list(dest1.glob("0*")) and not (dest1 / "workspaces").exists()
        # The file from before the bind is still read, listed; both are in one listing.
        assert await _read(store, f"{TEAM}/1/r/artifacts/old.txt") == b"old"
        assert await _read(store, f"{TEAM}/1/r/artifacts/new.txt") == b"new"
        names = [e.path for e in await store.list(f"{TEAM}/1/r/artifacts")]
        assert names == ["new.txt", "old.txt"]
        with pytest.raises(MlflowError) as missing:
            await store.open_read(f"{TEAM}/1/r/artifacts/none.txt")
        assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"

        # Rebind to another destination: both earlier locations stay readable.
        table.routes["team-b"] = Route(Destination(str(dest2)), (Destination(str(dest1)),))
        await store.write(f"{TEAM}/1/r/artifacts/newest.txt", _one(b"newest"))
        assert (dest2 / "1/r/artifacts/newest.txt").exists()
        for name, data in (("old", b"old"), ("new", b"new"), ("newest", b"newest")):
            assert await _read(store, f"{TEAM}/1/r/artifacts/{name}.txt") == data

        # A delete reaches every location.
        assert await store.delete(f"{TEAM}/1/r/artifacts/new.txt")
        assert not (dest1 / "1/r/artifacts/new.txt").exists()
        await store.close()

    asyncio.run(scenario())


def test_move_copies_then_deletes_and_is_idempotent(stores: tuple[Path, Path, Path]) -> None:
    server, dest1, dest2 = stores
    table = Table()

    async def scenario() -> None:
        store = _routed(server, table)
        await store.write(f"{TEAM}/1/r/artifacts/a/x.bin", _one(b"x" * 1000))
        table.routes["team-b"] = Route(Destination(str(dest1)))
        await store.write(f"{TEAM}/1/r/artifacts/y.txt", _one(b"y"))
        table.routes["team-b"] = Route(Destination(str(dest2)), (Destination(str(dest1)),))
        # A file in both places (an interrupted move): the destination's copy is kept.
        await store.write(f"{TEAM}/1/r/artifacts/y.txt", _one(b"y2"))

        moved = await store.move_workspace("team-b")
        assert (moved.copied, moved.already_there, moved.bytes) == (1, 1, 1000)
        assert (dest2 / "1/r/artifacts/a/x.bin").read_bytes() == b"x" * 1000
        assert (dest2 / "1/r/artifacts/y.txt").read_bytes() == b"y2"
        # Originals deleted (empty directories may stay: nothing is deleted but files).
        assert not [p for p in (server / TEAM).rglob("*") if p.is_file()]
        assert not [p for p in (dest1 / "1").rglob("*") if p.is_file()]
        again = await store.move_workspace("team-b")
        assert (again.copied, again.already_there) == (0, 0)
        assert await _read(store, f"{TEAM}/1/r/artifacts/a/x.bin") == b"x" * 1000
        await store.close()

    asyncio.run(scenario())


def test_routes_are_reread_and_a_gone_route_is_still_deleted(
    stores: tuple[Path, Path, Path],
) -> None:
    server, dest1, _ = stores
    table = Table()

    async def scenario() -> None:
        store = _routed(server, table, refresh=3600)
        table.routes["team-b"] = Route(Destination(str(dest1)))
        await store.write(f"{TEAM}/1/r/artifacts/f.txt", _one(b"f"))
        assert (dest1 / "1/r/artifacts/f.txt").exists()
        await store.write("0/x.txt", _one(b"x"))  # outside any workspace: no table read
        assert table.reads == 1
        # A file:// or plain path URI into the destination locates to the workspace's path.
        assert store.locate((dest1 / "1/r/artifacts").as_uri()) == f"{TEAM}/1/r/artifacts"
        assert store.locate((server / "0").as_posix()) == "0"

        # The workspace is deleted (its binding row with it): the next read of the table has
        # no route, and the CASCADE cleanup that follows still empties its destination.
        table.routes.clear()
        store._loaded_at = None  # the refresh interval has passed
        assert await store.delete(TEAM)
        assert not any(p.is_file() for p in dest1.rglob("*") if ".tether-upload" not in str(p))
        await store.close()

    asyncio.run(scenario())
