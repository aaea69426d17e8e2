"""Another process holding the database file: a writer waits, then one line names the holder;
read-only commands share the file with readers and say clearly when a writer holds it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import kpi, store
from engine.errors import DatabaseLocked
from engine.sources import synthetic

ROOT = Path(__file__).resolve().parents[1]

HOLDER = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from engine import store
con = store.connect(sys.argv[1], read_only=sys.argv[2] == "read-only")
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def db(tmp_path) -> Path:
    """A studio database holding the sample, its KPI table built, closed again."""
    path = tmp_path / "studio.duckdb"
    con = store.connect(path)
    synthetic.ingest_sample(con, "sample")
    kpi.ensure_facts(con, "sample")
    con.close()
    return path


@pytest.fixture
def hold(tmp_path):
    """``hold(db, mode)``: a second process that opens ``db`` ("read-write" or "read-only") and keeps it."""
    script = tmp_path / "hold_studio_db.py"
    script.write_text(HOLDER)
    processes = []

    def start(path: Path, mode: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, str(script), str(path), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "holding"
        return process

    yield start
    for process in processes:
        if not process.stdin.closed:
            process.stdin.close()
        process.wait(timeout=30)


def cli(db: Path, *args: str, timeout_s: str = "1") -> subprocess.CompletedProcess:
    env = os.environ | {store.LOCK_TIMEOUT_ENV: timeout_s}
    command = [sys.executable, "-m", "engine", *args, "--db", str(db)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_writer_waits_then_names_the_process_that_holds_the_file(db, hold):
    holder = hold(db, "read-write")
    started = time.monotonic()
    with pytest.raises(DatabaseLocked) as info:
        store.connect(db, lock_timeout=1.5)
    waited = time.monotonic() - started
    message = str(info.value)
    assert 1.5 <= waited < 6
    assert info.value.pid == holder.pid
    assert f"process {holder.pid} (" in message and "hold_studio_db.py" in message
    assert message.startswith(f"cannot write the studio database {db}") and "(waited 1.5 s)" in message
    assert "\n" not in message


def test_a_writer_gets_the_file_as_soon_as_the_holder_lets_go(db, hold):
    holder = hold(db, "read-write")
    release = threading.Timer(1.0, holder.stdin.close)  # the holder exits while connect waits
    started = time.monotonic()
    release.start()
    con = store.connect(db, lock_timeout=20)
    waited = time.monotonic() - started
    release.join()
    assert 1.0 <= waited < 15
    assert [d.name for d in store.list_datasets(con)] == ["sample"]
    con.close()


def test_a_reader_is_told_that_a_writer_holds_the_file(db, hold):
    holder = hold(db, "read-write")
    with pytest.raises(DatabaseLocked) as info:
        store.connect(db, read_only=True, lock_timeout=0.5)
    message = str(info.value)
    assert message.startswith(f"cannot read the studio database {db}: process {holder.pid} (")
    assert "not even read-only" in message


def test_readers_share_the_file_and_a_writer_waits_for_them(db, hold):
    holder = hold(db, "read-only")
    reader = store.connect(db, read_only=True, lock_timeout=0.5)
    assert [d.name for d in store.list_datasets(reader)] == ["sample"]
    reader.close()
    with pytest.raises(DatabaseLocked, match=f"process {holder.pid} .* has it open read-only"):
        store.connect(db, lock_timeout=0.5)


@pytest.mark.slow
def test_cli_reports_a_held_file_in_one_line_without_a_traceback(db, hold):
    holder = hold(db, "read-write")
    for args, verb in (
        (("datasets",), "read"),
        (("kpi", "--dataset", "sample"), "read"),
        (("runs", "--dataset", "sample"), "read"),
        (("ingest", "sample"), "write"),
    ):
        result = cli(db, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(f"error: cannot {verb} the studio database {db}: process {holder.pid} (")


@pytest.mark.slow
def test_read_only_cli_commands_run_beside_another_reader(db, hold):
    hold(db, "read-only")  # a writer could not open the file now: these commands must open it read-only
    datasets = cli(db, "datasets", "--json")
    assert datasets.returncode == 0, datasets.stderr
    assert '"dataset": "sample"' in datasets.stdout
    kpis = cli(db, "kpi", "--dataset", "sample", "--json")
    assert kpis.returncode == 0, kpis.stderr
    assert '"revenue"' in kpis.stdout
    runs = cli(db, "runs", "--dataset", "sample", "--json")
    assert runs.returncode == 0, runs.stderr
    ingest = cli(db, "ingest", "sample")
    assert ingest.returncode == 1 and "has it open read-only" in ingest.stderr


def test_kpi_builds_its_table_once_as_a_writer_when_the_file_is_free(tmp_path):
    path = tmp_path / "studio.duckdb"
    con = store.connect(path)
    synthetic.ingest_sample(con, "sample")  # no KPI table yet
    con.close()
    result = cli(path, "kpi", "--dataset", "sample", "--json")
    assert result.returncode == 0, result.stderr
    assert '"revenue"' in result.stdout


def test_a_bad_lock_timeout_is_refused_in_one_line(db):
    result = cli(db, "datasets", timeout_s="soon")
    assert result.returncode == 1
    assert result.stderr == "error: STUDIO_LOCK_TIMEOUT must be a number of seconds from 0 to 3600; found 'soon'\n"
