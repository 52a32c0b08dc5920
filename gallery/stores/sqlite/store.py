"""The embedded catalogue: SQLite in the data directory, the default ``catalog``.

The class is built by concept, as the PostgreSQL store is: ``plumbing`` (connections, write
transactions, meta), ``skus``, ``images`` (and vectors), and ``gallery.stores.sql_common`` for
what both stores do with the same SQL (meta, lanes, the change log).
"""

from __future__ import annotations

from gallery.stores.sqlite.images import SqliteImages
from gallery.stores.sqlite.skus import SqliteSkus


class CatalogStore(SqliteSkus, SqliteImages):
    """See ``gallery.stores.sqlite.plumbing.SqliteBase``: two connections, writes through one (a
    transaction at a time), reads through the other (WAL: they never wait for writers)."""
