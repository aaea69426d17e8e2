"""Validation of a retailer's files once read as text: each failed check is one ``DataError``.

Checks run on the raw text tables (``engine.sources.file_reader.load_raw``) with the same
parsing macros the staging uses, so what a check accepts is exactly what gets imported.
Each message names the file, the column (as in the file, with its canonical field), what was
expected, and the first offending rows with their values, e.g.::

    transactions.csv: column "qty" (quantity) must be a number; lines 3, 17: "two", "n/a"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from engine.errors import DataError
from engine.sources.file_reader import IDENTIFIER, TableFile, place_word, row_numbers

SHOWN = 5  # offending rows (or ids) named in a message
MAX_VALUE_CHARS = 40

# Parsing, once: identifiers are trimmed text ('' is missing); numbers accept a decimal comma
# when asked and must be finite; times follow date_format, else (or failing that) ISO 8601.
PARSING_MACROS = """
CREATE OR REPLACE TEMP MACRO files_id(t) AS nullif(trim(t), '');
CREATE OR REPLACE TEMP MACRO files_number_any(t, comma) AS
    TRY_CAST(CASE WHEN comma THEN replace(trim(t), ',', '.') ELSE trim(t) END AS DOUBLE);
CREATE OR REPLACE TEMP MACRO files_number(t, comma) AS
    CASE WHEN isfinite(files_number_any(t, comma)) THEN files_number_any(t, comma) END;
CREATE OR REPLACE TEMP MACRO files_time(t, fmt) AS
    coalesce(try_strptime(trim(t), fmt), TRY_CAST(trim(t) AS TIMESTAMP));
