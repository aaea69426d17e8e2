"""The DuckDB file: connections, the dataset registry, migrations, atomic dataset replace.

Layout of one studio database file::

    main.schema_version     migrations applied
    main.datasets           registry: one row per dataset (counts, date range, cleaning report)
    ds_<name>.*             the canonical tables of dataset <name> (see ``engine.schema``)

Every dataset lives in its own schema. Engine functions take a connection and open a
``dataset_cursor(con, name)``, whose ``search_path`` points at that schema, so queries are
constants with unqualified table names and no identifier is ever built from user text.

Replacing a dataset is one DuckDB transaction: drop the old schema, build the new one, update
the registry, commit. Readers on other cursors keep seeing the old dataset until the commit;
an import that fails or is killed half-way commits nothing, so the old dataset is untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from engine.errors import DatasetNotFound, StoreError

log = logging.getLogger(__name__)

DEFAULT_DB = Path("data") / "studio.duckdb"
DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE IF NOT EXISTS main.datasets (
            name        VARCHAR PRIMARY KEY,
            source      VARCHAR NOT NULL,      -- completejourney | synthetic | files
            version     VARCHAR NOT NULL,      -- new uuid at every (re)ingest
            created_at  TIMESTAMP NOT NULL,
            customers   BIGINT NOT NULL,
            products    BIGINT NOT NULL,
            baskets     BIGINT NOT NULL,
            lines       BIGINT NOT NULL,
            first_day   DATE,
            last_day    DATE,
            weeks       INTEGER,
            cleaning    VARCHAR NOT NULL,      -- JSON: rule -> rows dropped or changed
            details     VARCHAR NOT NULL       -- JSON: source-specific facts (files, seed, ...)
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE IF NOT EXISTS main.settings (
            key    VARCHAR PRIMARY KEY,
            value  VARCHAR NOT NULL            -- JSON
        );
        INSERT OR IGNORE INTO main.settings VALUES ('min_group_size', '10');
        INSERT OR IGNORE INTO main.settings VALUES ('sensitive_attributes', '["age_band", "income_band"]');
        INSERT OR IGNORE INTO main.settings VALUES ('allow_sensitive_segments', 'false');
        """,
    ),
    (
        3,
        """
        CREATE TABLE IF NOT EXISTS main.scenarios (     -- engine.scenarios
            name        VARCHAR PRIMARY KEY,
            created_at  TIMESTAMP NOT NULL,
            updated_at  TIMESTAMP NOT NULL,
            payload     VARCHAR NOT NULL                -- JSON of engine.scenarios.Scenario
        );
        """,
    ),
]

# The pseudonym key (secrets.token_hex) never leaves the database: exports and charts show pseudonyms.
SETTING_INIT = "INSERT OR IGNORE INTO main.settings VALUES ($key, $value)"
SETTING_GET = "SELECT value FROM main.settings WHERE key = $key"
SETTING_PUT = "INSERT OR REPLACE INTO main.settings VALUES ($key, $value)"
SETTINGS = ("min_group_size", "sensitive_attributes", "allow_sensitive_segments")  # analyst-editable

REGISTRY_UPSERT = """
INSERT OR REPLACE INTO main.datasets
SELECT $name, $source, $version, now()::TIMESTAMP,
       (SELECT count(*) FROM customers), (SELECT count(*) FROM products),
       (SELECT count(*) FROM baskets), (SELECT count(*) FROM lines),
       (SELECT min(day) FROM baskets), (SELECT max(day) FROM baskets),
       (SELECT max(week) - min(week) + 1 FROM baskets),
       $cleaning, $details
"""
REGISTRY_LIST = "SELECT * FROM main.datasets ORDER BY name"
REGISTRY_ONE = "SELECT * FROM main.datasets WHERE name = $name"
REGISTRY_DELETE = "DELETE FROM main.datasets WHERE name = $name"


