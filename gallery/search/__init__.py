"""Vector index backends behind one small interface (inner product on unit vectors = cosine)."""

import logging


class _FaissLoaderAtDebug(logging.Filter):
    """FAISS's loader reports at INFO which CPU build it tried ("Could not load library with AVX512
    support ..."), which reads like an error to a new user: those records are DEBUG here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("faiss.loader").addFilter(_FaissLoaderAtDebug())  # before faiss is first imported

from gallery.search.base import VectorIndex  # noqa: E402
from gallery.search.flat import FlatIndex  # noqa: E402
from gallery.search.hnsw import HNSWIndex  # noqa: E402

INDEX_KINDS: dict[str, type[VectorIndex]] = {"flat": FlatIndex, "hnsw": HNSWIndex}


def make_index(kind: str, dim: int) -> VectorIndex:
    try:
        return INDEX_KINDS[kind](dim)
    except KeyError:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {sorted(INDEX_KINDS)}") from None


__all__ = ["INDEX_KINDS", "FlatIndex", "HNSWIndex", "VectorIndex", "make_index"]
