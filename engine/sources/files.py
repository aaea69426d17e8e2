"""Import of a retailer's own files: transactions (required), products and customers (optional).

Files are CSV (any of ``, ; TAB |`` as delimiter, optionally gzip-compressed) or Parquet, read
by DuckDB (streamed, never whole into pandas) as text so identifiers keep their leading zeros,
then validated and parsed with one set of rules (``engine.sources.file_checks``). A TOML
mapping (``engine.sources.mapping``) says which column holds which canonical field.

The import is all or nothing: everything happens inside ``engine.store.replace_dataset``'s
transaction, so bad input (one ``DataError`` line naming file, column and first offending
rows), a crash or a kill leaves every existing dataset exactly as it was. The Data page and
``python -m engine ingest files`` both call ``ingest``.

Personal data stays out: each customer column is classified (``engine.personal_data``) and a
direct identifier (emails, phones, card numbers, names, free text, values unique per customer)
is not imported unless the mapping's ``allow_attributes`` lists it; the dataset details say
which columns were left out and why (``left_out_columns``), and ``customer_attribute_kinds``
marks every imported attribute, so a forced-in identifier is never offered as a dimension.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from engine import cleaning, personal_data, store
from engine.errors import DataError, StoreError
from engine.personal_data import ColumnVerdict
from engine.sources import file_checks as checks
from engine.sources.file_checks import PARSING_MACROS, MappedColumn
from engine.sources.file_reader import TableFile, load_raw, open_table_file
from engine.sources.mapping import EXAMPLE_MAPPING, FIELDS, ColumnMapping, FileMapping, parse_mapping

__all__ = ["EXAMPLE_MAPPING", "SOURCE", "ingest", "parse_mapping", "resolve_columns"]

log = logging.getLogger(__name__)

SOURCE = "files"
RAW_TABLE = {"transactions": "raw_transactions", "products": "raw_products", "customers": "raw_customers"}
TIME_COLUMN = "ts"  # raw column holding the mapped date or timestamp

# A basket without a basket_id is one customer's purchases on one day, named by the customer's
# pseudonym and the day: the pseudonym is engine.store.pseudonymize's keyed hash, so the raw
# customer id does not leak into basket ids. Week stays NULL: finish_dataset numbers weeks from
# the first day. An absent list amount is NULL (cleaning sets it to the amount paid) unless
# discounts are given: then it is paid plus discounts.
STAGE_LINES = """
CREATE TEMP TABLE stage_lines AS
WITH typed AS (
    SELECT files_id(basket_id) AS basket_id, files_id(customer_id) AS customer_id,
           files_time(ts, $date_format) AS ts, files_id(store_id) AS store_id, files_id(product_id) AS product_id,
           files_number(quantity, $comma) AS quantity, files_number(paid, $comma) AS paid,
           files_number(list_amount, $comma) AS list_amount,
           files_number(retail_discount, $comma) AS retail_discount,
           files_number(coupon_discount, $comma) AS coupon_discount
    FROM raw_transactions
)
SELECT coalesce(
           basket_id, 'c' || left(sha256($pseudonym_key || ':' || customer_id), 16) || '|' || strftime(ts, '%Y-%m-%d')
       ) AS basket_id,
       customer_id, ts, NULL::INTEGER AS week, store_id, product_id, quantity, paid,
       CASE WHEN list_amount IS NOT NULL THEN list_amount
            WHEN retail_discount IS NOT NULL OR coupon_discount IS NOT NULL
            THEN paid + coalesce(retail_discount, 0) + coalesce(coupon_discount, 0)
       END AS list_amount,
       coalesce(retail_discount, greatest(list_amount - paid - coalesce(coupon_discount, 0), 0)) AS retail_discount,
       coupon_discount
FROM typed
"""
STAGE_PRODUCTS = """
CREATE TEMP TABLE stage_products AS
SELECT DISTINCT files_id(product_id) AS product_id, files_id(name) AS name, files_id(department) AS department,
       files_id(category) AS category, files_id(brand) AS brand, files_number(unit_cost, $comma) AS unit_cost
FROM raw_products
"""
STAGE_PRODUCTS_FROM_LINES = """
CREATE TEMP TABLE stage_products AS
SELECT DISTINCT product_id, NULL::VARCHAR AS name, 'Unknown' AS department, 'Unknown' AS category,
       NULL::VARCHAR AS brand, NULL::DOUBLE AS unit_cost
