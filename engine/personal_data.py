"""Personal data among customer attributes: which columns are direct identifiers, which attributes are dimensions.

A customer file's columns become attributes (``customer_attributes``), and every attribute is
a candidate KPI breakdown, customer segment and pricing segment. A column that names a person
(an email address, a phone number, a card number, a name, free text, or any value that is
unique per customer) must never be one: a "segment" of one customer is that customer. The
file import (``engine.sources.files``) classifies each column with ``classify`` and leaves
direct identifiers out unless the mapping forces them in (``allow_attributes``); it records
each imported attribute's kind in ``customer_attribute_kinds``. ``usable_attributes`` is what
segment, KPI and pricing pickers offer: never an identifier, even a forced one.

Rules, in order (the first that holds gives the reason; none holds: a category):

1. Value patterns, as a share of the customers with a value (over a sample of the distinct values):
   email addresses (>= ``EMAIL_SHARE``: an email cannot be mistaken for a category), payment
   card numbers (13-19 digits, spaces or dashes allowed, Luhn-valid; >= ``PATTERN_SHARE``, as
   one random digit string in ten passes Luhn), phone numbers (7-15 digits in a phone layout)
   and person names ("Anna Smith", "Smith, Anna"; two-word categories such as "Single Female"
   have that shape too, so names also need many distinct values or common first names).
2. Column names: a word of the name says email, phone, name, address, card or bank number,
   government id or date of birth (``IDENTIFIER_NAMES``), e.g. ``full_name``, ``E-Mail``,
   ``mobilePhone``, ``card_number``, ``iban``, ``ssn``.
3. Free text: values average more than ``FREE_TEXT_LENGTH`` characters, or most values have
   ``FREE_TEXT_WORDS`` words or more and are spread like rule 4's.
4. Nearly unique: more than ``CATEGORY_MAX`` distinct values, and either distinct values are at
   least ``UNIQUE_SHARE`` of the customers or at least ``SINGLETON_SHARE`` of the customers are
   alone in their value (the k-anonymity of Sweeney, "k-anonymity: a model for protecting
   privacy", 2002, with k = 2 failing for most customers).

Why these thresholds let real demographics through: age bands, income bands, household size,
kids yes/no and loyalty tiers have at most about 15 values, below ``CATEGORY_MAX`` = 20, so
rules 3-4 never apply and their values have no identifier pattern. A postal region with 40
values over 500 customers has 12 customers per value on average: 8% distinct, almost no
customer alone. Rule 4 does flag a region column once most customers are alone in their
region (tiny files), which is what a re-identifying column is.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb

from engine import store

KINDS = ("attribute", "identifier")

CATEGORY_MAX = 20  # at most this many distinct values: a category, never "nearly unique" or "spread"
UNIQUE_SHARE = 0.9  # distinct values / customers with a value, at or above: unique per customer
SINGLETON_SHARE = 0.5  # customers alone in their value / customers with a value, at or above: nearly unique
SPREAD_SHARE = 0.5  # distinct values / customers for names and multi-word text (categories repeat, names do not)
PATTERN_SHARE = 0.5  # share of customers with a card number, phone number or name that makes the column one
EMAIL_SHARE = 0.1  # emails are unambiguous: a tenth of the customers is enough
FIRST_NAME_SHARE = 0.3  # name-shaped values starting with a common first name: names even when few
FREE_TEXT_LENGTH = 40  # mean characters per value above which a column is free text
FREE_TEXT_WORDS = 3  # words per value that make it "multi-word"
SAMPLE_VALUES = 2000  # distinct values the patterns are checked on (a hash-ordered, so random, subset)

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(\.[\w-]+)*\.[^\W\d_]{2,}")
CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
PHONE = re.compile(r"\+?[\d\s().\-/]{7,24}")
DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")  # has a phone's digits, is not one
THOUSANDS = re.compile(r"\d{1,3}([.,]\d{3})+([.,]\d+)?(\s*-\s*\d{1,3}([.,]\d{3})+([.,]\d+)?)?")  # 100.000-149.999
NAME_PARTICLES = frozenset("van von de da del der den di du la le bin al ten ter".split())
NAME_WORD = re.compile(r"[^\W\d_][^\W\d_'’.-]*(?:['’-][^\W\d_]+)*\.?")

# Common given names (English, German, French, Spanish, Italian, Dutch, Nordic, Polish, Turkish, Arabic).
FIRST_NAMES = frozenset(
    """
    james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony mark
    paul steven andrew kenneth joshua kevin brian george edward peter jack harry oliver noah liam lucas leo adam
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen nancy lisa betty margaret sandra
    ashley emily emma olivia sophia sophie mia charlotte amelia grace chloe lucy hannah laura julia anna anne
    hans peter klaus jurgen stefan andreas thomas michael markus lukas jonas felix max paul maria ursula monika
    petra sabine claudia andrea katharina lena lea jean pierre louis michel philippe nicolas julien camille
    marie nathalie isabelle sylvie juan jose carlos luis jorge pedro miguel javier antonio manuel carmen lucia
    ana isabel marco giuseppe giovanni francesco alessandro luca matteo giulia francesca chiara sara jan piet
    kees daan sem bram eva sanne anouk lars erik nils sven johan ingrid astrid karin piotr krzysztof tomasz
    agnieszka katarzyna mehmet mustafa ahmet ayse fatma emine mohammed muhammad ahmed ali omar fatima aisha
    """.split()
)


def _words(alternatives: str) -> re.Pattern:
    return re.compile(rf"(^|_)({alternatives})(_|$)")


# What a column name says, matched on its words (lower case, split on non-letters and camelCase).
IDENTIFIER_NAMES: tuple[tuple[str, re.Pattern], ...] = (
    ("email addresses", _words(r"e_?mail|e_?mail_?address")),
    ("phone numbers", _words(r"phone|telephone|tel|mobile|cell_?phone|fax|msisdn")),
    (
        "person names",
        _words(
            r"(full|first|last|given|family|middle|maiden|nick|user|customer|contact|member)_?name|surname|forename"
        ),
    ),
    ("person names", re.compile(r"^names?$")),
    ("payment card or bank account numbers", re.compile(r"^cards?$")),
    ("postal addresses", _words(r"address|addr|street|house_?number|postal_?address")),
    (
        "payment card or bank account numbers",
        _words(r"card_?(number|no|num|nr|id)|(credit|debit|payment)_?card|iban|(bank_?)?account_?(number|no)"),
    ),
    (
        "government id numbers",
        _words(r"ssn|social_?security(_?number)?|passport(_?number)?|national_?id|tax_?id|nino|driver_?licen[cs]e"),
    ),
    ("dates of birth", _words(r"date_?of_?birth|birth_?date|dob|birthday")),
)


@dataclass(frozen=True)
class ColumnProfile:
    """What the rules look at in one column: counts over customers, and a sample of its values.

    Values are trimmed; blank values are missing. One value per customer.
    """

    customers: int  # customers with a value
    distinct: int  # distinct values
    singletons: int  # values held by exactly one customer (= customers alone in their value)
    mean_length: float  # characters per customer's value
    sample: tuple[tuple[str, int], ...]  # (value, customers holding it), up to SAMPLE_VALUES distinct values

    @classmethod
    def of_values(cls, values: Iterable[str | None]) -> ColumnProfile:
        """The profile of one value per customer (None or blank: no value)."""
        counts = Counter(v.strip() for v in values if v is not None and v.strip())
        customers = sum(counts.values())
        ordered = sorted(counts.items(), key=lambda item: hashlib.sha256(item[0].encode()).digest())
        return cls(
            customers=customers,
            distinct=len(counts),
            singletons=sum(1 for n in counts.values() if n == 1),
            mean_length=sum(len(v) * n for v, n in counts.items()) / customers if customers else 0.0,
            sample=tuple(ordered[:SAMPLE_VALUES]),
        )

    def share(self, predicate: Callable[[str], bool]) -> float:
        """Share of the sampled customers whose value satisfies ``predicate``."""
        total = sum(n for _, n in self.sample)
        return sum(n for v, n in self.sample if predicate(v)) / total if total else 0.0

    @property
    def spread(self) -> bool:
        """Many distinct values, repeated little: how names and free text look, never a category."""
        return self.distinct > CATEGORY_MAX and self.distinct >= SPREAD_SHARE * self.customers

    @property
    def nearly_unique(self) -> bool:
        """Most values name one customer: distinct for nearly every customer, or most customers alone in theirs."""
        return self.distinct > CATEGORY_MAX and (
            self.distinct >= UNIQUE_SHARE * self.customers or self.singletons >= SINGLETON_SHARE * self.customers
        )


@dataclass(frozen=True)
class ColumnVerdict:
    """A column's kind ('attribute' or 'identifier') and the one-line reason for it."""

    column: str
    kind: str
    reason: str

    def __post_init__(self) -> None:
        assert self.kind in KINDS, f"kind must be one of {KINDS}, found {self.kind!r}"

    @property
    def is_identifier(self) -> bool:
        return self.kind == "identifier"

    def to_json(self) -> dict:
        return {"column": self.column, "reason": self.reason}


