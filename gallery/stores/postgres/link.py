"""One lazily opened PostgreSQL connection (autocommit; transactions are explicit), used by one thread
at a time and reopened after it breaks. A server that cannot be reached is ``CatalogUnreachable``.

Opened on first use: a recognition replica that never enrols opens only what it reads with, so
hundreds of replicas stay within the server's ``max_connections``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from gallery.stores.base import CatalogUnreachable

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5  # a server that does not answer: fail fast (writes answer 503), never hang a request
Connection = psycopg.Connection[tuple[Any, ...]]


class Link:
    def __init__(self, url: str, shown: str, name: str):
        """``shown``: the catalogue's address without a password, for messages; ``name``: the role."""
        self.url, self.shown, self.name = url, shown, name
        self._conn: Connection | None = None
        self._lock = threading.RLock()

    def connect(self) -> Connection:
        """A new connection (the caller owns it); ``CatalogUnreachable`` when the server cannot be reached."""
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name=f"skulens-{self.name}")
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: BaseException) -> CatalogUnreachable:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CatalogUnreachable(f"the catalogue {self.shown} cannot be reached now ({first}); try again shortly")

    @contextmanager
    def use(self) -> Iterator[Connection]:
        """This link's connection, for the ``with`` block (opened if needed; dropped if it broke)."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self.connect()
            try:
                yield self._conn
            except psycopg.OperationalError as exc:
                if self._conn.broken or self._conn.closed:
                    self.close()
                    raise self.unreachable(exc) from exc
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except psycopg.Error as exc:  # a connection already gone
                    logger.debug("closing %s connection: %s", self.name, exc)
                self._conn = None
