"""Spreadsheet cells from data: text never starts a formula, numbers stay numbers (CSV, Excel)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest

from engine import spreadsheet_safety

# OWASP's CSV-injection starts (=, +, -, @, tab, carriage return) in the forms attacks use
HOSTILE = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def hostile_frame() -> pd.DataFrame:
    n = len(HOSTILE)
    return pd.DataFrame(
        {
            "name": HOSTILE,
            "mixed": ["plain", -4, 2.5, None, "=1", "-1", "ok"],  # object column: numbers and text
            "price": [-2.5, 0.0, 1.25, -1e6, 3.0, 4.0, 5.0][:n],
            "count": list(range(-3, n - 3)),
        }
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_a_formula_start_gets_a_quote_and_keeps_its_text(text):
    assert spreadsheet_safety.neutralize(text) == "'" + text


@pytest.mark.parametrize("value", ["Milk 2%", "a=b", "", "'=already quoted", -2.5, -3, 0, None, float("nan")])
def test_anything_else_is_left_alone(value):
    assert spreadsheet_safety.neutralize(value) is value


def test_csv_text_is_quoted_and_numbers_stay_numbers():
    text = spreadsheet_safety.csv_text(hostile_frame())
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["name", "mixed", "price", "count"]
    assert [r[0] for r in rows[1:]] == ["'" + h for h in HOSTILE]
    assert [r[1] for r in rows[1:]] == ["plain", "-4", "2.5", "", "'=1", "'-1", "ok"]
    assert "-2.5," in text and "-1000000.0," in text  # numbers written bare: a spreadsheet reads them as numbers
    for h in HOSTILE:  # quoted as a whole: a ';' list separator cannot split it into a new cell
        assert "\"'" + h.replace('"', '""') + '"' in text
    assert not any(
        field.startswith(spreadsheet_safety.FORMULA_STARTS) for row in rows for field in row if not _is_number(field)
    )


def test_xlsx_has_no_formula_and_numbers_stay_numeric():
    book = openpyxl.load_workbook(io.BytesIO(spreadsheet_safety.xlsx_bytes(hostile_frame(), "Sheet")))
    sheet = book["Sheet"]
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    names = [sheet.cell(r, 1).value for r in range(2, len(HOSTILE) + 2)]
    assert names == ["'" + h.replace("\r", "\n") for h in HOSTILE]  # XML reads a carriage return as a line feed
    prices = [sheet.cell(r, 3) for r in range(2, len(HOSTILE) + 2)]
    assert [c.value for c in prices] == [-2.5, 0.0, 1.25, -1e6, 3.0, 4.0, 5.0]
    assert {c.data_type for c in prices} == {"n"}
    assert sheet.cell(3, 2).value == -4 and sheet.cell(3, 2).data_type == "n"  # a number in a text column
    assert sheet.cell(2, 4).value == -3 and sheet.cell(2, 4).data_type == "n"


def test_a_hostile_column_label_is_neutralized_too():
    frame = pd.DataFrame({"=1+1": [1.0], "delta: =x": ["=y"]})
    assert list(spreadsheet_safety.neutralize_frame(frame).columns) == ["'=1+1", "delta: =x"]
    assert spreadsheet_safety.csv_text(frame).splitlines()[0] == '"\'=1+1","delta: =x"'


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True
