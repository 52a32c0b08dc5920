"""The catalogue's schema, its version (``PRAGMA user_version``) and the steps that migrate an older
catalogue on open.

A new catalogue gets ``TABLES`` and the latest version at once. An older one (version 0 is the
first release's: prices as REAL) runs each step above its version, all in one transaction, so a
crash mid-way leaves it as it was. Opening a catalogue of a newer version than this code knows is
refused (``SchemaTooNew``) instead of writing into a schema it does not understand.

Version 1: prices are integer minor units (``skus.price_minor``) of the catalogue's currency
(``meta.currency``); the REAL ``price`` column is converted (``gallery.money.from_legacy_real``).
Version 2: ``sku_search``, an FTS5 trigram index of SKU ids and names kept by triggers, for
case-insensitive substring search (``CatalogStore.search_skus``). An SQLite built without FTS5 or
its trigram tokenizer (before 3.34) gets no index, and search scans the table with LIKE instead.
Version 3: ``lanes``, each lane's empty-counter photo (``gallery.lanes``): its file's digest in the
lanes' own content-addressed store, media type and size.
Version 4: ``lane_settings``, each lane's settings (``gallery.lanes.LaneSettings``: ``item_area``, the
expected item size its camera's height gives; NULL: the global default). A table of its own rather
than columns of ``lanes``: a lane may have settings without a background (its photos then segmented
with the plain-counter fallback) and keeps them when its background is deleted.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from gallery.money import Currency, currency, from_legacy_real
from gallery.stores.base import CURRENCY_KEY, DEFAULT_CURRENCY
from gallery.types import CurrencyMismatch, CurrencyNotSet, SchemaTooNew

logger = logging.getLogger(__name__)


LANES = """
CREATE TABLE IF NOT EXISTS lanes (
    lane TEXT PRIMARY KEY, sha256 TEXT NOT NULL, media_type TEXT NOT NULL,
    width INTEGER NOT NULL CHECK (width > 0), height INTEGER NOT NULL CHECK (height > 0), updated_at REAL NOT NULL);
"""

LANE_SETTINGS = """
CREATE TABLE IF NOT EXISTS lane_settings (
    lane TEXT PRIMARY KEY, item_area REAL CHECK (item_area IS NULL OR (item_area >= 0 AND item_area <= 1)),
    updated_at REAL NOT NULL);
"""

TABLES = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS skus (
    sku TEXT PRIMARY KEY, name TEXT NOT NULL, attributes TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    price_minor INTEGER CHECK (price_minor IS NULL OR price_minor >= 0));
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT NOT NULL REFERENCES skus(sku) ON DELETE CASCADE,
    sha256 TEXT NOT NULL, media_type TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS images_by_sku ON images(sku);
CREATE INDEX IF NOT EXISTS images_by_sha ON images(sha256);
CREATE TABLE IF NOT EXISTS vectors (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE, model_version TEXT NOT NULL,
    vector BLOB NOT NULL, PRIMARY KEY (image_id, model_version));
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, image_id INTEGER NOT NULL,
    sku TEXT NOT NULL, model_version TEXT);
"""
    + LANES
    + LANE_SETTINGS
)


SEARCH_INDEX = "sku_search"
#: Statements, not a script: the triggers hold ';'. A contentful FTS5 table (its own copy of id and
#: name) rather than an external-content one: that would key on skus' implicit rowid, which a VACUUM
#: may renumber (skus has a TEXT primary key).
SEARCH = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_INDEX} USING fts5(sku, name, tokenize = 'trigram')",
    (
        f"CREATE TRIGGER IF NOT EXISTS skus_search_insert AFTER INSERT ON skus BEGIN "
        f"INSERT INTO {SEARCH_INDEX}(sku, name) VALUES (new.sku, new.name); END"
    ),
    (
        f"CREATE TRIGGER IF NOT EXISTS skus_search_update AFTER UPDATE OF name ON skus WHEN old.name IS NOT new.name "
        f"BEGIN UPDATE {SEARCH_INDEX} SET name = new.name WHERE sku = old.sku; END"
    ),
    (
        f"CREATE TRIGGER IF NOT EXISTS skus_search_delete AFTER DELETE ON skus BEGIN "
        f"DELETE FROM {SEARCH_INDEX} WHERE sku = old.sku; END"
    ),
]


def _create_search(conn: sqlite3.Connection) -> bool:
    """The search index and its triggers; False (and no index) where SQLite lacks FTS5's trigram tokenizer."""
    try:
        conn.execute("SAVEPOINT search_index")
        for statement in SEARCH:
            conn.execute(statement)
        conn.execute("RELEASE search_index")
        return True
    except sqlite3.OperationalError as exc:  # "no such module: fts5", "no such tokenizer: trigram"
        conn.execute("ROLLBACK TO search_index")
        conn.execute("RELEASE search_index")
        logger.warning(
            "SQLite %s has no FTS5 trigram tokenizer (%s): catalogue search scans with LIKE",
            sqlite3.sqlite_version,
            exc,
        )
        return False


def statements(script: str) -> list[str]:
    """The statements of ``script`` (none of ours holds a ';' inside): executed one by one, inside a
    transaction (``executescript`` would commit first)."""
    return [s.strip() for s in script.split(";") if s.strip()]


#: Version 1's ``skus`` table, as it was then (a later version may change the table: this step must not).
V1_SKUS = """CREATE TABLE skus_v1 (
    sku TEXT PRIMARY KEY, name TEXT NOT NULL, attributes TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    price_minor INTEGER CHECK (price_minor IS NULL OR price_minor >= 0))"""


