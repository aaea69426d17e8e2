"""Personal data stays out at import: the classifier on a corpus of identifiers and real
demographics, the import leaving identifiers out (no value of theirs anywhere in the database),
the allow-list, and ``usable_attributes`` never offering an identifier."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from engine import kpi, personal_data, segments, store
from engine.errors import DataError
from engine.personal_data import ColumnProfile, classify_values, is_card_number, is_phone_number
from engine.pricing import bundle as pricing_bundle
from engine.sources import files
from engine.sources.mapping import parse_mapping

CUSTOMERS = 500
FIRST = "Anna John Maria Peter Sophie Lucas Emma Noah Julia Liam Sara Jan Eva Lars Fatima Omar Chloe Marco Ines Tomasz"
LAST = "Smith Jones Müller Dubois Rossi Jansen Novak Garcia Silva Berg Kowalski Yilmaz Brown Taylor Martin Weber"
PEOPLE = [f"{first} {last}" for first in FIRST.split() for last in LAST.split()]  # 320 distinct names


def luhn_complete(prefix: str) -> str:
    """``prefix`` with the check digit that makes it Luhn-valid."""
    for check in "0123456789":
        if is_card_number(prefix + check):
            return prefix + check
    raise AssertionError(prefix)


def luhn_break(number: str) -> str:
    """The same number with a wrong check digit."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def spread(values: list[str], customers: int = CUSTOMERS, seed: int = 0) -> list[str]:
    """One value per customer, every value used, the rest drawn at random (a realistic category)."""
    rng = random.Random(seed)
    return values + [rng.choice(values) for _ in range(customers - len(values))]


# ---- the classifier ----------------------------------------------------------------------------

VALID_CARDS = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "5555-5555-5555-4444",
    "5105105105105100",
    "378282246310005",  # American Express, 15 digits
    "6011111111111117",
    "3530111333300000",
    "4222222222222",  # 13 digits
    luhn_complete("453201511283036"),
    luhn_complete("601100099013942"),
]
INVALID_CARDS = [luhn_break(c.replace(" ", "").replace("-", "")) for c in VALID_CARDS if len(c.replace(" ", "")) == 16]
PHONES = [
    "+44 20 7946 0958",
    "(555) 123-4567",
    "555-123-4567",
    "06 12 34 56 78",
    "+49 30 1234567",
    "030/1234567",
    "5551234567",
    "+1.555.123.4567",
    "0612345678",
    "+33 1 42 68 53 00",
]

# (column name, one value per customer, reason fragment): each must be a direct identifier. The
# column names say nothing, so the values alone must give the verdict.
IDENTIFIERS = [
    ("contact", [f"{p.lower().replace(' ', '.')}@example.com" for p in PEOPLE], "email addresses"),
    ("contact", spread(["anna.smith+shop@mail.example.co.uk", "o'brien@example.ie"], 20), "email addresses"),
    ("field_a", spread(PHONES, 30), "phone numbers"),
    ("field_b", spread(VALID_CARDS, 30), "payment card numbers"),
    ("field_c", ["Anna Smith", "John O'Brien", "Smith, Anna", "Jan de Vries", "Marie-Claire Dubois"], "person names"),
    ("field_d", PEOPLE, "person names"),  # no common first name needed: 320 names over 320 customers
    ("field_e", [f"Xander {name.split()[1]}{i}" for i, name in enumerate(PEOPLE)], "nearly unique"),
    ("ref", [f"CUST-{i:06d}" for i in range(CUSTOMERS)], "nearly unique per customer: 500 distinct values"),
    ("code", [f"{random.Random(i).getrandbits(32):08x}" for i in range(CUSTOMERS)], "nearly unique"),
    # 300 of 500 customers alone in their value: near-unique though 40% of values repeat
    ("zip", [f"Z{i:04d}" for i in range(300)] + [f"Y{i % 50:04d}" for i in range(200)], "nearly unique"),
    (
        "remarks",
        spread(["Prefers organic produce and usually shops on Saturday mornings with the kids"], 50),
        "free text: values average",
    ),
    ("likes", [f"likes {a} {b} wine" for a in FIRST.split() for b in LAST.split()], "free text: many distinct"),
]

