"""A real PostgreSQL server for the tests: ``initdb`` into a temporary folder, a free loopback port,
``pg_ctl start``, stopped at the end of the session. Run as the ``postgres`` user when the tests run as
root (the server refuses root). Each test gets a database of its own (``pg_catalog_url``).

The binaries are looked for in ``$SKULENS_PG_BIN``, then ``/usr/lib/postgresql/*/bin`` (Debian's
``postgresql-15``), then ``$PATH``; without them the tests that need a server are skipped, saying so.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN_ENV = "SKULENS_PG_BIN"
_databases = itertools.count()


def pg_bin() -> Path | None:
    candidates = [os.environ.get(PG_BIN_ENV, ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    bin: Path
    folder: Path
    port: int
    as_user: list[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args],
                              capture_output=True, text=True, check=check, timeout=60)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   "-c fsync=off -c max_connections=200")
        self.ctl("start", "-w", "-l", str(self.folder / "log"), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self.ctl("stop", "-w", "-m", mode, check=False)

    def close(self) -> None:
        """Stop the server at once and remove its folder."""
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self) -> str:
        import psycopg

        name = f"skulens_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def start_server() -> PgServer:
    found = pg_bin()
    if found is None:
        pytest.skip(f"PostgreSQL server binaries not found (initdb): install postgresql-15, or set {PG_BIN_ENV}")
    root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="skulens-pg-"))
    as_user: list[str] = []
    if root:  # the server refuses to run as root: its folder is the postgres user's
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(found / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--no-sync"], capture_output=True, text=True, check=True, timeout=120)
    server = PgServer(found, folder, free_port(), as_user)
    server.start()
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_catalog_url(pg_server: PgServer) -> str:
    """A new, empty database on the session's server."""
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest) -> str | None:
    """The ``catalog`` setting for each store: None (SQLite in the data directory) and a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_catalog_url"))
