"""The tests' PostgreSQL fixture: binaries of any Debian version found (newest first), and folders left by
interrupted sessions removed (their servers stopped) without touching another live session's."""

import subprocess
import tempfile
from pathlib import Path

from tests import pg_server
from tests.pg_server import FOLDER_PREFIX, _version, start_server, sweep_stale_folders


def test_versions_compare_as_numbers():
    folders = ["/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/15/bin"]
    assert [Path(f).parent.name for f in sorted(folders, key=_version)] == ["9.6", "15", "17"]


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_stale_folders_are_removed_and_orphaned_servers_stopped():
    server = start_server()  # a server whose owner is then made a process that is gone
    try:
        (server.folder / "owner").write_text(f"{dead_pid()}\n")
        stopped = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))  # a server long gone: no postmaster
        (stopped / "owner").write_text(f"{dead_pid()}\n")
        live = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))  # another session's, still running
        (live / "owner").write_text(f"{__import__('os').getpid()}\n")
        sweep_stale_folders(server.bin, server.as_user)
        assert not server.folder.exists() and not stopped.exists() and live.exists()
        assert server.ctl("status", check=False).returncode != 0  # the orphaned server was stopped
        (live / "owner").unlink()
        live.rmdir()
    finally:
        server.close()


def test_as_root_without_a_postgres_user_the_tests_are_skipped(monkeypatch):
    import pytest

    monkeypatch.setattr(pg_server.os, "geteuid", lambda: 0)
    monkeypatch.setattr(pg_server.pwd, "getpwnam", lambda name: (_ for _ in ()).throw(KeyError(name)))
    monkeypatch.setattr(pg_server, "pg_bin", lambda: Path("/nonexistent/bin"))
    with pytest.raises(pytest.skip.Exception, match="no 'postgres' user"):
        start_server()
