"""The TOML column mapping of a retailer's files: one parse for file, text and dict; clear errors."""

from __future__ import annotations

import tomllib

import pytest

from engine.errors import DataError
from engine.sources.files import EXAMPLE_MAPPING, parse_mapping
from engine.sources.mapping import ColumnMapping


def test_example_mapping_parses_the_same_from_text_file_and_dict(tmp_path):
    path = tmp_path / "mapping.toml"
    path.write_text(EXAMPLE_MAPPING)
    from_text = parse_mapping(EXAMPLE_MAPPING)
    assert parse_mapping(path) == from_text
    assert parse_mapping(str(path)) == from_text
    assert parse_mapping(tomllib.loads(EXAMPLE_MAPPING)) == from_text
    assert parse_mapping(from_text) is from_text
    transactions = from_text.transactions
    assert transactions.column_for("quantity") == "qty" and transactions.column_for("paid") == "amount_paid"
    assert transactions.column_for("basket_id") == "order_ref" and transactions.column_for("timestamp") is None
    assert transactions.date_format == "%d/%m/%Y" and transactions.decimal_separator == "."
    assert from_text.products.column_for("name") == "title"
    assert from_text.customers.attributes == (("age_group", "age_group"), ("income_group", "income_group"))
    assert parse_mapping(from_text.to_dict()) == from_text  # the details round-trip


def test_no_mapping_means_canonical_names():
    for empty in (None, "", {}):
        mapping = parse_mapping(empty)
        assert mapping == ColumnMapping()
        assert mapping.transactions.columns == () and mapping.customers.attributes is None


def test_attributes_as_a_table_rename_columns():
    mapping = parse_mapping({"customers": {"customer_id": "member", "attributes": {"age_band": "AGE_DESC"}}})
    assert mapping.customers.attributes == (("age_band", "AGE_DESC"),)


BAD_MAPPINGS = [
    ("[transaction]\ncustomer_id = 'm'", "mapping: unknown section [transaction]; expected sections: transactions,"),
    ("[transactions]\nqtty = 'q'", "mapping [transactions]: unknown key 'qtty'; expected one of: basket_id,"),
    ("[transactions]\nquantity = 3", "mapping [transactions]: quantity must be a column name in quotes, found int 3"),
    ("[transactions]\nquantity = ''", "mapping [transactions]: quantity must be a column name in quotes, found ''"),
    ("[transactions]\ndate = 'd'\ntimestamp = 't'", "mapping [transactions]: give date or timestamp, not both"),
    ("[transactions]\ndate_format = 'dd/mm/yyyy'", "mapping [transactions]: date_format must be strftime codes"),
    ("[products]\ndecimal_separator = ';'", 'mapping [products]: decimal_separator must be "." or ",", found \';\''),
    ("[products]\ndelimiter = ';;'", "mapping [products]: delimiter must be one character"),
    ("[products]\ndate_format = '%Y'", "mapping [products]: unknown key 'date_format'"),
    ("[customers]\nattributes = 'age'", "mapping [customers]: attributes must be a list of column names"),
    ("[customers]\nattributes = ['a', 'a']", "mapping [customers]: attributes lists 'a' more than once"),
    ("transactions = 'x'", "mapping: [transactions] must be a table of key = \"column\", found 'x'"),
    ("[transactions]\nquantity = qty\n", "mapping: not valid TOML: Invalid value (at line 2, column 12)"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_MAPPINGS, ids=[b[1][:40] for b in BAD_MAPPINGS])
def test_bad_mappings_say_what_is_wrong(text, expected):
    with pytest.raises(DataError) as caught:
        parse_mapping(text)
    assert str(caught.value).startswith(expected), str(caught.value)


def test_missing_mapping_file_and_wrong_type(tmp_path):
    with pytest.raises(DataError, match=r"^mapping file .*nope\.toml not found"):
        parse_mapping(tmp_path / "nope.toml")
    with pytest.raises(DataError, match=r"^mapping: expected TOML text, a TOML file or a dict, found list"):
        parse_mapping([("transactions", {})])
