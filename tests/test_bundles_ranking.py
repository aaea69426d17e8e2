"""Ranking of bundle candidates: the synthetic truth, model complementarity, margin, filters, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from engine import store
from engine.bundles import BundleQuery, candidates_frame, find_bundles, margin, pair_matrix
from engine.errors import ModelError
from engine.schema import MODEL_DDL
from engine.sources import synthetic

ROOT = Path(__file__).resolve().parents[1]
ALL = {"top": 10**6, "margin_pool": 0}  # every candidate; the pricing optimizer is exercised in its own tests


@pytest.fixture(scope="module")
def sample_con(tmp_path_factory):
    connection = store.connect(tmp_path_factory.mktemp("ranking") / "studio.duckdb")
    synthetic.ingest_sample(connection, "sample")
    yield connection
    connection.close()


def true_pairs(sign: int) -> set[frozenset[str]]:
    pairs = synthetic.read().truth_pairs
    return {frozenset((r.item_a, r.item_b)) for r in pairs.itertuples() if np.sign(r.coupling) == sign}


def ranks_of(result, pairs: set[frozenset[str]]) -> list[int]:
    return [rank for rank, c in enumerate(result.candidates) if frozenset(c.items) in pairs]


def test_lift_puts_true_complements_near_the_top(sample_con):
    result = find_bundles(sample_con, "sample", BundleQuery(rank_by="lift", **ALL))
    complements, substitutes = true_pairs(+1), true_pairs(-1)
    ranks = ranks_of(result, complements)
    assert len(ranks) == len(complements) == 12  # every true complement pair passes the minimum support
    assert max(ranks) < 0.05 * len(result.candidates)
    assert sum(rank < 5 for rank in ranks) >= 3
    assert np.median(ranks_of(result, substitutes)) > 0.75 * len(result.candidates)


def test_truth_complementarity_ranks_true_complements_first(sample_con):
    result = find_bundles(sample_con, "sample", BundleQuery(**ALL))  # default ranking, no margins: the model
    assert result.ranked_by == "complementarity" and result.complementarity_run == "truth"
    complements = true_pairs(+1)
    assert {frozenset(c.items) for c in result.candidates[: len(complements)]} == complements
    truth = synthetic.read().truth_pairs
    coupling = {frozenset((r.item_a, r.item_b)): r.coupling for r in truth.itertuples()}
    for c in result.candidates:  # the truth run has rho = 0: c_ij is the explicit pair coupling
        assert c.complementarity == pytest.approx(coupling.get(frozenset(c.items), 0.0))
    negatives = [c for c in result.candidates if c.complementarity < 0]
    assert negatives and result.candidates[-len(negatives) :] == tuple(negatives)


def test_triples_hold_true_complement_pairs_and_sum_their_couplings(sample_con):
    result = find_bundles(sample_con, "sample", BundleQuery(size=3, top=5))
    truth = synthetic.read().truth_pairs
    coupling = {frozenset((r.item_a, r.item_b)): r.coupling for r in truth.itertuples()}
    for c in result.candidates:
        pairs = [frozenset(p) for p in ((c.items[0], c.items[1]), (c.items[0], c.items[2]), (c.items[1], c.items[2]))]
        assert c.complementarity == pytest.approx(sum(coupling.get(p, 0.0) for p in pairs))
        assert sum(p in true_pairs(+1) for p in pairs) >= 2


def insert_run(con, dataset: str, run_id: str, level: str, created_at: str, items: list[str], dim: int, seed: int):
    """A trained run with random item vectors and one explicit pair; returns (alpha, rho, pair)."""
    rng = np.random.default_rng(seed)
    alpha, rho = rng.normal(size=(len(items), dim)), rng.normal(size=(len(items), dim))
    frame = pd.DataFrame({"item_id": items, "alpha": list(alpha), "rho": list(rho)})
    with store.dataset_cursor(con, dataset) as cur:
        cur.execute(MODEL_DDL)
        cur.execute(
            "INSERT INTO model_runs VALUES ($run, 'trained', $level, $at::TIMESTAMP, 'cpu', 1.0, '{}', '{}')",
            {"run": run_id, "level": level, "at": created_at},
        )
        cur.register("run_items", frame)
        cur.execute(
            "INSERT INTO model_items SELECT $run, item_id, item_id, 'D', 'C', 0.0,"
            " alpha::FLOAT[], rho::FLOAT[], 0.0, 1.0, 0.5 FROM run_items",
            {"run": run_id},
        )
        cur.execute(
            "INSERT INTO model_pairs VALUES ($run, $a, $b, 0.75)",  # stored as (b, a): orientation-free
            {"run": run_id, "a": items[1], "b": items[0]},
        )
    return alpha.astype(np.float32).astype(float), rho.astype(np.float32).astype(float), (items[0], items[1])


def test_complementarity_follows_the_equation_of_the_latest_trained_run(con):
    synthetic.ingest_sample(con, "sample")
    items = [f"P{i:04d}" for i in range(1, 49)]
    insert_run(con, "sample", "old", "product", "2024-01-01", items, 4, seed=1)
    alpha, rho, pair = insert_run(con, "sample", "new", "product", "2025-01-01", items, 4, seed=2)
    result = find_bundles(con, "sample", BundleQuery(rank_by="complementarity", **ALL))
    assert result.complementarity_run == "new"
    row = {item: i for i, item in enumerate(items)}
    for c in result.candidates:
        i, j = row[c.items[0]], row[c.items[1]]
        expected = rho[i] @ alpha[j] + rho[j] @ alpha[i] + (0.75 if frozenset(c.items) == frozenset(pair) else 0.0)
        assert c.complementarity == pytest.approx(expected, rel=1e-5)
    values = [c.complementarity for c in result.candidates]
    assert values == sorted(values, reverse=True)
    # At category level neither run applies: no complementarity, co-purchase ranking.
    categories = find_bundles(con, "sample", BundleQuery(level="category"))
    assert categories.complementarity_run is None and categories.ranked_by == "score"
    assert all(c.complementarity is None for c in categories.candidates)


def test_without_any_model_the_ranking_is_the_copurchase_score(con):
    synthetic.ingest_sample(con, "plain")
    with store.dataset_cursor(con, "plain") as cur:
        cur.execute(
            "DROP TABLE model_pairs; DROP TABLE model_habits; DROP TABLE model_customers;"
            " DROP TABLE model_items; DROP TABLE model_runs"
        )
    result = find_bundles(con, "plain", BundleQuery(rank_by="margin", top=10**6, margin_pool=5))
    assert result.complementarity_run is None and result.ranked_by == "score"
    assert all(c.expected_incremental_margin is None for c in result.candidates)  # no model: nothing to price
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(c.score == pytest.approx(c.lift * math.log1p(c.together_baskets)) for c in result.candidates)


def test_default_ranking_uses_incremental_margin_when_the_optimizer_answers(con, monkeypatch):
    """The optimizer is stubbed with margins known in advance (so the expected order is known);
    DuckDB is real."""
    synthetic.ingest_sample(con, "sample")
    unit_cost = synthetic.read().products.set_index("product_id").unit_cost
    calls = []

    def optimize_price(con_, dataset, items, compare=True):
        calls.append(tuple(items))
        if "P0001" in items:
            raise ModelError("P0001 is outside the model's catalog")
        return SimpleNamespace(incremental_margin=float(unit_cost[list(items)].sum()))

    monkeypatch.setattr(margin, "optimize_price", optimize_price)
    query = BundleQuery(top=10, margin_pool=30)
    result = find_bundles(con, "sample", query)
    by_model = find_bundles(con, "sample", BundleQuery(rank_by="complementarity", top=30))
    assert result.ranked_by == "margin"
    assert {frozenset(c.items) for c in result.candidates} <= {frozenset(c.items) for c in by_model.candidates}
    margins = [c.expected_incremental_margin for c in result.candidates]
    known = [m for m in margins if m is not None]
    assert known == sorted(known, reverse=True) and margins[: len(known)] == known
    for c in result.candidates:
        expected = None if "P0001" in c.items else pytest.approx(unit_cost[list(c.items)].sum())
        assert c.expected_incremental_margin == expected
    assert len(calls) == len(set(calls)) == 30  # each pool candidate priced once, then cached


def test_department_category_and_search_keep_bundles_with_a_matching_item(sample_con):
    everything = find_bundles(sample_con, "sample", BundleQuery(**ALL)).candidates
    for field, value in (("department", "DAIRY"), ("category", "Category 08"), ("search", "ITEM 47")):
        result = find_bundles(sample_con, "sample", BundleQuery(**{field: value}, **ALL))
        names = [" ".join(c.names) for c in everything]
        if field == "search":
            expected = [c for c, n in zip(everything, names, strict=True) if "item 47" in n.lower()]
        elif field == "department":
            expected = [c for c in everything if value in c.departments]
        else:
            expected = [c for c in everything if any(n.startswith(value + " ") for n in c.names)]
        assert 0 < len(result.candidates) < len(everything)
        assert [c.items for c in result.candidates] == [c.items for c in expected]


def test_heatmap_matrix_is_symmetric_and_equals_candidate_lifts(sample_con):
    result = find_bundles(sample_con, "sample", BundleQuery(top=8))
    matrix = pair_matrix(sample_con, result, "lift")
    values = np.array(matrix.values)
    assert 2 < len(matrix.items) <= 12 and values.shape == (len(matrix.items),) * 2
    assert np.all(np.isnan(np.diag(values)))
    assert np.allclose(values, values.T, equal_nan=True)
    position = {item: i for i, item in enumerate(matrix.items)}
    for c in result.candidates:
        a, b = position.get(c.items[0]), position.get(c.items[1])
        if a is not None and b is not None:
            assert values[a, b] == pytest.approx(c.lift)
    assert all(len(label) <= 28 + 10 for label in matrix.labels)
    frame = candidates_frame(result)
    assert list(frame["rank"]) == list(range(1, len(result.candidates) + 1))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cli_prints_the_contract_keys(tmp_path):
    db = tmp_path / "cli.duckdb"
    assert run_cli("ingest", "sample", "--db", str(db)).returncode == 0
    done = run_cli(
        "bundles",
        "--db",
        str(db),
        "--dataset",
        "sample",
        "--size",
        "3",
        "--top",
        "4",
        "--min-support",
        "0.005",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    bundles = json.loads(done.stdout)["bundles"]
    assert len(bundles) == 4
    keys = {
        "items",
        "names",
        "support",
        "confidence",
        "confidence_ab",
        "confidence_ba",
        "lift",
        "complementarity",
        "expected_incremental_margin",
        "shared_customers",
        "together_baskets",
    }
    for bundle in bundles:
        assert keys <= set(bundle) and len(bundle["items"]) == len(bundle["confidence"]) == 3
        assert bundle["support"] >= 0.005 and bundle["complementarity"] is not None
    bad = run_cli("bundles", "--db", str(db), "--dataset", "sample", "--level", "brand", "--json")
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
    missing = run_cli("bundles", "--db", str(db), "--dataset", "nope", "--json")
    assert missing.returncode == 1 and "sample" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_across_categories_leaves_out_multi_buys_of_one_category(sample_con):
    products = synthetic.read().products.set_index("product_id").category
    for size in (2, 3):
        query = BundleQuery(size=size, seed_pairs=10**6, min_support=0.01, **ALL)
        everything = find_bundles(sample_con, "sample", query).candidates
        across = find_bundles(sample_con, "sample", replace(query, across_categories=True)).candidates
        expected = [c.items for c in everything if len({products[i] for i in c.items}) == size]
        assert 0 < len(expected) < len(everything)
        assert [c.items for c in across] == expected


def test_equal_margins_keep_the_model_order(con, monkeypatch):
    """When no discount pays, the optimizer's margin is 0 for every bundle: complementarity decides."""
    synthetic.ingest_sample(con, "sample")
    monkeypatch.setattr(
        margin, "optimize_price", lambda con_, dataset, items, compare=True: SimpleNamespace(incremental_margin=0.0)
    )
    by_margin = find_bundles(con, "sample", BundleQuery(top=15))
    by_model = find_bundles(con, "sample", BundleQuery(rank_by="complementarity", top=15))
    assert by_margin.ranked_by == "margin"
    assert all(c.expected_incremental_margin == 0.0 for c in by_margin.candidates)
    assert [c.items for c in by_margin.candidates] == [c.items for c in by_model.candidates]
