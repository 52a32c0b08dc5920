"""SIGKILL two replicas (``skulens serve``, each its own data directory) on one PostgreSQL catalogue at
random moments while one client enrols and deletes through each; nothing acknowledged is lost, and after
every restart each replica's index agrees with the shared catalogue and holds the other's writes.
The harness (ledger, workload, checks, kill) is the SQLite crash test's. ``SKULENS_CRASH_ROUNDS`` kills
(default 6 there; here at most 4 unless set)."""

import os
import random
import threading
import time

import pytest

from tests.e2e.server import Server
from tests.e2e.test_crash_safety import Ledger, check, kill_process_group, workload

pytestmark = pytest.mark.e2e
ROUNDS = int(os.environ.get("SKULENS_CRASH_ROUNDS", "4"))


def test_sigkill_of_two_replicas_loses_nothing_acknowledged(tmp_path, tiny_model_dir, pg_catalog_url):
    rng = random.Random(20261127)
    ledger = Ledger()
    seeds = iter(range(1000, 10**7))
    args = ["--catalog", pg_catalog_url]
    started = time.monotonic()
    for _ in range(ROUNDS):
        replicas = [Server(tmp_path / name, tiny_model_dir, args).start() for name in ("a", "b")]
        stop = threading.Event()
        clients = [
            threading.Thread(target=workload, args=(replica.url, ledger, random.Random(rng.random()), seeds, stop, c))
            for c, replica in enumerate(replicas)
        ]
        for thread in clients:
            thread.start()
        time.sleep(rng.uniform(0.5, 2.5))
        for replica in replicas:  # both at once, mid-write
            kill_process_group(replica)
        stop.set()
        for thread in clients:
            thread.join(30)
        for replica in replicas:
            replica.log.close()
        again = [Server(tmp_path / name, tiny_model_dir, args).start() for name in ("a", "b")]
        try:
            for replica in again:  # each replica: every acknowledged write, its own and the other's
                with replica.client() as http:
                    check(http, ledger, rng)
            with again[0].client() as http:
                for image_id in list(ledger.unsure):  # settle: the next round starts from a known state
                    r = http.get(f"/v1/skus/{ledger.enrolled[image_id][0]}")
                    if image_id not in r.json().get("image_ids", []):
                        ledger.deleted.add(image_id)
                    ledger.unsure.discard(image_id)
        finally:
            for replica in again:
                replica.stop()
    assert not ledger.client_errors, ledger.client_errors[:3]
    assert ledger.operations >= 20 and len(ledger.enrolled) >= 10 and ledger.deleted
    print(
        f"crash safety on PostgreSQL: {ROUNDS} SIGKILLs of two replicas, {ledger.operations} acknowledged "
        f"operations ({len(ledger.enrolled)} enrolments, {len(ledger.deleted)} deletions), 0 lost, "
        f"checked through both after every restart, {time.monotonic() - started:.0f} s"
    )
