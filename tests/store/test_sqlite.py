"""SqliteStore: catalog, documents, index entries, range scans, savepoints, meta, reopening."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest

from convex_notebook.store import SqliteStore
from convex_notebook.store.sqlite import FIRST_TABLE_NUMBER, WAL_LIMIT_PAGES, WAL_PAGES, StoredIndex, _Checkpointer
from convex_notebook.values import encode_value


@pytest.fixture
def store():
    s = SqliteStore()
    yield s
    s.close()


def keys(rows) -> list[bytes]:
    return [r[0] for r in rows]


# -- catalog ---------------------------------------------------------------------------------
def test_new_store_is_empty(store):
    assert store.load_tables() == {}
    assert store.load_indexes() == []
    assert store.get_meta("anything") is None


def test_tables_are_numbered_from_the_first_user_number(store):
    assert store.create_table("a") == FIRST_TABLE_NUMBER
    assert store.create_table("b") == FIRST_TABLE_NUMBER + 1
    assert store.load_tables() == {"a": FIRST_TABLE_NUMBER, "b": FIRST_TABLE_NUMBER + 1}


def test_table_with_chosen_number_and_next_number_after_it(store):
    assert store.create_table("imported", 20_000) == 20_000
    assert store.create_table("next") == 20_001
    assert store.table_number_owner(20_000) == "imported"
    assert store.table_number_owner(12_345) is None


def test_duplicate_table_name_or_number_is_rejected(store):
    store.create_table("a", 10_001)
    with pytest.raises(Exception):
        store.create_table("a")
    with pytest.raises(Exception):
        store.create_table("b", 10_001)
    assert store.load_tables() == {"a": 10_001}


def test_indexes_catalog_round_trip_and_drop(store):
    t = store.create_table("msgs")
    i1 = store.create_index(t, "by_channel", ("channel", "author.name"))
    i2 = store.create_index(t, "by_x", ("x",), staged=True)
    assert i1 != i2
    assert store.load_indexes() == [
        StoredIndex(i1, t, "by_channel", ("channel", "author.name"), False),
        StoredIndex(i2, t, "by_x", ("x",), True),
    ]
    with pytest.raises(Exception):
        store.create_index(t, "by_channel", ("y",))  # unique per table
    store.insert_entries([(i1, b"k1")])
    store.drop_index(i1)
    assert [ix.name for ix in store.load_indexes()] == ["by_x"]
    assert store.entry_keys(i1) == []


# -- documents --------------------------------------------------------------------------------
def test_put_get_replace_delete_document(store):
    t = store.create_table("t")
    assert store.get_document(t, b"k") is None
    store.put_document(t, b"k", '{"a": 1}', True)
    assert tuple(store.get_document(t, b"k")) == ('{"a": 1}', 1)
    store.put_document(t, b"k", '{"a": 2}', False)  # put replaces
    assert tuple(store.get_document(t, b"k")) == ('{"a": 2}', 0)
    assert store.count_documents(t) == 1
    store.delete_document(t, b"k")
    assert store.get_document(t, b"k") is None
    assert store.count_documents(t) == 0
    store.delete_document(t, b"k")  # deleting a missing key is a no-op


def test_documents_are_per_table(store):
    a, b = store.create_table("a"), store.create_table("b")
    store.put_document(a, b"k", "{}", True)
    assert store.get_document(b, b"k") is None
    assert store.count_documents(a) == 1 and store.count_documents(b) == 0
    assert [r[0] for r in store.iter_table_documents(a)] == [b"k"]
    assert list(store.iter_table_documents(b)) == []


def test_insert_documents_refuses_an_existing_key(store):
    t = store.create_table("t")
    store.insert_table_documents(t, [(b"k1", "{}", 1), (b"k2", "{}", 1)])
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_table_documents(t, [(b"k1", '{"x": 1}', 1)])
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_documents_json(t, b"k3k1", 2, '[{"a":1},{"b":2}]')
    assert sorted(store.document_keys(t)) == [b"k1", b"k2"]


def test_a_json_batch_keeps_each_text_and_its_flags(store):
    t = store.create_table("t")
    texts = ['{"a":1.10,"s":"x\\u00e9\\n\\"q","e":"\u00e9"}', "{}", '{"n":{"$integer":"AQAAAAAAAAA="}}']
    keys = [b"time-%d...id%d" % (i, i) for i in range(3)]  # 9 bytes of creation time, then the id
    store.insert_documents_json(t, b"".join(keys), 12, "[" + ",".join(texts) + "]", b"110", b"001")
    rows = list(store.iter_table_documents(t))
    assert rows == [(keys[0], texts[0], 1), (keys[1], texts[1], 1), (keys[2], texts[2], 0)]
    assert store.has_foreign_ids() == {t}
    assert store.find_foreign(t, b"id2") == (keys[2], texts[2], 0)
    assert store.find_foreign(t, b"id1") is None  # not flagged foreign


# -- scans ------------------------------------------------------------------------------------
DOC_KEY_LEN = 9  # an encoded float


def entry(i: int) -> bytes:
    """The by_neg entry of document i: its index value, then its document key."""
    return encode_value(float(-i)) + encode_value(float(i))


@pytest.fixture
def filled(store):
    """Table with docs keyed 0..9 (encoded floats) and an index whose keys reverse them."""
    t = store.create_table("t")
    ix = store.create_index(t, "by_neg", ("neg",))
    for i in range(10):
        doc_key = encode_value(float(i))
        store.put_document(t, doc_key, f'{{"i": {i}}}', True)
        store.insert_entry(ix, entry(i))
    return store, t, ix


def test_scan_documents_ascending_descending_and_limit(filled):
    store, t, _ = filled
    k = [encode_value(float(i)) for i in range(10)]
    assert keys(store.scan(t, None, b"", b"\xff", False, 100)) == k
    assert keys(store.scan(t, None, b"", b"\xff", True, 100)) == k[::-1]
    assert keys(store.scan(t, None, b"", b"\xff", False, 3)) == k[:3]
    assert keys(store.scan(t, None, b"", b"\xff", True, 3)) == k[::-1][:3]
    # [lo, hi): lo included, hi excluded
    assert keys(store.scan(t, None, k[2], k[5], False, 100)) == k[2:5]
    assert keys(store.scan(t, None, k[2], k[5], True, 100)) == k[2:5][::-1]
    assert store.scan(t, None, k[5], k[5], False, 100) == []
    row = store.scan(t, None, k[4], k[5], False, 1)[0]
    assert tuple(row) == (k[4], '{"i": 4}', 1)


def test_scan_index_entries_joins_documents(filled):
    store, t, ix = filled
    rows = store.scan(t, ix, b"", b"\xff", False, 100, DOC_KEY_LEN)
    assert [r[1] for r in rows] == [f'{{"i": {i}}}' for i in range(9, -1, -1)]
    assert keys(rows) == [entry(i) for i in range(9, -1, -1)]
    lo, hi = encode_value(-5.0), encode_value(-2.0)
    assert [r[1] for r in store.scan(t, ix, lo, hi, False, 100, DOC_KEY_LEN)] == ['{"i": 5}', '{"i": 4}', '{"i": 3}']
    assert [r[1] for r in store.scan(t, ix, lo, hi, True, 2, DOC_KEY_LEN)] == ['{"i": 3}', '{"i": 4}']
    assert store.last_document_key(t) == encode_value(9.0)  # the latest document (the clock recovers it)
    assert store.last_document_key(t + 1000) is None


def test_scanning_an_index_needs_the_document_key_length(filled):
    store, t, ix = filled
    with pytest.raises(ValueError):
        store.scan(t, ix, b"", b"\xff", False, 100)


def test_insert_document_refuses_an_existing_key(store):
    t = store.create_table("t")
    store.insert_document(t, b"k", "{}", True)
    with pytest.raises(Exception):
        store.insert_document(t, b"k", '{"x": 1}', True)
    assert tuple(store.get_document(t, b"k")) == ("{}", 1)


def test_deleted_entries_disappear_from_scans(filled):
    store, t, ix = filled
    store.delete_entries([(ix, entry(3)), (ix, entry(4))])
    got = [r[1] for r in store.scan(t, ix, b"", b"\xff", False, 100, DOC_KEY_LEN)]
    assert len(got) == 8 and '{"i": 3}' not in got and '{"i": 4}' not in got


def test_scan_of_other_table_number_sees_nothing(filled):
    store, t, ix = filled
    other = store.create_table("other")
    assert store.scan(other, None, b"", b"\xff", False, 100) == []


def test_documents_in_key_order_batches(filled):
    store, t, _ = filled
    batches = list(store.iter_documents_ordered(t, batch=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [row[1] for b in batches for row in b] == [f'{{"i": {i}}}' for i in range(10)]


def test_delete_table_contents(filled):
    store, t, ix = filled
    store.delete_table_contents(t, [ix])
    assert store.count_documents(t) == 0
    assert store.entry_keys(ix) == []
    assert store.load_tables() == {"t": t}  # the table itself stays


# -- transactions and savepoints -----------------------------------------------------------------
def test_commit_and_rollback(store):
    t = store.create_table("t")
    store.begin()
    store.put_document(t, b"a", "{}", True)
    store.commit()
    store.begin()
    store.put_document(t, b"b", "{}", True)
    store.delete_document(t, b"a")
    store.rollback()
    assert sorted(store.document_keys(t)) == [b"a"]
    store.rollback()  # no transaction open: harmless


def test_savepoint_rollback_keeps_outer_writes(store):
    t = store.create_table("t")
    store.begin()
    store.put_document(t, b"outer", "{}", True)
    sp = store.savepoint()
    store.put_document(t, b"inner", "{}", True)
    store.delete_document(t, b"outer")
    store.rollback_to(sp)
    assert store.document_keys(t) == [b"outer"]
    sp2 = store.savepoint()
    store.put_document(t, b"kept", "{}", True)
    store.release(sp2)
    store.commit()
    assert sorted(store.document_keys(t)) == [b"kept", b"outer"]


def test_nested_savepoints(store):
    t = store.create_table("t")
    store.begin()
    a = store.savepoint()
    store.put_document(t, b"a", "{}", True)
    b = store.savepoint()
    assert a != b
    store.put_document(t, b"b", "{}", True)
    store.release(b)
    store.rollback_to(a)  # undoes b too, since b was released into a
    store.put_document(t, b"c", "{}", True)
    store.commit()
    assert store.document_keys(t) == [b"c"]


def test_rollback_of_outer_transaction_discards_released_savepoints(store):
    t = store.create_table("t")
    store.begin()
    sp = store.savepoint()
    store.put_document(t, b"x", "{}", True)
    store.release(sp)
    store.rollback()
    assert store.document_keys(t) == []
    # and savepoint numbering starts over cleanly
    store.begin()
    sp = store.savepoint()
    store.put_document(t, b"y", "{}", True)
    store.release(sp)
    store.commit()
    assert store.document_keys(t) == [b"y"]


# -- meta -------------------------------------------------------------------------------------
def test_meta_set_overwrite(store):
    store.set_meta("ts", "1")
    store.set_meta("schema", '{"tables": {}}')
    store.set_meta("ts", "2")
    assert store.get_meta("ts") == "2"
    assert store.get_meta("schema") == '{"tables": {}}'


# -- files ------------------------------------------------------------------------------------
def test_file_store_reopens_with_everything(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    s = SqliteStore(path)
    s.begin()
    t = s.create_table("t")
    ix = s.create_index(t, "by_a", ("a",))
    s.put_document(t, b"d1", '{"a": 1}', True)
    s.insert_entry(ix, b"e1d1")  # an entry's key ends with its document's key
    s.set_meta("ts", "42")
    s.commit()
    s.begin()
    s.put_document(t, b"uncommitted", "{}", True)
    s.rollback()
    s.close()

    s2 = SqliteStore(path)
    try:
        assert s2.load_tables() == {"t": t}
        assert s2.load_indexes() == [StoredIndex(ix, t, "by_a", ("a",), False)]
        assert tuple(s2.get_document(t, b"d1")) == ('{"a": 1}', 1)
        assert s2.document_keys(t) == [b"d1"]
        assert [r[1] for r in s2.scan(t, ix, b"", b"\xff", False, 10, 2)] == ['{"a": 1}']
        assert s2.get_meta("ts") == "42"
    finally:
        s2.close()


def test_file_store_uses_wal(tmp_path):
    s = SqliteStore(str(tmp_path / "wal.sqlite3"))
    try:
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        s.close()


def test_a_background_thread_checkpoints_the_wal(tmp_path):
    """Commits leave their pages in the WAL (no commit pays for a checkpoint); the store's
    checkpointer copies them into the database file soon after, on its own connection."""
    path = tmp_path / "ckpt.sqlite3"
    s = SqliteStore(str(path))
    try:
        assert s.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_LIMIT_PAGES
        t = s.create_table("t")
        before = path.stat().st_size
        s.begin()
        s.insert_table_documents(t, [(b"k%06d" % i, '{"pad":"' + "x" * 200 + '"}', 1) for i in range(5000)])
        s.commit()
        deadline = time.monotonic() + 20
        while path.stat().st_size <= before + 500_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size > before + 500_000  # the pages reached the database file
        assert s.count_documents(t) == 5000
    finally:
        s.close()
    reopened = SqliteStore(str(path))
    try:
        assert reopened.count_documents(t) == 5000
    finally:
        reopened.close()


@pytest.mark.parametrize("where", ["file", "memory"])
def test_a_stream_of_small_commits_keeps_the_wal_short(tmp_path, where):
    """Past WAL_PAGES the checkpointer makes SQLite start the WAL over, so its file stays
    bounded however many commits come. (A checkpointer that only trailed the commits let it
    grow by every commit, in memory as on disk: here some 90,000 pages.)"""
    s = SqliteStore(str(tmp_path / "stream.sqlite3") if where == "file" else None)
    try:
        t = s.create_table("t")
        for i in range(30_000):
            s.begin()
            s.insert_document(t, b"k%06d" % i, '{"pad":"' + "x" * 100 + '"}', 1, ts=i + 1)
            s.commit()
            s.tidy_wal()  # (as the engine's committer does)
        wal = os.path.getsize(s.file + "-wal")
        # (bounded, with room for a burst of commits far faster than any mutation's, and for a
        # checkpointer that lags on a busy machine)
        assert wal < 20 * WAL_PAGES * 4096, f"WAL grew to {wal:,} bytes"
        assert s.count_documents(t) == 30_000
    finally:
        s.close()


def test_a_stop_between_the_checkpointers_wait_and_clear_ends_its_thread(tmp_path):
    """stop() landing just after the thread's delay ran out (before it cleared its wake-up)
    used to leave the thread waiting for a wake-up that never came: close() hung."""
    path = str(tmp_path / "race.sqlite3")
    SqliteStore(path).close()
    checkpointer = _Checkpointer(path)

    class StopsDuringTheDelay(threading.Event):
        def wait(self, timeout=None):
            self.set()  # stop() runs now: both flags set...
            checkpointer._wake.set()
            return False  # ...after the delay timed out

    checkpointer._stop = StopsDuringTheDelay()
    checkpointer.poke()
    checkpointer._thread.join(5)
    assert not checkpointer._thread.is_alive()


def test_json_batches_read_ahead_in_order_and_stop_cleanly(store):
    t = store.create_table("t")
    keys = [b"\x04" + i.to_bytes(8, "big") + b"\x07id%02d\x00" % i for i in range(10)]
    store.insert_table_documents(t, [(k, '{"i":%d}' % i, i % 3 != 0) for i, k in enumerate(keys)])
    batches = list(store.iter_json_batches(t, 4, batch=4))
    assert [b[0] for b in batches] == ['{"i":0},{"i":1},{"i":2},{"i":3}', '{"i":4},{"i":5},{"i":6},{"i":7}', '{"i":8},{"i":9}']
    assert "".join(b[1] for b in batches) == "".join("0" if i % 3 == 0 else "1" for i in range(10))
    assert ",".join(b[2] for b in batches) == ",".join("id%02d" % i for i in range(10))
    assert b"".join(b[3] for b in batches) == b"".join(i.to_bytes(8, "big") for i in range(10))
    it = store.iter_json_batches(t, 4, batch=4)
    next(it)
    it.close()  # stopped while the next batch was being read: the connection is free again
    assert store.count_documents(t) == 10


def test_a_foreign_id_is_looked_up_through_its_index(store):
    """Not a scan of the table: find_foreign's work does not grow with the table's documents
    (counted in SQLite virtual-machine steps, not time)."""
    t = store.create_table("t")
    store.insert_table_documents(t, [(b"\x04%08d\x07n%05d\x00" % (i, i), "{}", 1) for i in range(5000)])
    store.insert_table_documents(t, [(b"\x04%08d\x07f00001\x00" % 7, '{"f":1}', 1)], foreign=True)
    steps = []
    store.conn.set_progress_handler(lambda: steps.append(1), 100)  # called every 100 steps
    try:
        row = store.find_foreign(t, b"\x07f00001\x00")
        missing = store.find_foreign(t, b"\x07n00001\x00")  # a native row: not found this way
    finally:
        store.conn.set_progress_handler(None, 0)
    assert row == (b"\x04%08d\x07f00001\x00" % 7, '{"f":1}', 1) and missing is None
    assert len(steps) < 10  # a scan of 5,000 rows takes tens of thousands of steps


def test_submit_started_returns_once_the_worker_runs_the_call():
    """While the pool's one worker is busy, submit_started waits; it returns when the call
    has begun (not when it has finished)."""
    from concurrent.futures import ThreadPoolExecutor

    from convex_notebook.store.sqlite import submit_started

    busy, release, returned = threading.Event(), threading.Event(), threading.Event()
    futures = []

    def submitter():
        futures.append(submit_started(pool, lambda: release.wait(10) and 42))
        returned.set()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(busy.wait, 10)  # occupies the worker
        caller = threading.Thread(target=submitter)
        caller.start()
        assert not returned.wait(0.3)  # the call cannot have started: still waiting
        busy.set()
        assert returned.wait(10)  # started now...
        assert not futures[0].done()  # ...and not finished
        release.set()
        assert futures[0].result(10) == 42
        caller.join()


def test_a_store_dropped_without_close_ends_its_checkpoint_thread(tmp_path):
    import gc

    def checkpoint_threads():
        return {t for t in threading.enumerate() if t.name == "sqlite-checkpoint"}

    before = checkpoint_threads()
    s = SqliteStore(str(tmp_path / "dropped.sqlite3"))
    [thread] = checkpoint_threads() - before
    del s
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()


def test_a_file_store_reads_through_a_memory_map(tmp_path):
    s = SqliteStore(str(tmp_path / "mmap.sqlite3"))
    try:
        assert s.conn.execute("PRAGMA mmap_size").fetchone()[0] > 0
    finally:
        s.close()


def test_an_sqlite_without_json_functions_is_refused_clearly():
    from convex_notebook.store.sqlite import check_sqlite

    check_sqlite()  # this one is new enough
    with pytest.raises(RuntimeError, match=r"needs SQLite 3\.38\.0 or newer .* has SQLite 3\.31\.1"):
        check_sqlite((3, 31, 1))
