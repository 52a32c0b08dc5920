"""The catalogue in PostgreSQL, shared by replicas (psycopg 3; the ``postgres`` extra): the store
(``store``), its schema (``schema``), photo bytes in the database (``photos``), connections that
reopen after a failure (``link``) and the change-log follower woken by LISTEN/NOTIFY (``follower``)."""
