"""The ``catalog`` setting: absent, the embedded SQLite in the data directory (unchanged); an unknown
scheme is one clear error; the service reads it from ``--catalog`` and ``SKULENS_CATALOG``."""

import pytest

from gallery.gallery import DB_FILE, Gallery
from gallery.stores.base import CatalogBase, PhotoStore
from gallery.stores.open import CatalogUnavailable, describe, is_shared, open_catalog
from gallery.stores.sqlite.store import CatalogStore
from service.cli import build_parser, settings_from
from service.settings import Settings
from service.startup import StartupError, check_catalogue


def test_absent_means_sqlite_in_the_data_directory(tmp_path):
    store = open_catalog(tmp_path)
    assert isinstance(store, CatalogStore) and isinstance(store, CatalogBase)
    assert store.path == tmp_path / DB_FILE
    photos = store.photos("images", tmp_path)
    assert isinstance(photos, PhotoStore) and photos.get(photos.put(b"abc")) == b"abc"
    assert (tmp_path / "images").is_dir()
    store.close()
    g = Gallery(tmp_path, "model-a", 8)
    assert g.catalog == str(tmp_path / DB_FILE) and isinstance(g.store, CatalogStore)
    g.close(snapshot=False)


def test_an_unknown_scheme_is_refused_in_one_line(tmp_path):
    with pytest.raises(CatalogUnavailable, match="unknown catalog 'mysql://"):
        open_catalog(tmp_path, "mysql://db/skulens")
    with pytest.raises(StartupError, match="unknown catalog"):
        check_catalogue(Settings(data_dir=tmp_path, catalog="mysql://db/skulens"))


def test_describe_never_shows_a_password(tmp_path):
    assert is_shared("postgresql://u:secret@db.example:5433/skulens") and not is_shared(None)
    assert describe("postgresql://u:secret@db.example:5433/skulens", tmp_path) == "postgresql://db.example:5433/skulens"


def test_flag_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SKULENS_CATALOG", "postgresql://env/db")
    assert Settings().catalog == "postgresql://env/db"
    args = build_parser().parse_args(["info", "--catalog", "postgresql://flag/db"])
    assert settings_from(args).catalog == "postgresql://flag/db"  # the flag wins
    args = build_parser().parse_args(["skus", "--catalog", "postgresql://flag/db"])
    assert settings_from(args).catalog == "postgresql://flag/db"
    monkeypatch.delenv("SKULENS_CATALOG")
    assert Settings().catalog is None