# Real demographics: never identifiers (500 customers each, some values missing or 'Unknown').
REGIONS = [
    f"{side} {place}"
    for side in ("North", "South", "East", "West")
    for place in ("Riding", "Coast", "Valley", "Heights", "Moors", "Lakes", "Downs", "Fens", "Marches", "Wolds")
]  # 40 two-word capitalized names: the shape of person names, but 12 customers each on average
DEMOGRAPHICS = [
    ("age_band", spread(["18-24", "25-34", "35-44", "45-54", "55-64", "65+", ""])),
    (
        "income_band",
        spread(["Under 15K", "15-24K", "25-34K", "35-49K", "50-74K", "75-99K", "100-124K", "125-149K", "150K+"]),
    ),
    ("income_band", spread(["< 25.000", "25.000-49.999", "50.000-99.999", "100.000-149.999", "150.000+"])),
    ("household_size", spread(["1", "2", "3", "4", "5+", "Unknown"])),
    ("kids", spread(["yes", "no"])),
    ("has_kids", spread(["Y", "N", None])),
    ("loyalty_tier", spread(["Bronze", "Silver", "Gold", "Platinum", "Diamond"])),
    ("postal_region", spread(REGIONS)),
    ("postal_region", spread([f"{n:02d}" for n in range(10, 50)])),
    ("household", spread(["Single Female", "Single Male", "2 Adults Kids", "2 Adults No Kids", "1 Adult Kids"])),
    ("homeowner", spread(["Homeowner", "Renter", "Probable Owner", "Probable Renter", "Unknown"])),
    ("marital_status", spread(["Married", "Single", "Unknown"], 20)),  # a tiny file
    ("card_tier", spread(["Classic", "Gold", "Black"])),
    ("has_store_card", spread(["true", "false"])),
]


@pytest.mark.parametrize(("column", "values", "reason"), IDENTIFIERS, ids=[f"{i[0]}-{i[2][:20]}" for i in IDENTIFIERS])
def test_direct_identifiers_are_found_by_their_values(column, values, reason):
    verdict = classify_values(column, values)
    assert verdict.kind == "identifier" and verdict.is_identifier
    assert reason in verdict.reason and verdict.reason.endswith("(direct identifier)")
    assert not any(v in verdict.reason for v in values)  # the reason names no value


@pytest.mark.parametrize(("column", "values"), DEMOGRAPHICS, ids=[f"{d[0]}-{d[1][0]}" for d in DEMOGRAPHICS])
def test_real_demographics_stay_attributes(column, values):
    verdict = classify_values(column, values)
    assert verdict.kind == "attribute", verdict.reason
    assert verdict.reason.startswith("category: ")


def test_card_numbers_need_the_luhn_checksum():
    assert all(is_card_number(card) for card in VALID_CARDS)
    assert not any(is_card_number(card) for card in INVALID_CARDS) and len(INVALID_CARDS) >= 5
    assert not is_card_number("4111 1111 1111") and not is_card_number("41111111111111111111")  # 12, 20 digits
    verdict = classify_values("field_b", spread(INVALID_CARDS, 30))
    assert verdict.kind == "attribute", verdict.reason  # 16 digits failing Luhn: no card, and too long for a phone


def test_phone_numbers_in_several_layouts_but_not_dates_amounts_or_ranges():
    assert all(is_phone_number(phone) for phone in PHONES)
    for value in ("2024-01-31", "31/01/2024", "1250000", "100.000-149.999", "35-49", "12345", "5+"):
        assert not is_phone_number(value), value


NAMED = [
    "full_name",
    "FirstName",
    "last_name",
    "surname",
    "name",
    "E-Mail",
    "email",
    "emailAddress",
    "phone",
    "mobilePhone",
    "address",
    "street",
    "card_number",
    "credit_card",
    "iban",
    "ssn",
    "passport_no",
    "date_of_birth",
]


@pytest.mark.parametrize("column", NAMED)
def test_a_column_name_that_says_personal_data_is_enough(column):
    verdict = classify_values(column, spread(["yes", "no"]))  # even when the values look harmless
    assert verdict.kind == "identifier" and verdict.reason.startswith("the column name says ")