FROM stage_lines
"""
CREATE_STAGE_ATTRIBUTES = (
    "CREATE TEMP TABLE stage_customer_attributes (customer_id VARCHAR, attribute VARCHAR, value VARCHAR)"
)
INSERT_STAGE_ATTRIBUTE = """
INSERT INTO stage_customer_attributes
SELECT DISTINCT files_id(customer_id), $attribute, files_id({column}) FROM raw_customers
"""
# One customer column, one value per row, for the personal-data classifier ({column}: attribute_<n>).
ATTRIBUTE_VALUES = "SELECT files_id(customer_id) AS customer_id, files_id({column}) AS value FROM raw_customers"
CREATE_STAGE_PROMOTIONS = (
    "CREATE TEMP TABLE stage_promotions (product_id VARCHAR, week INTEGER, display BOOLEAN, mailer BOOLEAN)"
)
CUSTOMERS_WITHOUT_LINES = """
SELECT count(DISTINCT customer_id) FROM stage_customer_attributes
WHERE customer_id NOT IN (SELECT customer_id FROM customers)
"""
TEMP_TABLES = ("stage_lines", "stage_products", "stage_customer_attributes", "stage_promotions", *RAW_TABLE.values())
PRODUCT_ATTRIBUTES = {
    "name": "files_id(name)",
    "department": "files_id(department)",
    "category": "files_id(category)",
    "brand": "files_id(brand)",
    "unit_cost": "files_number(unit_cost, $comma)",
}


def ingest(
    con: duckdb.DuckDBPyConnection,
    name: str,
    transactions: Path | str,
    products: Path | str | None = None,
    customers: Path | str | None = None,
    mapping: Path | str | dict | ColumnMapping | None = None,
) -> store.DatasetInfo:
    """Import a retailer's files as dataset ``name``, replacing any dataset of that name atomically.

    Parameters
    ----------
    con : the studio database.
    name : dataset name (lower-case letters, digits, '_').
    transactions : CSV or Parquet file, one row per purchased line.
    products, customers : optional CSV or Parquet files. Without products, products are the ids
        seen in the transactions, in department and category 'Unknown'.
    mapping : TOML file path, TOML text or parsed dict (see ``EXAMPLE_MAPPING``); None when the
        files use canonical column names.

    Raises
    ------
    DataError
        One line naming the file, the column and the first offending rows; nothing is changed.
    """
    store.check_dataset_name(name)
    spec = parse_mapping(mapping)
    paths = {"transactions": transactions, "products": products, "customers": customers}
    with con.cursor() as cur:
        inputs = {
            kind: open_table_file(cur, kind, path, spec.for_file(kind).delimiter)
            for kind, path in paths.items()
            if path is not None
        }
    columns = {kind: resolve_columns(table_file, spec.for_file(kind)) for kind, table_file in inputs.items()}

    def build(cur: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], dict]:
        kinds: list[ColumnVerdict] = []  # imported attributes
        left_out: list[ColumnVerdict] = []  # customer columns not imported (personal data), by file column
        cur.execute(PARSING_MACROS)
        rows = {
            "transactions": _stage_transactions(cur, inputs["transactions"], columns["transactions"], spec.transactions)
        }
        if "products" in inputs:
            rows["products"] = _stage_products(cur, inputs["products"], columns["products"], spec.products)
            checks.check_products_known(
                cur, inputs["transactions"], columns["transactions"]["product_id"], inputs["products"]
            )
        else:
            cur.execute(STAGE_PRODUCTS_FROM_LINES)
        cur.execute(CREATE_STAGE_ATTRIBUTES)
        if "customers" in inputs:
            rows["customers"], kinds, left_out = _stage_customers(
                cur, inputs["customers"], columns["customers"], spec.customers
            )
        cur.execute(CREATE_STAGE_PROMOTIONS)
        report = cleaning.finish_dataset(cur)
        personal_data.record_kinds(cur, kinds)
        details = _details(cur, inputs, columns, rows, spec, kinds, left_out)
        for table in TEMP_TABLES:
            cur.execute("DROP TABLE IF EXISTS " + table)
        return report, details

    try:
        return store.replace_dataset(con, name, SOURCE, build)
    except duckdb.Error as exc:  # not the input's fault (disk full, a lock, a bug): still one line, nothing changed
        log.debug("import of %s failed in DuckDB", inputs["transactions"].label, exc_info=True)
        first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise StoreError(f"importing {inputs['transactions'].label} failed in the database: {first_line}") from exc


def resolve_columns(table_file: TableFile, mapping: FileMapping) -> dict[str, MappedColumn]:
    """Find the file column of every canonical field, keyed by raw-table column.

    A field the mapping names must exist in the file; a field it does not name is looked up
    under its canonical name (exact, then ignoring case). Required fields must be found.
    """
    found: dict[str, MappedColumn] = {}
    time_named = any(mapping.column_for(f.name) for f in FIELDS[table_file.kind] if f.kind == "time")
    for field in FIELDS[table_file.kind]:
        raw = TIME_COLUMN if field.kind == "time" else field.name
        named = mapping.column_for(field.name)
        index: int | None
        if named:
            index = _column_index(table_file, named, field.name)
        elif raw in found or (field.kind == "time" and time_named):
            continue  # the mapping chose the other time field, or a "date" column came first
        else:
            index = _find(table_file, field.name)
        if index is not None:
            found[raw] = MappedColumn(field.name, raw, table_file.columns[index])
        elif field.required:
            raise DataError(
                f'{table_file.label}: required column "{field.name}" is missing (expected {field.description}); '
                f"the file has columns {table_file.describe_columns()}; map the right one: "
                f'[{table_file.kind}] {field.name} = "column name"'
            )
    if table_file.kind == "transactions" and TIME_COLUMN not in found:
        raise DataError(
            f'{table_file.label}: required column "date" is missing (expected the purchase day or time); the file has '
            f'columns {table_file.describe_columns()}; map the right one: [transactions] date = "column name" '
            '(or timestamp = "column name")'
        )
    if table_file.kind == "customers":
        key = found["customer_id"].file_column
        attributes = mapping.attributes
        if attributes is None:  # every other column is a demographic attribute
            attributes = tuple((c, c) for c in table_file.columns if c != key)
        for position, (attribute, column) in enumerate(attributes):
            index = _column_index(table_file, column, f"attribute {attribute}")
            found[f"attribute_{position}"] = MappedColumn(attribute, f"attribute_{position}", table_file.columns[index])
        names = [attribute for attribute, _ in attributes]
        unknown = [name for name in mapping.allow_attributes if name not in names]
        if unknown:
            listed = ", ".join(f'"{name}"' for name in names) or "none"
            raise DataError(
                f'mapping [customers]: allow_attributes names "{unknown[0]}", which is not an attribute of '
                f"{table_file.label}; its attributes are {listed}"
            )
    return found


def _stage_transactions(
    cur: duckdb.DuckDBPyConnection, source: TableFile, columns: dict[str, MappedColumn], mapping: FileMapping
) -> int:
    fields = [f.name for f in FIELDS["transactions"] if f.kind != "time"] + [TIME_COLUMN]
    rows = _load(cur, source, columns, fields)
    comma = mapping.decimal_separator == ","
    rules = [
        *_rules(columns, "missing", ("customer_id", "product_id", "basket_id", TIME_COLUMN, "quantity", "paid")),
        *_rules(columns, "number", ("quantity", "paid", "list_amount", "retail_discount", "coupon_discount")),
        # Negative quantities are returns: the zero_quantity cleaning rule drops and counts them.
        *_rules(columns, "negative", ("paid", "list_amount", "retail_discount", "coupon_discount")),
        *_rules(columns, "time", (TIME_COLUMN,)),
    ]
    checks.check_columns(cur, source, "raw_transactions", rules, decimal_comma=comma, date_format=mapping.date_format)
    if "basket_id" in columns:
        checks.check_baskets_have_one_customer(cur, source, columns["basket_id"])
    params = {"date_format": mapping.date_format, "comma": comma, "pseudonym_key": store.pseudonym_key(cur)}
    cur.execute(STAGE_LINES, params)
    return rows


def _stage_products(
    cur: duckdb.DuckDBPyConnection, source: TableFile, columns: dict[str, MappedColumn], mapping: FileMapping
) -> int:
    rows = _load(cur, source, columns, [f.name for f in FIELDS["products"]])
    comma = mapping.decimal_separator == ","
    rules = [
        *_rules(columns, "missing", ("product_id",)),
        *_rules(columns, "number", ("unit_cost",)),
        *_rules(columns, "negative", ("unit_cost",)),
    ]
    checks.check_columns(cur, source, "raw_products", rules, decimal_comma=comma)
    present = [name for name in PRODUCT_ATTRIBUTES if name in columns]
    checks.check_conflicting_keys(
        cur,
        source,
        "raw_products",
        columns["product_id"],
        [PRODUCT_ATTRIBUTES[name] for name in present],
        what=_and(present),
        params={"comma": comma},
    )
    cur.execute(STAGE_PRODUCTS, {"comma": comma})
    return rows


def _stage_customers(
    cur: duckdb.DuckDBPyConnection, source: TableFile, columns: dict[str, MappedColumn], mapping: FileMapping
) -> tuple[int, list[ColumnVerdict], list[ColumnVerdict]]:
    """Stage the customers' attributes; return rows read, the imported attributes' kinds, the left-out columns."""
    candidates = [column for raw, column in columns.items() if raw.startswith("attribute_")]
    rows = _load(cur, source, columns, ["customer_id"] + [column.raw for column in candidates])
    checks.check_columns(cur, source, "raw_customers", _rules(columns, "missing", ("customer_id",)))
    attributes, kinds, left_out = [], [], []
    for column in candidates:
        profile = personal_data.profile_column(cur, ATTRIBUTE_VALUES.format(column=column.raw), {})
        verdict = personal_data.classify(column.file_column, profile)
        if verdict.is_identifier and column.field not in mapping.allow_attributes:
            log.info("customer column %r left out: %s", column.file_column, verdict.reason)
            left_out.append(verdict)
            continue
        reason = verdict.reason + ("; imported as allow_attributes asks" if verdict.is_identifier else "")
        attributes.append(column)
        kinds.append(ColumnVerdict(column.field, verdict.kind, reason))
    checks.check_conflicting_keys(
        cur,
        source,
        "raw_customers",
        columns["customer_id"],
        [f"files_id({column.raw})" for column in attributes],
        what="value of " + _and([column.file_column for column in attributes]),
        params={},
    )
    for column in attributes:
        cur.execute(INSERT_STAGE_ATTRIBUTE.format(column=column.raw), {"attribute": column.field})
    return rows, kinds, left_out


def _rules(columns: dict[str, MappedColumn], kind: str, raws: tuple[str, ...]) -> list[checks.ColumnRule]:
    return [checks.ColumnRule(columns[raw], kind) for raw in raws if raw in columns]


def _load(
    cur: duckdb.DuckDBPyConnection, source: TableFile, columns: dict[str, MappedColumn], fields: list[str]
) -> int:
    selection = [(raw, source.columns.index(columns[raw].file_column) if raw in columns else None) for raw in fields]
    return load_raw(cur, source, RAW_TABLE[source.kind], selection)


def _details(
    cur: duckdb.DuckDBPyConnection,
    inputs: dict,
    columns: dict,
    rows: dict,
    spec: ColumnMapping,
    kinds: list[ColumnVerdict],
    left_out: list[ColumnVerdict],
) -> dict:
    described = {}
    for kind, table_file in inputs.items():
        dropped = {verdict.column for verdict in left_out} if kind == "customers" else set()
        used = [column for column in columns[kind].values() if column.file_column not in dropped]
        described[kind] = {
            **table_file.to_json(),
            "rows": rows.get(kind),
            "columns_used": {column.field: column.file_column for column in used},
            "columns_ignored": [
                c for c in table_file.columns if c not in {column.file_column for column in used} | dropped
            ],
        }
    details = {
        "files": described,
        "mapping": spec.to_dict(),
        "baskets_from_customer_day": "basket_id" not in columns["transactions"],
        # personal data: customer columns not imported, and imported attributes never used as dimensions
        "left_out_columns": [verdict.to_json() for verdict in left_out],
        "identifier_attributes": [verdict.to_json() for verdict in kinds if verdict.is_identifier],
    }
    if "customers" in inputs:
        details["customers_without_transactions"] = int(cur.execute(CUSTOMERS_WITHOUT_LINES).fetchall()[0][0])
    return details


def _column_index(table_file: TableFile, name: str, purpose: str) -> int:
    index = _find(table_file, name)
    if index is None:
        raise DataError(
            f'{table_file.label}: the mapping names column "{name}" for {purpose}, but the file has no such column; '
            f"its columns are {table_file.describe_columns()}"
        )
    return index


def _find(table_file: TableFile, name: str) -> int | None:
    if name in table_file.columns:
        return table_file.columns.index(name)
    folded = [c.lower() for c in table_file.columns]
    return folded.index(name.lower()) if name.lower() in folded else None


def _and(names: list[str]) -> str:
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