"""

# Rows that break a rule about one column. {table} and {column} are whitelisted identifiers.
CONDITIONS = {
    "missing": "files_id({column}) IS NULL",
    "number": "files_id({column}) IS NOT NULL AND files_number({column}, $comma) IS NULL",
    "negative": "files_number({column}, $comma) < 0",
    "time": "files_id({column}) IS NOT NULL AND files_time({column}, $date_format) IS NULL",
}
COUNT_BROKEN = "SELECT {counts} FROM {table}"
BROKEN_ROWS = """
SELECT row_no, {column}, count(*) OVER () FROM {table} WHERE {condition} ORDER BY row_no LIMIT $shown
"""

# Keys that appear on several rows with different attributes (identical repeats are fine).
CONFLICTING_KEYS = """
SELECT files_id({key}), list(row_no ORDER BY row_no)[1:3], count(*) OVER ()
FROM {table} WHERE files_id({key}) IS NOT NULL
GROUP BY files_id({key})
HAVING count(DISTINCT row({attributes})) > 1
ORDER BY min(row_no) LIMIT $shown
"""
BASKETS_OF_SEVERAL_CUSTOMERS = """
SELECT files_id(basket_id), list(row_no ORDER BY row_no)[1:3], count(*) OVER ()
FROM raw_transactions WHERE files_id(basket_id) IS NOT NULL
GROUP BY files_id(basket_id)
HAVING min(files_id(customer_id)) <> max(files_id(customer_id))
ORDER BY min(row_no) LIMIT $shown
"""
UNKNOWN_PRODUCTS = """
SELECT files_id(product_id), list(row_no ORDER BY row_no)[1:3], count(*) OVER ()
FROM raw_transactions t
WHERE NOT EXISTS (SELECT 1 FROM stage_products p WHERE p.product_id = files_id(t.product_id))
GROUP BY files_id(product_id)
ORDER BY min(row_no) LIMIT $shown
"""

DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


@dataclass(frozen=True)
class MappedColumn:
    """A canonical field, the raw-table column holding it, and the file column it came from."""

    field: str  # canonical field: quantity, date, ...
    raw: str  # column of the raw text table (whitelisted identifier)
    file_column: str  # the name in the file's header

    def label(self) -> str:
        same = self.file_column == self.field
        return f'column "{self.file_column}"' + ("" if same else f" ({self.field})")


@dataclass(frozen=True)
class ColumnRule:
    """A rule every row must keep: ``kind`` is a key of ``CONDITIONS`` (missing, number, negative, time)."""

    column: MappedColumn
    kind: str


def check_columns(
    cur: duckdb.DuckDBPyConnection,
    source: TableFile,
    table: str,
    rules: list[ColumnRule],
    *,
    decimal_comma: bool = False,
    date_format: str | None = None,
) -> None:
    """Check every rule in one scan of ``table``; raise for the first rule (in order) that a row breaks."""
    params = {"comma": decimal_comma, "date_format": date_format, "shown": SHOWN}
    conditions = [CONDITIONS[rule.kind].format(column=_identifier(rule.column.raw)) for rule in rules]
    counts = ", ".join(f"count(*) FILTER (WHERE {condition})" for condition in conditions)
    sql = COUNT_BROKEN.format(counts=counts, table=_identifier(table))
    broken = cur.execute(sql, _bound(sql, params)).fetchall()[0]
    for rule, condition, count in zip(rules, conditions, broken, strict=True):
        if count:
            sql = BROKEN_ROWS.format(column=rule.column.raw, table=table, condition=condition)
            rows = cur.execute(sql, _bound(sql, params)).fetchall()
            raise DataError(_broken_rule(source, rule, rows, decimal_comma, date_format))


def _broken_rule(source: TableFile, rule: ColumnRule, rows: list, decimal_comma: bool, date_format: str | None) -> str:
    where = f"{source.label}: {rule.column.label()}"
    if rule.kind == "missing":
        return f"{where} must not be empty; {_places(source, rows, values=False)}"
    if rule.kind == "number":
        hint = ""
        if not decimal_comma and any(DECIMAL_COMMA.match(str(value)) for _, value, _ in rows):
            hint = f'; for decimal commas set decimal_separator = "," in [{source.kind}]'
        return f"{where} must be a number; {_places(source, rows)}{hint}"
    if rule.kind == "negative":
        hint = "; returns and refunds cannot be imported: remove those rows" if source.kind == "transactions" else ""
        return f"{where} must not be negative; {_places(source, rows)}{hint}"
    if date_format:
        expected = f'a date in the format "{date_format}" (date_format) or ISO like 2024-01-31'
    else:
        expected = (
            f"a date like 2024-01-31 or 2024-01-31 13:45:00 (for other layouts set date_format in [{source.kind}])"
        )
    return f"{where} must be {expected}; {_places(source, rows)}"


def check_conflicting_keys(
    cur: duckdb.DuckDBPyConnection,
    source: TableFile,
    table: str,
    key: MappedColumn,
    attribute_sql: list[str],
    what: str,
    params: dict,
) -> None:
    """Rows that repeat a key must repeat its attributes too (``attribute_sql``: parsing expressions)."""
    if not attribute_sql:
        return
    sql = CONFLICTING_KEYS.format(key=key.raw, table=_identifier(table), attributes=", ".join(attribute_sql))
    groups = cur.execute(sql, _bound(sql, {**params, "shown": SHOWN})).fetchall()
    if groups:
        named = _group_places(source, groups)
        raise DataError(
            f"{source.label}: {key.label()} repeats {_count(groups[0][2], 'id')} with conflicting attributes: "
            f"{named}; each id must have one {what}"
        )


def check_baskets_have_one_customer(cur: duckdb.DuckDBPyConnection, source: TableFile, basket: MappedColumn) -> None:
    """A basket id belongs to one customer (else the ids are not unique in the file)."""
    groups = cur.execute(BASKETS_OF_SEVERAL_CUSTOMERS, {"shown": SHOWN}).fetchall()
    if groups:
        raise DataError(
            f"{source.label}: {basket.label()} gives {_count(groups[0][2], 'basket id')} to several customers: "
            f"{_group_places(source, groups)}; basket ids must be unique in the file (or leave basket_id out: "
            "a basket is then one customer's purchases on one day)"
        )


def check_products_known(
    cur: duckdb.DuckDBPyConnection, source: TableFile, product: MappedColumn, products_file: TableFile
) -> None:
    """Every line's product is in the products file (``stage_products`` holds it)."""
    groups = cur.execute(UNKNOWN_PRODUCTS, {"shown": SHOWN}).fetchall()
    if groups:
        raise DataError(
            f"{source.label}: {product.label()} names {_count(groups[0][2], 'product')} missing from "
            f"{products_file.label}: {_group_places(source, groups)}; add them to {products_file.label} "
            "or leave the products file out"
        )


def _bound(sql: str, params: dict) -> dict:
    # DuckDB refuses parameters a statement does not use.
    return {name: value for name, value in params.items() if f"${name}" in sql}


def _places(source: TableFile, rows: list, *, values: bool = True) -> str:
    total = rows[0][2]
    places = row_numbers(source, [row[0] for row in rows])
    text = place_word(source, len(places)) + " " + ", ".join(str(p) for p in places)
    if values:
        text += ": " + ", ".join(_quote(row[1]) for row in rows)
    if total > len(rows):
        text += f" ({total} rows in all)"
    return text


def _group_places(source: TableFile, groups: list) -> str:
    flat = [row_no for _, row_nos, _ in groups for row_no in row_nos]
    numbers = iter(row_numbers(source, flat))
    parts = []
    for value, row_nos, _ in groups:
        where = ", ".join(str(next(numbers)) for _ in row_nos)
        parts.append(f"{_quote(value)} ({place_word(source, len(row_nos))} {where})")
    total = groups[0][2]
    return ", ".join(parts) + (f" and {total - len(groups)} more" if total > len(groups) else "")


def _quote(value: object) -> str:
    if value is None:
        return "(empty)"
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    return '"' + text + '"'


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _identifier(name: str) -> str:
    assert IDENTIFIER.fullmatch(name), name
    return name
