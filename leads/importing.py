"""CSV import of accounts, leads, opportunities and touchpoints: the engine.

Usable without the web UI (the demo loader calls it directly):

    table = csv_open(path_or_file_or_bytes)            # ImportFileError if unusable
    mapping = mapping_suggest("opportunities", table.headers)   # {field: column}
    result = rows_import(kind="opportunities", rows=table.rows(), mapping=mapping,
                         options=ImportOptions(stage_mapping={"Engaging": "demo"}))
    result.created, result.updated, result.unchanged, result.errors, result.notices

Contracts:

- `csv_open` reads and checks the whole file before anything is written: a file
  that is not delimited text, is in an unexpected encoding, is too large or
  has too many rows raises `ImportFileError` with a message for the user.
- `rows_import` upserts by natural key (accounts: external id, else domain,
  else case-insensitive name; leads: email; opportunities and touchpoints:
  external id). It is idempotent: importing the same rows again reports them
  unchanged and writes nothing. Blank cells never erase what is known. A row
  that fails validation (or that the database refuses) is reported in
  `errors` with its reasons and never blocks other rows.
- Rows are handled in batches (`BATCH_SIZE`): validated in Python, then one
  query per batch fetches the existing records by natural key, then only what
  changed is written with `bulk_create`/`bulk_update`, in one transaction per
  batch. `on_progress(batch_result)` runs inside that transaction, so a
  caller's progress record commits (or rolls back) with the batch's data.
- `dry_run=True` does everything except write (records that a row would
  create, e.g. a missing account, are remembered in memory so later rows see
  them).
- A row that creates an account looking like another one (the same name once
  case, punctuation and suffixes such as Inc or Corp are set aside, or the same
  domain), in Accord or created by an earlier row of the file, still imports
  and gets a `RowNotice` saying what to do if they are the same company.
  Notices are not errors (never in the rejected rows); finding them costs no
  query per row (accounts: none more per batch; opportunities: one per batch
  that creates accounts).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import functools
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from leads import signals
from leads.csv_safety import csv_safe_cell
from leads.models import (
    PUBLIC_MAIL_DOMAINS,
    Account,
    Campaign,
    Channel,
    ContentAsset,
    Lead,
    LeadStage,
    LeadStageChange,
    Opportunity,
    OpportunityStage,
    OpportunityStageChange,
    Product,
    Segment,
    Touchpoint,
    TouchpointType,
    company_name_key,
    lead_company_domain,
    normalise_domain,
)
from leads.services import LEAD_DATA_FIELDS

BATCH_SIZE = 2_000
ROW_ERROR_KEY = "row"  # errors about the row as a whole, not one field
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_ROWS = 500_000
NOTICES_KEPT = 200  # notices an ImportResult keeps (all of them are counted)
LOOKALIKES_PER_NOTICE = 3
KINDS = ("accounts", "leads", "opportunities", "touchpoints")


class ImportFileError(ValueError):
    """The file cannot be imported at all (not CSV, wrong encoding, too big...).
    Nothing was written. The message is written for the person who uploaded it."""


class ImportMappingError(ValueError):
    """The column mapping cannot be used. `errors` is {field: [messages]}."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


# --- Reading the file -----------------------------------------------------------------

_BINARY_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook (.xls) or Word document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)
_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Control characters that never occur in real CSV text (tab, CR, LF are fine).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SAVE_AS_CSV = (
    "In your spreadsheet, use “Save as… CSV UTF-8 (comma delimited)” and upload that file."
)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def csv_bytes_read(source, max_bytes: int | None = None) -> bytes:
    """The bytes of `source` (bytes, a path, or a binary file object), refusing
    (ImportFileError) anything larger than `max_bytes` (default
    settings.IMPORT_MAX_BYTES) without reading more than that."""
    max_bytes = max_bytes or getattr(settings, "IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    elif isinstance(source, str | Path):
        size = Path(source).stat().st_size
        if size > max_bytes:
            raise ImportFileError(
                f"The file is {_megabytes(size)}; imports are limited to "
                f"{_megabytes(max_bytes)}. Split it into smaller files."
            )
        data = Path(source).read_bytes()
    else:
        size = getattr(source, "size", None)
        if size is not None and size > max_bytes:
            raise ImportFileError(
                f"The file is {_megabytes(size)}; imports are limited to "
                f"{_megabytes(max_bytes)}. Split it into smaller files."
            )
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode()
    if len(data) > max_bytes:
        raise ImportFileError(
            f"The file is larger than {_megabytes(max_bytes)}, the limit for imports. "
            "Split it into smaller files."
        )
    return data


def _decode(data: bytes) -> tuple[str, str]:
    """(text, encoding). UTF-8 (with or without BOM), UTF-16 with a BOM, else
    Windows-1252 when it decodes to clean text. Latin-1 needs no separate try:
    every clean Latin-1 file decodes identically as Windows-1252, and the bytes
    where they differ (0x80-0x9F) are control characters in Latin-1."""
    if not data.strip():
        raise ImportFileError("The file is empty.")
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise ImportFileError(f"This file is {what}, not a CSV text file. {_SAVE_AS_CSV}")
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in data:
        raise ImportFileError(
            "The file contains binary data (NUL bytes), so it is not a CSV text file; "
            f"it may be UTF-16 text without a byte-order mark. {_SAVE_AS_CSV}"
        )
    else:
        candidates = ["utf-8", "cp1252"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        text = text.rstrip("\x1a")  # a DOS end-of-file marker some tools still write
        if _CONTROL_CHARACTERS.search(text):
            continue
        return text, encoding
    raise ImportFileError(
        "Accord cannot read the file's text: it is neither UTF-8 nor Windows-1252/Latin-1, "
        f"or it is not a text file at all. {_SAVE_AS_CSV}"
    )


def _sniff_delimiter(text: str) -> str:
    """The delimiter that gives the sample's rows a consistent number of columns
    (the most columns wins). Raises ImportFileError for text that is not a table."""
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rfind("\n")]
    best, best_width = None, 0
    for delimiter in _DELIMITERS:
        try:
            records = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r]
        except csv.Error:
            continue
        records = records[:50]
        if not records:
            continue
        width = len(records[0])
        data_rows = records[1:]
        consistent = sum(1 for r in data_rows if len(r) == width) >= 0.5 * len(data_rows)
        if width > best_width and consistent:
            best, best_width = delimiter, width
    if best_width == 1 and any(d in sample for d in _DELIMITERS):
        # One column, yet delimiters in the text at uneven places: prose, not a table.
        best = None
    if best is None:
        raise ImportFileError(
            "The file does not look like a CSV table: its rows do not have a consistent "
            f"number of columns separated by commas, semicolons or tabs. {_SAVE_AS_CSV}"
        )
    return best


@dataclass
class CsvTable:
    """A checked CSV file: its header and a way to iterate its rows.

    `rows()` yields one dict per record after the header ({column: value},
    every header present; values beyond the header's width under the key None,
    as csv.DictReader does), including blank records, so that row numbers
    (1 = the first row after the header) match the file."""

    headers: list[str]
    encoding: str
    delimiter: str
    row_count: int
    text: str = field(repr=False)

    def rows(self) -> Iterator[dict]:
        reader = csv.reader(io.StringIO(self.text), delimiter=self.delimiter)
        next(reader, None)
        headers = self.headers
        width = len(headers)
        for record in itertools.islice(reader, self.row_count):
            if not record:
                record = [""] * width
            row = dict(zip(headers, record, strict=False))
            if len(record) < width:
                for header in headers[len(record) :]:
                    row[header] = ""
            elif len(record) > width:
                row[None] = record[width:]
            yield row

    @property
    def delimiter_name(self) -> str:
        return _DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


