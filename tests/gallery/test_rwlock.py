"""The readers-writer lock with real threads; every wait is bounded so a bug fails, never hangs."""

import threading
import time

import pytest

from gallery.rwlock import ReadWriteLock

WAIT = 5.0


def test_readers_hold_the_lock_at_the_same_time():
    lock = ReadWriteLock()
    both_inside = threading.Barrier(2, timeout=WAIT)
    errors = []

    def reader():
        try:
            with lock.read():
                both_inside.wait()  # breaks (and raises) unless the other reader is inside too
        except threading.BrokenBarrierError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert not errors


def test_a_writer_waits_for_readers_and_excludes_them():
    lock = ReadWriteLock()
    events = []
    reader_in, release_reader = threading.Event(), threading.Event()

    def reader():
        with lock.read():
            reader_in.set()
            release_reader.wait(WAIT)
            events.append("reader out")

    def writer():
        with lock.write():
            events.append("writer in")
            time.sleep(0.05)
            events.append("writer out")

    r = threading.Thread(target=reader)
    r.start()
    assert reader_in.wait(WAIT)
    w = threading.Thread(target=writer)
    w.start()
    time.sleep(0.1)
    assert events == []  # the writer is still waiting for the reader
    # a new reader now waits too: writers are preferred
    late = []

    def late_read():
        with lock.read():
            late.append(1)

    late_reader = threading.Thread(target=late_read)
    late_reader.start()
    time.sleep(0.1)
    assert late == []
    release_reader.set()
    for t in (r, w, late_reader):
        t.join(WAIT)
    assert events == ["reader out", "writer in", "writer out"]
    assert late == [1]


def test_the_writer_may_reenter_and_read():
    lock = ReadWriteLock()
    with lock.write():
        with lock.write():
            with lock.read():
                pass
    done = threading.Event()

    def other_writer():
        with lock.write():
            done.set()

    t = threading.Thread(target=other_writer)
    t.start()
    assert done.wait(WAIT), "the lock was not released after nested use"
    t.join(WAIT)


def test_an_exception_inside_releases_the_lock():
    lock = ReadWriteLock()
    with pytest.raises(RuntimeError):
        with lock.write():
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        with lock.read():
            raise RuntimeError("boom")
    acquired = threading.Event()

    def write():
        with lock.write():
            acquired.set()

    t = threading.Thread(target=write)
    t.start()
    assert acquired.wait(WAIT)
    t.join(WAIT)
