"""The re-index decode pipeline: batches in order, the next one decoding while this one is embedded."""

from concurrent.futures import Executor, Future, ThreadPoolExecutor

from gallery.reindex import decoded_batches


class RecordingExecutor(Executor):
    """Runs each task at once and records the order in which tasks were submitted."""

    def __init__(self):
        self.submitted = []

    def submit(self, fn, *args):
        self.submitted.append(args[0])
        future = Future()
        future.set_result(fn(*args))
        return future


def test_batches_come_in_order_with_every_item():
    with ThreadPoolExecutor(max_workers=2) as pool:
        batches = list(decoded_batches(pool, lambda x: x * 10, list(range(7)), batch_size=3))
    assert batches == [[0, 10, 20], [30, 40, 50], [60]]


def test_the_next_batch_is_submitted_before_this_one_is_handed_over():
    pool = RecordingExecutor()
    batches = decoded_batches(pool, str, list(range(5)), batch_size=2)
    assert next(batches) == ["0", "1"]
    assert pool.submitted == [0, 1, 2, 3]  # batch 2 already decoding while batch 1 is embedded
    assert next(batches) == ["2", "3"]
    assert pool.submitted == [0, 1, 2, 3, 4]
    assert list(batches) == [["4"]]


def test_no_items_no_batches():
    assert list(decoded_batches(RecordingExecutor(), str, [], batch_size=4)) == []