def test_profile_in_duckdb_equals_the_profile_in_python(con):
    values = IDENTIFIERS[-3][1] + [None, ""]  # the 'zip' corpus, plus missing values
    with con.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE t AS SELECT * FROM (VALUES " + ", ".join(["(?, ?)"] * len(values)) + ") v(c, v)",
            [x for i, v in enumerate(values) for x in (f"c{i}", v)],
        )
        in_sql = personal_data.profile_column(cur, "SELECT c AS customer_id, nullif(trim(v), '') AS value FROM t", {})
    in_python = ColumnProfile.of_values(values)
    assert (in_sql.customers, in_sql.distinct, in_sql.singletons) == (500, 350, 300)
    assert (in_sql.customers, in_sql.distinct, in_sql.singletons) == (
        in_python.customers,
        in_python.distinct,
        in_python.singletons,
    )
    assert in_sql.mean_length == pytest.approx(in_python.mean_length)
    assert sorted(in_sql.sample) == sorted(in_python.sample)


# ---- the import --------------------------------------------------------------------------------

PERSONAL = ("full_name", "email", "phone", "card_number")


def customer_file_set(folder: Path, customers: int = 60) -> tuple[dict[str, Path], dict[str, list[str]]]:
    """Transactions and a customers file with personal data; returns ingest's paths and the personal values."""
    rng = random.Random(7)
    ids = [f"{i:05d}" for i in range(1, customers + 1)]
    names = rng.sample(PEOPLE, customers)
    personal = {
        "full_name": names,
        "email": [f"{n.lower().replace(' ', '.')}@example.org" for n in names],
        "phone": [f"+44 20 7946 {rng.randrange(10_000):04d}" for _ in ids],
        "card_number": [luhn_complete(f"4{rng.randrange(10**14):014d}") for _ in ids],
        "loyalty_code": [f"LC{rng.getrandbits(40):010x}" for _ in ids],
    }
    income = [rng.choice(["Under 25K", "25-49K", "50-74K", "75-99K", "100K+"]) for _ in ids]
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["customer_id,product_id,date,quantity,paid"]
    lines += [f"{c},P{k},2024-01-{1 + (i + k) % 20:02d},1,{2 + k}.50" for i, c in enumerate(ids) for k in range(2)]
    (folder / "transactions.csv").write_text("\n".join(lines) + "\n")
    rows = ["customer_id," + ",".join([*personal, "income_band"])]
    rows += [",".join([c, *(f'"{personal[k][i]}"' for k in personal), income[i]]) for i, c in enumerate(ids)]
    (folder / "customers.csv").write_text("\n".join(rows) + "\n")
    return {"transactions": folder / "transactions.csv", "customers": folder / "customers.csv"}, personal


def every_text_in_the_database(con) -> list[str]:
    """Every VARCHAR value of every table in every schema (registry and settings included)."""
    with con.cursor() as cur:
        columns = cur.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND NOT internal AND data_type = 'VARCHAR'"
        ).fetchall()
        texts = []
        for schema, table, column in columns:
            sql = f'SELECT "{column}" FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'  # names from the catalog
            texts += [row[0] for row in cur.execute(sql).fetchall()]
    return texts


def test_identifiers_are_left_out_with_reasons_and_no_value_lands_anywhere(con, tmp_path):
    paths, personal = customer_file_set(tmp_path / "in")
    info = files.ingest(con, "shop", **paths)

    left_out = {item["column"]: item["reason"] for item in info.details["left_out_columns"]}
    assert set(left_out) == {*PERSONAL, "loyalty_code"}
    assert "person names" in left_out["full_name"] and "email addresses" in left_out["email"]
    assert "phone numbers" in left_out["phone"] and "payment card numbers" in left_out["card_number"]
    assert "nearly unique per customer" in left_out["loyalty_code"]
    assert all(reason.endswith("(direct identifier)") for reason in left_out.values())
    assert info.details["identifier_attributes"] == []
    customers = info.details["files"]["customers"]
    assert customers["columns_used"] == {"customer_id": "customer_id", "income_band": "income_band"}
    assert customers["columns_ignored"] == []  # left out is not ignored: it is said once, with its reason
    with store.dataset_cursor(con, "shop") as cur:
        assert cur.execute("SELECT DISTINCT attribute FROM customer_attributes").fetchall() == [("income_band",)]
        assert cur.execute("SELECT count(*) FROM customer_attributes").fetchall()[0][0] == 60
        kinds = cur.execute("SELECT attribute, kind FROM customer_attribute_kinds").fetchall()
    assert kinds == [("income_band", "attribute")]
    assert personal_data.usable_attributes(con, "shop") == ["income_band"]

    texts = every_text_in_the_database(con)
    assert any("income_band" in t for t in texts)  # the scan does see the dataset's tables
    for column, values in personal.items():
        for value in values:
            found = [t for t in texts if value in t]
            assert not found, f"{column} value {value!r} found in the database: {found[:2]}"
    con.execute("CHECKPOINT")
    stored = (tmp_path / "studio.duckdb").read_bytes()
    assert not any(value.encode() in stored for value in personal["email"] + personal["card_number"])


