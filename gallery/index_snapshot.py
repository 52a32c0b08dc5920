"""An index saved to disk beside a sidecar naming the change it reflects and the catalogue it was made beside.

Loading one spares the start-up a rebuild (HNSW's graph is not built again); the change log then brings
it up to date. A snapshot that cannot be used (missing, torn, foreign, made beside another catalogue) is
not an error: the catalogue still has everything, and the index is rebuilt from it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gallery.search.base import VectorIndex, write_atomically

logger = logging.getLogger(__name__)


class IndexSnapshot:
    """``path``: the index file; its sidecar is ``path`` + ``.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sidecar = path.with_suffix(path.suffix + ".json")

    def load(self, kind: type[VectorIndex], dim: int, catalog_id: str, shared: bool) -> tuple[VectorIndex, int] | None:
        """(the index, the last change it reflects), or None when there is no usable snapshot.
        ``catalog_id``/``shared``: the catalogue beside which the snapshot must have been made."""
        if not (self.path.exists() and self.sidecar.exists()):
            return None
        try:
            info = json.loads(self.sidecar.read_text())
            made_for = info.get("catalog_id", None if shared else catalog_id)  # older sidecars: SQLite's
            if made_for != catalog_id:
                logger.warning("index snapshot %s was made beside another catalogue: rebuilding", self.path)
                return None
            index = kind.load(self.path, dim)
            return index, int(info["applied_seq"])
        except Exception as exc:  # noqa: BLE001  # a torn or foreign file: the catalogue still has everything
            logger.warning("could not load index snapshot %s (%s): rebuilding", self.path, exc)
            return None

    def save(self, index: VectorIndex, info: dict[str, Any]) -> None:
        """Write the index, then its sidecar ``info``, each atomically (temporary file, fsync, rename)."""
        index.save(self.path)
        write_atomically(self.sidecar, json.dumps(info).encode())