def classify(column: str, profile: ColumnProfile) -> ColumnVerdict:
    """Classify one customer column (see the module docstring for the rules and thresholds)."""
    what = _identifier_by_values(profile) or _identifier_by_name(column) or _identifier_by_spread(profile)
    if what:
        return ColumnVerdict(column, "identifier", f"{what} (direct identifier)")
    return ColumnVerdict(
        column, "attribute", f"category: {profile.distinct} distinct values over {profile.customers} customers"
    )


def classify_values(column: str, values: Iterable[str | None]) -> ColumnVerdict:
    """``classify`` over one value per customer."""
    return classify(column, ColumnProfile.of_values(values))


def is_email(value: str) -> bool:
    return EMAIL.search(value) is not None


def is_card_number(value: str) -> bool:
    """13-19 digits (spaces or dashes between them allowed) whose Luhn checksum holds (ISO/IEC 7812)."""
    if not CARD.fullmatch(value):
        return False
    digits = [int(d) for d in reversed(re.sub(r"\D", "", value))]
    doubled = [d * 2 - 9 if d * 2 > 9 else d * 2 for d in digits[1::2]]
    return (sum(digits[::2]) + sum(doubled)) % 10 == 0


def is_phone_number(value: str) -> bool:
    """7-15 digits (ITU-T E.164) in a phone layout: a leading + or 0, separators, or 10 digits or more.

    Dates, thousands-separated amounts and plain 7-9 digit numbers (amounts, codes) are not phones.
    """
    if not PHONE.fullmatch(value) or DATE.fullmatch(value) or THOUSANDS.fullmatch(value):
        return False
    digits = sum(c.isdigit() for c in value)
    laid_out = value[0] in "+(0" or any(c in value for c in " ().-/") or digits >= 10
    return 7 <= digits <= 15 and laid_out