def test_the_allow_list_imports_a_flagged_column_that_is_never_a_dimension(con, tmp_path):
    paths, personal = customer_file_set(tmp_path / "in")
    mapping = '[customers]\nattributes = ["email", "income_band", "loyalty_code"]\nallow_attributes = ["loyalty_code"]'
    info = files.ingest(con, "shop", **paths, mapping=mapping)

    assert [item["column"] for item in info.details["left_out_columns"]] == ["email"]  # listed is not allowed
    assert [item["column"] for item in info.details["identifier_attributes"]] == ["loyalty_code"]
    assert info.details["files"]["customers"]["columns_ignored"] == ["full_name", "phone", "card_number"]
    with store.dataset_cursor(con, "shop") as cur:
        stored = cur.execute("SELECT DISTINCT value FROM customer_attributes WHERE attribute = 'loyalty_code'")
        assert sorted(row[0] for row in stored.fetchall()) == sorted(personal["loyalty_code"])
    kinds = {v.column: v for v in personal_data.attribute_kinds(con, "shop")}
    assert kinds["loyalty_code"].kind == "identifier" and "allow_attributes" in kinds["loyalty_code"].reason
    assert kinds["income_band"].kind == "attribute"
    assert personal_data.usable_attributes(con, "shop") == ["income_band"]
    # every picker and check of a dimension follows the same list
    assert kpi.segment_attributes(con, "shop") == ["income_band"]
    assert segments.attributes(con, "shop") == ["income_band"]
    with store.dataset_cursor(con, "shop") as cur:
        assert pricing_bundle.attributes(cur) == ["income_band"]
    with pytest.raises(DataError, match="no customer attribute 'loyalty_code'"):
        kpi.breakdown(con, "shop", by="segment", attribute="loyalty_code")


def test_allow_attributes_must_name_an_attribute_and_be_a_list(con, tmp_path):
    paths, _ = customer_file_set(tmp_path / "in")
    with pytest.raises(DataError, match=r'^mapping \[customers\]: allow_attributes names "emial", which is not an'):
        files.ingest(con, "shop", **paths, mapping='[customers]\nallow_attributes = ["emial"]')
    with pytest.raises(DataError, match=r"allow_attributes must be a list of attribute names"):
        parse_mapping('[customers]\nallow_attributes = "email"')
    with pytest.raises(DataError, match=r"allow_attributes lists 'email' more than once"):
        parse_mapping('[customers]\nallow_attributes = ["email", "email"]')
    mapping = parse_mapping('[customers]\nallow_attributes = ["email"]')
    assert mapping.customers.allow_attributes == ("email",)
    assert parse_mapping(mapping.to_dict()) == mapping  # the details round-trip
    assert "allow_attributes" in files.EXAMPLE_MAPPING and parse_mapping(files.EXAMPLE_MAPPING)


def test_usable_attributes_classifies_what_was_never_recorded(con, tmp_path):
    """Datasets imported before the classification (no kinds recorded) and derived segments."""
    paths, _ = customer_file_set(tmp_path / "in")
    files.ingest(con, "shop", **paths, mapping='[customers]\nallow_attributes = ["email"]')
    with store.dataset_cursor(con, "shop") as cur:
        cur.execute(
            "INSERT INTO customer_attributes SELECT customer_id, 'rfm_segment', "
            "CASE WHEN hash(customer_id) % 3 = 0 THEN 'Champions' ELSE 'Others' END FROM customers"
        )
    assert personal_data.usable_attributes(con, "shop") == ["income_band", "rfm_segment"]
    with store.dataset_cursor(con, "shop") as cur:
        cur.execute("DROP TABLE customer_attribute_kinds")  # as imported before this check existed
    kinds = {v.column: v.kind for v in personal_data.attribute_kinds(con, "shop")}
    assert kinds == {"email": "identifier", "income_band": "attribute", "rfm_segment": "attribute"}
    assert personal_data.usable_attributes(con, "shop") == ["income_band", "rfm_segment"]
