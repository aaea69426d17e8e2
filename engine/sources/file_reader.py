"""Reading a retailer's CSV or Parquet file into DuckDB, with every failure said in one line.

A file is checked up front (exists, not zero bytes, CSV or Parquet, UTF-8, has a header) and
then read by DuckDB, streamed, into a temporary table of text columns named by canonical
field. The SQL never contains a name taken from the file: DuckDB reads the file's columns
under positional names ``c0, c1, ...`` (CSV: ``columns=$columns``; Parquet: ``AS f(c0, ...)``)
and the select list renames them to whitelisted canonical names. A column literally called
``x"; DROP TABLE lines; --`` is therefore just column ``c3``.

CSV dialect: the delimiter comes from the mapping or, when absent, from the header line (the
most frequent of ``, ; TAB |`` outside quotes); quotes are ``"`` doubled inside values. The
dialect is then fixed (DuckDB's sniffer is off), so a ragged line is an error naming its line
rather than a silently different guess.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine.errors import DataError
from engine.sources.mapping import DELIMITERS

CHUNK_BYTES = 1 << 20
MAX_LISTED_COLUMNS = 20
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
CSV_REASON = re.compile(r"unterminated quote|[Mm]aximum line size|[Ii]nvalid unicode")

# row_no: the data row's position in the file, from 0 (the header is not a data row).
READ_CSV = """
CREATE TEMP TABLE {table} AS
SELECT row_number() OVER () - 1 AS row_no, {select}
FROM read_csv($path, header = true, auto_detect = false, delim = $delimiter, quote = '"', escape = '"',
              columns = $columns, compression = $compression)
"""
READ_PARQUET = """
CREATE TEMP TABLE {table} AS
SELECT file_row_number AS row_no, {select}
FROM read_parquet($path, file_row_number = true) AS f({aliases}, file_row_number)
"""
DESCRIBE_PARQUET = "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet($path))"
COUNT_ROWS = "SELECT count(*) FROM {table}"


@dataclass(frozen=True)
class TableFile:
    """One input file, checked: its format, CSV dialect and header."""

    kind: str  # transactions | products | customers
    path: Path
    format: str  # "csv" | "parquet"
    compression: str  # "none" | "gzip" (CSV only)
    delimiter: str | None  # CSV only
    columns: tuple[str, ...]  # column names as in the header (made unique, like DuckDB does)

    @property
    def label(self) -> str:
        """How messages name the file."""
        return self.path.name

    def describe_columns(self) -> str:
        shown = ", ".join(f'"{name}"' for name in self.columns[:MAX_LISTED_COLUMNS])
        more = len(self.columns) - MAX_LISTED_COLUMNS
        return shown + (f" and {more} more" if more > 0 else "")

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.format,
            "delimiter": self.delimiter,
            "columns": list(self.columns),
        }


def open_table_file(cur: duckdb.DuckDBPyConnection, kind: str, path: Path | str, delimiter: str | None) -> TableFile:
    """Check ``path`` and read its header; raise ``DataError`` naming the file when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{kind} file not found: {path}")
    try:
        return _open_checked(cur, kind, path, delimiter)
    except zlib.error as exc:
        raise DataError(f"{path.name}: the gzip-compressed file is damaged: {exc}") from None
    except OSError as exc:  # unreadable (permissions), or not gzip after all (gzip.BadGzipFile)
        raise DataError(f"{path.name}: cannot be read: {exc.strerror or exc}") from None


def _open_checked(cur: duckdb.DuckDBPyConnection, kind: str, path: Path, delimiter: str | None) -> TableFile:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if not magic:
        raise DataError(f"{path.name}: the file is empty (0 bytes); expected a header line and at least one row")
    if magic == PARQUET_MAGIC:
        columns = _parquet_columns(cur, path)
        return TableFile(kind, path, "parquet", "none", None, columns)
    if magic.startswith(ZIP_MAGIC):
        raise DataError(
            f"{path.name}: this is a zip archive or an Excel workbook; save the sheet as CSV UTF-8 or Parquet"
        )
    compression = "gzip" if magic.startswith(GZIP_MAGIC) else "none"
    _check_utf8(path, compression)
    header_line = _first_line(path, compression)
    if not header_line.strip():
        raise DataError(f"{path.name}: line 1 is blank; expected the header line (the column names)")
    delimiter = delimiter or detect_delimiter(header_line)
    header = next(csv.reader([header_line], delimiter=delimiter, quotechar='"', doublequote=True))
    return TableFile(kind, path, "csv", compression, delimiter, _unique_names(header))


