"""Following the shared change log: a thread per replica that LISTENs on ``skulens_changes`` and,
when a notification arrives (or, as a fallback, every ``poll_s`` without one), records the newest
change (``PostgresCatalog.heard``) and calls ``on_change`` so that the replica catches up at once.

Notifications are a wake-up, not the record: the change log is. A notification lost (the listening
connection dropped, the server restarted) is made up for by the poll and by the catch-up on
reconnecting. While the server cannot be reached the thread retries with a growing pause and says
so once (``connected`` is False meanwhile); the replica keeps answering from its index in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import psycopg

from gallery.stores.base import CatalogUnreachable
from gallery.stores.postgres.link import Connection, Link, server_lost
from gallery.stores.postgres.schema import CHANNEL

logger = logging.getLogger(__name__)

WAKE_S = 0.25  # longest wait for a notification before checking for stop() (and, every poll_s, polling)
RETRY_S = (0.5, 1.0, 2.0, 5.0)  # pauses between attempts to reconnect


class Hears(Protocol):
    def heard(self, seq: int) -> None: ...


class Follower:
    def __init__(self, link: Link, catalog: Hears, on_change: Callable[[], None], poll_s: float):
        self.link, self.catalog, self.on_change, self.poll_s = link, catalog, on_change, poll_s
        self.connected = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skulens-change-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAKE_S * 8 + 5)
        self.link.close()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                conn = self.link.connect()
            except CatalogUnreachable as exc:
                self._lost(exc, failures)
                failures += 1
                self._stop.wait(RETRY_S[min(failures, len(RETRY_S)) - 1])
                continue
            try:
                self._listen(conn)
            except (psycopg.Error, CatalogUnreachable) as exc:
                self._lost(exc, failures)
                failures += 1
                self._stop.wait(RETRY_S[min(failures, len(RETRY_S)) - 1])
            else:
                failures = 0
            finally:
                conn.close()

    def _lost(self, exc: BaseException, failures: int) -> None:
        self.connected = False
        server_lost()
        log = logger.warning if failures == 0 else logger.debug
        log(
            "change-log follower: the catalogue cannot be reached (%s); answering from memory, retrying",
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )

    def _listen(self, conn: Connection) -> None:
        conn.execute(f"LISTEN {CHANNEL}")
        if not self.connected:
            logger.info("change-log follower: listening on %s", self.link.shown)
        self.connected = True
        self._poll(conn)  # whatever was written while nobody listened
        next_poll = time.monotonic() + self.poll_s
        while not self._stop.is_set():
            newest = 0
            for note in conn.notifies(timeout=WAKE_S, stop_after=1):  # back at the first one (others queue)
                try:
                    newest = max(newest, int(note.payload))
                except ValueError:
                    logger.debug("ignoring notification %r", note.payload)
            if newest:
                self._deliver(newest)
            elif time.monotonic() >= next_poll:
                self._poll(conn)
            if newest or time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_s

    def _poll(self, conn: Connection) -> None:
        row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
        self._deliver(int(row[0]) if row else 0)

    def _deliver(self, seq: int) -> None:
        self.catalog.heard(seq)
        try:
            self.on_change()  # the replica catches up (it compares with what it has applied)
        except CatalogUnreachable as exc:
            logger.warning("change-log follower: catching up failed (%s); the next request or poll retries", exc)
        except Exception:  # logged with its traceback: a bug in catching up must not end the following
            logger.exception("change-log follower: catching up failed; the next request or poll retries")
