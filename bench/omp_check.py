"""Check: does ``faiss.omp_set_num_threads(n)`` in one thread reach the threads that search?

The service calls it in its lifespan (the event-loop thread) but searches on AnyIO worker
threads (``run_in_threadpool``). With GNU OpenMP the setting is per thread, so this prints
what a freshly started thread sees, and what it sees when ``OMP_NUM_THREADS`` is set instead.

    .venv/bin/python -m bench.omp_check
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run, table

PROBE = """
import faiss, json, threading
faiss.omp_set_num_threads(1)
seen = {"main thread after omp_set_num_threads(1)": faiss.omp_get_max_threads()}
def probe():
    seen["another thread"] = faiss.omp_get_max_threads()
t = threading.Thread(target=probe); t.start(); t.join()
print(json.dumps(seen))
"""


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, and no stray flags
    import json

    run = Run("omp_check")
    rows = []
    for env_value in (None, "1"):
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        if env_value:
            env["OMP_NUM_THREADS"] = env_value
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
        seen = json.loads(out.stdout)
        rows.append(
            {"OMP_NUM_THREADS": env_value or "(unset)", **{f"omp_get_max_threads: {k}": v for k, v in seen.items()}}
        )
    run.data["rows"] = rows
    print(table(rows))
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
