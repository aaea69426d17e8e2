"""Every way the same retailer data can arrive (delimiters, decimal commas, gzip, byte-order
mark, Parquet, timestamps, discounts) imports to the same canonical lines as the plain CSV;
line and row numbers in messages point at the right place; encodings are named."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from engine import store
from engine.errors import DataError
from engine.sources import files

CORPUS = Path(__file__).resolve().parent / "data" / "files"
MAPPING = (CORPUS / "mapping.toml").read_text()
HEADER, *TRANSACTIONS = (CORPUS / "transactions.csv").read_text().splitlines()
PRODUCTS, CUSTOMERS = CORPUS / "products.csv", CORPUS / "customers.csv"


def lines_of(con, name: str) -> list[tuple]:
    with store.dataset_cursor(con, name) as cur:
        return cur.execute("SELECT * FROM lines ORDER BY ALL").fetchall()


@pytest.fixture
def reference(con):
    """Canonical lines of the plain CSV corpus."""
    files.ingest(con, "shop", CORPUS / "transactions.csv", PRODUCTS, CUSTOMERS, MAPPING)
    return lines_of(con, "shop")


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_semicolon_file_with_decimal_commas(con, reference, tmp_path):
    rows = [row.replace(",", ";").replace(".", ",") for row in [HEADER, *TRANSACTIONS]]
    path = write(tmp_path / "semicolons.csv", rows)
    mapping = MAPPING.replace('date_format = "%d/%m/%Y"', 'date_format = "%d/%m/%Y"\ndecimal_separator = ","')
    info = files.ingest(con, "semi", path, PRODUCTS, CUSTOMERS, mapping)
    assert info.details["files"]["transactions"]["delimiter"] == ";"
    assert lines_of(con, "semi") == reference


def test_decimal_commas_without_the_option_say_how_to_fix_it(con, tmp_path):
    rows = [row.replace(",", ";").replace(".", ",") for row in [HEADER, *TRANSACTIONS]]
    path = write(tmp_path / "semicolons.csv", rows)
    with pytest.raises(DataError) as caught:
        files.ingest(con, "semi", path, PRODUCTS, CUSTOMERS, MAPPING)
    assert str(caught.value) == (
        'semicolons.csv: column "amount_paid" (paid) must be a number; lines 2, 3, 4, 5, 6: "3,50", "1,00", "1,75", '
        '"1,75", "0,00" (9 rows in all); for decimal commas set decimal_separator = "," in [transactions]'
    )


def test_tab_delimited_gzip_file(con, reference, tmp_path):
    plain = write(tmp_path / "tabs.tsv", [row.replace(",", "\t") for row in [HEADER, *TRANSACTIONS]])
    packed = tmp_path / "tabs.tsv.gz"
    with plain.open("rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    info = files.ingest(con, "tabs", packed, PRODUCTS, CUSTOMERS, MAPPING)
    assert info.details["files"]["transactions"]["delimiter"] == "\t"
    assert lines_of(con, "tabs") == reference


def test_byte_order_mark_is_not_part_of_the_first_column_name(con, reference, tmp_path):
    path = write(tmp_path / "excel.csv", [HEADER, *TRANSACTIONS], encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    files.ingest(con, "bom", path, PRODUCTS, CUSTOMERS, MAPPING)  # order_ref is the first column
    assert lines_of(con, "bom") == reference


def test_utf16_file_is_named_as_such(con, tmp_path):
    path = write(tmp_path / "wide.csv", [HEADER, *TRANSACTIONS], encoding="utf-16")
    with pytest.raises(DataError, match=r"^wide\.csv: not UTF-8 text: line 1 has byte 0xff .*it looks like UTF-16"):
        files.ingest(con, "wide", path, mapping=MAPPING)


def test_parquet_with_typed_columns_imports_like_csv(con, reference, tmp_path):
    typed = pd.read_csv(CORPUS / "transactions.csv", dtype=str)  # ids stay text; a real date column, doubles
    typed["order_date"] = pd.to_datetime(typed["order_date"], format="%d/%m/%Y").dt.date
    for column in ("qty", "amount_paid", "amount_before_discount"):
        typed[column] = typed[column].astype(float)
    parquet = tmp_path / "transactions.parquet"
    typed.to_parquet(parquet, row_group_size=4)  # several row groups: row numbers must still be file order
    info = files.ingest(con, "pq", parquet, PRODUCTS, CUSTOMERS, MAPPING)
    assert info.details["files"]["transactions"]["format"] == "parquet"
    assert lines_of(con, "pq") == reference


def test_parquet_messages_name_row_numbers(con, tmp_path):
    typed = pd.read_csv(CORPUS / "transactions.csv", dtype=str)
    typed.loc[6, "qty"] = "lots"  # the 7th data row
    parquet = tmp_path / "transactions.parquet"
    typed.to_parquet(parquet, row_group_size=4)
    with pytest.raises(DataError) as caught:
        files.ingest(con, "pq", parquet, mapping=MAPPING)
    assert str(caught.value) == 'transactions.parquet: column "qty" (quantity) must be a number; row 7: "lots"'


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(con, tmp_path):
    rows = [TRANSACTIONS[0], "", TRANSACTIONS[1].replace("B001", '"B0\n01"'), TRANSACTIONS[2].replace(",1,", ",x,")]
    path = write(tmp_path / "odd.csv", [HEADER, *rows])
    with pytest.raises(DataError, match=r'^odd\.csv: column "qty" \(quantity\) must be a number; line 6: "x"$'):
        files.ingest(con, "odd", path, mapping=MAPPING)


def test_timestamps_and_discounts_without_shelf_amount(con, tmp_path):
    path = write(
        tmp_path / "pos.csv",
        [
            "receipt,card,article,date,sold_at,units,net,promo,coupon",  # "date" is not the mapped time
            "r1,00100,000123,n/a,2024-03-04 09:15:00,2,4.00,0.50,0.25",
            "r1,00100,000456,n/a,2024-03-04 09:15:00,1,2.00,,",
            "r2,00200,000123,n/a,2024-03-11T18:02:30,1,2.10,,0.30",
        ],
    )
    mapping = {
        "transactions": {
            "basket_id": "receipt", "customer_id": "card", "product_id": "article", "timestamp": "sold_at",
            "quantity": "units", "paid": "net", "retail_discount": "promo", "coupon_discount": "coupon",
        }
    }  # fmt: skip
    info = files.ingest(con, "pos", path, mapping=mapping)
    assert (info.baskets, info.lines, info.weeks) == (2, 3, 2)
    with store.dataset_cursor(con, "pos") as cur:
        assert cur.execute("SELECT basket_id, ts::VARCHAR FROM baskets ORDER BY 1").fetchall() == [
            ("r1", "2024-03-04 09:15:00"),
            ("r2", "2024-03-11 18:02:30"),
        ]
        found = cur.execute(
            "SELECT product_id, paid, list_amount, retail_discount, coupon_discount FROM lines ORDER BY basket_id, 1"
        ).fetchall()
    # shelf amount = paid + discounts when the file gives discounts but no shelf amount
    assert found == [("000123", 4.0, 4.75, 0.5, 0.25), ("000456", 2.0, 2.0, 0.0, 0.0), ("000123", 2.1, 2.4, 0.0, 0.3)]


@pytest.mark.slow  # about 10 s: a 35 MB file
def test_line_numbers_stay_exact_in_a_file_read_in_parallel(con, tmp_path):
    path = tmp_path / "big.csv"
    bad_line = 977_001
    with path.open("w") as out:
        out.write("basket_id,customer_id,product_id,date,quantity,paid\n")
        for line in range(2, 1_000_002):
            quantity = "1O" if line == bad_line else "1"  # a letter O where a zero belongs
            out.write(
                f"b{line // 5},{line // 5 % 1000:05d},{line % 300:05d},2024-05-{1 + line % 28:02d},{quantity},1.5\n"
            )
    assert path.stat().st_size > 32 << 20  # more than one 32 MiB CSV buffer, split across threads
    with pytest.raises(DataError, match=rf'^big\.csv: column "quantity" must be a number; line {bad_line}: "1O"$'):
        files.ingest(con, "big", path)