def _to_v1(conn: sqlite3.Connection, money: Currency) -> None:
    """REAL prices → integer minor units of ``money``; the REAL column goes.

    Not with ``ALTER TABLE ... DROP COLUMN``, which needs SQLite 3.35 (Ubuntu 20.04's Python has
    3.31): the table is rebuilt (SQLite's own recipe: create, copy, drop, rename), which every SQLite
    runs, so one path is tested everywhere. ``prepare`` turns foreign keys off around the migration
    (SQLite ignores that inside a transaction), or dropping the old table would cascade to the images.
    """
    if conn.execute("PRAGMA foreign_keys").fetchone()[0]:
        raise RuntimeError(
            "schema step 1 rebuilds skus: it needs foreign keys off (dropping it would delete every image)"
        )
    conn.execute(V1_SKUS)
    conn.execute(
        "INSERT INTO skus_v1(sku, name, attributes, created_at, updated_at) "
        "SELECT sku, name, attributes, created_at, updated_at FROM skus ORDER BY rowid"
    )
    unpriced = []
    for sku, price in conn.execute("SELECT sku, price FROM skus WHERE price IS NOT NULL ORDER BY rowid").fetchall():
        minor, note = from_legacy_real(price, money)
        if note:
            unpriced.append(sku)
            logger.warning("migrating SKU %r: %s", sku, note)
        conn.execute("UPDATE skus_v1 SET price_minor = ? WHERE sku = ?", (minor, sku))
    if unpriced:
        logger.warning(
            "migration: %d SKUs lost a stored price that is not one in %s (checkout lists them in "
            "needs_attention until a price is set): %s",
            len(unpriced),
            money.code,
            ", ".join(map(repr, unpriced)),
        )
    conn.execute("DROP TABLE skus")
    conn.execute("ALTER TABLE skus_v1 RENAME TO skus")  # images' REFERENCES skus(sku) now name this table


def _to_v2(conn: sqlite3.Connection, money: Currency) -> None:
    """The search index, filled with the SKUs already there."""
    if _create_search(conn):
        conn.execute(f"INSERT INTO {SEARCH_INDEX}(sku, name) SELECT sku, name FROM skus")


def _to_v3(conn: sqlite3.Connection, money: Currency) -> None:
    """Lane backgrounds (none stored yet)."""
    for statement in statements(LANES):
        conn.execute(statement)


def _to_v4(conn: sqlite3.Connection, money: Currency) -> None:
    """Lane settings (none stored yet: every lane on the global defaults, as before)."""
    for statement in statements(LANE_SETTINGS):
        conn.execute(statement)


#: (version reached, step); each step gets the connection inside the migration's transaction.
MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection, Currency], None]]] = [
    (1, _to_v1),
    (2, _to_v2),
    (3, _to_v3),
    (4, _to_v4),
]
LATEST = MIGRATIONS[-1][0]


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value)
    )


def _refuse_unknown_currency(conn: sqlite3.Connection) -> None:
    """A first-release catalogue (REAL prices, no currency recorded) with prices, and no currency setting:
    reading them in the default would fix them in EUR for good (a JPY shop's 450.0 as 450.00 EUR)."""
    priced = conn.execute("SELECT COUNT(*) FROM skus WHERE price IS NOT NULL").fetchone()[0]
    if priced:
        raise CurrencyNotSet(
            f"the catalogue was written by an older skulens and {priced} SKU"
            f"{' has a price' if priced == 1 else 's have prices'} stored in no stated currency: set the currency "
            "they are in, e.g. SKULENS_CURRENCY=EUR (or JPY, USD, ...: an ISO 4217 code), and start again; "
            "nothing was changed"
        )


def prepare(conn: sqlite3.Connection, wanted_currency: str | None) -> Currency:
    """Create or migrate the catalogue on ``conn`` (autocommit mode) to ``LATEST``; returns its currency.

    ``wanted_currency``: the ``currency`` setting, or None (not set) to take the catalogue's (``EUR``
    for a new one). A catalogue whose prices are in another currency is refused (``CurrencyMismatch``);
    one without any price simply takes the wanted currency. A first-release catalogue with prices
    (which say no currency) is migrated only with the setting given (``CurrencyNotSet``).
    """
    wanted = currency(wanted_currency) if wanted_currency is not None else None
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys=OFF")  # a step may rebuild a table (_to_v1); only outside a transaction
    try:
        return _prepare(conn, wanted)
    finally:
        conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")


def _prepare(conn: sqlite3.Connection, wanted: Currency | None) -> Currency:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > LATEST:
            raise SchemaTooNew(
                f"the catalogue has schema version {version}, written by a newer skulens; this one "
                f"reads versions up to {LATEST}: upgrade skulens"
            )
        fresh = not has_table(conn, "skus")
        if fresh:
            for statement in statements(TABLES):
                conn.execute(statement)
            _create_search(conn)
        stored = _meta(conn, CURRENCY_KEY)
        if not stored and wanted is None and not fresh and version < 1:
            _refuse_unknown_currency(conn)
        money = currency(stored) if stored else (wanted or currency(DEFAULT_CURRENCY))
        if not fresh:
            for target, step in MIGRATIONS:
                if version < target:
                    logger.info("migrating the catalogue from schema version %d to %d", version, target)
                    step(conn, money)
                    version = target
        if wanted is not None and wanted != money:
            priced = conn.execute("SELECT COUNT(*) FROM skus WHERE price_minor IS NOT NULL").fetchone()[0]
            if priced:
                raise CurrencyMismatch(
                    f"the catalogue's prices are in {money.code} ({priced} SKUs have one) but the currency setting "
                    f"is {wanted.code}: set SKULENS_CURRENCY={money.code}, or use another data directory"
                )
            money = wanted
        _set_meta(conn, CURRENCY_KEY, money.code)
        conn.execute(f"PRAGMA user_version = {LATEST}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return money