def is_person_name(value: str) -> bool:
    """Two to four capitalized words, particles (van, de, ...) aside: "Anna Smith", "Smith, Anna", "J. de Vries"."""
    words = value.replace(",", " ").split()
    named = [w for w in words if w.lower() not in NAME_PARTICLES]
    return (
        2 <= len(words) <= 4
        and len(named) >= 2
        and all(NAME_WORD.fullmatch(w) and w[0].isupper() and not (len(w) > 2 and w.isupper()) for w in named)
    )


def has_first_name(value: str) -> bool:
    words = value.replace(",", " ").split()
    return bool(words) and any(w.lower().strip(".") in FIRST_NAMES for w in (words[0], words[-1]))


def _identifier_by_values(profile: ColumnProfile) -> str | None:
    if profile.customers == 0:
        return None
    if profile.share(is_email) >= EMAIL_SHARE:
        return "email addresses"
    if profile.share(is_card_number) >= PATTERN_SHARE:
        return "payment card numbers"
    if profile.share(is_phone_number) >= PATTERN_SHARE:
        return "phone numbers"
    named = profile.share(is_person_name)
    if named >= PATTERN_SHARE and (
        profile.spread or profile.share(lambda v: is_person_name(v) and has_first_name(v)) >= FIRST_NAME_SHARE
    ):
        return "person names"
    return None


def _identifier_by_name(column: str) -> str | None:
    words = re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column).lower()).strip("_")
    for what, pattern in IDENTIFIER_NAMES:
        if pattern.search(words):
            return f"the column name says {what}"
    return None


def _identifier_by_spread(profile: ColumnProfile) -> str | None:
    if profile.customers == 0:
        return None
    if profile.mean_length > FREE_TEXT_LENGTH:
        return f"free text: values average {profile.mean_length:.0f} characters"
    if profile.spread and profile.share(lambda v: len(v.split()) >= FREE_TEXT_WORDS) >= PATTERN_SHARE:
        return "free text: many distinct multi-word values"
    if profile.nearly_unique:
        return f"nearly unique per customer: {profile.distinct} distinct values over {profile.customers} customers"
    return None


