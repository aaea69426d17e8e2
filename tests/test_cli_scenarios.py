"""Scenario, export and report commands through the real CLI (one process per command)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest

from engine import scenarios, store
from engine.sources import synthetic
from tests.test_scenarios import make

ROOT = Path(__file__).resolve().parents[1]


def cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args, "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "studio.duckdb"
    con = store.connect(path)
    synthetic.ingest_sample(con, "sample")
    con.close()
    return path


@pytest.mark.slow
def test_save_list_compare_export_report_delete(db, tmp_path):
    saved = cli(
        db,
        "scenario",
        "save",
        "--dataset",
        "sample",
        "--name",
        "Pasta deal",
        "--items",
        "P0032,P0047",
        "--price",
        "4.2",
        "--notes",
        "first try",
        "--json",
    )
    assert saved.returncode == 0, saved.stderr
    scenario = json.loads(saved.stdout)
    assert (
        scenario["prices"] == {"All customers": 4.2} and scenario["notes"] == "first try" and scenario["stale"] is None
    )
    assert 0 < scenario["figures"]["take_rate"] < 1
    best = json.loads(
        cli(
            db, "scenario", "save", "--dataset", "sample", "--name", "Pasta best", "--items", "P0032,P0047", "--json"
        ).stdout
    )
    assert best["guardrails"]["recommendation"]
    names = [s["name"] for s in json.loads(cli(db, "scenario", "list", "--json").stdout)["scenarios"]]
    assert set(names) == {"Pasta deal", "Pasta best"}
    rows = json.loads(cli(db, "scenario", "compare", "--names", "Pasta deal,Pasta best", "--json").stdout)["rows"]
    take = next(r for r in rows if r["figure"] == "take_rate")
    assert take["delta: Pasta deal"] == pytest.approx(scenario["figures"]["take_rate"])
    xlsx = tmp_path / "prices.xlsx"
    assert (
        cli(db, "export", "pricelist", "--scenario", "Pasta deal", "--format", "xlsx", "--out", str(xlsx)).returncode
        == 0
    )
    sheet = list(openpyxl.load_workbook(xlsx).active.values)
    assert sheet[1][5] == 4.2  # bundle_price
    html = tmp_path / "report.html"
    assert cli(db, "report", "--scenario", "Pasta best", "--out", str(html)).returncode == 0
    assert "Pasta best" in html.read_text()
    assert cli(db, "scenario", "delete", "--name", "Pasta deal").returncode == 0
    gone = cli(db, "scenario", "show", "--name", "Pasta deal", "--json")
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1 and "Traceback" not in gone.stderr


def test_sensitive_segment_refused_on_the_cli(db):
    result = cli(
        db,
        "scenario",
        "save",
        "--dataset",
        "sample",
        "--name",
        "By income",
        "--items",
        "P0032,P0047",
        "--segment",
        "income_band",
        "--json",
    )
    assert result.returncode == 1 and "sensitive attribute" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args", [("--price", "inf"), ("--price", "nan"), ("--price", "5", "--weeks", "1e300"), ("--weeks", "-1")]
)
def test_out_of_bounds_scenario_is_one_line_and_nothing_is_saved(db, args):
    result = cli(
        db,
        "scenario",
        "save",
        "--dataset",
        "sample",
        "--name",
        "Out of bounds",
        "--items",
        "P0032,P0047",
        *args,
        "--json",
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "found" in result.stderr
    listed = json.loads(cli(db, "scenario", "list", "--json").stdout)["scenarios"]
    assert "Out of bounds" not in {s["name"] for s in listed}


def test_json_output_never_holds_nan_or_infinity(db):
    """A stored figure that is undefined (NaN) or infinite is written as null: strict parsers accept the output."""
    con = store.connect(db)
    base = make(con, "Undefined figures")
    scenarios.save(con, replace(base, figures=base.figures | {"take_rate": float("nan"), "margin": float("inf")}))
    con.close()

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    shown = cli(db, "scenario", "show", "--name", "Undefined figures", "--json")
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout, parse_constant=refuse)
    assert out["figures"]["take_rate"] is None and out["figures"]["margin"] is None
    assert out["figures"]["revenue"] == base.figures["revenue"]
    listed = cli(db, "scenario", "list", "--json")
    assert json.loads(listed.stdout, parse_constant=refuse)["scenarios"]
    text = cli(db, "scenario", "show", "--name", "Undefined figures").stdout  # the key: value form
    assert "NaN" not in text and "Infinity" not in text and "null" in text
