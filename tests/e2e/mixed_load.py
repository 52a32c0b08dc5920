"""Recognise, enrol and delete at once against real servers, for a bounded time: the clients and the
bookkeeping the concurrency tests share (one server with one or two workers; two replicas)."""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import make_jpeg
from tests.e2e.server import Server

STABLE = {f"stable-{i}": 100 + i for i in range(4)}  # SKU → seed of its one photo; never touched under load


def files(seed: int, field_name: str = "images") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field_name, (f"{seed}.jpg", make_jpeg(seed), "image/jpeg"))]


#: called after an acknowledged enrolment: (image id, photo seed, time acknowledged)
AfterEnrol = Callable[[int, int, float], None]


@dataclass
class MixedLoad:
    """What the clients did and what went wrong, until ``deadline`` (monotonic)."""

    deadline: float
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"recognise": 0, "enrol": 0, "delete": 0})
    acked_enrol: dict[int, str] = field(default_factory=dict)  # image id → its SKU
    acked_delete: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_seconds(cls, seconds: float) -> MixedLoad:
        return cls(deadline=time.monotonic() + seconds)

    def recorded(self, body: Callable[..., None]) -> Callable[..., None]:
        """``body`` for a thread, its exception recorded as a failure (pytest only warns about a thread's)."""

        def run(*args: Any) -> None:
            try:
                body(*args)
            except BaseException:  # noqa: BLE001
                self.failures.append(f"{body.__name__} raised: {traceback.format_exc(limit=3)}")

        return run

    def recogniser(self, server: Server, seed: int) -> None:
        """Recognise the stable SKUs' own photos: always that SKU, at similarity 1."""
        rng = random.Random(seed)
        with server.client() as http:
            while time.monotonic() < self.deadline:
                sku, photo = rng.choice(list(STABLE.items()))
                r = http.post("/v1/recognize", files=files(photo, "image"))
                body = r.json()
                top = (body.get("matches") or [{}])[0]
                if r.status_code != 200 or top.get("sku") != sku or top.get("score", 0.0) < 0.999:
                    self.failures.append(f"recognise {sku} on {server.url}: {r.status_code} {str(body)[:200]}")
                with self.lock:
                    self.counts["recognise"] += 1

    def writer(self, server: Server, seed: int, after_enrol: AfterEnrol | None = None) -> None:
        """Enrol new photos of SKU ``w<seed>`` and delete some of them again, recording what was acknowledged."""
        rng = random.Random(seed)
        mine: list[int] = []
        with server.client() as http:
            while time.monotonic() < self.deadline:
                if mine and rng.random() < 0.4:
                    image_id = mine.pop(rng.randrange(len(mine)))
                    r = http.delete(f"/v1/skus/w{seed}/images/{image_id}")
                    if r.status_code != 204:
                        self.failures.append(f"delete {image_id}: {r.status_code} {r.text[:200]}")
                    with self.lock:
                        self.acked_delete.add(image_id)
                        self.counts["delete"] += 1
                    continue
                photo = 10**6 * (seed + 1) + rng.randrange(10**6)
                r = http.post(f"/v1/skus/w{seed}/images", files=files(photo))
                acked = time.monotonic()
                if r.status_code != 201:
                    self.failures.append(f"enrol: {r.status_code} {r.text[:200]}")
                    continue
                image_id = r.json()["image_ids"][0]
                mine.append(image_id)
                with self.lock:
                    self.acked_enrol[image_id] = f"w{seed}"
                    self.counts["enrol"] += 1
                if after_enrol is not None:
                    after_enrol(image_id, photo, acked)

    def run(self, threads: list[threading.Thread], join_s: float) -> None:
        for t in threads:
            t.start()
        for t in threads:
            t.join(join_s)
        assert not any(t.is_alive() for t in threads), "a client thread never finished"
        assert not self.failures, self.failures[:5]

    @property
    def expected(self) -> set[int]:
        return set(self.acked_enrol) - self.acked_delete

    def present(self, http: httpx.Client) -> set[int]:
        """The written SKUs' images as ``http``'s server lists them."""
        found: set[int] = set()
        for sku in {*self.acked_enrol.values()}:
            found.update(http.get(f"/v1/skus/{sku}").json()["image_ids"])
        return found
