"""Import of a retailer's own files: good imports recomputed independently, every bad input
refused with one line naming file, column and rows while the existing dataset stays intact,
the CLI contract, and a kill -9 half-way through an import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from engine import cleaning, store
from engine.errors import DataError, StoreError
from engine.sources import files

ROOT = Path(__file__).resolve().parents[1]

CORPUS = ROOT / "tests" / "data" / "files"  # the good file set; its README says what each line exercises
MAPPING = (CORPUS / "mapping.toml").read_text()
HEADER, *TRANSACTIONS = (CORPUS / "transactions.csv").read_text().splitlines()  # TRANSACTIONS[0] is line 2
PRODUCTS = (CORPUS / "products.csv").read_text().splitlines()
CUSTOMERS = (CORPUS / "customers.csv").read_text().splitlines()


def write_set(folder: Path, transactions=None, products=None, customers=None, header=HEADER) -> dict[str, Path]:
    """Write a file set (defaults: the good one) and return ingest's keyword arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, lines in (
        ("transactions", [header, *(TRANSACTIONS if transactions is None else transactions)]),
        ("products", PRODUCTS if products is None else products),
        ("customers", CUSTOMERS if customers is None else customers),
    ):
        paths[kind] = folder / f"{kind}.csv"
        paths[kind].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def snapshot(con, name: str = "shop") -> dict:
    """What must not change when an import fails: registry version and counts, table contents."""
    info = store.get_dataset(con, name)
    with store.dataset_cursor(con, name) as cur:
        lines = cur.execute("SELECT * FROM lines ORDER BY ALL").fetchall()
        customers = cur.execute("SELECT * FROM customer_attributes ORDER BY ALL").fetchall()
    return {
        "version": info.version,
        "counts": (info.customers, info.products, info.baskets, info.lines),
        "lines": lines,
        "attributes": customers,
    }


@pytest.fixture
def shop(con, tmp_path):
    """The good file set ingested as dataset 'shop'; returns its snapshot."""
    files.ingest(con, "shop", **write_set(tmp_path / "good"), mapping=MAPPING)
    return snapshot(con)


def test_good_import_counts_ids_and_cleaning(con, tmp_path):
    paths = write_set(tmp_path / "good")
    info = files.ingest(con, "shop", **paths, mapping=MAPPING)

    assert (info.customers, info.products, info.baskets, info.lines) == (3, 4, 5, 7)
    assert info.source == "files" and info.first_day.isoformat() == "2024-01-02" and info.weeks == 3
    assert set(info.cleaning) == {rule.name for rule in cleaning.RULES}
    assert info.cleaning["zero_quantity"] == 1
    assert info.cleaning["merged_duplicate_lines"] == 1
    assert info.cleaning["list_below_paid"] == 1
    assert info.cleaning["unsold_products"] == 1
    assert info.details["customers_without_transactions"] == 1
    with store.dataset_cursor(con, "shop") as cur:
        found = sorted(r[0] for r in cur.execute("SELECT customer_id FROM customers").fetchall())
        assert found == sorted(store.pseudonymize(con, ["0007", "0042", "0043"]))  # leading zeros kept
        assert store.pseudonymize(con, ["42"])[0] not in found
        assert cur.execute(
            "SELECT product_id, name, unit_cost FROM products WHERE product_id = '00017'"
        ).fetchall() == [("00017", "Milk 1l", 0.6)]
        assert cur.execute("SELECT store_id FROM baskets WHERE basket_id = 'B003'").fetchall() == [("001",)]
        c0007, c0043 = store.pseudonymize(con, ["0007", "0043"])
        attributes = dict(
            cur.execute(
                "SELECT attribute, value FROM customer_attributes WHERE customer_id = $c", {"c": c0043}
            ).fetchall()
        )
        assert attributes == {"age_group": "Unknown", "income_group": "35-49K"}
        assert cur.execute(
            "SELECT has_demographics FROM customers WHERE customer_id = $c", {"c": c0007}
        ).fetchall() == [(False,)]


def test_revenue_per_customer_matches_pandas_to_the_cent(con, tmp_path):
    paths = write_set(tmp_path / "good")
    files.ingest(con, "shop", **paths, mapping=MAPPING)
    raw = pd.read_csv(paths["transactions"], dtype=str)
    raw["qty"] = raw["qty"].astype(float)
    raw["amount_paid"] = raw["amount_paid"].astype(float)
    kept = raw[(raw["qty"] > 0) & (raw["amount_paid"] > 0)]
    by_member = kept.groupby("member")["amount_paid"].sum().round(2)
    expected = dict(zip(store.pseudonymize(con, list(by_member.index)), by_member, strict=True))
    with store.dataset_cursor(con, "shop") as cur:
        found = dict(
            cur.execute(
                "SELECT b.customer_id, round(sum(l.paid), 2) FROM lines l JOIN baskets b USING (basket_id) GROUP BY 1"
            ).fetchall()
        )
    assert found == expected


