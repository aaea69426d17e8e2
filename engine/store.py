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

Privacy and integrity of the file (see README, "Privacy and security")::

    <db>            the database, mode 0600 (its WAL too: the process umask becomes 077)
    <db>.key        the pseudonymization key, mode 0600; $STUDIO_PSEUDONYM_KEY wins when set
    <db>.tmp/       DuckDB's spill folder under $STUDIO_MEMORY_LIMIT, mode 0700
    runs/           model run folders (engine.model.runs), mode 0700

With $STUDIO_DB_ENCRYPTION_KEY set the file is encrypted with DuckDB's built-in encryption.
A writer waits up to ``lock_timeout`` seconds for another process to release the file, then
raises ``DatabaseLocked`` naming that process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import cast

import duckdb

from engine.errors import DatabaseLocked, DatasetNotFound, StoreError

log = logging.getLogger(__name__)

DEFAULT_DB = Path("data") / "studio.duckdb"
DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

LOCK_TIMEOUT_S = 10.0  # a writer waits this long for another process to release the file
LOCK_POLL_S = 0.25
LOCK_TIMEOUT_ENV = "STUDIO_LOCK_TIMEOUT"
# DuckDB's default (80% of RAM) lets one import take ~19 GB of a 24 GB, 2-core machine and fail
# under a 4 GB process cap; 2 GB leaves room for the app, training and the OS, and DuckDB spills
# what does not fit to <db>.tmp (a 10-million-line import: see README, "Privacy and security").
DEFAULT_MEMORY_LIMIT = "2GB"
MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB|%)$", re.IGNORECASE)
MEMORY_LIMIT_ENV = "STUDIO_MEMORY_LIMIT"
PSEUDONYM_KEY_ENV = "STUDIO_PSEUDONYM_KEY"
ENCRYPTION_KEY_ENV = "STUDIO_DB_ENCRYPTION_KEY"
ALLOW_MBEDTLS_ENV = "STUDIO_DB_ENCRYPTION_ALLOW_MBEDTLS"
RUNS_FOLDER = "runs"  # engine.model.runs.runs_root: the run folders, beside the database
# DuckDB's lock error: 'Conflicting lock is held in /usr/bin/python3.11 (PID 4242). ...'
LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")
_MEMORY_KEY = secrets.token_hex(32)  # pseudonym key of in-memory databases (nothing at rest)

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

DATABASE_PATH = "SELECT any_value(path) FROM duckdb_databases() WHERE database_name = current_database()"
DATABASE_ENCRYPTED = """
SELECT coalesce(any_value(encrypted), false) FROM duckdb_databases() WHERE database_name = current_database()
"""
# An encrypted file is attached as "studio" and made the default database (see _EncryptedConnection).
ATTACH_ENCRYPTED = "ATTACH $path AS studio (ENCRYPTION_KEY $key)"
ATTACH_ENCRYPTED_READ_ONLY = "ATTACH $path AS studio (ENCRYPTION_KEY $key, READ_ONLY)"
USE_STUDIO = "USE studio"
ATTACH_PLAIN_READ_ONLY = "ATTACH $path AS studio_plain (READ_ONLY)"
ATTACH_ENCRYPTED_COPY = "ATTACH $path AS studio_copy (ENCRYPTION_KEY $key)"
ATTACH_PLAIN_COPY = "ATTACH $path AS studio_copy"
# Migrating the key out of an older file: the key row goes, a marker says the file still has to be
# rewritten (deleted rows stay readable in its free blocks), the rewritten copy drops the marker.
LEGACY_KEY_ROWS = "SELECT key FROM main.settings WHERE key IN ('pseudonym_key', 'pseudonym_key_scrub')"
LEGACY_KEY_DELETE = "DELETE FROM main.settings WHERE key = 'pseudonym_key'"
SCRUB_MARK = "INSERT OR REPLACE INTO main.settings VALUES ('pseudonym_key_scrub', 'true')"
SCRUB_UNMARK = "DELETE FROM studio_copy.main.settings WHERE key = 'pseudonym_key_scrub'"


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