# ---- in the database ---------------------------------------------------------------------------

# {values}: a query of (customer_id, value), one of the named constants below or the import's.
PROFILE_COUNTS = """
WITH counted AS (
    SELECT value, count(DISTINCT customer_id) AS customers FROM ({values}) WHERE value IS NOT NULL GROUP BY value
)
SELECT coalesce(sum(customers), 0)::BIGINT, count(*), count(*) FILTER (WHERE customers = 1),
       coalesce(sum(length(value) * customers) / sum(customers), 0)::DOUBLE
FROM counted
"""
PROFILE_SAMPLE = """
SELECT value, count(DISTINCT customer_id) AS customers FROM ({values}) WHERE value IS NOT NULL
GROUP BY value ORDER BY hash(value), value LIMIT $sample
"""
STORED_VALUES = """
SELECT customer_id, nullif(trim(value), 'Unknown') AS value FROM customer_attributes WHERE attribute = $attribute
"""
ATTRIBUTES = "SELECT DISTINCT attribute FROM customer_attributes ORDER BY attribute"
HAS_KINDS = """
SELECT count(*) FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name = 'customer_attribute_kinds'
"""
RECORDED_KINDS = "SELECT attribute, kind, reason FROM customer_attribute_kinds"
RECORD_KIND = "INSERT INTO customer_attribute_kinds VALUES ($attribute, $kind, $reason)"


def profile_column(cur: duckdb.DuckDBPyConnection, values_sql: str, params: dict) -> ColumnProfile:
    """The ``ColumnProfile`` of a query of (customer_id, value) rows, computed in DuckDB.

    ``values_sql`` is a constant query (identifiers whitelisted by the caller); ``params`` its bound values.
    """
    counts = PROFILE_COUNTS.format(values=values_sql)
    customers, distinct, singletons, mean_length = cur.execute(counts, params).fetchall()[0]
    sample = cur.execute(PROFILE_SAMPLE.format(values=values_sql), {**params, "sample": SAMPLE_VALUES}).fetchall()
    return ColumnProfile(int(customers), int(distinct), int(singletons), float(mean_length), tuple(sample))


def record_kinds(cur: duckdb.DuckDBPyConnection, verdicts: Iterable[ColumnVerdict]) -> None:
    """Store each imported attribute's kind in ``customer_attribute_kinds`` (on a dataset's build cursor)."""
    for verdict in verdicts:
        cur.execute(RECORD_KIND, {"attribute": verdict.column, "kind": verdict.kind, "reason": verdict.reason})


def attribute_kinds(con: duckdb.DuckDBPyConnection, dataset: str) -> list[ColumnVerdict]:
    """The kind of every attribute of ``dataset``, by attribute name.

    An attribute imported from files has its kind recorded at import. One without a recorded kind
    (built-in sources, derived segments, datasets imported before the classification) is
    classified now from its stored values ('Unknown' counts as missing).
    """
    with store.dataset_cursor(con, dataset) as cur:
        return attribute_kinds_of(cur)


def attribute_kinds_of(cur: duckdb.DuckDBPyConnection) -> list[ColumnVerdict]:
    """``attribute_kinds`` on a cursor already on the dataset's schema."""
    attributes = [row[0] for row in cur.execute(ATTRIBUTES).fetchall()]
    recorded = {}
    if cur.execute(HAS_KINDS).fetchall()[0][0]:
        recorded = {row[0]: ColumnVerdict(*row) for row in cur.execute(RECORDED_KINDS).fetchall()}
    return [
        recorded.get(name) or classify(name, profile_column(cur, STORED_VALUES, {"attribute": name}))
        for name in attributes
    ]


def usable_attributes(con: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """Attributes of ``dataset`` that may be KPI, segment or pricing dimensions: never a direct identifier."""
    with store.dataset_cursor(con, dataset) as cur:
        return usable_attributes_of(cur)


def usable_attributes_of(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """``usable_attributes`` on a cursor already on the dataset's schema (the one list every
    segment picker and check uses)."""
    return [verdict.column for verdict in attribute_kinds_of(cur) if not verdict.is_identifier]
