"""``bench``: performance figures (see ``engine.bench``)."""

from __future__ import annotations

from engine.cli import JsonOption, app, emit


@app.command("bench")
def bench(as_json: JsonOption = False) -> None:
    """Measure ingest, query, training and pricing speed on this machine (medians)."""
    from engine.bench import run_all  # deferred: imports torch

    emit(run_all(), as_json)