def test_canonical_names_need_no_mapping_and_a_basket_is_customer_day(con, tmp_path):
    rows = [
        "transaction,customer_id,product_id,date,quantity,paid",
        "t1,0042,00017,2024-01-02,1,1.50",
        "t2,0042,00018,2024-01-02,1,2.00",
        "t3,0042,00017,2024-01-03,1,1.50",
        "t4,0043,00017,2024-01-02,2,3.00",
    ]
    path = tmp_path / "sales.csv"
    path.write_text("\n".join(rows) + "\n")
    people = tmp_path / "people.csv"
    people.write_text("customer_id,age_band,kids\n0042,35-44,2\n0043,65+,0\n")
    info = files.ingest(con, "plain", path, customers=people)  # no products file, no mapping
    raw = pd.read_csv(path, dtype=str)
    assert info.baskets == raw.groupby(["customer_id", "date"]).ngroups == 3
    assert info.details["baskets_from_customer_day"] is True
    with store.dataset_cursor(con, "plain") as cur:
        assert cur.execute("SELECT DISTINCT department, category FROM products").fetchall() == [("Unknown", "Unknown")]
        c0042, c0043 = store.pseudonymize(con, ["0042", "0043"])
        assert cur.execute("SELECT basket_id FROM baskets WHERE customer_id = $c", {"c": c0043}).fetchall() == [
            (c0043 + "|2024-01-02",)  # the customer's pseudonym, never the raw id
        ]
        assert cur.execute("SELECT sum(list_amount), sum(paid) FROM lines").fetchall() == [(8.0, 8.0)]
        found = cur.execute("SELECT * FROM customer_attributes ORDER BY ALL").fetchall()
        assert sorted(found) == sorted(
            [(c0042, "age_band", "35-44"), (c0042, "kids", "2"), (c0043, "age_band", "65+"), (c0043, "kids", "0")]
        )  # every column other than customer_id is an attribute


def test_column_names_with_quotes_semicolons_and_sql_import_as_plain_names(con, shop, tmp_path):
    nasty = 'x"; DROP TABLE lines; --'
    header = f'order_ref,member,"from;where",order_date,"{nasty.replace(chr(34), chr(34) * 2)}",select,list,shop'
    paths = write_set(tmp_path / "nasty", header=header)
    mapping = {
        "transactions": {
            "basket_id": "order_ref",
            "customer_id": "member",
            "product_id": "from;where",
            "date": "order_date",
            "date_format": "%d/%m/%Y",
            "quantity": nasty,
            "paid": "select",
            "list_amount": "list",
        },
        "products": {"product_id": "sku", "name": "title"},
    }
    info = files.ingest(con, "nasty", paths["transactions"], paths["products"], mapping=mapping)
    assert info.details["files"]["transactions"]["delimiter"] == ","
    assert info.details["files"]["transactions"]["columns_used"]["quantity"] == nasty
    assert (info.baskets, info.lines) == (5, 7)
    assert snapshot(con) == shop  # the other dataset and its lines table are untouched
    assert snapshot(con, "nasty")["lines"] == shop["lines"]  # same values as the plainly named file


def bad_quantity(rows):
    rows[1] = rows[1].replace(",1,1.00,", ",two,1.00,")
    rows[5] = rows[5].replace(",3,3.60,", ",n/a,3.60,")


def bad_paid(rows):
    rows[2] = rows[2].replace(",1.75,2.00,", ",-2.50,2.00,")


def bad_dates(rows):
    rows[0] = rows[0].replace("02/01/2024", "31/02/2024")
    rows[8] = rows[8].replace("22/01/2024", "2024-13-01")


