"""Column mapping of a retailer's files: which column of each file holds which canonical field.

A mapping is TOML with one section per file; each key is a canonical field, each value the
column of the file that holds it (see ``EXAMPLE_MAPPING``). A field the mapping does not name
is looked up under its own canonical name, so files that already use canonical names need no
mapping at all. Options per section: ``date_format`` (strftime codes, transactions only),
``decimal_separator`` ("." or ","), ``delimiter`` (one character; detected from the header
line when absent) and, for customers, ``attributes``: the demographic columns, kept as
categories (a list of column names, or a table ``attribute name = "column"``; absent: every
column other than the customer id), and ``allow_attributes``: attributes the import would leave
out as personal data (``engine.personal_data``: emails, phones, card numbers, names, free text,
values unique per customer) but that are not, imported anyway and never offered as a segment.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DataError

EXAMPLE_MAPPING = """\
[transactions]          # canonical name = column in the file
basket_id = "order_ref" # optional: when absent, a basket is one customer's purchases on one day
customer_id = "member"
product_id = "sku"
date = "order_date"     # or timestamp = "..."
date_format = "%d/%m/%Y"  # optional, strftime codes
quantity = "qty"
paid = "amount_paid"    # amount the customer paid for the line
list_amount = "amount_before_discount"  # optional
store_id = "shop"       # optional
[products]
product_id = "sku"
name = "title"          # name, department, category, brand, unit_cost: all optional
[customers]
customer_id = "member"
attributes = ["age_group", "income_group"]   # demographic attributes, kept as categories
# Columns of personal data (emails, phones, card numbers, names, free text, values unique per
# customer) are left out, and the import report says why. To import one the check got wrong:
# allow_attributes = ["loyalty_code"]   # imported, but never a KPI, segment or pricing dimension
"""

FILE_KINDS = ("transactions", "products", "customers")


@dataclass(frozen=True)
class Field:
    """One canonical field a file may provide."""

    name: str
    kind: str  # "id" (text key, leading zeros kept) | "text" | "number" | "time"
    required: bool
    description: str


FIELDS: dict[str, tuple[Field, ...]] = {
    "transactions": (
        Field("basket_id", "id", False, "the basket: order or receipt number"),
        Field("customer_id", "id", True, "the customer: member, card or household number"),
        Field("product_id", "id", True, "the product: SKU or article number"),
        Field("date", "time", False, "the purchase day"),
        Field("timestamp", "time", False, "the purchase date and time"),
        Field("quantity", "number", True, "the number of units bought"),
        Field("paid", "number", True, "the amount the customer paid for the line"),
        Field("list_amount", "number", False, "the shelf amount before discounts"),
        Field("retail_discount", "number", False, "the retailer's discount on the line"),
        Field("coupon_discount", "number", False, "the coupon discount on the line"),
        Field("store_id", "id", False, "the store"),
    ),
    "products": (
        Field("product_id", "id", True, "the product: SKU or article number"),
        Field("name", "text", False, "the product name"),
        Field("department", "text", False, "the department"),
        Field("category", "text", False, "the category"),
        Field("brand", "text", False, "the brand"),
        Field("unit_cost", "number", False, "the cost of one unit"),
    ),
    "customers": (Field("customer_id", "id", True, "the customer: member, card or household number"),),
}

OPTIONS: dict[str, tuple[str, ...]] = {
    "transactions": ("date_format", "decimal_separator", "delimiter"),
    "products": ("decimal_separator", "delimiter"),
    "customers": ("attributes", "allow_attributes", "delimiter"),
}

DELIMITERS = (",", ";", "\t", "|")  # what header detection tries, in order of preference
DECIMAL_SEPARATORS = (".", ",")


@dataclass(frozen=True)
class FileMapping:
    """How the columns of one file map to canonical fields.

    ``columns`` holds only what the mapping names explicitly: (canonical field, file column).
    """

    kind: str
    columns: tuple[tuple[str, str], ...] = ()
    date_format: str | None = None
    decimal_separator: str = "."
    delimiter: str | None = None
    attributes: tuple[tuple[str, str], ...] | None = None  # (attribute name, file column); None: all others
    allow_attributes: tuple[str, ...] = ()  # attribute names imported even when classified as personal data

    def column_for(self, field_name: str) -> str | None:
        """The file column the mapping names for ``field_name``, or None."""
        return dict(self.columns).get(field_name)

    def to_dict(self) -> dict:
        """The section as TOML-like data (for the dataset details)."""
        out: dict = dict(self.columns)
        if self.date_format is not None:
            out["date_format"] = self.date_format
        if self.decimal_separator != ".":
            out["decimal_separator"] = self.decimal_separator
        if self.delimiter is not None:
            out["delimiter"] = self.delimiter
        if self.attributes is not None:
            out["attributes"] = dict(self.attributes)
        if self.allow_attributes:
            out["allow_attributes"] = list(self.allow_attributes)
        return out


@dataclass(frozen=True)
class ColumnMapping:
    """The mapping of all three files (an empty section: canonical names)."""

    transactions: FileMapping = field(default_factory=lambda: FileMapping("transactions"))
    products: FileMapping = field(default_factory=lambda: FileMapping("products"))
    customers: FileMapping = field(default_factory=lambda: FileMapping("customers"))

    def for_file(self, kind: str) -> FileMapping:
        return getattr(self, kind)

    def to_dict(self) -> dict:
        return {kind: self.for_file(kind).to_dict() for kind in FILE_KINDS if self.for_file(kind).to_dict()}


def parse_mapping(source: ColumnMapping | Path | str | Mapping | None) -> ColumnMapping:
    """Read and validate a column mapping.

    Parameters
    ----------
    source : a TOML file path, TOML text, an already-parsed dict, a ``ColumnMapping``, or None
        (the files use canonical column names). A string with no ``=``, ``[`` or line break is
        taken as a file path.

    Raises
    ------
    DataError
        One line naming the section and key at fault and what was expected.
    """
    if source is None:
        return ColumnMapping()
    if isinstance(source, ColumnMapping):
        return source
    if isinstance(source, Path) or (isinstance(source, str) and _looks_like_path(source)):
        source = _read_toml_file(Path(source))
    elif isinstance(source, str):
        source = _parse_toml(source, "mapping")
    if not isinstance(source, Mapping):
        raise DataError(f"mapping: expected TOML text, a TOML file or a dict, found {type(source).__name__}")
    unknown = [key for key in source if key not in FILE_KINDS]
    if unknown:
        raise DataError(f"mapping: unknown section [{unknown[0]}]; expected sections: {', '.join(FILE_KINDS)}")
    sections = {}
    for kind in FILE_KINDS:
        section = source.get(kind, {})
        if not isinstance(section, Mapping):
            raise DataError(f'mapping: [{kind}] must be a table of key = "column", found {_describe(section)}')
        sections[kind] = _parse_section(kind, section)
    return ColumnMapping(**sections)


def _looks_like_path(text: str) -> bool:
    # TOML with any content has "=" or "[" in it; a one-line string without them is a file name.
    return bool(text.strip()) and not any(char in text for char in "=[\n")


def _read_toml_file(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"mapping file {path} not found: expected a TOML file (see the example mapping)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name}: the mapping is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return _parse_toml(text, path.name)


def _parse_toml(text: str, label: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{label}: not valid TOML: {exc}") from None


def _parse_section(kind: str, section: Mapping) -> FileMapping:
    field_names = [f.name for f in FIELDS[kind]]
    allowed = field_names + list(OPTIONS[kind])
    for key in section:
        if key not in allowed:
            raise DataError(f"mapping [{kind}]: unknown key {key!r}; expected one of: {', '.join(allowed)}")
    columns = tuple((name, _column_name(kind, name, section[name])) for name in field_names if name in section)
    if "date" in section and "timestamp" in section:
        raise DataError(f"mapping [{kind}]: give date or timestamp, not both")
    return FileMapping(
        kind=kind,
        columns=columns,
        date_format=_date_format(kind, section.get("date_format")),
        decimal_separator=_choice(kind, "decimal_separator", section.get("decimal_separator", "."), DECIMAL_SEPARATORS),
        delimiter=_delimiter(kind, section.get("delimiter")),
        attributes=_attributes(kind, section["attributes"]) if "attributes" in section else None,
        allow_attributes=_allowed_attributes(kind, section.get("allow_attributes", [])),
    )


def _column_name(kind: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"mapping [{kind}]: {key} must be a column name in quotes, found {_describe(value)}")
    return value


def _date_format(kind: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "%" not in value:
        raise DataError(
            f'mapping [{kind}]: date_format must be strftime codes in quotes like "%d/%m/%Y", found {_describe(value)}'
        )
    return value


def _choice(kind: str, key: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        expected = " or ".join(f'"{c}"' for c in choices)
        raise DataError(f"mapping [{kind}]: {key} must be {expected}, found {_describe(value)}")
    return value  # type: ignore[return-value]


def _delimiter(kind: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 1 or value in '"\n\r':
        raise DataError(
            f'mapping [{kind}]: delimiter must be one character such as ";" or "\\t", found {_describe(value)}'
        )
    return value


def _attributes(kind: str, value: object) -> tuple[tuple[str, str], ...]:
    if isinstance(value, list):
        pairs = [(_column_name(kind, "attributes", item), item) for item in value]
    elif isinstance(value, Mapping):
        pairs = [(str(name), _column_name(kind, f"attributes.{name}", column)) for name, column in value.items()]
    else:
        raise DataError(
            f'mapping [{kind}]: attributes must be a list of column names like ["age_group"], found {_describe(value)}'
        )
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"mapping [{kind}]: attributes lists {duplicates[0]!r} more than once")
    return tuple(pairs)


def _allowed_attributes(kind: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DataError(
            f'mapping [{kind}]: allow_attributes must be a list of attribute names like ["loyalty_code"], '
            f"found {_describe(value)}"
        )
    names = [_column_name(kind, "allow_attributes", item) for item in value]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"mapping [{kind}]: allow_attributes lists {duplicates[0]!r} more than once")
    return tuple(names)


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
