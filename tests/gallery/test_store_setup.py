"""Several worker processes opening a new catalogue at the same moment (``uvicorn --workers N``)."""

import multiprocessing as mp

from gallery.stores.sqlite.store import CatalogStore

PROCESSES = 4
TRIALS = 30


def _open_at_once(path: str, barrier, results) -> None:
    barrier.wait(10)
    try:
        CatalogStore(path).close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(repr(exc))


def test_processes_opening_a_new_catalogue_together_all_succeed(tmp_path):
    ctx = mp.get_context("fork")
    failures = []
    for trial in range(TRIALS):
        path = str(tmp_path / f"trial{trial}" / "catalog.db")
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        workers = [ctx.Process(target=_open_at_once, args=(path, barrier, results)) for _ in range(PROCESSES)]
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=30) for _ in workers]
        for w in workers:
            w.join(10)
        failures += [f"trial {trial}: {o}" for o in outcomes if o != "ok"]
        store = CatalogStore(path)  # and the catalogue is usable afterwards
        assert store._query("PRAGMA journal_mode")[0][0] == "wal"
        store.close()
    assert not failures, failures
