"""The embedded SQLite catalogue (the default ``catalog``): ``store.CatalogStore``."""
