"""Command-line interface: every capability of the dashboard as a scriptable command.

``python -m engine COMMAND --db PATH ... --json`` prints one JSON object on stdout; an error
prints one line on stderr and exits with status 1 (2 for a usage error).

Typer (Click underneath) is used for argument parsing, help and usage errors: it is well kept
and turns type hints into options, so each command reads as a plain function.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from engine import store, strict_json
from engine.errors import StudioError

app = typer.Typer(
    name="engine",
    help="Bundle pricing studio: ingest data, train the choice model, price bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbOption = Annotated[Path, typer.Option("--db", help="Studio database file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DatasetOption = Annotated[str, typer.Option("--dataset", help="Dataset name.")]


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print a command's result: one JSON object with ``--json``, else aligned key: value lines."""
    if as_json:
        sys.stdout.write(strict_json.dumps(result, default=_jsonable) + "\n")  # NaN, Infinity -> null
        return
    for key, value in strict_json.finite(result).items():
        if isinstance(value, (list, dict)):
            value = strict_json.dumps(value, default=_jsonable)
        typer.echo(f"{key:>24}: {value}")


def open_store(db: Path, *, read_only: bool = False):
    """The studio database for a command (created on first use).

    ``read_only``: the command only reads, so once the file exists it opens it read-only and can
    run beside other readers. A file held by another process is waited for, then reported in one
    line naming that process (``engine.errors.DatabaseLocked``).
    """
    return store.connect(db, read_only=read_only and db.exists())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _register_commands() -> None:
    # Each area adds its commands to ``app`` in its own module.
    from engine.cli import bench, bundles, data, files, kpi, model, pricing, scenarios, segments  # noqa: F401


def main() -> None:
    """Entry point: run the app; turn every engine error into one line on stderr."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    _register_commands()
    try:
        app(standalone_mode=False)
    except StudioError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("error: interrupted\n")
        raise SystemExit(130) from None
    except typer.TyperException as exc:  # usage errors (Typer's vendored Click exceptions)
        message = " ".join(exc.format_message().split())
        if message:  # empty for "no arguments: help was shown"
            sys.stderr.write(f"error: {message}\n")
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    except Exception as exc:  # anything unexpected: still one line, details at debug level
        logging.getLogger("engine").debug("unexpected error", exc_info=True)
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {' '.join(str(exc).split())}\n")
        raise SystemExit(1) from None
