"""Spreadsheet files whose cells from data are read as text, never as formulas (CSV, Excel).

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (tab and carriage return are stripped first, so they hide one): a product named
``=HYPERLINK("http://x","y")`` becomes a live link, ``=cmd|' /C calc'!A0`` a command. Following
OWASP's guidance on CSV injection (https://owasp.org/www-community/attacks/CSV_Injection),
every text cell that starts with one of those characters gets a leading single quote, and every
text field of a CSV is quoted (so a locale whose list separator is ``;`` cannot split a cell and
start a formula inside it). Numbers are left alone: a negative price stays a number.

Every CSV and Excel file the studio writes goes through ``csv_text`` or ``xlsx_bytes``.
"""

from __future__ import annotations

import csv
import io

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: object) -> object:
    """``value`` as a cell: text that a spreadsheet would run gets a leading ``'``; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell and column label neutralized; numeric columns untouched."""
    out = frame.rename(columns=neutralize)
    for i in range(out.shape[1]):  # by position: labels may repeat
        values = out.iloc[:, i]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue
        out.isetitem(i, values.astype(object).map(neutralize))
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text (no index): text neutralized and quoted, numbers bare."""
    return neutralize_frame(frame).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)


def xlsx_bytes(frame: pd.DataFrame, sheet_name: str) -> bytes:
    """``frame`` as the bytes of an Excel workbook with one sheet (no index), text neutralized."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        neutralize_frame(frame).to_excel(writer, sheet_name=sheet_name, index=False)
        sheet = writer.sheets[sheet_name]
        formulas = [cell.coordinate for row in sheet.iter_rows() for cell in row if cell.data_type == "f"]
        assert not formulas, f"cells written as formulas: {formulas[:5]}"
    return buffer.getvalue()