def detect_delimiter(header_line: str) -> str:
    """The most frequent of ``DELIMITERS`` outside double quotes in the header line (``,`` if none)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] else ","


def load_raw(
    cur: duckdb.DuckDBPyConnection, table_file: TableFile, table: str, fields: Iterable[tuple[str, int | None]]
) -> int:
    """Read ``table_file`` into temporary table ``table``: one text column per (name, file column index).

    An index of None gives a column of NULLs; ``row_no`` is the row's position among the data rows (from 0).
    Returns the number of rows read.
    """
    assert IDENTIFIER.fullmatch(table), table
    select = []
    for name, index in fields:
        assert IDENTIFIER.fullmatch(name), name  # canonical or generated names only
        source = "NULL" if index is None else f"c{int(index)}"
        select.append(f"CAST({source} AS VARCHAR) AS {name}")
    positional = [f"c{i}" for i in range(len(table_file.columns))]
    try:
        if table_file.format == "parquet":
            sql = READ_PARQUET.format(table=table, select=", ".join(select), aliases=", ".join(positional))
            cur.execute(sql, {"path": str(table_file.path)})
        else:
            sql = READ_CSV.format(table=table, select=", ".join(select))
            params = {
                "path": str(table_file.path),
                "delimiter": table_file.delimiter,
                "columns": dict.fromkeys(positional, "VARCHAR"),
                "compression": table_file.compression,
            }
            cur.execute(sql, params)
    except duckdb.Error as exc:
        raise DataError(_read_error(table_file, exc)) from None
    rows = cur.execute(COUNT_ROWS.format(table=table)).fetchall()[0][0]
    if rows == 0:
        raise DataError(f"{table_file.label}: the file has a header but no rows; expected at least one row of data")
    return int(rows)


def row_numbers(table_file: TableFile, row_nos: list[int]) -> list[int]:
    """Where data rows (``row_no`` of the raw table) are in the file: CSV line numbers, Parquet row numbers."""
    if table_file.format == "parquet":
        return [row_no + 1 for row_no in row_nos]
    found = _csv_line_numbers(table_file, set(row_nos))
    return [found.get(row_no, row_no + 2) for row_no in row_nos]


def place_word(table_file: TableFile, count: int) -> str:
    """``line``/``lines`` for CSV, ``row``/``rows`` for Parquet."""
    word = "line" if table_file.format == "csv" else "row"
    return word if count == 1 else word + "s"


def _csv_line_numbers(table_file: TableFile, row_nos: set[int]) -> dict[int, int]:
    # Line where each wanted data row starts, counting as DuckDB does: blank lines are skipped.
    found: dict[int, int] = {}
    if not row_nos:
        return found
    try:
        with _open_text(table_file.path, table_file.compression) as text:
            assert table_file.delimiter is not None, "a CSV file has a delimiter"
            reader = csv.reader(text, delimiter=table_file.delimiter, quotechar='"', doublequote=True)
            next(reader, None)  # the header
            row_no, previous_end = 0, reader.line_num
            for record in reader:
                if record:
                    if row_no in row_nos:
                        found[row_no] = previous_end + 1
                        if len(found) == len(row_nos):
                            break
                    row_no += 1
                previous_end = reader.line_num
    except (csv.Error, OSError, UnicodeDecodeError):
        pass  # fall back to one record per line
    return found


def _parquet_columns(cur: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, ...]:
    try:
        rows = cur.execute(DESCRIBE_PARQUET, {"path": str(path)}).fetchall()
    except duckdb.Error as exc:
        raise DataError(f"{path.name}: cannot be read as Parquet: {_first_line_of(exc)}") from None
    return tuple(row[0] for row in rows)


def _check_utf8(path: Path, compression: str) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = newlines = 0
    try:
        with _open_bytes(path, compression) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    pending = len(exc.object) - len(chunk)
                    _raise_not_utf8(path, exc, consumed - pending, newlines)
                consumed += len(chunk)
                newlines += chunk.count(b"\n")
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                _raise_not_utf8(path, exc, consumed - len(exc.object), newlines)
    except EOFError:  # a gzip stream cut short
        raise DataError(f"{path.name}: the compressed file is cut short") from None


def _raise_not_utf8(path: Path, exc: UnicodeDecodeError, object_offset: int, newlines_before: int) -> None:
    offset = object_offset + exc.start
    line = newlines_before + exc.object[: exc.start].count(b"\n") + 1
    byte = exc.object[exc.start]
    hint = "it looks like UTF-16: " if exc.object[:2] in UTF16_BOMS and object_offset == 0 else ""
    raise DataError(
        f"{path.name}: not UTF-8 text: line {line} has byte 0x{byte:02x} (byte {offset} of the file); "
        f"{hint}save the file as CSV UTF-8"
    )


def _first_line(path: Path, compression: str) -> str:
    with _open_text(path, compression) as text:
        return text.readline()


def _open_bytes(path: Path, compression: str):
    return gzip.open(path, "rb") if compression == "gzip" else path.open("rb")


def _open_text(path: Path, compression: str) -> io.TextIOWrapper:
    # utf-8-sig: a byte-order mark is not part of the first column's name.
    return io.TextIOWrapper(_open_bytes(path, compression), encoding="utf-8-sig", newline="")


def _unique_names(header: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(header):
        name = raw.strip() or f"column{position}"
        candidate, suffix = name, 0
        while candidate.lower() in seen:
            suffix += 1
            candidate = f"{name}_{suffix}"
        seen.add(candidate.lower())
        names.append(candidate)
    return tuple(names)


def _read_error(table_file: TableFile, exc: duckdb.Error) -> str:
    text = str(exc)
    if table_file.format == "parquet":
        return f"{table_file.label}: cannot be read as Parquet: {_first_line_of(exc)}"
    line = re.search(r"CSV Error on Line: (\d+)", text)
    if not line:
        return f"{table_file.label}: cannot be read as CSV: {_first_line_of(exc)}"
    details = text.splitlines()
    original = next((d.split(":", 1)[1].strip() for d in details if d.startswith("Original Line:")), "")
    delimiter = "TAB" if table_file.delimiter == "\t" else f"'{table_file.delimiter}'"
    fields = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if fields:
        reason = f"it has {fields.group(2)} fields, the header has {fields.group(1)} (separated by {delimiter})"
    else:
        reason = next((d.strip().rstrip(".") for d in details if CSV_REASON.search(d)), "it does not fit the header")
    return f"{table_file.label}: line {line.group(1)} cannot be read as CSV: {reason}; the line reads {original[:80]!r}"


def _first_line_of(exc: Exception) -> str:
    line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return re.sub(r"^[A-Za-z ]+ Error: ", "", line)  # DuckDB's "Invalid Input Error: " class prefix
