"""The store: registry, dataset cursors, atomic replace, migrations."""

from __future__ import annotations

import pytest

from engine import store
from engine.errors import DatasetNotFound, StoreError
from engine.sources import synthetic


def test_migrations_are_recorded_once(tmp_path):
    path = tmp_path / "s.duckdb"
    store.connect(path).close()
    con = store.connect(path)  # second open must not re-apply
    versions = con.execute("SELECT version FROM main.schema_version ORDER BY version").fetchall()
    assert versions == [(v,) for v, _ in store.MIGRATIONS]


@pytest.mark.parametrize("name", ["", "Upper", "1abc", "a-b", "a b", "x" * 41, "a;drop", 'a"b'])
def test_bad_dataset_names_are_refused_in_one_line(name):
    with pytest.raises(StoreError) as info:
        store.check_dataset_name(name)
    assert "\n" not in str(info.value) and repr(name) in str(info.value)


def test_unknown_dataset_names_the_ones_there_are(con):
    synthetic.ingest_sample(con, "sample")
    with pytest.raises(DatasetNotFound, match="sample"):
        store.get_dataset(con, "nope")


def test_failed_build_leaves_previous_dataset_untouched(con):
    before = synthetic.ingest_sample(con, "sample")

    def broken_build(cur):
        cur.execute("CREATE TABLE lines (x INTEGER)")
        raise RuntimeError("boom half-way")

    with pytest.raises(RuntimeError):
        store.replace_dataset(con, "sample", "synthetic", broken_build)
    after = store.get_dataset(con, "sample")
    assert after == before
    with store.dataset_cursor(con, "sample") as cur:
        assert cur.execute("SELECT count(*) FROM lines").fetchall()[0][0] == before.lines


def test_readers_see_old_data_until_commit(con):
    """A cursor reading during a replace sees the complete old dataset, never a half-built one."""
    before = synthetic.ingest_sample(con, "sample")
    seen = []

    def build(cur):
        cur.execute("CREATE TABLE lines (x INTEGER)")
        with store.dataset_cursor(con, "sample") as reader:
            seen.append(reader.execute("SELECT count(*) FROM lines").fetchall()[0][0])
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        store.replace_dataset(con, "sample", "synthetic", build)
    assert seen == [before.lines]


def test_datasets_live_side_by_side(con):
    a = synthetic.ingest_sample(con, "a")
    b = synthetic.ingest(con, "b", seed=3, customers=40, products=12, weeks=6)
    assert [d.name for d in store.list_datasets(con)] == ["a", "b"]
    with store.dataset_cursor(con, "b") as cur:
        assert cur.execute("SELECT count(*) FROM baskets").fetchall()[0][0] == b.baskets
    with store.dataset_cursor(con, "a") as cur:
        assert cur.execute("SELECT count(*) FROM baskets").fetchall()[0][0] == a.baskets
    store.delete_dataset(con, "b")
    assert [d.name for d in store.list_datasets(con)] == ["a"]


def test_pseudonyms_are_keyed_per_database(tmp_path):
    """The same raw id gets different pseudonyms in two databases; SQL and Python agree."""
    one, two = store.connect(tmp_path / "one.duckdb"), store.connect(tmp_path / "two.duckdb")
    for con in (one, two):
        synthetic.ingest_sample(con, "sample")
    raw = list(synthetic.read().customers.customer_id[:5])
    a, b = store.pseudonymize(one, raw), store.pseudonymize(two, raw)
    assert a != b and len(set(a)) == 5
    with store.dataset_cursor(one, "sample") as cur:
        stored = {r[0] for r in cur.execute("SELECT customer_id FROM customers").fetchall()}
    assert set(a) <= stored and not set(raw) & stored


def test_settings_round_trip_and_key_is_not_editable(con):
    assert store.get_setting(con, "min_group_size") == 10
    store.set_setting(con, "min_group_size", 25)
    assert store.get_setting(con, "min_group_size") == 25
    with pytest.raises(StoreError, match="cannot be changed"):
        store.set_setting(con, "pseudonym_key", "guess")