def connect(
    path: str | Path = DEFAULT_DB, *, read_only: bool = False, lock_timeout: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a studio database and apply pending migrations.

    Parameters
    ----------
    path : file path, or ``":memory:"`` for a throw-away database (tests).
    read_only : open without write access (the file must exist). Several read-only processes
        can share the file; none can open it while another process holds it read-write.
    lock_timeout : seconds to wait for another process to release the file before raising
        ``DatabaseLocked``, whose one-line message names that process; None: $STUDIO_LOCK_TIMEOUT,
        else ``LOCK_TIMEOUT_S``.

    The file gets DuckDB's ``memory_limit`` ($STUDIO_MEMORY_LIMIT, default ``DEFAULT_MEMORY_LIMIT``)
    and a spill folder ``<db>.tmp``; with $STUDIO_DB_ENCRYPTION_KEY it is opened (or created)
    encrypted. A read-only open of a database that needs a migration migrates it first.
    """
    if str(path) == ":memory:":
        con = duckdb.connect(":memory:", config={"memory_limit": memory_limit()})
        migrate(con)
        return con
    db = Path(path).absolute()
    lock_timeout = _lock_timeout(lock_timeout)
    if read_only:
        if not db.exists():
            raise StoreError(f"cannot open the studio database {db} read-only: expected a file, found none")
        con = _open_file(db, read_only=True, lock_timeout=lock_timeout)
        if not _needs_writer(con):
            return con
        con.close()  # an older file: one writer migrates it, then read as asked
        connect(db, lock_timeout=lock_timeout).close()
        return _open_file(db, read_only=True, lock_timeout=lock_timeout)
    _restrict_umask()
    if not db.parent.exists():
        db.parent.mkdir(mode=0o700, parents=True)
    con = _open_file(db, read_only=False, lock_timeout=lock_timeout)
    for owned in (db, _sidecar(db, ".wal")):
        _owner_only(owned, 0o600)
    _owner_only(db.resolve().parent / RUNS_FOLDER, 0o700, create=True)
    migrate(con)
    if _move_legacy_key(con, db):  # the file was rewritten without the key: open the new one
        con = _open_file(db, read_only=False, lock_timeout=lock_timeout)
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


def is_encrypted(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this database file is encrypted at rest (False for ``":memory:"``)."""
    with con.cursor() as cur:
        return bool(cur.execute(DATABASE_ENCRYPTED).fetchall()[0][0])


def memory_limit() -> str:
    """DuckDB's memory limit for studio connections: $STUDIO_MEMORY_LIMIT or ``DEFAULT_MEMORY_LIMIT``."""
    value = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    if not MEMORY_SIZE.match(value):
        raise StoreError(f"{MEMORY_LIMIT_ENV} must be a size such as 4GB, 512MB or 25%; found {value!r}")
    return value


def encrypt_copy(source: str | Path, target: str | Path) -> None:
    """Write an encrypted copy of the plain studio database ``source`` to the new file ``target``.

    The key is $STUDIO_DB_ENCRYPTION_KEY; the pseudonymization key file is copied beside
    ``target`` so pseudonyms stay the same. Open ``target`` with the same variable set.
    """
    key = os.environ.get(ENCRYPTION_KEY_ENV)
    source, target = Path(source).absolute(), Path(target).absolute()
    if not key:
        raise StoreError(f"encrypt_copy needs the key in ${ENCRYPTION_KEY_ENV}; found it unset")
    if target.exists() or not source.exists():
        raise StoreError(f"encrypt_copy expects an existing {source} and no {target}; found otherwise")
    _restrict_umask()
    with duckdb.connect(":memory:") as con:
        _enable_encrypted_writes(con)
        try:
            con.execute(ATTACH_PLAIN_READ_ONLY, {"path": str(source)})
            con.execute(ATTACH_ENCRYPTED_COPY, {"path": str(target), "key": key})
            con.execute("COPY FROM DATABASE studio_plain TO studio_copy")
        except duckdb.Error as exc:
            raise StoreError(f"cannot encrypt {source} into {target}: {str(exc).splitlines()[0]}") from exc
    if key_path(source).exists() and not key_path(target).exists():
        _write_key_file(key_path(target), _read_key_file(key_path(source)))


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


def key_path(db: str | Path) -> Path:
    """The pseudonymization key file of the database at ``db``: ``<db>.key``."""
    return _sidecar(Path(db).absolute(), ".key")


def pseudonym_key(cur: duckdb.DuckDBPyConnection) -> str:
    """This database's secret for customer pseudonyms (bound as ``$pseudonym_key`` in SQL).

    $STUDIO_PSEUDONYM_KEY when set; else the key file beside the database, created (mode 0600)
    on first use. The database file itself never holds it: with the file alone, pseudonyms
    cannot be linked back to customer ids.
    """
    from_env = os.environ.get(PSEUDONYM_KEY_ENV)
    if from_env is not None:
        if len(from_env) < 32:
            raise StoreError(f"{PSEUDONYM_KEY_ENV} must hold at least 32 characters; found {len(from_env)}")
        return from_env
    path = cur.execute(DATABASE_PATH).fetchall()[0][0]
    if path is None:  # an in-memory database: nothing at rest, a key for this process
        return _MEMORY_KEY
    keyfile = key_path(path)
    if not keyfile.exists():
        _write_key_file(keyfile, secrets.token_hex(32))
    return _read_key_file(keyfile)


def pseudonymize(con: duckdb.DuckDBPyConnection, raw_ids: list[str]) -> list[str]:
    """The pseudonyms ingest gives these raw customer ids in this database.

    Equal to the SQL expression ``'c' || left(sha256($pseudonym_key || ':' || id), 16)`` used by
    ``engine.cleaning`` (a keyed hash: without the key the raw id cannot be recovered or guessed).
    """
    with con.cursor() as cur:
        key = pseudonym_key(cur)
    return ["c" + hashlib.sha256(f"{key}:{raw}".encode()).hexdigest()[:16] for raw in raw_ids]


class _EncryptedConnection:
    """A connection whose default database is the attached, encrypted studio file.

    DuckDB's Python API opens an encrypted file only through ATTACH, and a cursor does not
    inherit ``USE``: every cursor of this connection is switched to the studio database first.
    Everything else is the wrapped ``DuckDBPyConnection``'s.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def cursor(self) -> _EncryptedConnection:
        cur = self._con.cursor()
        cur.execute(USE_STUDIO)
        return _EncryptedConnection(cur)

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def __enter__(self) -> _EncryptedConnection:
        return self

    def __exit__(self, *exc_info) -> None:
        self._con.close()


def _open_file(db: Path, *, read_only: bool, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    """Open ``db`` (encrypted when $STUDIO_DB_ENCRYPTION_KEY is set), waiting out another process's lock."""
    spill = _sidecar(db, ".tmp")
    _owner_only(spill, 0o700, create=not read_only)
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory_limit(),
        "temp_directory": str(spill),
    }
    key = os.environ.get(ENCRYPTION_KEY_ENV)
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            if key:  # a wrapper that forwards everything to the connection (it is one, for its callers)
                return cast(duckdb.DuckDBPyConnection, _open_encrypted(db, key, read_only, config))
            return duckdb.connect(str(db), read_only=read_only, config=config)
        except duckdb.Error as exc:
            message = str(exc)
            holder = LOCK_HOLDER.search(message)
            if holder is None:
                raise _open_error(db, message) from exc
            if time.monotonic() >= deadline:
                holder_reads = "read-only mode" in message  # DuckDB: 'you would be able to open ... in read-only mode'
                raise _locked(
                    db, read_only, int(holder["pid"]), holder["program"], holder_reads, lock_timeout
                ) from None
            time.sleep(LOCK_POLL_S)


