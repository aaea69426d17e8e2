"""Saved scenarios: CRUD, concurrent saves that lose nothing, staleness, comparison."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from engine import scenarios, store
from engine.errors import DataError
from engine.scenarios import Scenario
from engine.sources import synthetic


def make(con, name: str, price: float = 5.0, dataset: str = "sample") -> Scenario:
    info = store.get_dataset(con, dataset)
    revenue, incremental = 1000.0 + price, 10.0 * price
    return Scenario(
        name=name,
        dataset=dataset,
        dataset_version=info.version,
        run_id="truth",
        items=("P0001", "P0002"),
        item_names=("a", "b"),
        prices={"All customers": price},
        regular_prices=(3.0, 4.0),
        figures={
            "revenue": revenue,
            "incremental_revenue": incremental,
            "margin": 300.0,
            "incremental_margin": 2 * price,
            "take_rate": 0.1,
            "band": {"revenue": [revenue - 5, revenue + 5]},
        },
    )


@pytest.fixture
def sample(con):
    synthetic.ingest_sample(con, "sample")
    return con


def test_crud_round_trip(sample):
    saved = scenarios.save(sample, make(sample, "Summer pasta deal"))
    assert saved.prices == {"All customers": 5.0} and saved.items == ("P0001", "P0002") and saved.created_at
    with pytest.raises(DataError, match="already exists"):
        scenarios.save(sample, make(sample, "Summer pasta deal"))
    scenarios.duplicate(sample, "Summer pasta deal", "Copy")
    scenarios.rename(sample, "Copy", "Renamed")
    assert {s.name for s in scenarios.list_all(sample)} == {"Summer pasta deal", "Renamed"}
    scenarios.delete(sample, "Renamed")
    assert [s.name for s in scenarios.list_all(sample)] == ["Summer pasta deal"]
    with pytest.raises(DataError, match="no scenario named"):
        scenarios.get(sample, "Renamed")


def test_fifty_saves_from_ten_threads_all_survive_a_restart(tmp_path):
    path = tmp_path / "studio.duckdb"
    con = store.connect(path)
    synthetic.ingest_sample(con, "sample")
    errors: list[Exception] = []

    def worker(t: int) -> None:
        try:
            for k in range(5):
                scenarios.save(con, make(con, f"thread {t} scenario {k}", price=1 + t + k / 10))  # prices > 0
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    con.close()
    reopened = store.connect(path)
    names = {s.name for s in scenarios.list_all(reopened)}
    assert names == {f"thread {t} scenario {k}" for t in range(10) for k in range(5)}
    assert scenarios.get(reopened, "thread 7 scenario 3").prices == {"All customers": 8.3}


def test_reingest_makes_a_scenario_stale_but_it_still_opens(sample):
    scenarios.save(sample, make(sample, "Before"))
    assert scenarios.staleness(sample, scenarios.get(sample, "Before")) is None
    synthetic.ingest_sample(sample, "sample")
    reason = scenarios.staleness(sample, scenarios.get(sample, "Before"))
    assert reason and "re-imported" in reason
    gone = replace(make(sample, "Gone run"), run_id="no-such-run")
    assert "no longer exists" in scenarios.staleness(sample, gone)


def test_compare_against_status_quo_and_a_scenario(sample):
    a, b = make(sample, "A", price=5.0), make(sample, "B", price=6.0)
    table = scenarios.compare([a, b]).set_index("figure")
    assert table.loc["revenue", scenarios.STATUS_QUO] == pytest.approx(1005.0 - 50.0)
    assert table.loc["revenue", "delta: B"] == pytest.approx(1006.0 - 955.0)
    assert table.loc["take_rate", scenarios.STATUS_QUO] == 0.0
    vs_a = scenarios.compare([a, b], baseline="A").set_index("figure")
    assert vs_a.loc["incremental_margin", "delta: B"] == pytest.approx(2.0)
    assert "delta: A" not in vs_a.columns
    with pytest.raises(DataError, match="1 to 4"):
        scenarios.compare([a] * 5)


@pytest.mark.parametrize("bad", ["", "   ", "x" * 81])
def test_bad_names_are_refused(sample, bad):
    with pytest.raises(DataError, match="scenario name"):
        scenarios.save(sample, make(sample, bad))


def test_concurrent_saves_overwrites_renames_and_deletes_lose_nothing_and_copy_nothing(tmp_path):
    """10 threads x 20 operations on shared names. Every operation succeeds or fails with a studio
    error; each saved scenario carries a unique token (its price), so a rename that copied instead
    of moving would leave a token twice; the rows left are the successful creations minus the
    successful deletions."""
    import random

    from engine.errors import StudioError

    con = store.connect(tmp_path / "studio.duckdb")
    synthetic.ingest_sample(con, "sample")
    names = [f"shared {k}" for k in range(4)]
    lock = threading.Lock()
    outcome = {"created": 0, "deleted": 0, "overwrites": set(), "unexpected": []}

    def worker(t: int) -> None:
        rng = random.Random(t)
        for k in range(20):
            token = 1 + t + k / 100  # a unique price per attempted save
            op, name, other = (
                rng.choice(("save", "overwrite", "rename", "delete")),
                rng.choice(names),
                rng.choice(names),
            )
            try:
                if op == "save":
                    scenarios.save(con, make(con, name, price=token))
                    with lock:
                        outcome["created"] += 1
                elif op == "overwrite":
                    scenarios.save(con, make(con, f"overwritten {t % 3}", price=token), overwrite=True)
                    with lock:
                        outcome["overwrites"].add(f"overwritten {t % 3}")
                elif op == "rename":
                    scenarios.rename(con, name, other)
                else:
                    scenarios.delete(con, name)
                    with lock:
                        outcome["deleted"] += 1
            except StudioError:
                pass  # refused (exists, gone, busy): allowed
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                outcome["unexpected"].append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcome["unexpected"] == []
    saved = scenarios.list_all(con)
    shared = [s for s in saved if s.name.startswith("shared")]
    tokens = [s.prices["All customers"] for s in shared]
    assert len(tokens) == len(set(tokens)), "a rename left a copy behind"
    assert len(shared) == outcome["created"] - outcome["deleted"]
    assert {s.name for s in saved if s.name.startswith("overwritten")} == outcome["overwrites"]
    con.close()
