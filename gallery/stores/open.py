"""The ``catalog`` setting → a catalogue store: absent, the embedded SQLite in the data directory (the
default); ``postgresql://...``, PostgreSQL shared by replicas (the ``postgres`` extra, psycopg 3)."""

from __future__ import annotations

import os
from pathlib import Path

from gallery.stores.base import CatalogBase

DB_FILE = "catalog.sqlite3"  # the embedded catalogue, in the data directory
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class CatalogUnavailable(RuntimeError):
    """The ``catalog`` setting names a store that cannot be used here (unknown scheme, missing extra)."""


def is_shared(catalog: str | None) -> bool:
    """True when ``catalog`` names a shared (PostgreSQL) catalogue."""
    return bool(catalog) and str(catalog).startswith(POSTGRES_SCHEMES)


def describe(catalog: str | None, data_dir: str | os.PathLike[str]) -> str:
    """Where the catalogue is, for messages and logs: never a password."""
    if not catalog:
        return str(Path(data_dir) / DB_FILE)
    from urllib.parse import urlsplit

    parts = urlsplit(catalog)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def open_catalog(
    data_dir: str | os.PathLike[str], catalog: str | None = None, currency: str | None = None
) -> CatalogBase:
    """Open (create or migrate) the catalogue; ``CatalogUnavailable`` for a setting that cannot be used."""
    if not catalog:
        from gallery.stores.sqlite.store import CatalogStore

        return CatalogStore(Path(data_dir) / DB_FILE, currency)
    if is_shared(catalog):
        try:
            from gallery.stores.postgres.store import PostgresCatalog
        except ImportError as exc:
            raise CatalogUnavailable(
                f"a PostgreSQL catalogue needs the postgres extra (pip install 'skulens[postgres]'): {exc}"
            ) from None
        return PostgresCatalog(catalog, currency)
    raise CatalogUnavailable(
        f"unknown catalog {catalog[:40]!r}: leave it unset for the embedded SQLite in the data "
        "directory, or give postgresql://USER@HOST:PORT/DATABASE"
    )