def _open_encrypted(db: Path, key: str, read_only: bool, config: dict) -> _EncryptedConnection:
    con = duckdb.connect(":memory:", config=config | {"temp_file_encryption": True})
    try:
        if not read_only:
            _enable_encrypted_writes(con)
        con.execute(ATTACH_ENCRYPTED_READ_ONLY if read_only else ATTACH_ENCRYPTED, {"path": str(db), "key": key})
        con.execute(USE_STUDIO)
    except BaseException:
        con.close()
        raise
    return _EncryptedConnection(con)


def _enable_encrypted_writes(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB writes encrypted files with OpenSSL, from its httpfs extension. Its built-in fallback
    (mbedtls) draws nonces from a non-cryptographic generator, so DuckDB refuses it unless forced:
    the studio forces it only when $STUDIO_DB_ENCRYPTION_ALLOW_MBEDTLS=1."""
    try:
        con.execute("LOAD httpfs")
        return
    except duckdb.Error:
        pass
    if os.environ.get(ALLOW_MBEDTLS_ENV) == "1":
        con.execute("SET force_mbedtls_unsafe = true")
        return
    raise StoreError(
        "writing an encrypted studio database needs DuckDB's httpfs extension (OpenSSL), which is not "
        "installed; install it once (duckdb: INSTALL httpfs), or set "
        f"{ALLOW_MBEDTLS_ENV}=1 to accept DuckDB's weaker built-in cipher"
    )


def _lock_timeout(seconds: float | None) -> float:
    if seconds is None:
        text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
        try:
            seconds = float(text) if text else LOCK_TIMEOUT_S
        except ValueError:
            raise StoreError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds from 0 to 3600; found {text!r}") from None
    if not 0 <= seconds <= 3600:  # NaN fails too
        raise StoreError(f"the lock timeout must be from 0 to 3600 seconds; found {seconds}")
    return seconds


def _open_error(db: Path, message: str) -> StoreError:
    first = message.splitlines()[0]
    if "without a key" in first:
        return StoreError(
            f"the studio database {db} is encrypted: expected its key in ${ENCRYPTION_KEY_ENV}, found it unset"
        )
    if "Wrong encryption key" in first:
        return StoreError(f"${ENCRYPTION_KEY_ENV} does not hold the key of the encrypted studio database {db}")
    if "is not encrypted" in first:
        return StoreError(
            f"${ENCRYPTION_KEY_ENV} is set but {db} is not encrypted: unset it to open this file, "
            "or write an encrypted copy with engine.store.encrypt_copy"
        )
    if "Unique file handle conflict" in first or "different configuration" in first:
        return StoreError(
            f"the studio database {db} is already open in this process: take con.cursor() from that "
            "connection instead of opening the file again"
        )
    return StoreError(
        f"cannot open the studio database {db}: expected a DuckDB 2 file that no other process holds, found: {first}"
    )


def _locked(db: Path, read_only: bool, pid: int, program: str, holder_reads: bool, waited: float) -> DatabaseLocked:
    holder = f"process {pid} ({_command_line(pid) or program})"
    if read_only:
        text = (
            f"cannot read the studio database {db}: {holder} has it open for writing, and DuckDB lets no "
            f"other process open the file, not even read-only, until it closes it (waited {waited:g} s)"
        )
    elif holder_reads:
        text = (
            f"cannot write the studio database {db}: {holder} has it open read-only, and a writer must "
            f"wait until every reader has closed it (waited {waited:g} s)"
        )
    else:
        text = (
            f"cannot write the studio database {db}: {holder} has it open (waited {waited:g} s); "
            "let that process finish or close it, then retry"
        )
    return DatabaseLocked(text, pid=pid)


def _command_line(pid: int) -> str | None:
    """The command line of process ``pid`` (program name, not its path), when /proc shows it."""
    try:
        argv = [
            word.decode(errors="replace") for word in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if word
        ]
    except OSError:
        return None
    if not argv:
        return None
    text = " ".join([Path(argv[0]).name, *argv[1:]])
    return text if len(text) <= 120 else text[:117] + "..."


def _needs_writer(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a read-only connection found a file that a writer must migrate first."""
    with con.cursor() as cur:
        try:
            version = cur.execute("SELECT coalesce(max(version), 0) FROM main.schema_version").fetchall()[0][0]
            legacy = cur.execute(LEGACY_KEY_ROWS).fetchall() if version >= 2 else []
        except duckdb.CatalogException:
            return True
    return version < MIGRATIONS[-1][0] or bool(legacy)


def _move_legacy_key(con: duckdb.DuckDBPyConnection, db: Path) -> bool:
    """Move a key that an older studio kept in ``main.settings`` to the key file; rewrite the file.

    Idempotent: a crash at any step leaves a row (key or scrub marker) that makes the next open
    resume. Returns True when ``con`` was closed because the file was replaced.
    """
    with con.cursor() as cur:
        rows = {r[0] for r in cur.execute(LEGACY_KEY_ROWS).fetchall()}
        if not rows:
            return False
        if "pseudonym_key" in rows:
            legacy = json.loads(cur.execute(SETTING_GET, {"key": "pseudonym_key"}).fetchall()[0][0])
            keyfile = key_path(db)
            if not keyfile.exists():
                _write_key_file(keyfile, legacy)
            elif _read_key_file(keyfile) != legacy:
                con.close()
                raise StoreError(
                    f"{db} holds a pseudonymization key that differs from the one in {keyfile}: expected "
                    "one key, found two; move the key file aside to keep the database's key"
                )
            cur.execute("BEGIN TRANSACTION")
            cur.execute(LEGACY_KEY_DELETE)
            cur.execute(SCRUB_MARK)
            cur.execute("COMMIT")
            cur.execute("CHECKPOINT")
    _rewrite_file(con, db)
    log.warning("moved the pseudonymization key of %s out of the database into %s", db, key_path(db))
    return True


def _rewrite_file(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    """Replace ``db`` by a fresh copy of its live data (no freed blocks), then close ``con``."""
    partial = _sidecar(db, ".rewrite")
    partial.unlink(missing_ok=True)
    key = os.environ.get(ENCRYPTION_KEY_ENV)
    with con.cursor() as cur:
        source = cur.execute("SELECT current_database()").fetchall()[0][0]
        if key:
            cur.execute(ATTACH_ENCRYPTED_COPY, {"path": str(partial), "key": key})
        else:
            cur.execute(ATTACH_PLAIN_COPY, {"path": str(partial)})
        # The catalog name is DuckDB's own (the file's stem or "studio"), quoted as an identifier.
        cur.execute('COPY FROM DATABASE "' + source.replace('"', '""') + '" TO studio_copy')
        cur.execute(SCRUB_UNMARK)
        cur.execute("DETACH studio_copy")
    os.replace(partial, db)  # while ``con`` still holds the lock: no other process writes in between
    con.close()


def _write_key_file(path: Path, key: str) -> None:
    """Create ``path`` holding ``key``, mode 0600; when another process created it first, keep theirs."""
    partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(partial, path)  # atomic, and refuses to replace an existing key
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)


def _read_key_file(path: Path) -> str:
    _owner_only(path, 0o600)
    key = path.read_text().strip()
    if len(key) < 32:
        raise StoreError(f"the pseudonymization key file {path} must hold at least 32 characters; found {len(key)}")
    return key


def _restrict_umask() -> None:
    # DuckDB creates the WAL and spill files whenever it needs them, long after connect, so a umask
    # set only around connect would not cover them: from the first writer on, the process creates
    # files for their owner only (the umask only ever gets stricter).
    current = os.umask(0o077)
    os.umask(current | 0o077)


def _owner_only(path: Path, mode: int, *, create: bool = False) -> None:
    """Give ``path`` to its owner only (``mode``); create it as a folder when ``create`` and missing."""
    if create and not path.exists():
        path.mkdir(mode=mode)
        return
    try:
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(mode)
    except PermissionError:
        log.warning("cannot restrict %s to its owner: it belongs to another user", path)


def _sidecar(db: Path, suffix: str) -> Path:
    return db.with_name(db.name + suffix)


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
