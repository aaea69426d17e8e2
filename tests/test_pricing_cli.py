"""``whatif`` and ``optimize`` from the command line: JSON keys, values equal the engine's, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import store
from engine.pricing.whatif import project_bundle
from engine.sources import synthetic

ROOT = Path(__file__).resolve().parents[1]
WHATIF_KEYS = {
    "take_rate",
    "bundle_units",
    "revenue",
    "margin",
    "incremental_revenue",
    "incremental_margin",
    "cannibalized_revenue",
    "consumer_surplus_change",
    "share_better_off",
    "customers",
    "band",
}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "studio.duckdb"
    con = store.connect(path)
    synthetic.ingest_sample(con, "sample")
    store.set_setting(con, "allow_sensitive_segments", True)  # these tests price by income on purpose
    con.close()
    return path


def engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_whatif_json(db):
    done = engine(
        "whatif",
        "--dataset",
        "sample",
        "--items",
        "P0001,P0028",
        "--price",
        "5.25",
        "--weeks",
        "6",
        "--db",
        str(db),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert WHATIF_KEYS <= set(out)
    assert set(WHATIF_KEYS - {"customers", "band"}) <= set(out["band"])
    for key in WHATIF_KEYS - {"customers", "band"}:
        assert out["band"][key]["low"] <= out[key] <= out["band"][key]["high"]
    con = store.connect(db)
    expected = project_bundle(con, "sample", ["P0001", "P0028"], 5.25, weeks=6)
    con.close()
    assert out["margin"] == pytest.approx(expected.total.figures["margin"].value)
    assert out["customers"] == 500


def test_optimize_json_per_segment(db):
    done = engine(
        "optimize",
        "--dataset",
        "sample",
        "--items",
        "P0017,P0043",
        "--segment",
        "income_band",
        "--objective",
        "revenue",
        "--max-discount-pct",
        "40",
        "--price-ending",
        ".99,.49",
        "--db",
        str(db),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert WHATIF_KEYS <= set(out) and {"price", "binding_constraints", "strategies", "recommendation"} <= set(out)
    assert set(out["price"]) == {"100K+", "25-49K", "50-99K", "Under 25K", "Unknown"}
    assert [s["strategy"] for s in out["strategies"]][0] == "No bundle"
    assert out["strategies"][-1]["deployable"] is False
    assert out["guardrails"]["price_endings"] == [".99", ".49"]


def test_unknown_item_is_one_line_with_close_matches(db):
    done = engine("whatif", "--dataset", "sample", "--items", "P0001,P002", "--price", "5", "--db", str(db), "--json")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: unknown item id") and "P0020 (Category" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("whatif", "--price", "inf"),
        ("whatif", "--price", "nan"),
        ("whatif", "--price", "-inf"),
        ("whatif", "--price", "1e6"),  # above 10 x the sum of the parts
        ("whatif", "--price", "5", "--weeks", "1e300"),
        ("whatif", "--price", "5", "--weeks", "inf"),
        ("whatif", "--price", "5", "--weeks", "nan"),
        ("optimize", "--welfare-weight", "-1"),
        ("optimize", "--welfare-weight", "nan"),
        ("optimize", "--weeks", "1e300"),
        ("optimize", "--stock-limit", "inf"),
        ("optimize", "--max-discount-pct", "inf"),
    ],
)
def test_non_finite_or_out_of_range_input_is_one_line(db, args):
    done = engine(args[0], "--dataset", "sample", "--items", "P0001,P0028", *args[1:], "--db", str(db), "--json")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "found" in done.stderr
    assert "Traceback" not in done.stderr
