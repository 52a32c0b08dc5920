"""One lazily opened PostgreSQL connection (autocommit; transactions are explicit), used by one thread
at a time and reopened after it breaks. A server that cannot be reached is ``CatalogUnreachable``.

Opened on first use: a recognition replica that never enrols opens only what it reads with, so
hundreds of replicas stay within the server's ``max_connections``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gallery.stores.base import CatalogUnreachable

logger = logging.getLogger(__name__)

IDLE_CHECK_S = 1.0  # a connection unused this long is checked before use
CONNECT_TIMEOUT_S = 5  # a server that does not answer: fail fast (writes answer 503), never hang a request
#: libpq settings a URL may override: a server that vanished without closing the connection (a network
#: partition) is noticed within seconds, by TCP keepalives on idle connections (the follower's) and by
#: ``tcp_user_timeout`` on a statement in flight.
DEFAULTS: dict[str, str | int] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
#: server settings for each session (``options``; a URL's own ``options`` come after these, so they win):
#: a writer waits at most ``lock_timeout`` for another's lock; the server ends a session left idle inside
#: a transaction for a minute (a frozen replica holding the change log's lock or the photo guard: its
#: locks are released) and probes idle clients with TCP keepalives of its own (a replica's machine gone).
SERVER_OPTIONS = (
    "-c lock_timeout=30s -c idle_in_transaction_session_timeout=60s -c tcp_keepalives_idle=5 "
    "-c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
)
Connection = psycopg.Connection[tuple[Any, ...]]


_losses = [0]  # times this process found a server gone: a connection opened before the last loss is checked


def server_lost() -> None:
    """Note that a server went away (connections opened before are checked before their next use)."""
    _losses[0] += 1


class Link:
    def __init__(self, url: str, shown: str, name: str):
        """``shown``: the catalogue's address without a password, for messages; ``name``: the role."""
        self.url, self.shown, self.name = url, shown, name
        self._conn: Connection | None = None
        self._last_used = 0.0
        self._opened_after = 0  # the count of losses when the connection was opened
        self._lock = threading.RLock()

    def connect(self) -> Connection:
        """A new connection (the caller owns it); ``CatalogUnreachable`` when the server cannot be reached."""
        given = conninfo_to_dict(self.url)
        options = f"{SERVER_OPTIONS} {given['options']}" if given.get("options") else SERVER_OPTIONS
        params = {**DEFAULTS, "application_name": f"skulens-{self.name}", **given, "options": options}
        try:
            return psycopg.connect(make_conninfo("", **params), autocommit=True)
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: BaseException) -> CatalogUnreachable:
        server_lost()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CatalogUnreachable(f"the catalogue {self.shown} cannot be reached now ({first}); try again shortly")

    @contextmanager
    def use(self) -> Iterator[Connection]:
        """This link's connection, for the ``with`` block (opened if needed; dropped if it broke).

        A connection idle for ``IDLE_CHECK_S`` or more, or opened before this process last found the
        server gone, is checked first (``SELECT 1``) and replaced if the server closed it meanwhile (a
        restart, a fail-over): the first write after the server is back succeeds instead of failing on
        a dead connection."""
        with self._lock:
            conn = self._usable()
            try:
                yield conn
            except psycopg.errors.LockNotAvailable as exc:  # another replica held a lock past lock_timeout
                raise CatalogUnreachable(
                    f"the catalogue {self.shown} is busy (a lock was not granted in time); try again shortly"
                ) from exc
            except psycopg.errors.IdleInTransactionSessionTimeout as exc:  # the server ended it (a frozen holder)
                self.close()
                raise CatalogUnreachable(
                    f"the catalogue {self.shown} ended a transaction of this replica that was "
                    "idle too long (its locks are released); try again"
                ) from exc
            except psycopg.OperationalError as exc:
                if conn.broken or conn.closed:
                    self.close()
                    raise self.unreachable(exc) from exc
                raise
            finally:
                self._last_used = time.monotonic()

    def _usable(self) -> Connection:
        stale = time.monotonic() - self._last_used >= IDLE_CHECK_S or self._opened_after != _losses[0]
        if self._conn is not None and not self._conn.closed and stale:
            try:
                self._conn.execute("SELECT 1")
                self._opened_after = _losses[0]  # alive after the loss: not checked again for it
            except psycopg.OperationalError:
                self.close()
        if self._conn is None or self._conn.closed:
            self._opened_after = _losses[0]
            self._conn = self.connect()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except psycopg.Error as exc:  # a connection already gone
                    logger.debug("closing %s connection: %s", self.name, exc)
                self._conn = None
