"""SIGKILL the real server (2 workers) at random moments while two clients enrol and delete; nothing
acknowledged is lost. ``SKULENS_CRASH_ROUNDS`` kills (default 6), ``SKULENS_CRASH_WORKERS`` (default 2)."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import make_jpeg
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
ROUNDS = int(os.environ.get("SKULENS_CRASH_ROUNDS", "6"))
WORKERS = int(os.environ.get("SKULENS_CRASH_WORKERS", "2"))
CLIENTS = 2


class Ledger:
    """What the server acknowledged: image id → (sku, seed), and the ids whose deletion was acknowledged."""

    def __init__(self):
        self.enrolled: dict[int, tuple[str, int]] = {}
        self.deleted: set[int] = set()
        self.unsure: set[int] = set()  # deletions in flight when the server died: either outcome is right
        self.operations = 0  # acknowledged (201, 204)
        self.lock = threading.Lock()
        self.client_errors: list[str] = []  # anything but the server going away

    def acknowledged(self) -> None:
        with self.lock:
            self.operations += 1


def workload(url: str, ledger: Ledger, rng: random.Random, seeds, stop: threading.Event, client: int) -> None:
    """One client: enrols into its own SKUs and deletes only its own images (so that two clients
    never race on one id and every outcome is known or marked unsure)."""
    mine = f"c{client}-"
    with httpx.Client(base_url=url, timeout=10.0) as http:
        while not stop.is_set():
            try:
                with ledger.lock:  # the other client adds to the ledger meanwhile
                    live = [
                        i for i, (s, _) in ledger.enrolled.items() if s.startswith(mine) and i not in ledger.deleted
                    ]
                if live and rng.random() < 0.3:
                    image_id = rng.choice(live)
                    sku = ledger.enrolled[image_id][0]
                    ledger.unsure.add(image_id)
                    if http.delete(f"/v1/skus/{sku}/images/{image_id}").status_code == 204:
                        with ledger.lock:
                            ledger.deleted.add(image_id)
                        ledger.acknowledged()
                    ledger.unsure.discard(image_id)
                else:
                    sku, seed = f"{mine}{rng.randrange(4)}", next(seeds)
                    r = http.post(
                        f"/v1/skus/{sku}/images", files=[("images", (f"{seed}.jpg", make_jpeg(seed), "image/jpeg"))]
                    )
                    if r.status_code == 201:
                        with ledger.lock:
                            ledger.enrolled[r.json()["image_ids"][0]] = (sku, seed)
                        ledger.acknowledged()
            except httpx.HTTPError:
                return  # the server is gone
            except Exception as exc:  # a client that dies quietly would make the figure look better than it is
                ledger.client_errors.append(repr(exc))
                return


def check(http: httpx.Client, ledger: Ledger, rng: random.Random) -> None:
    present = {}
    for sku in {s for s, _ in ledger.enrolled.values()}:
        r = http.get(f"/v1/skus/{sku}")
        present.update({i: sku for i in (r.json()["image_ids"] if r.status_code == 200 else [])})
    for image_id, (sku, _) in ledger.enrolled.items():
        if image_id in ledger.unsure:
            continue
        if image_id in ledger.deleted:
            assert image_id not in present, f"deleted image {image_id} came back"
        else:
            assert present.get(image_id) == sku, f"acknowledged image {image_id} of {sku} was lost"
    for _ in range(2 * WORKERS):  # whichever worker answers
        info = http.get("/v1/admin/info").json()
        assert info["index_images"] == info["reference_images"], info  # the index agrees with SQLite
        assert info["index_vectors"] == info["reference_images"], info  # ordinary photos: one row each
    alive = [i for i in ledger.enrolled if i not in ledger.deleted and i not in ledger.unsure]
    for image_id in rng.sample(alive, min(5, len(alive))):
        sku, seed = ledger.enrolled[image_id]
        answer = http.post("/v1/recognize", files={"image": ("q.jpg", make_jpeg(seed), "image/jpeg")}).json()
        assert answer["matches"][0]["score"] > 0.999  # its own vector is in the index


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path, tiny_model_dir):
    rng = random.Random(20261122)
    ledger = Ledger()
    seeds = iter(range(1000, 10**7))
    data = tmp_path / "data"
    workers = ["--workers", str(WORKERS)]
    started = time.monotonic()
    for _ in range(ROUNDS):
        server = Server(data, tiny_model_dir, workers).start()
        stop = threading.Event()
        clients = [
            threading.Thread(target=workload, args=(server.url, ledger, random.Random(rng.random()), seeds, stop, c))
            for c in range(CLIENTS)
        ]
        for thread in clients:
            thread.start()
        time.sleep(rng.uniform(0.5, 2.5))
        kill_process_group(server)
        stop.set()
        for thread in clients:
            thread.join(30)
        server.log.close()
        with Server(data, tiny_model_dir, workers) as again, again.client() as http:
            check(http, ledger, rng)
            for image_id in list(ledger.unsure):  # settle: the next round starts from a known state
                if (
                    http.get(f"/v1/skus/{ledger.enrolled[image_id][0]}").json().get("image_ids", []).count(image_id)
                    == 0
                ):
                    ledger.deleted.add(image_id)
                ledger.unsure.discard(image_id)
    assert not ledger.client_errors, ledger.client_errors[:3]
    assert ledger.operations >= 20 and len(ledger.enrolled) >= 10 and ledger.deleted
    print(
        f"crash safety: {ROUNDS} SIGKILLs of a {WORKERS}-worker server, {CLIENTS} clients, "
        f"{ledger.operations} acknowledged operations ({len(ledger.enrolled)} enrolments, "
        f"{len(ledger.deleted)} deletions), 0 lost, all checked after every restart, "
        f"{time.monotonic() - started:.0f} s"
    )


def kill_process_group(server: Server) -> None:
    """SIGKILL the server and every worker process at once (no shutdown code runs anywhere)."""
    pids = [server.process.pid] + children_of(server.process.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.process.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") and not zombie(pid) for pid in pids):
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
                found.extend(children_of(int(entry)))
    return found


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_reindex_killed_halfway_leaves_the_old_index_serving(tmp_path, tiny_model_dir, other_model_dir):
    data = tmp_path / "data"
    with Server(data, tiny_model_dir) as server, server.client() as http:
        for seed in range(40):
            http.post(f"/v1/skus/s{seed % 4}/images", files=[("images", ("a.jpg", make_jpeg(seed), "image/jpeg"))])
        command = [
            sys.executable,
            "-m",
            "service.cli",
            "reindex",
            "--data-dir",
            str(data),
            "--model",
            str(other_model_dir),
            "--batch-size",
            "4",
        ]
        reindexing = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(4.0)
        reindexing.kill()
        reindexing.wait(10)
        answer = http.post("/v1/recognize", files={"image": ("q.jpg", make_jpeg(7), "image/jpeg")}).json()
        assert answer["sku"] == "s3"  # the old model's index still serves
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with Server(data, other_model_dir) as server, server.client() as http:
        assert http.post("/v1/recognize", files={"image": ("q.jpg", make_jpeg(7), "image/jpeg")}).json()["sku"] == "s3"
        assert http.get("/v1/admin/info").json()["index_images"] == 40