def csv_open(source, *, max_bytes: int | None = None, max_rows: int | None = None) -> CsvTable:
    """Read and check a CSV file: `source` is bytes, a path, or a binary file
    object (an upload, a FieldFile, open(path, "rb")).

    Detects the encoding (UTF-8, UTF-8 with BOM, UTF-16 with BOM, else
    Windows-1252/Latin-1 only if that decodes to clean text), refuses binary
    files, sniffs the delimiter (, ; tab |), checks the header (no duplicate
    names) and parses every record once, so a broken file fails here and not
    half-way through an import. Limits: `settings.IMPORT_MAX_BYTES` and
    `settings.IMPORT_MAX_ROWS` unless given. Raises ImportFileError."""
    max_bytes = max_bytes or getattr(settings, "IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)
    max_rows = max_rows or getattr(settings, "IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)
    data = csv_bytes_read(source, max_bytes)
    text, encoding = _decode(data)
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError("The file is empty.")
        if not any(cell.strip() for cell in header):
            raise ImportFileError("The first row is empty; it should name the columns.")
        headers = _headers_clean(header)
        last_content_row = 0
        for row_count, record in enumerate(reader, start=1):
            if any(cell.strip() for cell in record):
                last_content_row = row_count
            if row_count > max_rows:
                raise ImportFileError(
                    f"The file has more than {max_rows:,} rows, the limit for one import. "
                    "Split it into smaller files."
                )
    except csv.Error as error:
        raise ImportFileError(
            f"The file is not valid CSV near line {reader.line_num}: {error}."
        ) from error
    if last_content_row == 0:
        raise ImportFileError("The file has a header row but no data rows.")
    # Trailing blank lines are not rows anyone meant to import: not counted.
    return CsvTable(
        headers=headers,
        encoding=encoding,
        delimiter=delimiter,
        row_count=last_content_row,
        text=text,
    )


def csv_sample(source, *, rows: int = 3, head_bytes: int = 65536) -> list[dict]:
    """The first `rows` rows of a CSV file, reading only its first bytes (for
    showing sample values beside the columns). The file was checked by
    csv_open at upload; this raises ImportFileError only if it changed."""
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            data = handle.read(head_bytes + 1)
    elif isinstance(source, bytes | bytearray):
        data = bytes(source[: head_bytes + 1])
    else:
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read(head_bytes + 1)
    if len(data) > head_bytes:
        # Cut at the last line end, on a character boundary of the encoding.
        newline = b"\n\x00" if data.startswith(codecs.BOM_UTF16_LE) else b"\n"
        if data.startswith(codecs.BOM_UTF16_BE):
            newline = b"\x00\n"
        cut = data.rfind(newline, 0, head_bytes)
        data = data[: cut + len(newline)] if cut > 0 else data[:head_bytes]
    table = csv_open(data)
    return list(itertools.islice(table.rows(), rows))


def _headers_clean(header: list[str]) -> list[str]:
    headers = []
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        name = name.strip().lstrip("\ufeff").strip() or f"Column {position}"
        if len(name) > 200:
            raise ImportFileError(
                "The first row does not look like a header row of column names "
                f"(column {position} is {len(name)} characters long)."
            )
        if name.lower() in seen:
            raise ImportFileError(
                f"The header row names the column “{name}” twice (columns "
                f"{seen[name.lower()]} and {position}); rename one of them."
            )
        seen[name.lower()] = position
        headers.append(name)
    return headers


# --- What can be imported ---------------------------------------------------------------


@dataclass(frozen=True)
class ImportField:
    """One Accord field a CSV column can be mapped to."""

    name: str
    label: str
    type: str = "text"  # text email domain int year decimal date datetime choice stage list
    required: bool = False
    help: str = ""
    synonyms: tuple[str, ...] = ()
    max_length: int | None = None
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for type "choice"


def _max_length(model, name: str) -> int | None:
    return model._meta.get_field(name).max_length


def _account_fields() -> tuple[ImportField, ...]:
    return (
        ImportField("name", "Account name", required=True, max_length=_max_length(Account, "name"),
                    synonyms=("account", "account name", "company", "company name",
                              "organisation", "organization", "name"),
                    help="The company's name. Matched case-insensitively when there is no domain."),
        ImportField("domain", "Domain", "domain", max_length=_max_length(Account, "domain"),
                    synonyms=("website", "web site", "url", "company domain", "domain name", "web"),
                    help="The web domain, e.g. acme.com (a URL is fine). Matches existing accounts."),
        ImportField("industry", "Industry", max_length=_max_length(Account, "industry"),
                    synonyms=("sector", "vertical")),
        ImportField("employees", "Employees", "int",
                    synonyms=("employee count", "number of employees", "headcount",
                              "company size", "size"),
                    help="A whole number; sets the segment (SMB, mid-market, enterprise)."),
        ImportField("annual_revenue", "Annual revenue (USD millions)", "decimal",
                    synonyms=("revenue", "annual revenue", "turnover")),
        ImportField("country", "Country", max_length=_max_length(Account, "country"),
                    synonyms=("office location", "headquarters", "hq", "hq country", "location")),
        ImportField("region", "Region", max_length=_max_length(Account, "region"),
                    synonyms=("territory", "regional office")),
        ImportField("year_established", "Year established", "year",
                    synonyms=("founded", "year founded", "established", "founded year")),
        ImportField("parent", "Parent account (name)", max_length=_max_length(Account, "name"),
                    synonyms=("subsidiary of", "parent company", "parent account", "parent"),
                    help="The name of another account, in Accord or in this file."),
        ImportField("technologies", "Technologies", "list",
                    synonyms=("tech stack", "technology", "technographics"),
                    help="Separated by semicolons, e.g. Salesforce; HubSpot."),
        ImportField("external_id", "External id", max_length=_max_length(Account, "external_id"),
                    synonyms=("account id", "crm id", "record id", "id"),
                    help="Your other system's id; matched before domain and name."),
    )  # fmt: skip


def _lead_fields() -> tuple[ImportField, ...]:
    channels = tuple((c.value, c.label) for c in Channel)
    return (
        ImportField("email", "Email", "email", required=True, max_length=254,
                    synonyms=("email address", "e mail", "mail", "work email",
                              "business email", "email id"),
                    help="Matches existing leads (case-insensitive)."),
        ImportField("name", "Full name",
                    synonyms=("full name", "contact name", "contact", "name", "person"),
                    help="Split into first and last name when those columns are not mapped."),
        ImportField("first_name", "First name", max_length=_max_length(Lead, "first_name"),
                    synonyms=("first name", "firstname", "given name", "forename")),
        ImportField("last_name", "Last name", max_length=_max_length(Lead, "last_name"),
                    synonyms=("last name", "lastname", "surname", "family name")),
        ImportField("title", "Job title", max_length=_max_length(Lead, "title"),
                    synonyms=("job title", "position", "role")),
        ImportField("phone", "Phone", max_length=_max_length(Lead, "phone"),
                    synonyms=("phone number", "telephone", "mobile", "tel")),
        ImportField("company", "Company", max_length=_max_length(Lead, "company"),
                    synonyms=("company name", "organisation", "organization", "account",
                              "employer")),
        ImportField("company_domain", "Company domain", "domain",
                    max_length=_max_length(Lead, "company_domain"),
                    synonyms=("domain", "website", "company website", "company domain"),
                    help="Matches the lead to an account (else the email's domain does; "
                         "public mail domains such as gmail.com never match)."),
        ImportField("country", "Country", max_length=_max_length(Lead, "country")),
        ImportField("region", "Region", max_length=_max_length(Lead, "region"),
                    synonyms=("territory",)),
        ImportField("industry", "Industry", max_length=_max_length(Lead, "industry"),
                    synonyms=("sector", "vertical")),
        ImportField("employees", "Employees", "int",
                    synonyms=("employee count", "number of employees", "headcount",
                              "company size")),
        ImportField("source_channel", "Source channel", "choice", choices=channels,
                    synonyms=("channel", "lead source", "source", "source channel"),
                    help="One of: " + ", ".join(label for _, label in channels) + ". "
                         "Kept only for leads that have no source yet."),
        ImportField("source_campaign", "Source campaign (name)",
                    synonyms=("campaign", "campaign name", "source campaign"),
                    help="The name of a campaign in Accord."),
        ImportField("created_at", "Created (date)", "datetime",
                    synonyms=("created", "created date", "created at", "create date",
                              "signup date", "date"),
                    help="When the lead was captured; used for new leads only."),
        ImportField("external_id", "External id", max_length=_max_length(Lead, "external_id"),
                    synonyms=("lead id", "contact id", "record id", "id")),
    )  # fmt: skip


def _opportunity_fields() -> tuple[ImportField, ...]:
    stages = ", ".join(s.value for s in OpportunityStage)
    return (
        ImportField("external_id", "External id", required=True,
                    max_length=_max_length(Opportunity, "external_id"),
                    synonyms=("opportunity id", "deal id", "opportunity_id", "record id", "id"),
                    help="Your other system's id for the deal; re-imports match on it."),
        ImportField("name", "Deal name", max_length=_max_length(Opportunity, "name"),
                    synonyms=("opportunity name", "deal name", "opportunity", "deal"),
                    help="Defaults to the account and product with the external id."),
        ImportField("account", "Account (name)", max_length=_max_length(Account, "name"),
                    synonyms=("account name", "company", "company name", "customer", "client"),
                    help="May be blank. An unknown name creates the account when "
                         "“create missing accounts” is on."),
        ImportField("account_domain", "Account domain", "domain",
                    max_length=_max_length(Account, "domain"),
                    synonyms=("domain", "company domain", "website")),
        ImportField("owner", "Owner (username or full name)",
                    synonyms=("sales agent", "agent", "sales rep", "rep", "owner name",
                              "assigned to", "salesperson", "account executive"),
                    help="A user's username or their first and last name."),
        ImportField("product", "Product (name)",
                    synonyms=("product name", "item", "sku"),
                    help="Matched ignoring case, spaces and punctuation (GTXPro = GTX Pro)."),
        ImportField("stage", "Stage", "stage", required=True,
                    synonyms=("deal stage", "opportunity stage", "pipeline stage", "status"),
                    help=f"One of {stages}, or a value mapped in the stage mapping option."),
        ImportField("amount", "Amount", "decimal",
                    synonyms=("close value", "value", "deal value", "deal size", "revenue",
                              "amount usd"),
                    help="Not negative; “$1,200.50” is fine."),
        ImportField("created_at", "Created (engage date)", "datetime",
                    synonyms=("engage date", "created date", "created", "open date",
                              "start date", "created at"),
                    help="Used for new deals only."),
        ImportField("closed_on", "Close date", "date",
                    synonyms=("close date", "closed date", "closed on", "date closed"),
                    help="Required for won and lost deals. On an open deal it is taken as "
                         "the expected close date."),
        ImportField("expected_close_on", "Expected close date", "date",
                    synonyms=("expected close", "expected close date", "forecast close",
                              "forecast close date")),
    )  # fmt: skip


def _touchpoint_fields() -> tuple[ImportField, ...]:
    types = tuple((t.value, t.label) for t in TouchpointType)
    channels = tuple((c.value, c.label) for c in Channel)
    return (
        ImportField("external_id", "Event id", required=True,
                    max_length=_max_length(Touchpoint, "external_id"),
                    synonyms=("event id", "touchpoint id", "activity id", "id"),
                    help="Unique per event; re-imports match on it."),
        ImportField("email", "Email", "email", required=True, max_length=254,
                    synonyms=("email address", "e mail", "lead email", "contact email"),
                    help="The lead's email; an unknown email creates the lead."),
        ImportField("type", "Type", "choice", required=True, choices=types,
                    synonyms=("touchpoint type", "event type", "activity type", "action"),
                    help="One of: " + ", ".join(label for _, label in types) + "."),
        ImportField("occurred_at", "Occurred at", "datetime", required=True,
                    synonyms=("timestamp", "occurred", "event time", "time", "date",
                              "event date"),
                    help="ISO 8601, e.g. 2025-03-01T14:05:00+01:00; without a time zone "
                         "the server's is assumed."),
        ImportField("channel", "Channel", "choice", choices=channels,
                    synonyms=("source", "medium"),
                    help="Defaults to the campaign's channel."),
        ImportField("campaign", "Campaign (name)", synonyms=("campaign name",),
                    help="The name of a campaign in Accord."),
        ImportField("asset", "Content asset (title)",
                    synonyms=("content", "asset title", "content title", "asset"),
                    help="The title of a content asset in Accord."),
        ImportField("url", "URL", max_length=_max_length(Touchpoint, "url"),
                    synonyms=("page", "page url", "link")),
    )  # fmt: skip


FIELDS: dict[str, tuple[ImportField, ...]] = {
    "accounts": _account_fields(),
    "leads": _lead_fields(),
    "opportunities": _opportunity_fields(),
    "touchpoints": _touchpoint_fields(),
}

NATURAL_KEY_HELP = {
    "accounts": "Rows match existing accounts by external id, else domain, else name.",
    "leads": "Rows match existing leads by email.",
    "opportunities": "Rows match existing deals by external id.",
    "touchpoints": "Rows match existing touchpoints by event id.",
}


def fields_for(kind: str) -> tuple[ImportField, ...]:
    try:
        return FIELDS[kind]
    except KeyError:
        raise ValueError(
            f"Unknown import kind {kind!r}; choose one of {', '.join(KINDS)}."
        ) from None


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def mapping_suggest(kind: str, headers: Iterable[str]) -> dict[str, str]:
    """{field: column} suggested from the headers: exact matches of the field's
    name, label or synonyms first (ignoring case, spaces and punctuation), then
    headers containing one of them. Each column is suggested at most once."""
    headers = list(headers)
    compact_headers = {header: _compact(header) for header in headers}
    candidates = {
        f.name: {_compact(c) for c in (f.name, f.label, *f.synonyms)} - {""}
        for f in fields_for(kind)
    }
    suggestion: dict[str, str] = {}
    used: set[str] = set()
    for name, keys in candidates.items():
        for header in headers:
            if header not in used and compact_headers[header] in keys:
                suggestion[name] = header
                used.add(header)
                break
    for name, keys in candidates.items():
        if name in suggestion:
            continue
        best, best_length = None, 0
        for header in headers:
            if header in used:
                continue
            for key in keys:
                if len(key) >= 4 and key in compact_headers[header] and len(key) > best_length:
                    best, best_length = header, len(key)
        if best is not None:
            suggestion[name] = best
            used.add(best)
    return suggestion


def mapping_check(kind: str, mapping: Mapping[str, str], headers: Iterable[str] | None = None):
    """Raise ImportMappingError unless every required field is mapped, every
    key is a field of `kind` and (given the headers) every column exists."""
    fields = {f.name: f for f in fields_for(kind)}
    errors: dict[str, list[str]] = {}
    header_set = set(headers) if headers is not None else None
    for name, column in mapping.items():
        if name not in fields:
            errors.setdefault(name, []).append(f"“{name}” is not a field of {kind}.")
        elif column and header_set is not None and column not in header_set:
            errors.setdefault(name, []).append(f"The file has no column “{column}”.")
    for f in fields.values():
        if f.required and not mapping.get(f.name):
            errors.setdefault(f.name, []).append(f"Choose the column that holds {f.label}.")
    if errors:
        raise ImportMappingError(errors)


# --- Options ------------------------------------------------------------------------------

# Foreign deal stages (matched ignoring case) -> ours. Our own values and
# labels are always accepted as well.
DEFAULT_STAGE_MAPPING: dict[str, str] = {
    "Prospecting": OpportunityStage.DISCOVERY,
    "Qualification": OpportunityStage.DISCOVERY,
    "Qualified": OpportunityStage.DISCOVERY,
    "Engaging": OpportunityStage.DEMO,
    "Needs analysis": OpportunityStage.DEMO,
    "Value proposition": OpportunityStage.PROPOSAL,
    "Proposal/Price quote": OpportunityStage.PROPOSAL,
    "Negotiation/Review": OpportunityStage.NEGOTIATION,
    "Closed won": OpportunityStage.WON,
    "Closed lost": OpportunityStage.LOST,
}


@dataclass(frozen=True)
class ImportOptions:
    """Per-import choices.

    - create_missing_accounts (opportunities): a non-blank account name that
      matches no account creates it; off, the row is rejected.
    - stage_mapping (opportunities): foreign stage -> our stage, merged over
      DEFAULT_STAGE_MAPPING; keys match ignoring case.
    - industry_aliases (accounts, leads): industry as written -> industry to
      store (e.g. {"technolgy": "technology"}); default none: kept as given.
    - date_order: how to read dates with slashes or dots such as 03/04/2017:
      "" (ISO 8601 only, the default), "mdy" or "dmy".
    """

    create_missing_accounts: bool = True
    stage_mapping: Mapping[str, str] = field(default_factory=dict)
    industry_aliases: Mapping[str, str] = field(default_factory=dict)
    date_order: str = ""

    def __post_init__(self):
        wrong = sorted(v for v in self.stage_mapping.values() if v not in OpportunityStage.values)
        if wrong:
            raise ValueError(
                f"Stage mapping targets must be one of {', '.join(OpportunityStage.values)}; "
                f"not {', '.join(wrong)}."
            )
        if self.date_order not in ("", "mdy", "dmy"):
            raise ValueError("date_order must be '', 'mdy' or 'dmy'.")

    def stage_lookup(self) -> dict[str, str]:
        lookup = {_compact(s.value): s.value for s in OpportunityStage}
        lookup |= {_compact(s.label): s.value for s in OpportunityStage}
        lookup |= {_compact(k): v for k, v in DEFAULT_STAGE_MAPPING.items()}
        lookup |= {_compact(k): v for k, v in self.stage_mapping.items()}
        return lookup

    def to_json(self) -> dict:
        return {
            "create_missing_accounts": self.create_missing_accounts,
            "stage_mapping": dict(self.stage_mapping),
            "industry_aliases": dict(self.industry_aliases),
            "date_order": self.date_order,
        }

    @classmethod
    def from_json(cls, data: Mapping | None) -> ImportOptions:
        data = data or {}
        return cls(
            create_missing_accounts=bool(data.get("create_missing_accounts", True)),
            stage_mapping=dict(data.get("stage_mapping") or {}),
            industry_aliases=dict(data.get("industry_aliases") or {}),
            date_order=data.get("date_order") or "",
        )


def pairs_parse(text: str, *, allowed_values: Iterable[str] | None = None) -> dict[str, str]:
    """'Prospecting = discovery' lines -> {"Prospecting": "discovery"}. Raises
    ValueError naming the first bad line."""
    allowed = set(allowed_values) if allowed_values is not None else None
    pairs = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        source, sep, target = line.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise ValueError(f"Line {number}: write it as “value in the file = value in Accord”.")
        if allowed is not None and target not in allowed:
            raise ValueError(
                f"Line {number}: “{target}” must be one of {', '.join(sorted(allowed))}."
            )
        pairs[source] = target
    return pairs


def pairs_format(pairs: Mapping[str, str]) -> str:
    return "\n".join(f"{source} = {target}" for source, target in pairs.items())


# --- Results -------------------------------------------------------------------------------


@dataclass
class RowError:
    """A row that was not imported: its number (1 = first row after the
    header), its values as read ({column: value}) and {field: [messages]}."""

    row_number: int
    values: dict[str, str]
    errors: dict[str, list[str]]


@dataclass(frozen=True)
class AccountLookalike:
    """An account that looks like one a row creates: in Accord (`id` set) or
    created by an earlier row of the same file (`row_number` set)."""

    name: str
    domain: str = ""
    external_id: str = ""
    id: int | None = None
    row_number: int | None = None

    def describe(self) -> str:
        """“Acme Corporation” (acme.com, row 3 of this file)."""
        details = [self.domain] if self.domain else []
        if self.row_number is not None:
            details.append(f"row {self.row_number} of this file")
        return f"“{self.name}”" + (f" ({', '.join(details)})" if details else "")


@dataclass
class RowNotice:
    """A row that imports, but creates the account `name` while others look
    like it (`lookalikes`, at most LOOKALIKES_PER_NOTICE, those in Accord
    first). `advice` says what to do if one of them is the same company."""

    row_number: int
    name: str
    lookalikes: list[AccountLookalike]
    advice: str

    @property
    def message(self) -> str:
        others = "; ".join(like.describe() for like in self.lookalikes)
        return f"Creates the account “{self.name}”, which looks like {others}. {self.advice}"

    def to_json(self) -> dict:
        return {
            "row_number": self.row_number,
            "name": self.name,
            "lookalikes": [
                {"name": x.name, "domain": x.domain, "id": x.id, "row_number": x.row_number}
                for x in self.lookalikes
            ],
            "advice": self.advice,
        }


@dataclass
class ImportResult:
    """What an import (or one batch of it) did. `rows` counts every row
    handled, including `blank` ones that were skipped. `notices` keeps the
    first NOTICES_KEPT look-alike notices, in row order; `notice_count`
    counts them all."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    blank: int = 0
    dry_run: bool = False
    notices: list[RowNotice] = field(default_factory=list)
    notice_count: int = 0

    @property
    def error_count(self) -> int:
        return len(self.errors)

    def notices_add(self, notices: list[RowNotice], *, count: int | None = None) -> None:
        """Count `count` notices (default: all given) and keep those that fit."""
        self.notice_count += len(notices) if count is None else count
        self.notices.extend(notices[: max(0, NOTICES_KEPT - len(self.notices))])

    def merge(self, other: ImportResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors.extend(other.errors)
        self.rows += other.rows
        self.blank += other.blank
        self.notices_add(other.notices, count=other.notice_count)


def row_errors_text(kind: str, errors: Mapping[str, list[str]]) -> str:
    """{field: [messages]} -> 'Email: Enter a valid email address. | Stage: ...'."""
    labels = {f.name: f.label for f in FIELDS.get(kind, ())}
    parts = []
    for name, messages in errors.items():
        label = "Row" if name == ROW_ERROR_KEY else labels.get(name, name)
        parts.append(f"{label}: {' '.join(messages)}")
    return " | ".join(parts)


def rejected_rows_write(out, *, kind: str, headers: list[str], row_errors: Iterable) -> None:
    """Write rejected rows as CSV to the text stream `out`: the original
    columns plus `errors`, cells neutralised against formula injection.
    `row_errors` yields RowError or ImportRowError objects."""
    writer = csv.writer(out)
    error_column = "errors" if "errors" not in headers else "import errors"
    writer.writerow([csv_safe_cell(h) for h in [*headers, error_column]])
    for row_error in row_errors:
        values = row_error.values or {}
        writer.writerow(
            [csv_safe_cell(values.get(h, "")) for h in headers]
            + [csv_safe_cell(row_errors_text(kind, row_error.errors))]
        )


# --- Reading values -----------------------------------------------------------------------


class _Invalid(ValueError):
    pass


_MONEY = re.compile(r"^[-+]?[$€£]?\s*[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:$|[T ])")
_SLASHED_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def _parse_int(raw: str, *, minimum=0, maximum=2_147_483_647) -> int:
    text = raw.replace(",", "").replace("_", "").strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Invalid(f"“{raw}” is not a whole number.") from None
    if number != number.to_integral_value():
        raise _Invalid(f"“{raw}” is not a whole number.")
    value = int(number)
    if value < minimum or value > maximum:
        raise _Invalid(f"{value} is outside {minimum}–{maximum}.")
    return value


def _parse_decimal(raw: str, *, max_digits=14, places=2) -> Decimal:
    text = raw.replace(" ", "")
    if not _MONEY.match(text) or not any(ch.isdigit() for ch in text):
        raise _Invalid(f"“{raw}” is not an amount.")
    negative = text.count("-") % 2 == 1
    text = re.sub(r"[^\d.]", "", text)
    value = Decimal(text)
    if negative and value:
        raise _Invalid(f"“{raw}” is negative; amounts cannot be.")
    value = value.quantize(Decimal(1).scaleb(-places))
    if len(value.as_tuple().digits) > max_digits:
        raise _Invalid(f"“{raw}” is too large.")
    return value


def _parse_date(raw: str, date_order: str) -> date:
    """YYYY-MM-DD (also with / or . and a time after it); with a date order
    chosen in the options, also 03/04/2017 style dates."""
    text = raw.strip()
    try:
        match = _ISO_DATE.match(text)
        if match:
            return date(*(int(part) for part in match.groups()))
        match = _SLASHED_DATE.match(text)
        if match and date_order in ("mdy", "dmy"):
            first, second, year = (int(part) for part in match.groups())
            month, day = (first, second) if date_order == "mdy" else (second, first)
            return date(year, month, day)
    except ValueError:
        pass
    raise _Invalid(_date_message(raw, date_order))


def _date_message(raw: str, date_order: str) -> str:
    if date_order:
        expected = "MM/DD/YYYY" if date_order == "mdy" else "DD/MM/YYYY"
        return f"“{raw}” is not a date; use YYYY-MM-DD or {expected}."
    return (
        f"“{raw}” is not a date; use YYYY-MM-DD (or choose how your file writes dates "
        "in the import options)."
    )


def _parse_datetime(raw: str, date_order: str) -> datetime:
    text = raw.strip()
    if len(text) > 10:
        try:
            value = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
        except ValueError:
            raise _Invalid(
                f"“{raw}” is not a date and time; use ISO 8601, e.g. 2025-03-01 14:05 "
                "or 2025-03-01T14:05:00+01:00."
            ) from None
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value
    return _midnight(_parse_date(text, date_order))


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def _choice_lookup(choices: tuple[tuple[str, str], ...]) -> dict[str, str]:
    lookup = {}
    for value, label in choices:
        lookup[_compact(value)] = value
        lookup[_compact(label)] = value
    return lookup


class _RowParser:
    """Typed values from one CSV row, with {field: [messages]} for the bad ones.
    Only mapped, non-blank cells produce values."""

    def __init__(self, kind: str, mapping: Mapping[str, str], options: ImportOptions):
        fields = {f.name: f for f in fields_for(kind)}
        self.columns = [(fields[name], column) for name, column in mapping.items() if column]
        self.options = options
        self.stage_lookup = options.stage_lookup()
        self.choice_lookups = {
            f.name: _choice_lookup(f.choices) for f in fields.values() if f.type == "choice"
        }
        self.industry_aliases = {
            k.strip().lower(): v.strip() for k, v in options.industry_aliases.items()
        }

    def parse(self, row: Mapping) -> tuple[dict, dict[str, list[str]]]:
        values: dict = {}
        errors: dict[str, list[str]] = {}
        extra = row.get(None)
        if extra and any(str(cell).strip() for cell in extra):
            errors[ROW_ERROR_KEY] = [
                f"The row has {len(extra)} more value(s) than the header has columns; "
                "check for an unquoted delimiter."
            ]
        for f, column in self.columns:
            raw = row.get(column)
            if raw is None:
                raw = ""
            raw = raw.strip()
            if not raw:
                if f.required:
                    errors.setdefault(f.name, []).append(f"{f.label} is required.")
                continue
            try:
                values[f.name] = self._value(f, raw)
            except _Invalid as error:
                errors.setdefault(f.name, []).append(str(error))
        return values, errors

    def _value(self, f: ImportField, raw: str):
        kind = f.type
        if kind == "text":
            if f.name == "industry" and self.industry_aliases:
                raw = self.industry_aliases.get(raw.lower(), raw)
            if f.max_length and len(raw) > f.max_length:
                raise _Invalid(f"{len(raw)} characters long; at most {f.max_length} are allowed.")
            return raw
        if kind == "email":
            value = raw.lower()
            try:
                validate_email(value)
            except ValidationError:
                raise _Invalid(f"“{raw}” is not a valid email address.") from None
            if len(value) > (f.max_length or 254):
                raise _Invalid("The email address is too long.")
            return value
        if kind == "domain":
            value = normalise_domain(raw)
            if not _DOMAIN.match(value):
                raise _Invalid(f"“{raw}” is not a web domain such as acme.com.")
            # A lead's company domain at a public provider only means "unknown"
            # (the lead importer drops it); an account's domain cannot be one.
            if value in PUBLIC_MAIL_DOMAINS and f.name != "company_domain":
                raise _Invalid(
                    f"“{raw}” is a public mail domain, shared by people at every company; "
                    "an account cannot have it. Leave it empty or give the company's own domain."
                )
            return value
        if kind == "int":
            return _parse_int(raw)
        if kind == "year":
            return _parse_int(raw, minimum=1000, maximum=timezone.now().year + 1)
        if kind == "decimal":
            return _parse_decimal(raw)
        if kind == "date":
            return _parse_date(raw, self.options.date_order)
        if kind == "datetime":
            return _parse_datetime(raw, self.options.date_order)
        if kind == "choice":
            value = self.choice_lookups[f.name].get(_compact(raw))
            if value is None:
                labels = ", ".join(label for _, label in f.choices)
                raise _Invalid(f"“{raw}” is not one of: {labels}.")
            return value
        if kind == "stage":
            value = self.stage_lookup.get(_compact(raw))
            if value is None:
                raise _Invalid(
                    f"“{raw}” is not a deal stage. Map it in the stage mapping option "
                    f"(e.g. {raw} = discovery)."
                )
            return value
        if kind == "list":
            items = []
            for item in raw.split(";"):
                item = item.strip()
                if len(item) > 100:
                    raise _Invalid(f"“{item[:30]}…” is longer than 100 characters.")
                if item and item not in items:
                    items.append(item)
            return items
        raise AssertionError(f"unknown field type {kind}")


# --- The importers, one per kind ----------------------------------------------------------


@dataclass
class _Row:
    number: int
    raw: dict
    values: dict


@dataclass
class _Outcome:
    """One batch's effect, merged into the result only if its transaction commits."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    deferred: list = field(default_factory=list)
    notices: list[RowNotice] = field(default_factory=list)
    # (row number, unsaved Account) for each account the batch creates.
    new_accounts: list[tuple[int, Account]] = field(default_factory=list)

    def reject(self, row: _Row, errors: dict[str, list[str]]) -> None:
        self.errors.append(RowError(row.number, _jsonable(row.raw), errors))


def _jsonable(raw: Mapping) -> dict[str, str]:
    """The row's values as stored with an error: columns only (extras joined)."""
    values = {str(k): v for k, v in raw.items() if k is not None}
    return values


def _apply(obj, values: Mapping, changed: set[str]) -> None:
    """Set each attribute that differs and note it in `changed`."""
    for attname, value in values.items():
        if getattr(obj, attname) != value:
            setattr(obj, attname, value)
            changed.add(attname)


def _bulk_update(model, objects: list, fields: set[str], now: datetime) -> None:
    if not objects:
        return
    for obj in objects:
        obj.updated_at = now
    model.objects.bulk_update(objects, sorted(fields | {"updated_at"}), batch_size=500)


class _Importer:
    kind = ""

    def __init__(self, *, options: ImportOptions, actor, dry_run: bool, now: datetime):
        self.options = options
        self.actor = actor
        self.actor_id = getattr(actor, "pk", None)
        self.dry_run = dry_run
        self.now = now

    def key(self, values: dict) -> tuple:
        raise NotImplementedError

    def key_label(self, key: tuple) -> str:
        return "key"

    def apply(self, rows: list[_Row]) -> _Outcome:
        """Look up, validate references, and (unless a dry run) write one batch.
        Must run inside a transaction when writing."""
        raise NotImplementedError

    def accept(self, outcome: _Outcome) -> None:
        """The batch committed: keep what later batches need."""

    def replay(self, row_number: int, raw: dict, values: dict) -> None:
        """A row an earlier (interrupted) run already imported; see rows_import."""

    def finish(self) -> _Outcome | None:
        return None


def _accounts_by_name(names: Iterable[str]) -> dict[str, int]:
    """{lower(name): id} for existing accounts (the oldest when names repeat)."""
    names = list(names)
    if not names:
        return {}
    found: dict[str, int] = {}
    rows = (
        Account.objects.annotate(lname=Lower("name"))
        .filter(lname__in=names)
        .order_by("-id")
        .values_list("lname", "id")
    )
    for lname, pk in rows:
        found[lname] = pk
    return found


def _accounts_by_domain(domains: Iterable[str]) -> dict[str, int]:
    domains = [d for d in domains if d]
    if not domains:
        return {}
    return dict(Account.objects.filter(domain__in=domains).values_list("domain", "id"))


class _NewAccounts:
    """Accounts an import creates (or, in a dry run, would create), each with
    the number of the row that creates it: found again by lower-case name or
    domain, and by name key or domain for look-alike notices."""

    def __init__(self):
        self.by_name: dict[str, Account] = {}
        self.by_domain: dict[str, Account] = {}
        self._rows_by_key: dict[str, list[tuple[int, Account]]] = {}
        self._rows_by_domain: dict[str, list[tuple[int, Account]]] = {}

    def add(self, row_number: int, account: Account) -> None:
        self.by_name.setdefault(account.name.lower(), account)
        if account.domain:
            self.by_domain.setdefault(account.domain, account)
            self._rows_by_domain.setdefault(account.domain, []).append((row_number, account))
        if account.name_key:
            self._rows_by_key.setdefault(account.name_key, []).append((row_number, account))

    def find(self, *, name: str, domain: str) -> Account | None:
        """The account created for this domain, else for this name (the
        order in which accounts in Accord are matched)."""
        if domain and domain in self.by_domain:
            return self.by_domain[domain]
        return self.by_name.get(name.lower()) if name else None

    def like(self, account: Account) -> list[AccountLookalike]:
        """The accounts added so far that share `account`'s name key or domain."""
        entries = [
            *(self._rows_by_key.get(account.name_key, []) if account.name_key else []),
            *(self._rows_by_domain.get(account.domain, []) if account.domain else []),
        ]
        found = {row_number: other for row_number, other in entries if other is not account}
        return [
            AccountLookalike(name=other.name, domain=other.domain, row_number=row_number)
            for row_number, other in sorted(found.items())
        ]


def _accounts_by_key(accounts: Iterable[Account]) -> dict[str, list[AccountLookalike]]:
    """{name key: [look-alike]} for accounts in Accord, oldest first."""
    found: dict[str, list[AccountLookalike]] = {}
    for account in sorted(accounts, key=lambda a: a.pk):
        if account.name_key:
            found.setdefault(account.name_key, []).append(
                AccountLookalike(
                    name=account.name,
                    domain=account.domain,
                    external_id=account.external_id,
                    id=account.pk,
                )
            )
    return found


def _lookalikes(
    account: Account,
    *,
    in_accord: dict[str, list[AccountLookalike]],
    in_file: Iterable[_NewAccounts],
) -> list[AccountLookalike]:
    """Who the new `account` looks like: accounts in Accord with its name key
    (one with its domain would have matched the row), then accounts earlier
    rows of the file create with its name key or domain."""
    found = list(in_accord.get(account.name_key, [])) if account.name_key else []
    for created in in_file:
        found.extend(created.like(account))
    return found[:LOOKALIKES_PER_NOTICE]


def _lookalike_notice(
    *, kind: str, row_number: int, account: Account, lookalikes: list[AccountLookalike]
) -> RowNotice:
    """The notice for a row creating `account` that looks like `lookalikes`,
    with what to do if it is the same company as the first of them."""
    first = lookalikes[0]
    if first.row_number is not None:
        if kind == "accounts":
            advice = (
                f"If it is the same company as row {first.row_number}'s “{first.name}”, merge "
                "the two rows into one."
            )
        else:
            advice = (
                f"If it is the same company as row {first.row_number}'s “{first.name}”, write "
                "the account the same way in both rows."
            )
    elif kind == "accounts":
        if first.domain:
            how = f"its domain {first.domain}"
        elif first.external_id:
            how = f"its external id {first.external_id}"
        else:
            how = f"its exact name “{first.name}”"
        advice = (
            f"If it is the same company as “{first.name}”, give this row {how} so the import "
            "updates that account instead of creating another."
        )
    else:
        domain = f" (or give its domain {first.domain})" if first.domain else ""
        advice = (
            f"If it is the same company as “{first.name}”, write the account as "
            f"“{first.name}”{domain} so the deal goes to that account instead."
        )
    return RowNotice(row_number=row_number, name=account.name, lookalikes=lookalikes, advice=advice)


def _notices_link(outcome: _Outcome) -> None:
    """Once the batch's new accounts are saved, give the look-alikes that
    earlier rows of the batch created their ids (so pages can link them)."""
    ids = {row_number: account.pk for row_number, account in outcome.new_accounts}
    for notice in outcome.notices:
        notice.lookalikes = [
            dataclasses.replace(like, id=ids[like.row_number])
            if like.id is None and like.row_number in ids
            else like
            for like in notice.lookalikes
        ]


class _AccountImporter(_Importer):
    kind = "accounts"
    DATA_FIELDS = (
        "name",
        "domain",
        "industry",
        "employees",
        "annual_revenue",
        "country",
        "region",
        "year_established",
        "technologies",
        "external_id",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.deferred_parents: list = []  # (row, child key, parent lname, status)
        self.names_in_file: set[str] = set()
        # Dry run: the accounts earlier batches would create (a real run finds them in Accord).
        self.pending_accounts = _NewAccounts()

    def key(self, values):
        if values.get("external_id"):
            return ("external id", values["external_id"])
        if values.get("domain"):
            return ("domain", values["domain"])
        return ("name", values["name"].lower())

    def key_label(self, key):
        return key[0]

    def _existing(self, rows: list[_Row], *, name_keys: bool = False) -> tuple[dict, ...]:
        """(by external id, by domain, by lower-case name, by name key) for
        the accounts in Accord the rows may match, in one query. With
        `name_keys`, it also fetches accounts sharing a row's name key, for
        look-alike notices (they can only add entries no row matches on)."""
        external_ids = {r.values["external_id"] for r in rows if r.values.get("external_id")}
        domains = {r.values["domain"] for r in rows if r.values.get("domain")}
        names = {r.values["name"].lower() for r in rows if r.values.get("name")}
        keys = {company_name_key(r.values.get("name", "")) for r in rows} if name_keys else set()
        keys.discard("")
        by_external, by_domain, by_name = {}, {}, {}
        if not (external_ids or domains or names or keys):
            return by_external, by_domain, by_name, {}
        condition = Q(external_id__in=external_ids) | Q(domain__in=domains) | Q(lname__in=names)
        if keys:
            condition |= Q(name_key__in=keys)
        accounts = list(
            Account.objects.annotate(lname=Lower("name")).filter(condition).order_by("-id")
        )
        for account in accounts:  # oldest last, so it wins among same names
            if account.external_id:
                by_external[account.external_id] = account
            if account.domain:
                by_domain[account.domain] = account
            by_name.setdefault(account.lname, {})[bool(account.domain)] = account
        return by_external, by_domain, by_name, _accounts_by_key(accounts)

    @staticmethod
    def _match(values, by_external, by_domain, by_name):
        if values.get("external_id") and values["external_id"] in by_external:
            return by_external[values["external_id"]]
        domain = values.get("domain")
        if domain and domain in by_domain:
            return by_domain[domain]
        named = by_name.get(values["name"].lower(), {})
        if domain:
            return named.get(False)  # only an account that has no domain yet
        return named.get(False) or named.get(True)

    def apply(self, rows):
        outcome = _Outcome()
        by_external, by_domain, by_name, by_key = self._existing(rows, name_keys=True)
        created = _NewAccounts()  # by the rows before this one
        new, changed_objects, changed_fields = [], [], set()
        for row in rows:
            values = row.values
            data = {name: values[name] for name in self.DATA_FIELDS if name in values}
            if "name" in data:
                data["name_key"] = company_name_key(data["name"])
            if "employees" in data:
                data["segment"] = Segment.for_employees(data["employees"])
            account = self._match(values, by_external, by_domain, by_name)
            if account is None:
                account = Account(created_at=self.now, **data)
                lookalikes = _lookalikes(
                    account, in_accord=by_key, in_file=(self.pending_accounts, created)
                )
                if lookalikes:
                    outcome.notices.append(
                        _lookalike_notice(
                            kind=self.kind,
                            row_number=row.number,
                            account=account,
                            lookalikes=lookalikes,
                        )
                    )
                created.add(row.number, account)
                outcome.new_accounts.append((row.number, account))
                new.append(account)
                outcome.created += 1
                status = "created"
            else:
                changed: set[str] = set()
                _apply(account, data, changed)
                if changed:
                    changed_objects.append(account)
                    changed_fields |= changed
                    outcome.updated += 1
                    status = "updated"
                else:
                    outcome.unchanged += 1
                    status = "unchanged"
            if values.get("parent"):
                outcome.deferred.append(
                    (row, self.key(values), values["parent"].lower(), status, values["parent"])
                )
        if not self.dry_run:
            Account.objects.bulk_create(new)
            _notices_link(outcome)
            _bulk_update(Account, changed_objects, changed_fields, self.now)
        return outcome

    def accept(self, outcome):
        self.deferred_parents.extend(outcome.deferred)
        if self.dry_run:
            for row_number, account in outcome.new_accounts:
                self.pending_accounts.add(row_number, account)

    def replay(self, row_number, raw, values):
        self.names_in_file.add(values["name"].lower())
        if values.get("parent"):
            row = _Row(row_number, raw, values)
            self.deferred_parents.append(
                (row, self.key(values), values["parent"].lower(), None, values["parent"])
            )

    def names_seen(self, rows: list[_Row]) -> None:
        self.names_in_file.update(r.values["name"].lower() for r in rows)

    def finish(self):
        """Link parents, once every row of the file exists. A parent that is
        neither in Accord nor in the file rejects the row (the rest of the
        row is imported; re-uploading the fixed row sets the parent)."""
        outcome = _Outcome()
        for start in range(0, len(self.deferred_parents), BATCH_SIZE):
            self._parents_link(self.deferred_parents[start : start + BATCH_SIZE], outcome)
        return outcome

    def _parents_link(self, deferred, outcome: _Outcome) -> None:
        parents = _accounts_by_name({lname for _, _, lname, _, _ in deferred})
        children_values = [row.values for row, *_ in deferred]
        by_external, by_domain, by_name, _ = self._existing([row for row, *_ in deferred])
        changed = []
        for (row, _key, lname, status, parent_name), values in zip(
            deferred, children_values, strict=True
        ):
            child = self._match(values, by_external, by_domain, by_name)
            parent_id = parents.get(lname)
            problem = None
            if parent_id is None and not (self.dry_run and lname in self.names_in_file):
                problem = (
                    f"No account named “{parent_name}” in Accord or in this file; the account "
                    "was imported without its parent."
                )
            elif child is not None and parent_id == child.pk:
                problem = "An account cannot be its own parent."
            if problem:
                outcome.reject(row, {"parent": [problem]})
                if status is not None:
                    setattr(outcome, status, getattr(outcome, status) - 1)
                continue
            if child is None or parent_id is None or child.parent_id == parent_id:
                continue
            child.parent_id = parent_id
            changed.append(child)
            if status == "unchanged":
                outcome.unchanged -= 1
                outcome.updated += 1
        if not self.dry_run:
            _bulk_update(Account, changed, {"parent"}, self.now)


class _LeadImporter(_Importer):
    kind = "leads"
    DATA_FIELDS = (*LEAD_DATA_FIELDS, "external_id")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.campaigns = {
            name.lower(): pk for name, pk in Campaign.objects.values_list("name", "id")
        }

    def key(self, values):
        return ("email", values["email"])

    def key_label(self, key):
        return "email"

    def apply(self, rows):
        outcome = _Outcome()
        existing = {
            lead.email: lead
            for lead in Lead.objects.filter(email__in=[r.values["email"] for r in rows])
        }
        domains = set()
        for row in rows:
            lead = existing.get(row.values["email"])
            if lead is None or lead.account_id is None:
                domains.add(self._domain(row.values, lead))
        accounts = _accounts_by_domain(domains)
        new, changed_objects, changed_fields = [], [], set()
        for row in rows:
            values = row.values
            data = {name: values[name] for name in self.DATA_FIELDS if name in values}
            if "name" in values and not ("first_name" in values or "last_name" in values):
                first, _, last = values["name"].partition(" ")
                data["first_name"], data["last_name"] = first[:100], last.strip()[:100]
            if "employees" in data:
                data["segment"] = Segment.for_employees(data["employees"])
            if "company_domain" in data:
                # As stored; a public mail domain is no domain, and blanks never erase.
                domain = lead_company_domain(company_domain=data.pop("company_domain"), email="")
                if domain:
                    data["company_domain"] = domain
            campaign_id = None
            if values.get("source_campaign"):
                campaign_id = self.campaigns.get(values["source_campaign"].lower())
                if campaign_id is None:
                    outcome.reject(
                        row,
                        {"source_campaign": [f"No campaign named “{values['source_campaign']}”."]},
                    )
                    continue
            lead = existing.get(values["email"])
            account_id = accounts.get(self._domain(values, lead))
            if lead is None:
                when = values.get("created_at") or self.now
                lead = Lead(
                    email=values["email"],
                    stage=LeadStage.NEW,
                    stage_changed_at=when,
                    created_at=when,
                    source_channel=values.get("source_channel", ""),
                    source_campaign_id=campaign_id,
                    account_id=account_id,
                    **data,
                )
                lead.clean_fields_for_save()
                new.append(lead)
                outcome.created += 1
                continue
            changed: set[str] = set()
            _apply(lead, data, changed)
            if not lead.source_channel and values.get("source_channel"):
                _apply(lead, {"source_channel": values["source_channel"]}, changed)
            if lead.source_campaign_id is None and campaign_id is not None:
                _apply(lead, {"source_campaign_id": campaign_id}, changed)
            if lead.account_id is None and account_id is not None:
                _apply(lead, {"account_id": account_id}, changed)
            if changed:
                changed_objects.append(lead)
                changed_fields |= changed
                outcome.updated += 1
            else:
                outcome.unchanged += 1
        if not self.dry_run:
            Lead.objects.bulk_create(new)
            LeadStageChange.objects.bulk_create(
                LeadStageChange(
                    lead_id=lead.pk,
                    to_stage=LeadStage.NEW,
                    actor_id=self.actor_id,
                    note="Imported",
                    changed_at=lead.created_at,
                )
                for lead in new
            )
            _bulk_update(Lead, changed_objects, changed_fields, self.now)
        return outcome

    @staticmethod
    def _domain(values, lead) -> str:
        """The domain that matches the lead's account (never a public mail one)."""
        given = lead_company_domain(company_domain=values.get("company_domain", ""), email="")
        known = lead.company_domain if lead else ""
        return lead_company_domain(company_domain=given or known, email=values["email"])


class _UserDirectory:
    """Users by username or by full name ("First Last"), ignoring case."""

    def __init__(self):
        self.by_username: dict[str, int] = {}
        self.by_name: dict[str, list[int]] = {}
        for pk, username, first, last in get_user_model().objects.values_list(
            "id", "username", "first_name", "last_name"
        ):
            self.by_username[username.lower()] = pk
            full = " ".join(f"{first} {last}".lower().split())
            if full:
                self.by_name.setdefault(full, []).append(pk)

    def find(self, text: str) -> tuple[int | None, str]:
        key = " ".join(text.lower().split())
        if key in self.by_username:
            return self.by_username[key], ""
        ids = self.by_name.get(key, [])
        if len(ids) == 1:
            return ids[0], ""
        if ids:
            return None, f"{len(ids)} users are called “{text}”; use the username instead."
        return None, f"No user with the username or name “{text}”."


class _OpportunityImporter(_Importer):
    kind = "opportunities"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.users = _UserDirectory()
        self.products = {_compact(name): (pk, name) for pk, name in
                         Product.objects.values_list("id", "name")}  # fmt: skip
        # Dry run: the accounts earlier batches would create (a real run finds them in Accord).
        self.pending_accounts = _NewAccounts()

    def key(self, values):
        return ("external id", values["external_id"])

    def key_label(self, key):
        return "external id"

    def apply(self, rows):
        outcome = _Outcome()
        existing = {
            o.external_id: o
            for o in Opportunity.objects.filter(
                external_id__in=[r.values["external_id"] for r in rows]
            )
        }
        names = {r.values["account"].lower() for r in rows if r.values.get("account")}
        accounts_by_name = _accounts_by_name(names)
        accounts_by_domain = _accounts_by_domain({r.values.get("account_domain", "") for r in rows})
        missing_accounts = _NewAccounts()
        new_account_links: list[tuple[Opportunity, Account]] = []
        new, changed_objects, changed_fields, stage_changes = [], [], set(), []
        for row in rows:
            values = row.values
            errors: dict[str, list[str]] = {}
            account_ref, account_label, creates_account = self._account(
                values, accounts_by_name, accounts_by_domain, missing_accounts, errors
            )
            owner_id = product_id = None
            product_name = ""
            if values.get("owner"):
                owner_id, problem = self.users.find(values["owner"])
                if problem:
                    errors["owner"] = [problem]
            if values.get("product"):
                product_id, product_name = self.products.get(
                    _compact(values["product"]), (None, "")
                )
                if product_id is None:
                    errors["product"] = [f"No product named “{values['product']}”."]
            stage = values["stage"]
            closed = stage in OpportunityStage.closed_stages()
            closed_on = values.get("closed_on")
            expected_close_on = values.get("expected_close_on")
            if closed and closed_on is None:
                errors["closed_on"] = [
                    f"A {OpportunityStage(stage).label.lower()} deal needs its close date."
                ]
            if not closed:
                # On an open deal a "close date" is the date it is expected to close.
                expected_close_on = expected_close_on or closed_on
                closed_on = None
            if errors:
                outcome.reject(row, errors)
                continue
            if creates_account:  # only for a row that imports: a rejected one creates nothing
                missing_accounts.add(row.number, account_ref)
                outcome.new_accounts.append((row.number, account_ref))
            data = {"stage": stage, "closed_on": closed_on}
            # The account is an id, an Account this batch creates, or None (blank).
            if isinstance(account_ref, int):
                data["account_id"] = account_ref
            if owner_id is not None:
                data["owner_id"] = owner_id
            if product_id is not None:
                data["product_id"] = product_id
            if "amount" in values:
                data["amount"] = values["amount"]
            if expected_close_on is not None:
                data["expected_close_on"] = expected_close_on
            if values.get("name"):
                data["name"] = values["name"]
            opportunity = existing.get(values["external_id"])
            stage_at = _midnight(closed_on) if closed else None
            if opportunity is None:
                created_at = values.get("created_at") or self.now
                data.setdefault(
                    "name",
                    self._default_name(values["external_id"], account_label, product_name),
                )
                opportunity = Opportunity(
                    external_id=values["external_id"],
                    created_at=created_at,
                    stage_changed_at=stage_at or created_at,
                    **data,
                )
                if isinstance(account_ref, Account):
                    new_account_links.append((opportunity, account_ref))
                new.append(opportunity)
                outcome.created += 1
                continue
            changed: set[str] = set()
            previous_stage = opportunity.stage
            _apply(opportunity, data, changed)
            if isinstance(account_ref, Account):
                new_account_links.append((opportunity, account_ref))
                changed.add("account_id")
            if "stage" in changed:
                opportunity.stage_changed_at = stage_at or self.now
                opportunity.version += 1
                changed |= {"stage_changed_at", "version"}
                stage_changes.append((opportunity, previous_stage))
            if changed:
                changed_objects.append(opportunity)
                changed_fields |= changed
                outcome.updated += 1
            else:
                outcome.unchanged += 1
        outcome.notices.extend(self._lookalike_notices(outcome.new_accounts))
        if self.dry_run:
            return outcome
        Account.objects.bulk_create([account for _, account in outcome.new_accounts])
        _notices_link(outcome)
        for opportunity, account in new_account_links:
            opportunity.account_id = account.pk
        Opportunity.objects.bulk_create(new)
        _bulk_update(Opportunity, changed_objects, changed_fields, self.now)
        OpportunityStageChange.objects.bulk_create(
            [
                OpportunityStageChange(
                    opportunity_id=o.pk,
                    to_stage=o.stage,
                    actor_id=self.actor_id,
                    note="Imported",
                    changed_at=o.stage_changed_at,
                )
                for o in new
            ]
            + [
                OpportunityStageChange(
                    opportunity_id=o.pk,
                    from_stage=previous,
                    to_stage=o.stage,
                    actor_id=self.actor_id,
                    note="Imported",
                    changed_at=o.stage_changed_at,
                )
                for o, previous in stage_changes
            ]
        )
        return outcome

    def accept(self, outcome):
        if self.dry_run:
            for row_number, account in outcome.new_accounts:
                self.pending_accounts.add(row_number, account)

    def _account(self, values, by_name, by_domain, missing: _NewAccounts, errors):
        """(account id, or an unsaved Account this batch creates, or None; its
        name; whether this row creates that Account). Domain first, then
        name, among accounts in Accord, then among those the file creates."""
        name = values.get("account", "")
        domain = values.get("account_domain", "")
        if domain and domain in by_domain:
            return by_domain[domain], name, False
        if name and name.lower() in by_name:
            return by_name[name.lower()], name, False
        if not name and not domain:
            return None, "", False
        created = missing.find(name=name, domain=domain) or self.pending_accounts.find(
            name=name, domain=domain
        )
        if created is not None:
            return created, name, False
        if not self.options.create_missing_accounts:
            errors["account"] = [
                f"No account named “{name or domain}” (creating missing accounts is off)."
            ]
            return None, name, False
        account = Account(
            name=name or domain,
            name_key=company_name_key(name or domain),
            domain=domain,
            created_at=self.now,
        )
        return account, name, True

    def _lookalike_notices(self, new_accounts: list[tuple[int, Account]]) -> list[RowNotice]:
        """Notices for the rows creating accounts that look like others, in
        Accord or created earlier in the file: one query for the batch."""
        keys = {account.name_key for _, account in new_accounts} - {""}
        if not keys:
            return []
        # Only name keys: an account in Accord with the row's domain is the row's account.
        in_accord = _accounts_by_key(
            Account.objects.filter(name_key__in=keys).only(
                "name", "name_key", "domain", "external_id"
            )
        )
        earlier = _NewAccounts()
        notices = []
        for row_number, account in new_accounts:
            lookalikes = _lookalikes(
                account, in_accord=in_accord, in_file=(self.pending_accounts, earlier)
            )
            if lookalikes:
                notices.append(
                    _lookalike_notice(
                        kind=self.kind,
                        row_number=row_number,
                        account=account,
                        lookalikes=lookalikes,
                    )
                )
            earlier.add(row_number, account)
        return notices

    @staticmethod
    def _default_name(external_id: str, account: str, product: str) -> str:
        label = " – ".join(part for part in (account, product) if part)
        return f"{label} ({external_id})"[:200] if label else f"Deal {external_id}"


class _TouchpointImporter(_Importer):
    kind = "touchpoints"
    DATA_FIELDS = ("type", "occurred_at", "channel", "url")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.campaigns = {
            name.lower(): (pk, channel)
            for pk, name, channel in Campaign.objects.values_list("id", "name", "channel")
        }
        self.assets = {
            title.lower(): pk for pk, title in ContentAsset.objects.values_list("id", "title")
        }

    def key(self, values):
        return ("event id", values["external_id"])

    def key_label(self, key):
        return "event id"

    def apply(self, rows):
        outcome = _Outcome()
        existing = {
            t.external_id: t
            for t in Touchpoint.objects.filter(
                api_key__isnull=True, external_id__in=[r.values["external_id"] for r in rows]
            )
        }
        leads = dict(
            Lead.objects.filter(email__in={r.values["email"] for r in rows}).values_list(
                "email", "id"
            )
        )
        new_leads: dict[str, Lead] = {}
        new, changed_objects, changed_fields = [], [], set()
        for row in rows:
            values = row.values
            errors: dict[str, list[str]] = {}
            campaign_id, campaign_channel = None, ""
            if values.get("campaign"):
                campaign_id, campaign_channel = self.campaigns.get(
                    values["campaign"].lower(), (None, "")
                )
                if campaign_id is None:
                    errors["campaign"] = [f"No campaign named “{values['campaign']}”."]
            asset_id = None
            if values.get("asset"):
                asset_id = self.assets.get(values["asset"].lower())
                if asset_id is None:
                    errors["asset"] = [f"No content asset titled “{values['asset']}”."]
            if errors:
                outcome.reject(row, errors)
                continue
            channel = values.get("channel") or campaign_channel
            email = values["email"]
            lead_ref = leads.get(email) or new_leads.get(email)
            if lead_ref is None:
                lead_ref = Lead(
                    email=email,
                    stage=LeadStage.NEW,
                    created_at=values["occurred_at"],
                    stage_changed_at=values["occurred_at"],
                    source_channel=channel,
                    source_campaign_id=campaign_id,
                )
                lead_ref.clean_fields_for_save()
                new_leads[email] = lead_ref
            elif isinstance(lead_ref, Lead) and values["occurred_at"] < lead_ref.created_at:
                lead_ref.created_at = lead_ref.stage_changed_at = values["occurred_at"]
            data = {
                "type": values["type"],
                "occurred_at": values["occurred_at"],
                "channel": channel,
                "campaign_id": campaign_id,
                "asset_id": asset_id,
                "url": values.get("url", ""),
            }
            touchpoint = existing.get(values["external_id"])
            if touchpoint is None:
                touchpoint = Touchpoint(
                    external_id=values["external_id"], source=Touchpoint.Source.IMPORT, **data
                )
                touchpoint._lead_ref = lead_ref
                new.append(touchpoint)
                outcome.created += 1
                continue
            if not isinstance(lead_ref, Lead):
                data["lead_id"] = lead_ref
            changed: set[str] = set()
            _apply(touchpoint, data, changed)
            if isinstance(lead_ref, Lead):
                touchpoint._lead_ref = lead_ref
                changed.add("lead_id")
            if changed:
                changed_objects.append(touchpoint)
                changed_fields |= changed
                outcome.updated += 1
            else:
                outcome.unchanged += 1
        if self.dry_run:
            return outcome
        if new_leads:
            accounts = _accounts_by_domain({lead.company_domain for lead in new_leads.values()})
            for lead in new_leads.values():
                lead.account_id = accounts.get(lead.company_domain)
            Lead.objects.bulk_create(new_leads.values())
            LeadStageChange.objects.bulk_create(
                LeadStageChange(
                    lead_id=lead.pk,
                    to_stage=LeadStage.NEW,
                    actor_id=self.actor_id,
                    note="Imported",
                    changed_at=lead.created_at,
                )
                for lead in new_leads.values()
            )
        for touchpoint in [*new, *changed_objects]:
            ref = getattr(touchpoint, "_lead_ref", None)
            if isinstance(ref, Lead):
                touchpoint.lead_id = ref.pk
            elif ref is not None:
                touchpoint.lead_id = ref
        Touchpoint.objects.bulk_create(new)
        if changed_objects:
            Touchpoint.objects.bulk_update(changed_objects, sorted(changed_fields), batch_size=500)
        lead_ids = frozenset(t.lead_id for t in [*new, *changed_objects])
        if lead_ids:
            # As the ingestion API does: the sla app re-scores these leads, after commit.
            transaction.on_commit(
                functools.partial(
                    signals.touchpoints_recorded.send, sender=Touchpoint, lead_ids=lead_ids
                ),
                robust=True,
            )
        return outcome


IMPORTERS: dict[str, type[_Importer]] = {
    "accounts": _AccountImporter,
    "leads": _LeadImporter,
    "opportunities": _OpportunityImporter,
    "touchpoints": _TouchpointImporter,
}

# Constraint names -> what the row's author can do about them.
_CONSTRAINT_MESSAGES = {
    "account_domain_unique": ("domain", "Another account already has this domain."),
    "account_external_id_unique": ("external_id", "Another account already has this external id."),
    "opportunity_external_id_unique": ("external_id", "Another deal has this external id."),
    "opp_closed_has_close_date": ("closed_on", "A won or lost deal needs its close date."),
    "lead_email_key": ("email", "Another lead already has this email."),
    "touchpoint_event_id_per_key_unique": ("external_id", "Another touchpoint has this id."),
}


def _database_error(error: Exception) -> dict[str, list[str]]:
    text = str(error)
    for constraint, (field_name, message) in _CONSTRAINT_MESSAGES.items():
        if constraint in text:
            return {field_name: [message]}
    first_line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return {ROW_ERROR_KEY: [f"The database refused this row: {first_line}"]}


# --- The import ------------------------------------------------------------------------------


def rows_import(
    *,
    kind: str,
    rows: Iterable[Mapping],
    mapping: Mapping[str, str],
    actor=None,
    dry_run: bool = False,
    on_progress: Callable[[ImportResult], None] | None = None,
    options: ImportOptions | None = None,
    skip_rows: int = 0,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Import `rows` ({column: value} dicts, e.g. `csv_open(...).rows()`) as
    `kind`, with `mapping` {field: column}. Returns the ImportResult.

    Idempotent (upsert by natural key; unchanged rows write nothing). One
    transaction per batch; `on_progress(batch_result)` is called once per batch
    inside it (and once more for the accounts' parent pass), with that batch's
    counts, errors and look-alike notices. Duplicate natural keys within the
    file are rejected (the first row wins). `skip_rows` resumes an interrupted
    run: the first rows are neither counted nor written (accounts still read
    them to link parents). Raises ImportMappingError for an unusable mapping."""
    options = options or ImportOptions()
    mapping = {name: column for name, column in mapping.items() if column}
    mapping_check(kind, mapping)
    parser = _RowParser(kind, mapping, options)
    importer = IMPORTERS[kind](options=options, actor=actor, dry_run=dry_run, now=timezone.now())
    result = ImportResult(dry_run=dry_run)
    seen_keys: dict[tuple, int] = {}
    batch: list[tuple[int, Mapping]] = []
    checked_columns = False

    def flush():
        batch_result = _batch_run(
            kind, importer, parser, batch, seen_keys, dry_run=dry_run, on_progress=on_progress
        )
        result.merge(batch_result)
        batch.clear()

    for number, row in enumerate(rows, start=1):
        if not checked_columns:
            missing = [c for c in mapping.values() if c not in row]
            if missing:
                raise ImportMappingError(
                    {name: [f"The file has no column “{column}”."]
                     for name, column in mapping.items() if column in missing}
                )  # fmt: skip
            checked_columns = True
        if number <= skip_rows:
            _replay(importer, parser, number, row, seen_keys)
            continue
        batch.append((number, row))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if dry_run:
        _finish(importer, result, on_progress)
    else:
        with transaction.atomic():
            _finish(importer, result, on_progress)
    return result


def _finish(importer, result: ImportResult, on_progress) -> None:
    final = importer.finish()
    if final is None or not (final.errors or final.updated or final.unchanged or final.created):
        return
    final_result = ImportResult(
        created=final.created,
        updated=final.updated,
        unchanged=final.unchanged,
        errors=final.errors,
        dry_run=result.dry_run,
    )
    if on_progress:
        on_progress(final_result)
    result.merge(final_result)


def _replay(importer, parser, number, row, seen_keys) -> None:
    values, errors = parser.parse(row)
    if errors or not any(str(v).strip() for k, v in row.items() if k is not None):
        return
    key = importer.key(values)
    if key not in seen_keys:
        seen_keys[key] = number
        importer.replay(number, dict(row), values)


def _batch_run(kind, importer, parser, batch, seen_keys, *, dry_run, on_progress) -> ImportResult:
    batch_result = ImportResult(rows=len(batch), dry_run=dry_run)
    parsed: list[_Row] = []
    for number, raw in batch:
        if not any(str(v).strip() for k, v in raw.items() if k is not None):
            batch_result.blank += 1
            continue
        values, errors = parser.parse(raw)
        if not errors:
            key = importer.key(values)
            first = seen_keys.get(key)
            if first is not None:
                errors = {
                    ROW_ERROR_KEY: [
                        f"Row {first} has the same {importer.key_label(key)} "
                        f"(“{key[1]}”); each record may appear once per file."
                    ]
                }
            else:
                seen_keys[key] = number
        if errors:
            batch_result.errors.append(RowError(number, _jsonable(raw), errors))
            continue
        parsed.append(_Row(number, dict(raw), values))
    if isinstance(importer, _AccountImporter):
        importer.names_seen(parsed)
    if dry_run:
        _outcome_merge(batch_result, importer.apply(parsed), importer)
        if on_progress:
            on_progress(batch_result)
        return batch_result
    with transaction.atomic():
        try:
            with transaction.atomic():
                outcome = importer.apply(parsed)
        except (IntegrityError, DataError):
            # Some row broke a database rule the checks above cannot see (e.g. a
            # domain another account holds): retry row by row, so only it fails.
            outcome = _Outcome()
            for row in parsed:
                try:
                    with transaction.atomic():
                        single = importer.apply([row])
                except (IntegrityError, DataError) as error:
                    outcome.reject(row, _database_error(error))
                    continue
                outcome.created += single.created
                outcome.updated += single.updated
                outcome.unchanged += single.unchanged
                outcome.errors.extend(single.errors)
                outcome.deferred.extend(single.deferred)
                outcome.notices.extend(single.notices)
                outcome.new_accounts.extend(single.new_accounts)
        _outcome_merge(batch_result, outcome, importer)
        batch_result.errors.sort(key=lambda e: e.row_number)
        if on_progress:
            on_progress(batch_result)
    return batch_result


def _outcome_merge(batch_result: ImportResult, outcome: _Outcome, importer: _Importer) -> None:
    batch_result.created += outcome.created
    batch_result.updated += outcome.updated
    batch_result.unchanged += outcome.unchanged
    batch_result.errors.extend(outcome.errors)
    batch_result.notices_add(outcome.notices)
    importer.accept(outcome)
