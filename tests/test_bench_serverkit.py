"""bench.serverkit.cpu_seconds counts a server's worker processes too (``skulens serve --workers 2``)."""

import os
import signal
import subprocess
import sys
import time

from bench.serverkit import children, cpu_seconds

SPIN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"


def test_a_parents_cpu_includes_its_live_childrens():
    """A parent that only waits, with a child that spins for 0.4 s of CPU: the parent's figure holds the child's."""
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {SPIN!r}])"]
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(cpu_seconds(c) >= 0.4 for c in children(parent.pid)):
            time.sleep(0.05)
        (child,) = children(parent.pid)
        assert cpu_seconds(child) >= 0.4
        assert cpu_seconds(parent.pid) >= cpu_seconds(child) + 0.01  # the parent's own start-up, plus the child
    finally:
        for pid in children(parent.pid):
            os.kill(pid, signal.SIGTERM)
        parent.kill()
        parent.wait()


def test_a_process_that_is_gone_counts_as_nothing():
    assert cpu_seconds(2**22 + 7) == 0.0 and children(2**22 + 7) == []
