"""The catalogue in PostgreSQL, shared by replicas: ``gallery.stores.base``'s interface with the SQLite
store's semantics (``gallery.stores.sqlite``).

Every write transaction first takes the writers' advisory lock (``pg_advisory_xact_lock(WRITE_LOCK)``;
reads go on, and so does (auto)VACUUM, which a table lock in EXCLUSIVE mode would conflict with):
writers take turns, as SQLite's ``BEGIN IMMEDIATE`` makes them, so change-log rows commit in the
order of their seq and a follower that has applied change ``n`` never sees a change below ``n``
appear later (with concurrent writers an identity column's values would commit out of order).
A transaction that appended changes ends with ``NOTIFY skulens_changes, '<newest seq>'``, which
PostgreSQL delivers to listeners at commit (``gallery.stores.postgres.follower``).

The class is built by concept: ``plumbing`` (connections, write transactions, meta), ``skus``,
``images`` (and vectors), ``gallery.stores.sql_common`` for what both stores do with the same SQL
(meta, lanes, the change log), and here following other processes' changes.
"""

from __future__ import annotations

from collections.abc import Callable

from gallery.stores.postgres.follower import Follower
from gallery.stores.postgres.images import PostgresImages
from gallery.stores.postgres.link import Link
from gallery.stores.postgres.plumbing import PHOTO_TABLES, WRITE_LOCK, PostgresBase
from gallery.stores.postgres.skus import PostgresSkus
from gallery.stores.sql_records import SKU_COLUMNS

__all__ = ["PHOTO_TABLES", "SKU_COLUMNS", "WRITE_LOCK", "PostgresBase", "PostgresCatalog"]


class PostgresCatalog(PostgresSkus, PostgresImages):
    # --- change log -------------------------------------------------------------------
    def follow(self, on_change: Callable[[], None]) -> None:
        if self._follower is None:
            self._follower = Follower(Link(self.url, self.shown, "follower"), self, on_change, self.poll_s)
            self._follower.start()

    @property
    def reachable(self) -> bool:
        return self._follower.connected if self._follower is not None else True
