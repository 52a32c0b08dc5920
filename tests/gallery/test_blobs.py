"""Content-addressed image files: the cross-process guard and the sweep of unreferenced files."""

import threading

from gallery.blobs import BlobStore
from gallery.gallery import Gallery
from tests.gallery.test_gallery import DIM, enrol, upload, vec

WAIT = 5.0


def test_guard_excludes_another_holder(tmp_path):
    first, second = BlobStore(tmp_path), BlobStore(tmp_path)  # two workers' stores on one folder
    inside, release, entered = threading.Event(), threading.Event(), threading.Event()

    def hold():
        with first.guard():
            inside.set()
            release.wait(WAIT)

    def enter():
        with second.guard():
            entered.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(WAIT)
    waiter = threading.Thread(target=enter)
    waiter.start()
    assert not entered.wait(0.3)  # blocked while the first holds it
    release.set()
    assert entered.wait(WAIT)
    holder.join(WAIT)
    waiter.join(WAIT)


def test_sweep_removes_only_unreferenced_files(tmp_path):
    g = Gallery(tmp_path, "model-a", DIM)
    enrol(g, "milk", 1, 2)
    orphan = g.blobs.put(upload(99).data)  # written, then "crashed" before the commit
    stale_tmp = g.blobs.root / orphan[:2] / f".{orphan}.123.tmp"
    stale_tmp.write_bytes(b"half a file")
    assert g.sweep_files() == 2
    assert not g.blobs.exists(orphan) and not stale_tmp.exists()
    assert len(list(g.blobs.digests())) == 2  # both enrolled files are still there
    assert g.recognize(vec(1)[None], 0.9)[0].sku == "milk"
    g.close(snapshot=False)


def test_a_shared_file_survives_deleting_one_of_its_images(tmp_path):
    g = Gallery(tmp_path, "model-a", DIM)
    same = [upload(7)]
    g.enrol("milk", same, vec(7)[None])
    g.enrol("juice", same, vec(8)[None])
    g.delete_sku("milk")
    (digest,) = g.store.image_digests()
    assert g.blobs.exists(digest)  # juice still refers to it
    g.delete_sku("juice")
    assert not g.blobs.exists(digest)
    assert g.sweep_files() == 0 and g.size == 0
    g.close(snapshot=False)
