"""A real PostgreSQL server for the tests: ``initdb`` into a temporary folder, a free loopback port,
``pg_ctl start``, stopped at the end of the session. Run as the ``postgres`` user when the tests run as
root (the server refuses root). Each test gets a database of its own (``pg_catalog_url``).

The binaries are looked for in ``$SKULENS_PG_BIN``, then ``/usr/lib/postgresql/<version>/bin`` (Debian's
``postgresql`` package, any version, the newest first), then ``$PATH``; without them (or as root without
a ``postgres`` user to run the server as) the tests that need a server are skipped, saying so.

Each server's folder is ``/tmp/skulens-pg-*`` and names the test process that started it (``owner``). At
the first start in a process, folders left behind are removed: those whose server is not running, and
those whose server still runs but whose owner process is gone (an interrupted session; stopped first).
A folder whose owner still runs (another test session) is never touched.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN_ENV = "SKULENS_PG_BIN"
FOLDER_PREFIX = "skulens-pg-"
_databases = itertools.count()
_swept = [False]


def _version(folder: str) -> tuple[int, ...]:
    """``/usr/lib/postgresql/16/bin`` -> (16,): versions compare as numbers (16 after 9.6)."""
    return tuple(int(n) for n in re.findall(r"\d+", Path(folder).parent.name)) or (0,)


def pg_bin() -> Path | None:
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    candidates = [os.environ.get(PG_BIN_ENV, ""), *installed]
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
        return subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c max_connections=200"
        )
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


def _alive(pid: int, name: str) -> bool:
    """Whether process ``pid`` runs and its command line mentions ``name`` (a reused pid is not it)."""
    try:
        return name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _first_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sweep_stale_folders(bin_dir: Path, as_user: list[str]) -> int:
    """Remove the folders of servers started by test processes that are gone (see the module's doc)."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"):
        owner = _first_int(folder / "owner")
        if owner is not None and _alive(owner, "python"):
            continue  # another test session's server
        postmaster = _first_int(folder / "data" / "postmaster.pid")
        if postmaster is not None and _alive(postmaster, "postgres"):
            if owner is None:
                continue  # running, and nothing says whose: left alone
            subprocess.run(
                [*as_user, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "stop", "-m", "immediate"],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def start_server() -> PgServer:
    found = pg_bin()
    if found is None:
        pytest.skip(f"PostgreSQL server binaries not found (initdb): install Debian's postgresql, or set {PG_BIN_ENV}")
    root = os.geteuid() == 0
    as_user: list[str] = []
    if root:  # the server refuses to run as root: it runs as the postgres user
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(
                "the tests run as root and there is no 'postgres' user to run PostgreSQL as (the server "
                "refuses root): create one (useradd --system postgres) or run the tests as another user"
            )
        as_user = ["runuser", "-u", "postgres", "--"]
    if not _swept[0]:
        _swept[0] = True
        sweep_stale_folders(found, as_user)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    (folder / "owner").write_text(f"{os.getpid()}\n")
    if root:  # its folder is the postgres user's
        shutil.chown(folder, "postgres", "postgres")
    subprocess.run(
        [
            *as_user,
            str(found / "initdb"),
            "-D",
            str(folder / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
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