@dataclass(frozen=True)
class DatasetInfo:
    """One registry row."""

    name: str
    source: str
    version: str
    customers: int
    products: int
    baskets: int
    lines: int
    first_day: date | None
    last_day: date | None
    weeks: int | None
    cleaning: dict[str, int]
    details: dict

    def to_json(self) -> dict:
        return {
            "dataset": self.name,
            "source": self.source,
            "version": self.version,
            "customers": self.customers,
            "products": self.products,
            "baskets": self.baskets,
            "lines": self.lines,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "weeks": self.weeks,
            "dropped": self.cleaning,
        }


def connect(path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a studio database and apply pending migrations.

    Parameters
    ----------
    path : file path, or ``":memory:"`` for a throw-away database (tests).
    read_only : open without write access (the file must exist).
    """
    target = str(path)
    if target != ":memory:" and not read_only:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(target, read_only=read_only)
    except duckdb.Error as exc:
        raise StoreError(
            f"cannot open the studio database {target}: expected a DuckDB 2 file that no other "
            f"process holds, found: {str(exc).splitlines()[0]}"
        ) from exc
    if not read_only:
        migrate(con)
    return con


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Apply the migrations newer than the database's recorded version, in order."""
    with con.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS main.schema_version (version INTEGER NOT NULL)")
        current = cur.execute("SELECT coalesce(max(version), 0) FROM main.schema_version").fetchall()[0][0]
        for version, ddl in MIGRATIONS:
            if version > current:
                cur.execute("BEGIN TRANSACTION")
                cur.execute(ddl)
                cur.execute("INSERT INTO main.schema_version VALUES ($v)", {"v": version})
                cur.execute("COMMIT")
                log.info("migrated studio database to version %d", version)
        cur.execute(SETTING_INIT, {"key": "pseudonym_key", "value": json.dumps(secrets.token_hex(32))})


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name, else raise a one-line error."""
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise StoreError(
            f"dataset name must be 1-40 characters of lower-case letters, digits and '_', "
            f"starting with a letter; found {name!r}"
        )
    return name


def schema_of(name: str) -> str:
    """The DuckDB schema that holds dataset ``name`` (a whitelisted identifier)."""
    return "ds_" + check_dataset_name(name)


def list_datasets(con: duckdb.DuckDBPyConnection) -> list[DatasetInfo]:
    """Every dataset in the registry, by name."""
    with con.cursor() as cur:
        result = cur.execute(REGISTRY_LIST)
        columns = [d[0] for d in result.description]
        rows = result.fetchall()
    return [_info(dict(zip(columns, row, strict=True))) for row in rows]


def get_dataset(con: duckdb.DuckDBPyConnection, name: str) -> DatasetInfo:
    """The registry row of ``name``; raises ``DatasetNotFound`` naming the datasets there are."""
    check_dataset_name(name)
    with con.cursor() as cur:
        result = cur.execute(REGISTRY_ONE, {"name": name})
        columns = [d[0] for d in result.description]
        rows = result.fetchall()
    if not rows:
        known = ", ".join(d.name for d in list_datasets(con)) or "none yet"
        raise DatasetNotFound(f"no dataset named {name!r}; datasets in this database: {known}")
    return _info(dict(zip(columns, rows[0], strict=True)))


@contextmanager
def dataset_cursor(con: duckdb.DuckDBPyConnection, name: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor whose unqualified table names resolve to dataset ``name``'s tables.

    Materialize results (``.df()``, ``.fetchall()``) inside the ``with``.
    """
    get_dataset(con, name)
    with con.cursor() as cur:
        cur.execute("SET search_path = $path", {"path": f"{schema_of(name)},main"})
        yield cur


def replace_dataset(
    con: duckdb.DuckDBPyConnection,
    name: str,
    source: str,
    build: Callable[[duckdb.DuckDBPyConnection], tuple[dict[str, int], dict]],
) -> DatasetInfo:
    """Build dataset ``name`` with ``build`` and swap it in atomically.

    ``build(cur)`` runs inside one transaction on a cursor whose search path is the fresh,
    empty schema of the dataset; it creates and fills the canonical tables and returns the
    cleaning report (rule -> rows) and source details. Any exception rolls everything back:
    the previous dataset of that name, if any, is left exactly as it was.
    """
    schema = schema_of(name)
    with con.cursor() as cur:
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute("DROP SCHEMA IF EXISTS " + _quote(schema) + " CASCADE")
            cur.execute("CREATE SCHEMA " + _quote(schema))
            cur.execute("SET search_path = $path", {"path": f"{schema},main"})
            cleaning, details = build(cur)
            cur.execute(
                REGISTRY_UPSERT,
                {
                    "name": name,
                    "source": source,
                    "version": uuid.uuid4().hex,
                    "cleaning": json.dumps(cleaning),
                    "details": json.dumps(details, default=str),
                },
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    info = get_dataset(con, name)
    log.info("dataset %s replaced: %s", name, info.to_json())
    return info


def delete_dataset(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Remove dataset ``name`` and its registry row in one transaction."""
    get_dataset(con, name)
    with con.cursor() as cur:
        cur.execute("BEGIN TRANSACTION")
        cur.execute("DROP SCHEMA IF EXISTS " + _quote(schema_of(name)) + " CASCADE")
        cur.execute(REGISTRY_DELETE, {"name": name})
        cur.execute("COMMIT")


def get_setting(con: duckdb.DuckDBPyConnection, key: str):
    """A studio setting (JSON-decoded): ``min_group_size``, ``sensitive_attributes``, ..."""
    with con.cursor() as cur:
        rows = cur.execute(SETTING_GET, {"key": key}).fetchall()
    if not rows:
        raise StoreError(f"unknown setting {key!r}; expected one of {', '.join(SETTINGS)}")
    return json.loads(rows[0][0])


def set_setting(con: duckdb.DuckDBPyConnection, key: str, value) -> None:
    """Change an analyst-editable setting (the pseudonym key is not one of them)."""
    if key not in SETTINGS:
        raise StoreError(f"setting {key!r} cannot be changed; editable settings: {', '.join(SETTINGS)}")
    with con.cursor() as cur:
        cur.execute(SETTING_PUT, {"key": key, "value": json.dumps(value)})


def pseudonym_key(cur: duckdb.DuckDBPyConnection) -> str:
    """This database's secret for customer pseudonyms (bound as ``$pseudonym_key`` in SQL)."""
    return json.loads(cur.execute(SETTING_GET, {"key": "pseudonym_key"}).fetchall()[0][0])


def pseudonymize(con: duckdb.DuckDBPyConnection, raw_ids: list[str]) -> list[str]:
    """The pseudonyms ingest gives these raw customer ids in this database.

    Equal to the SQL expression ``'c' || left(sha256($pseudonym_key || ':' || id), 16)`` used by
    ``engine.cleaning`` (a keyed hash: without the key the raw id cannot be recovered or guessed).
    """
    with con.cursor() as cur:
        key = pseudonym_key(cur)
    return ["c" + hashlib.sha256(f"{key}:{raw}".encode()).hexdigest()[:16] for raw in raw_ids]


def _quote(identifier: str) -> str:
    # Only ever called with schema_of(...) output, which DATASET_NAME already whitelisted.
    assert re.fullmatch(r"ds_[a-z][a-z0-9_]*", identifier), identifier
    return '"' + identifier + '"'


def _info(row: dict) -> DatasetInfo:
    def day(value) -> date | None:
        return None if value is None or value != value else value.date() if hasattr(value, "date") else value

    weeks = row["weeks"]
    return DatasetInfo(
        name=row["name"],
        source=row["source"],
        version=row["version"],
        customers=int(row["customers"]),
        products=int(row["products"]),
        baskets=int(row["baskets"]),
        lines=int(row["lines"]),
        first_day=day(row["first_day"]),
        last_day=day(row["last_day"]),
        weeks=None if weeks is None or weeks != weeks else int(weeks),
        cleaning=json.loads(row["cleaning"]),
        details=json.loads(row["details"]),
    )