# (case, how to spoil the good transactions, products, customers, expected message)
BAD_CASES = [
    (
        "non-numeric quantity",
        bad_quantity,
        None,
        None,
        'transactions.csv: column "qty" (quantity) must be a number; lines 3, 7: "two", "n/a"',
    ),
    (
        "negative paid",
        bad_paid,
        None,
        None,
        'transactions.csv: column "amount_paid" (paid) must not be negative; line 4: "-2.50"; '
        "returns and refunds cannot be imported: remove those rows",
    ),
    (
        "unparseable dates",
        bad_dates,
        None,
        None,
        'transactions.csv: column "order_date" (date) must be a date in the format "%d/%m/%Y" (date_format) or ISO '
        'like 2024-01-31; lines 2, 10: "31/02/2024", "2024-13-01"',
    ),
    (
        "conflicting duplicate products",
        None,
        PRODUCTS + ["00017,Milk 2l,DAIRY,MILK,0.60", "00019,Eggs x6,DAIRY,EGGS,0.95"],
        None,
        'products.csv: column "sku" (product_id) repeats 2 ids with conflicting attributes: "00017" (lines 2, 8), '
        '"00019" (lines 5, 9); each id must have one name, department, category and unit_cost',
    ),
    (
        "product missing from products file",
        None,
        [p for p in PRODUCTS if not p.startswith("00020")],
        None,
        'transactions.csv: column "sku" (product_id) names 1 product missing from products.csv: '
        '"00020" (lines 8, 10); add them to products.csv or leave the products file out',
    ),
    (
        "conflicting duplicate customers",
        None,
        None,
        CUSTOMERS + ["0042,35-44,50-74K"],
        'customers.csv: column "member" (customer_id) repeats 1 id with conflicting attributes: "0042" (lines 2, 5); '
        "each id must have one value of age_group and income_group",
    ),
    (
        "basket of two customers",
        lambda rows: rows.__setitem__(3, rows[3].replace("B002", "B001")),
        None,
        None,
        'transactions.csv: column "order_ref" (basket_id) gives 1 basket id to several customers: '
        '"B001" (lines 2, 3, 4)',
    ),
    (
        "empty customer id",
        lambda rows: rows.__setitem__(6, rows[6].replace(",0007,", ", ,")),
        None,
        None,
        'transactions.csv: column "member" (customer_id) must not be empty; line 8',
    ),
]


