"""Content-addressed, fsynced storage of reference image files.

The original bytes are kept so that a re-index with a new model never needs the
merchandiser again. A file is named by the SHA-256 of its content, so two images
with the same bytes share a file. Writers hold ``guard()`` (a file lock, across
worker processes) from writing a file until its record is committed, and from
committing a delete until the file is removed: otherwise a delete in one worker
could remove a file that an enrolment in another has just found present.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from embedder.artifact import write_atomically
from gallery.filelock import file_lock
from gallery.stores.base import PhotoStore


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(PhotoStore):
    """Files under ``root``, in folders by the first two hex digits of their digest."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def guard(self) -> AbstractContextManager[None]:
        """Exclusive across processes and threads (each call opens its own lock file handle)."""
        return file_lock(self.root / ".lock")

    def digests(self) -> Iterator[str]:
        for path in self.root.glob("??/*"):
            if not path.name.startswith("."):
                yield path.name

    def sweep(self, referenced: Iterable[str]) -> int:
        """Remove files no record refers to (left by a crash before a commit) and stale temporary files.

        Call under ``guard()``, with ``referenced`` read under it too.
        """
        keep = set(referenced)
        removed = 0
        for path in list(self.root.glob("??/*")):
            if (path.name.startswith(".") and path.name.endswith(".tmp")) or (
                not path.name.startswith(".") and path.name not in keep
            ):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Write (once) and fsync; returns the digest. Safe to call for existing content."""
        digest = sha256_of(data)
        path = self.path_for(digest)
        if path.exists() and path.stat().st_size == len(data):
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)  # a hidden .tmp beside it until renamed: sweep() knows those
        return digest

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r})"

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def remove(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(digest).unlink()
