"""The database file on its own: the pseudonymization key kept apart, owner-only files,
encryption at rest, and the memory settings DuckDB runs under."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import duckdb
import pytest

from engine import store
from engine.errors import StoreError
from engine.sources import synthetic

RAW_IDS = [f"{i:06d}" for i in range(1, 6)]  # the first customers of the committed sample


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """The usual 022 umask while a test runs (the store makes it 077 once it writes a file)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def encryption(monkeypatch):
    """$STUDIO_DB_ENCRYPTION_KEY set; DuckDB's built-in cipher allowed where httpfs (OpenSSL) is absent."""
    monkeypatch.setenv(store.ENCRYPTION_KEY_ENV, "correct horse battery staple")
    monkeypatch.setenv(store.ALLOW_MBEDTLS_ENV, "1")
    return "correct horse battery staple"


def stored_customer_ids(con) -> set[str]:
    with store.dataset_cursor(con, "sample") as cur:
        return {row[0] for row in cur.execute("SELECT customer_id FROM customers").fetchall()}


# ---------------------------------------------------------------- the pseudonymization key


def test_key_lives_in_a_file_beside_the_database_not_in_it(tmp_path):
    db = tmp_path / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    before = store.pseudonymize(con, RAW_IDS)
    con.close()

    key = store.key_path(db).read_text().strip()
    assert store.key_path(db) == tmp_path / "studio.duckdb.key" and len(key) == 64
    expected = ["c" + hashlib.sha256(f"{key}:{raw}".encode()).hexdigest()[:16] for raw in RAW_IDS]
    assert before == expected  # the key in the file is the one ingest used

    with duckdb.connect(str(db), read_only=True) as plain:  # what anyone holding the file sees
        settings = plain.execute("SELECT key, value FROM main.settings").fetchall()
    assert "pseudonym_key" not in {k for k, _ in settings} and not any(key in v for _, v in settings)
    assert key.encode() not in db.read_bytes()

    again = store.connect(db)  # reopened: same key, same pseudonyms, and they are what ingest stored
    assert store.pseudonymize(again, RAW_IDS) == before
    assert set(before) <= stored_customer_ids(again)
    again.close()


def test_environment_key_wins_and_no_key_file_is_written(tmp_path, monkeypatch):
    key = "k" * 40
    monkeypatch.setenv(store.PSEUDONYM_KEY_ENV, key)
    db = tmp_path / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    expected = ["c" + hashlib.sha256(f"{key}:{raw}".encode()).hexdigest()[:16] for raw in RAW_IDS]
    assert store.pseudonymize(con, RAW_IDS) == expected
    assert set(expected) <= stored_customer_ids(con)
    assert not store.key_path(db).exists()
    con.close()


def test_a_short_environment_key_is_refused_in_one_line(con, monkeypatch):
    monkeypatch.setenv(store.PSEUDONYM_KEY_ENV, "guessable")
    with pytest.raises(StoreError, match="at least 32 characters; found 9") as info:
        store.pseudonymize(con, RAW_IDS)
    assert "\n" not in str(info.value)


def make_legacy(db: Path) -> str:
    """Turn a database into what an older studio wrote: the key in ``main.settings``, no key file."""
    key = store.key_path(db).read_text().strip()
    store.key_path(db).unlink()
    with duckdb.connect(str(db)) as plain:
        plain.execute("INSERT INTO main.settings VALUES ('pseudonym_key', $value)", {"value": json.dumps(key)})
    assert key.encode() in db.read_bytes()
    return key


@pytest.mark.parametrize("first_open", ["read-write", "read-only"])
def test_older_databases_move_their_key_out_and_keep_their_pseudonyms(tmp_path, first_open):
    db = tmp_path / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    before = store.pseudonymize(con, RAW_IDS)
    con.close()
    key = make_legacy(db)

    con = store.connect(db, read_only=first_open == "read-only")
    assert store.key_path(db).read_text().strip() == key and mode(store.key_path(db)) == 0o600
    assert store.pseudonymize(con, RAW_IDS) == before
    assert [d.name for d in store.list_datasets(con)] == ["sample"] and set(before) <= stored_customer_ids(con)
    con.close()
    # The file was rewritten: the deleted row does not linger in its free blocks either.
    assert key.encode() not in db.read_bytes()
    with duckdb.connect(str(db), read_only=True) as plain:
        keys = {row[0] for row in plain.execute("SELECT key FROM main.settings").fetchall()}
    assert keys == {"min_group_size", "sensitive_attributes", "allow_sensitive_segments"}
    store.connect(db).close()  # idempotent
    assert store.key_path(db).read_text().strip() == key


def test_two_different_keys_are_refused_rather_than_guessed(tmp_path):
    db = tmp_path / "studio.duckdb"
    store.connect(db).close()
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    con.close()
    make_legacy(db)
    store.key_path(db).write_text("f" * 64 + "\n")
    with pytest.raises(StoreError, match="differs from the one in .*studio.duckdb.key"):
        store.connect(db)


# ---------------------------------------------------------------- file modes