@pytest.mark.parametrize(
    ("case", "spoil", "products", "customers", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_values_are_refused_and_change_nothing(con, shop, tmp_path, case, spoil, products, customers, expected):
    rows = list(TRANSACTIONS)
    if spoil:
        spoil(rows)
    paths = write_set(tmp_path / "bad", transactions=rows, products=products, customers=customers)
    with pytest.raises(DataError) as caught:
        files.ingest(con, "shop", **paths, mapping=MAPPING)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)
    assert snapshot(con) == shop
    assert [d.name for d in store.list_datasets(con)] == ["shop"]


def spoil_file(folder: Path, case: str) -> tuple[dict, object]:
    """Files and mapping for the cases about a whole file or its header."""
    paths = write_set(folder)
    transactions = paths["transactions"]
    mapping: object = MAPPING
    if case == "missing required column":
        transactions.write_text("order_ref,sku,order_date,qty,amount_paid\nB001,00017,02/01/2024,1,1.00\n")
        mapping = {
            "transactions": {
                "basket_id": "order_ref",
                "product_id": "sku",
                "date": "order_date",
                "date_format": "%d/%m/%Y",
                "quantity": "qty",
                "paid": "amount_paid",
            }
        }
    elif case == "mapping names a column the file lacks":
        mapping = MAPPING.replace('quantity = "qty"', 'quantity = "quantity_sold"')
    elif case == "header but no rows":
        transactions.write_text(HEADER + "\n")
    elif case == "zero-byte file":
        transactions.write_bytes(b"")
    elif case == "blank first line":
        transactions.write_text("\n\n")
    elif case == "not UTF-8":
        transactions.write_bytes((HEADER + "\n" + TRANSACTIONS[0] + "\n").encode() + b"B009,0042,00017,caf\xe9\n")
    elif case == "ragged line":
        transactions.write_text(
            "\n".join([HEADER, TRANSACTIONS[0], TRANSACTIONS[1] + ",extra", TRANSACTIONS[2]]) + "\n"
        )
    elif case == "excel workbook":
        transactions.write_bytes(b"PK\x03\x04 not really a workbook")
    elif case == "corrupt gzip":
        transactions.write_bytes(b"\x1f\x8b\x08\x00 this is not deflate data at all")
    elif case == "corrupt parquet":
        transactions.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    elif case == "missing file":
        transactions.unlink()
    return paths, mapping


FILE_CASES = [
    (
        "missing required column",
        'transactions.csv: required column "customer_id" is missing (expected the customer: member, card or household '
        'number); the file has columns "order_ref", "sku", "order_date", "qty", "amount_paid"; map the right one: '
        '[transactions] customer_id = "column name"',
    ),
    (
        "mapping names a column the file lacks",
        'transactions.csv: the mapping names column "quantity_sold" for quantity, but the file has no such column; '
        'its columns are "order_ref", "member", "sku", "order_date", "qty",',
    ),
    ("header but no rows", "transactions.csv: the file has a header but no rows"),
    ("zero-byte file", "transactions.csv: the file is empty (0 bytes)"),
    ("blank first line", "transactions.csv: line 1 is blank; expected the header line"),
    ("not UTF-8", "transactions.csv: not UTF-8 text: line 3 has byte 0xe9"),
    (
        "ragged line",
        "transactions.csv: line 3 cannot be read as CSV: it has 9 fields, the header has 8 (separated by ','); "
        "the line reads 'B001,0042,00018,02/01/2024,1,1.00,,001,extra'",
    ),
    ("excel workbook", "transactions.csv: this is a zip archive or an Excel workbook"),
    ("corrupt gzip", "transactions.csv: the gzip-compressed file is damaged: "),
    ("corrupt parquet", "transactions.csv: cannot be read as Parquet: No magic bytes found at end of file"),
    ("missing file", "transactions file not found:"),
]


@pytest.mark.parametrize(("case", "expected"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_files_are_refused_and_change_nothing(con, shop, tmp_path, case, expected):
    paths, mapping = spoil_file(tmp_path / "bad", case)
    with pytest.raises(DataError) as caught:
        files.ingest(con, "shop", **paths, mapping=mapping)
    assert str(caught.value).startswith(expected), str(caught.value)
    assert snapshot(con) == shop


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def test_cli_ingest_files_json_and_one_line_error(tmp_path):
    paths = write_set(tmp_path / "good")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(MAPPING)
    db = str(tmp_path / "studio.duckdb")
    common = ["--products", str(paths["products"]), "--customers", str(paths["customers"]), "--mapping", str(mapping)]
    done = run_cli(
        "ingest", "files", "--name", "shop", "--transactions", str(paths["transactions"]), *common, "--db", db, "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"dataset", "customers", "products", "baskets", "lines", "dropped"} <= set(result)
    assert (result["dataset"], result["customers"], result["products"], result["baskets"], result["lines"]) == (
        "shop",
        3,
        4,
        5,
        7,
    )
    assert result["dropped"]["zero_quantity"] == 1

    rows = list(TRANSACTIONS)
    bad_quantity(rows)
    bad = write_set(tmp_path / "bad", transactions=rows)
    done = run_cli(
        "ingest", "files", "--name", "shop", "--transactions", str(bad["transactions"]), *common, "--db", db, "--json"
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith('error: transactions.csv: column "qty" (quantity) must be a number; lines 3, 7')
    with store.connect(db) as check:
        assert store.get_dataset(check, "shop").version == result["version"]


KILLED_IMPORT = """
import sys, time
from engine import cleaning, store
from engine.sources import files

finish = cleaning.finish_dataset

def finish_then_hang(cur):
    report = finish(cur)  # the old schema is dropped and the new tables filled, uncommitted
    print("halfway", flush=True)
    time.sleep(120)
    return report

cleaning.finish_dataset = finish_then_hang
files.ingest(store.connect(sys.argv[1]), "shop", sys.argv[2])
"""


def test_import_killed_halfway_leaves_the_old_dataset(tmp_path):
    db = tmp_path / "studio.duckdb"
    with store.connect(db) as con:
        files.ingest(con, "shop", **write_set(tmp_path / "good"), mapping=MAPPING)
        before = snapshot(con)
    bigger = tmp_path / "bigger.csv"
    with bigger.open("w") as out:
        out.write("basket_id,customer_id,product_id,date,quantity,paid\n")
        for i in range(20_000):
            out.write(f"b{i // 4},{i // 4 % 97:04d},{i % 50:05d},2024-02-{1 + i % 28:02d},1,{1 + i % 7}.25\n")
    script = tmp_path / "killed_import.py"
    script.write_text(textwrap.dedent(KILLED_IMPORT))
    child = subprocess.Popen(
        [sys.executable, str(script), str(db), str(bigger)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout.readline().strip() == "halfway", child.stderr.read()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    with store.connect(db) as con:
        assert snapshot(con) == before
        assert [d.name for d in store.list_datasets(con)] == ["shop"]
        after = files.ingest(con, "shop", bigger)  # the database is usable: a new import commits
        assert after.version != before["version"] and after.lines == 20_000


def test_database_failure_is_one_line_and_changes_nothing(tmp_path):
    db = tmp_path / "studio.duckdb"
    paths = write_set(tmp_path / "good")
    with store.connect(db) as con:
        files.ingest(con, "shop", **paths, mapping=MAPPING)
        before = snapshot(con)
    with store.connect(db, read_only=True) as con:  # the database refuses every write
        with pytest.raises(StoreError, match=r"^importing transactions\.csv failed in the database: .*read-only"):
            files.ingest(con, "shop", **paths, mapping=MAPPING)
        assert snapshot(con) == before
