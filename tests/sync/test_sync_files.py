"""The sync worker's view of the artifact store (`tether.sync.files.Files`) from many lanes at
once: the worker's lanes are threads sharing one `Files`, and each must read whole, correct
files while the others read too (one event loop driven from two threads fails)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from tether.storage import LocalBackend
from tether.sync.files import Files

LANES = 8
FILES_PER_LANE = 12


def test_lanes_read_files_at_the_same_time(tmp_path: Path) -> None:
    root = tmp_path / "store"
    expected: dict[str, str] = {}
    for lane in range(LANES):
        for k in range(FILES_PER_LANE):
            path = f"lane{lane}/file{k}.bin"
            data = hashlib.sha256(path.encode()).digest() * (4096 + 97 * k)  # many small chunks
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
            expected[path] = hashlib.sha256(data).hexdigest()

    files = Files(LocalBackend(root, chunk_size=1024))
    start = threading.Barrier(LANES)
    errors: list[BaseException] = []
    read: dict[str, str] = {}

    def lane(index: int) -> None:
        try:
            start.wait()
            listed = files.walk(f"lane{index}")
            assert listed == sorted(p for p in expected if p.startswith(f"lane{index}/"))
            for path in listed:
                opened = files.open(path)
                assert opened is not None, path
                size, chunks = opened
                digest = hashlib.sha256()
                total = 0
                for chunk in chunks:
                    digest.update(chunk)
                    total += len(chunk)
                assert total == size, path
                read[path] = digest.hexdigest()
            assert files.open(f"lane{index}/missing.bin") is None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lane, args=(i,)) for i in range(LANES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    files.close()
    assert not errors, errors[:3]
    assert read == expected