def test_files_the_studio_creates_are_readable_by_their_owner_only(tmp_path, loose_umask):
    db = tmp_path / "data" / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    con.execute("CREATE TABLE main.scratch AS SELECT 1 AS x")  # not yet checkpointed: the WAL exists
    wal = db.with_name("studio.duckdb.wal")
    assert wal.exists() and mode(wal) == 0o600
    assert mode(db) == 0o600
    assert mode(store.key_path(db)) == 0o600
    assert mode(db.parent) == 0o700  # the folder the studio made for it
    assert mode(db.with_name("studio.duckdb.tmp")) == 0o700  # DuckDB's spill folder
    assert mode(db.parent / "runs") == 0o700  # engine.model.runs.runs_root
    con.close()


def test_files_left_readable_by_an_older_studio_are_tightened(tmp_path, loose_umask):
    db = tmp_path / "studio.duckdb"
    duckdb.connect(str(db)).close()
    (tmp_path / "runs").mkdir()
    assert mode(db) == 0o644 and mode(tmp_path / "runs") == 0o755
    store.connect(db).close()
    assert mode(db) == 0o600 and mode(tmp_path / "runs") == 0o700


# ---------------------------------------------------------------- encryption at rest


def test_an_encrypted_database_reads_only_with_its_key(tmp_path, encryption, monkeypatch):
    db = tmp_path / "studio.duckdb"
    con = store.connect(db)
    assert store.is_encrypted(con)
    info = synthetic.ingest_sample(con, "sample")
    pseudonyms = store.pseudonymize(con, RAW_IDS)
    with con.cursor() as cur, cur.cursor() as inner:  # cursors of cursors stay on the encrypted file
        assert inner.execute("SELECT count(*) FROM main.datasets").fetchall() == [(1,)]
    con.close()

    assert b"pseudonymized_customers" not in db.read_bytes()  # registry text is not in clear
    with pytest.raises(duckdb.Error, match="encrypted"):
        duckdb.connect(str(db), read_only=True)

    again = store.connect(db, read_only=True)
    assert store.is_encrypted(again) and store.get_dataset(again, "sample") == info
    assert store.pseudonymize(again, RAW_IDS) == pseudonyms
    again.close()

    monkeypatch.setenv(store.ENCRYPTION_KEY_ENV, "a wrong key")
    with pytest.raises(StoreError, match="does not hold the key"):
        store.connect(db)
    monkeypatch.delenv(store.ENCRYPTION_KEY_ENV)
    with pytest.raises(StoreError, match="is encrypted: expected its key in .STUDIO_DB_ENCRYPTION_KEY"):
        store.connect(db)


def test_a_plain_database_gets_an_encrypted_copy(tmp_path, encryption, monkeypatch):
    plain, encrypted = tmp_path / "plain.duckdb", tmp_path / "secret.duckdb"
    monkeypatch.delenv(store.ENCRYPTION_KEY_ENV)
    con = store.connect(plain)
    assert not store.is_encrypted(con)
    info = synthetic.ingest_sample(con, "sample")
    pseudonyms = store.pseudonymize(con, RAW_IDS)
    con.close()

    monkeypatch.setenv(store.ENCRYPTION_KEY_ENV, encryption)
    with pytest.raises(StoreError, match="is not encrypted: unset it"):
        store.connect(plain)
    store.encrypt_copy(plain, encrypted)
    assert mode(encrypted) == 0o600 and mode(store.key_path(encrypted)) == 0o600
    con = store.connect(encrypted)
    assert store.is_encrypted(con) and store.get_dataset(con, "sample").lines == info.lines
    assert store.pseudonymize(con, RAW_IDS) == pseudonyms  # the key file came along
    con.close()
    with pytest.raises(duckdb.Error, match="encrypted"):
        duckdb.connect(str(encrypted))


def test_in_memory_databases_are_not_encrypted():
    con = store.connect(":memory:")
    assert store.is_encrypted(con) is False


def test_writing_encrypted_needs_openssl_or_explicit_consent(tmp_path, encryption, monkeypatch):
    with duckdb.connect() as probe:
        try:
            probe.execute("LOAD httpfs")
            pytest.skip("httpfs (OpenSSL) is installed here: encrypted writes need no consent")
        except duckdb.Error:
            pass
    monkeypatch.delenv(store.ALLOW_MBEDTLS_ENV)
    with pytest.raises(StoreError, match="needs DuckDB's httpfs extension .* STUDIO_DB_ENCRYPTION_ALLOW_MBEDTLS=1"):
        store.connect(tmp_path / "studio.duckdb")


# ---------------------------------------------------------------- memory


def test_memory_limit_and_spill_folder_are_set_at_connect(tmp_path, monkeypatch):
    db = tmp_path / "default.duckdb"
    con = store.connect(db)
    settings = "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    limit, spill = con.execute(settings).fetchall()[0]
    assert limit == "1.8 GiB"  # DEFAULT_MEMORY_LIMIT = 2GB, as DuckDB prints it
    assert spill == str(db.with_name("default.duckdb.tmp"))
    con.close()

    monkeypatch.setenv(store.MEMORY_LIMIT_ENV, "512MB")
    con = store.connect(tmp_path / "small.duckdb")
    assert con.execute("SELECT current_setting('memory_limit')").fetchall() == [("488.2 MiB",)]
    con.close()


def test_a_bad_memory_limit_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(store.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(StoreError, match="STUDIO_MEMORY_LIMIT must be a size such as 4GB, 512MB or 25%; found 'lots'"):
        store.connect(tmp_path / "studio.duckdb")
