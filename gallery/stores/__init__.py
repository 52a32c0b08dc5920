"""Catalogue stores behind one small interface (``gallery.stores.base``): the embedded SQLite
(``gallery.stores.sqlite``, the default) and PostgreSQL shared by replicas (``gallery.stores.postgres``),
chosen by the ``catalog`` setting (``gallery.stores.open``)."""
