"""Import and clean the bank's account list (CSV or XLSX): `kindly import FILE`, `POST /api/imports`.

Each row is validated with the account rules the API uses (kindly/account_fields.py), its phone normalised
to E.164 by the row's country, its segment set by kindly/policy.yml (days past due and the bank's risk
column), and written with bulk statements in chunks (SQLAlchemy Core, no ORM object per row).

Merge rules
-----------
1. Same external_id twice in one file: the LAST row is the account's current statement and the only one
   applied; the earlier rows are counted as duplicates_merged (the report names each with the row it was
   merged into). If that last row is invalid it is rejected and the account stays as it was: an earlier row
   is stale and is never applied in its place.
2. An external_id already in the database: the row updates the bank's fields (balance, minimum due, days past
   due, due date, segment, contact details). Each change is audited with its old and new value (audit_log
   action "account_imported"; a changed date of birth is recorded as changed, never its value).
   Conversations, promises, flags and opt-outs are never touched. A row equal to the stored account changes
   nothing, so importing the same file again changes nothing.
3. One phone, several external_ids (in the file or against the database): every account is kept (they are
   separate debts) and the report lists the phone under shared_phones. Campaigns then contact such a phone
   for only one of its accounts in a step when all the accounts carry the same name (one person with several
   cards), and not at all when the names differ (a family phone or a recycled number: speaking about one
   person's debt to another is a privacy breach) until a person has reviewed it (refusal rule
   "shared_phone", kindly/campaigns.py).

Encodings: UTF-8, UTF-8 with a BOM, or GB18030 (Chinese files): the file is read as UTF-8 if it decodes as
such, else as GB18030.
"""
import codecs
import csv
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Optional, Union

import phonenumbers
from phonenumbers import timezone as phone_timezones
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from kindly.account_fields import AccountFields
from kindly.models import Account, AuditLog, Import, utcnow
from kindly.policy import Policy, load_policy, segment_for
from kindly.privacy import dob_hmac, dob_matches

CHUNK_ROWS = 5000
# A pool of processes cleans rows only for files at least this long: below it, starting them costs more.
PARALLEL_MIN_ROWS = 50_000

# The columns we read; any other column is listed in the report as ignored.
FIELDS = ("external_id", "name", "phone", "language", "timezone", "country", "currency", "balance",
          "minimum_due", "days_past_due", "due_date", "card_last4", "date_of_birth", "bank_flag")
HEADER_ALIASES = {
    "id": "external_id", "account_id": "external_id", "account_number": "external_id",
    "customer_name": "name", "mobile": "phone", "phone_number": "phone", "tel": "phone",
    "dob": "date_of_birth", "birth_date": "date_of_birth", "dpd": "days_past_due", "min_due": "minimum_due",
    "last4": "card_last4", "tz": "timezone", "risk": "bank_flag", "risk_flag": "bank_flag", "flag": "bank_flag",
    "客户号": "external_id", "姓名": "name", "电话": "phone", "手机": "phone", "逾期天数": "days_past_due",
    "余额": "balance", "最低还款": "minimum_due", "到期日": "due_date", "出生日期": "date_of_birth", "风险": "bank_flag",
}
COUNTRY_ALIASES = {"US": "US", "USA": "US", "UNITED STATES": "US", "美国": "US",
                   "CN": "CN", "CHN": "CN", "CHINA": "CN", "中国": "CN"}
DEFAULT_LANGUAGE = {"US": "en", "CN": "zh"}
DEFAULT_CURRENCY = {"US": "USD", "CN": "CNY"}
DEFAULT_TIMEZONE = {"CN": "Asia/Shanghai"}  # the US spans several: there the phone's area code decides
MONEY_NOISE = re.compile(r"[\s,$¥￥]|USD|CNY|RMB|元")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d")
CN_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$")
# The fields of an account an import writes, in the order of a cleaned row (the date of birth apart).
ACCOUNT_COLUMNS = ("external_id", "name", "phone", "language", "timezone", "country", "currency", "balance",
                   "minimum_due", "days_past_due", "due_date", "card_last4", "segment")


class ImportRefused(ValueError):
    """The file as a whole cannot be imported (not CSV or XLSX, or a required column missing)."""


class Rejection(NamedTuple):
    row: int
    field: str
    reason: str


class CleanRow(NamedTuple):
    row: int
    account: tuple  # values in ACCOUNT_COLUMNS order
    date_of_birth: date  # hashed only when the account is new or its stored hash does not match


Cleaned = Union[CleanRow, list[Rejection]]


# ---------------------------------------------------------------------------------------------- reading


def detect_encoding(path: Path) -> str:
    """utf-8-sig (which reads plain UTF-8 too) if the whole file decodes as UTF-8, else gb18030."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def normalise_header(name) -> str:
    key = unicodedata.normalize("NFKC", str(name or "")).strip().lstrip("\ufeff").lower()
    key = re.sub(r"[\s\-]+", "_", key)
    return HEADER_ALIASES.get(key, key)


def read_table(path: Path) -> tuple[str, Iterator[tuple]]:
    """The file's encoding (or "xlsx") and an iterator over its rows as tuples of cells, header first."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".txt", ".xlsx", ".xlsm"):
        raise ImportRefused(f"{path.name}: not a CSV or XLSX file")
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises zip, XML and its own errors for a file that is not XLSX
            raise ImportRefused(f"{path.name}: not a readable XLSX file ({error})") from error

        def xlsx_rows() -> Iterator[tuple]:
            try:
                yield from workbook.worksheets[0].iter_rows(values_only=True)
            finally:
                workbook.close()

        return "xlsx", xlsx_rows()
    encoding = detect_encoding(path)

    def csv_rows() -> Iterator[tuple]:
        with path.open(encoding=encoding, newline="") as handle:
            for row in csv.reader(handle):
                yield tuple(row)

    return encoding, csv_rows()


@dataclass
class Table:
    encoding: str
    columns: dict[str, int]  # our field -> its column index
    ignored_columns: list[str]
    rows: Iterator[tuple[int, tuple]]  # (row number as the spreadsheet shows it, its cells); blank lines left out


def open_table(path: Path) -> Table:
    encoding, rows = read_table(path)
    header = next(rows, ())
    columns, ignored = {}, []
    for index, name in enumerate(header):
        key = normalise_header(name)
        if key in FIELDS and key not in columns:
            columns[key] = index
        elif key:
            ignored.append(str(name).strip())

    def numbered() -> Iterator[tuple[int, tuple]]:
        for number, cells in enumerate(rows, start=2):
            if any(cell not in (None, "") and str(cell).strip() for cell in cells):
                yield number, cells

    return Table(encoding, columns, ignored, numbered())


def record(cells: tuple, columns: dict[str, int]) -> dict:
    """{field: cell} for one row's cells."""
    return {key: cells[index] if index < len(cells) else None for key, index in columns.items()}


def external_id_of(cells: tuple, columns: dict[str, int]) -> str:
    index = columns.get("external_id")
    return text(cells[index]) if index is not None and index < len(cells) else ""


# ---------------------------------------------------------------------------------------------- cleaning


def text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a spreadsheet's 4242.0
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_date(value) -> date:
    """A date cell: a spreadsheet date, or YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, YYYY.MM.DD, YYYY年M月D日. Day-month
    orders (03/05/1985) are refused: they read differently in the US and elsewhere."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = text(value)
    if not raw:
        raise ValueError("required")
    if len(raw) == 10 and raw[4] == "-":
        try:
            return date.fromisoformat(raw)  # the usual case, and much faster than strptime
        except ValueError:
            pass
    if match := CN_DATE.match(raw):
        try:
            return date(*map(int, match.groups()))
        except ValueError:
            raise ValueError(f"not a date: {raw!r}") from None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"not a date (use YYYY-MM-DD): {raw!r}")


def parse_money(value) -> str:
    """"$1,234.50", "¥8,000", "8000元" -> "1234.50", "8000". Validation (positive, cents) is the account rules'."""
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return str(Decimal(str(value)))
    raw = MONEY_NOISE.sub("", text(value))
    try:
        Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text(value)!r}") from None
    return raw


def parse_days(value) -> int:
    raw = text(value)
    try:
        days = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not a number of days: {raw!r}") from None
    if days != days.to_integral_value():
        raise ValueError(f"not a whole number of days: {raw!r}")
    return int(days)


def bank_flagged(value, policy: Policy) -> bool:
    flag = text(value).casefold()
    if flag in policy.flagged_bank_flags:
        return True
    if flag in policy.not_flagged_bank_flags:
        return False
    raise ValueError(f"unknown risk value {text(value)!r} (see segments in kindly/policy.yml)")


def timezone_of_phone(e164_phone: str) -> str:
    """The one time zone of a valid E.164 number's area, or "" when it spans several (or is unknown). Country
    calling codes are prefix-free, so the first known prefix is the code (no second parse of the number)."""
    digits = e164_phone[1:]
    code = next(int(digits[:n]) for n in (1, 2, 3) if int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(digits[len(str(code)):]))
    zones = phone_timezones.time_zones_for_geographical_number(number)
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else ""


def reason_of(error: dict) -> str:
    message = error["msg"]
    return message.removeprefix("Value error, ")


def clean_row(number: int, raw: dict, policy: Policy) -> Cleaned:
    """One row of the file: a CleanRow ready to write, or the reasons it is rejected (every field at fault)."""
    rejections: list[Rejection] = []
    unusable: set[str] = set()  # fields already rejected (or not checkable), left out of the account rules' errors
    fields: dict = {name: text(raw.get(name)) for name in ("external_id", "name", "phone", "language", "timezone", "currency", "card_last4")}
    country = COUNTRY_ALIASES.get(text(raw.get("country")).upper(), text(raw.get("country")).upper())
    fields["country"] = country
    fields["language"] = fields["language"].lower() or DEFAULT_LANGUAGE.get(country, "")
    fields["currency"] = fields["currency"].upper() or DEFAULT_CURRENCY.get(country, "")
    if country not in DEFAULT_LANGUAGE:
        unusable.update(name for name in ("language", "currency") if not fields[name])  # the country's error says why
    if fields["card_last4"].isdigit() and len(fields["card_last4"]) < 4:
        fields["card_last4"] = fields["card_last4"].zfill(4)  # a spreadsheet that read 0042 as a number
    zone_from_phone = not fields["timezone"] and country not in DEFAULT_TIMEZONE
    if zone_from_phone:
        # Checked against the phone once the rules have normalised it: a stand-in until then.
        fields["timezone"] = "UTC"
    elif not fields["timezone"]:
        fields["timezone"] = DEFAULT_TIMEZONE.get(country, "")
    for name, parse in (("balance", parse_money), ("minimum_due", parse_money), ("days_past_due", parse_days),
                        ("due_date", parse_date), ("date_of_birth", parse_date)):
        try:
            fields[name] = parse(raw.get(name))
        except ValueError as error:
            # The report is stored and shown: a date of birth is never written into it, even a malformed one.
            reason = str(error).split(":")[0] if name == "date_of_birth" else str(error)
            rejections.append(Rejection(number, name, reason))
            unusable.add(name)
    flagged = False
    try:
        flagged = bank_flagged(raw.get("bank_flag"), policy)
    except ValueError as error:
        rejections.append(Rejection(number, "bank_flag", str(error)))
    try:
        account = AccountFields.model_validate(
            {k: v for k, v in fields.items() if k not in unusable}, context={"phone_region": country})
    except ValidationError as error:
        for e in error.errors():
            name = str(e["loc"][0]) if e["loc"] else "minimum_due"  # the one rule across fields: minimum <= balance
            if name not in unusable:
                rejections.append(Rejection(number, name, reason_of(e)))
        return sorted(rejections, key=lambda r: FIELDS.index(r.field) if r.field in FIELDS else len(FIELDS))
    zone = timezone_of_phone(account.phone) if zone_from_phone else account.timezone
    if not zone:
        rejections.append(Rejection(number, "timezone", "required: the phone's area spans several time zones"))
    if rejections:
        return rejections
    return CleanRow(number, (
        account.external_id, account.name, account.phone, account.language, zone, account.country,
        account.currency, account.balance, account.minimum_due, account.days_past_due, account.due_date,
        account.card_last4, segment_for(account.days_past_due, policy, flagged),
    ), account.date_of_birth)


def clean_chunk(rows: list[tuple[int, tuple]], columns: dict[str, int]) -> list[Cleaned]:
    policy = load_policy()
    return [clean_row(number, record(cells, columns), policy) for number, cells in rows]


def chunks(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


# ---------------------------------------------------------------------------------------------- the report


@dataclass
class Report:
    file: str
    encoding: str = ""
    rows: int = 0
    accepted: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates_merged: int = 0
    segments: dict = field(default_factory=lambda: {"early": 0, "late": 0, "flagged": 0})
    rejections: list = field(default_factory=list)  # {row, field, reason}
    duplicates: list = field(default_factory=list)  # {row, external_id, merged_into_row}
    shared_phones: list = field(default_factory=list)  # {phone (last 4 only), external_ids, same_name}
    ignored_columns: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# ---------------------------------------------------------------------------------------------- writing


@dataclass
class Writes:
    """What one chunk writes, worked out (with the date-of-birth hashing) before the write transaction."""

    inserts: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    audits: list = field(default_factory=list)
    unchanged: int = 0


def _plain(value):
    return str(value) if isinstance(value, (Decimal, date)) else value


def changes_of(old, row: CleanRow) -> dict:
    """{field: [old, new]} for each field the row changes on the stored account; a date of birth appears only
    as "changed", never its value. The stored hash is checked with dob_matches (it is salted)."""
    changes = {}
    for name, value in zip(ACCOUNT_COLUMNS[1:], row.account[1:]):
        before = getattr(old, name)
        if isinstance(value, Decimal) and before is not None:
            before, value = Decimal(before).quantize(Decimal("0.01")), value.quantize(Decimal("0.01"))
        if before != value:
            changes[name] = [_plain(before), _plain(value)]
    if not dob_matches(row.date_of_birth, old.dob_hmac):
        changes["dob_hmac"] = "changed"
    return changes


def plan_writes(connection: Connection, rows: list[CleanRow], import_id: str, actor: str) -> Writes:
    """New accounts to insert, changed ones to update (each with its audit row), and the count left alone."""
    table = Account.__table__
    existing = {r.external_id: r for r in connection.execute(
        select(table.c.id, table.c.dob_hmac, *(table.c[name] for name in ACCOUNT_COLUMNS))
        .where(table.c.external_id.in_([row.account[0] for row in rows])))}
    now, writes = utcnow(), Writes()
    for row in rows:
        values = dict(zip(ACCOUNT_COLUMNS, row.account))
        old = existing.get(values["external_id"])
        if old is None:
            writes.inserts.append({**values, "dob_hmac": dob_hmac(row.date_of_birth), "created_at": now})
            continue
        changes = changes_of(old, row)
        if not changes:
            writes.unchanged += 1
            continue
        new_values = {name: values[name] for name in changes if name != "dob_hmac"}
        if "dob_hmac" in changes:
            new_values["dob_hmac"] = dob_hmac(row.date_of_birth)
        writes.updates.append({"account_id": old.id, **new_values})
        writes.audits.append({"at": now, "actor": actor, "action": "account_imported", "entity": "account",
                              "entity_id": str(old.id), "detail": {"import": import_id, "row": row.row, "changes": changes}})
    return writes


def write(connection: Connection, writes: Writes) -> None:
    table = Account.__table__
    if writes.inserts:
        connection.execute(insert(table), writes.inserts)
    # One UPDATE per set of changed columns (executemany needs the same parameters in every row).
    by_columns: dict[tuple, list] = {}
    for values in writes.updates:
        by_columns.setdefault(tuple(sorted(values)), []).append(values)
    for columns, batch in by_columns.items():
        statement = update(table).where(table.c.id == bindparam("account_id")).values(
            {name: bindparam(name) for name in columns if name != "account_id"})
        connection.execute(statement, batch)
    if writes.audits:
        connection.execute(insert(AuditLog.__table__), writes.audits)


@dataclass
class ChunkResult:
    size: int
    rejections: list  # one list of Rejection per rejected row
    accepted: list  # the phones of the accepted rows
    segments: list
    created: int
    updated: int
    unchanged: int


def process_chunk(job: tuple) -> ChunkResult:
    """Clean, plan and write one chunk, in one transaction: the part that runs in a worker process. The chunks of
    one import never share an external_id (rule 1), so workers writing side by side never touch one account."""
    size, rows, columns, url, import_id, actor = job
    from kindly.db import engine_for

    cleaned = clean_chunk(rows, columns)
    good = [item for item in cleaned if isinstance(item, CleanRow)]
    engine = engine_for(url)
    # Planned before the write transaction opens: SQLite's write lock is then held only for the writes.
    with engine.connect() as connection:
        writes = plan_writes(connection, good, import_id, actor) if good else Writes()
    with engine.begin() as connection:
        write(connection, writes)
    return ChunkResult(size, [item for item in cleaned if not isinstance(item, CleanRow)],
                       [row.account[2] for row in good], [row.account[-1] for row in good],
                       len(writes.inserts), len(writes.updates), writes.unchanged)


def _fresh_connections_after_fork() -> None:
    from kindly.db import engine_for

    engine_for.cache_clear()  # the parent's pooled connections must not be shared with a child process


def shared_phones(connection: Connection, phones: set[str]) -> list[dict]:
    """The phones of this import that more than one account has, with their accounts and whether the names agree."""
    table = Account.__table__
    shared = [phone for (phone,) in connection.execute(
        select(table.c.phone).group_by(table.c.phone).having(func.count() > 1)) if phone in phones]
    result = []
    for group in chunks(sorted(shared), 500):
        accounts: dict[str, list] = {}
        for phone, external_id, name in connection.execute(
                select(table.c.phone, table.c.external_id, table.c.name).where(table.c.phone.in_(group)).order_by(table.c.external_id)):
            accounts.setdefault(phone, []).append((external_id, name))
        for phone, members in accounts.items():
            result.append({"phone": "…" + phone[-4:], "external_ids": [m[0] for m in members],
                           "same_name": len({same_person_key(m[1]) for m in members}) == 1})
    return result


def same_person_key(name: str) -> str:
    """Names compared without case or spaces: "王 芳" is "王芳", "ALEX  MORGAN" is "Alex Morgan"."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


# ---------------------------------------------------------------------------------------------- the whole import


def last_rows(path: Path) -> tuple[dict[str, int], int]:
    """external_id -> the number of the last row that carries it (the first pass of rule 1), and the count of
    rows."""
    last: dict[str, int] = {}
    count = 0
    table = open_table(path)
    for count, (number, cells) in enumerate(table.rows, start=1):
        if external_id := external_id_of(cells, table.columns):
            last[external_id] = number
    return last, count


def count_rows(path: Path) -> int:
    return last_rows(path)[1]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_file(
    path: Union[str, Path],
    engine: Engine,
    import_id: str = "",
    actor: str = "import",
    workers: int = 1,
    progress: Optional[Callable[[int], None]] = None,
    on_total: Optional[Callable[[int], None]] = None,
) -> Report:
    """Clean, deduplicate, segment and write one file, returning its report. Each chunk of rows is one
    transaction, so a long import never holds the database for long; an import that fails half way is completed
    by importing the file again (which changes nothing that is already written). `workers` > 1 cleans, hashes and writes
    in that many processes (not from inside a daemonic Celery worker process)."""
    path = Path(path)
    report = Report(file=path.name)
    table = open_table(path)
    report.encoding, report.ignored_columns = table.encoding, table.ignored_columns
    missing = [name for name in FIELDS if name not in table.columns and name not in ("language", "timezone", "currency", "bank_flag")]
    if missing:
        raise ImportRefused(f"the file has no column for: {', '.join(missing)}")
    last, total = last_rows(path)
    if on_total:
        on_total(total)

    def keep_last(batch: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
        kept = []
        for number, cells in batch:
            external_id = external_id_of(cells, table.columns)
            if external_id and last.get(external_id, number) != number:
                report.duplicates_merged += 1
                report.duplicates.append({"row": number, "external_id": external_id, "merged_into_row": last[external_id]})
            else:
                kept.append((number, cells))
        return kept

    url = engine.url.render_as_string(hide_password=False)
    jobs = ((len(batch), keep_last(batch), table.columns, url, import_id, actor) for batch in chunks(table.rows, CHUNK_ROWS))
    phones: set[str] = set()
    pool = None
    if workers > 1 and total >= PARALLEL_MIN_ROWS:
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_fresh_connections_after_fork)
    try:
        for result in (pool.imap(process_chunk, jobs) if pool else map(process_chunk, jobs)):
            report.rejected += len(result.rejections)
            report.rejections.extend(r._asdict() for rejected in result.rejections for r in rejected)
            report.accepted += len(result.accepted)
            phones.update(result.accepted)
            for segment in result.segments:
                report.segments[segment] += 1
            report.created += result.created
            report.updated += result.updated
            report.unchanged += result.unchanged
            if progress:
                progress(result.size)
    finally:
        if pool:
            pool.close()
            pool.join()
    report.rows = report.accepted + report.rejected + report.duplicates_merged
    with engine.connect() as connection:
        report.shared_phones = shared_phones(connection, phones)
    report.rejections.sort(key=lambda r: r["row"])
    return report


def run_import(path: Union[str, Path], import_id: str = "", filename: str = "", actor: str = "import", workers: int = 1,
               progress: Optional[Callable[[int], None]] = None, on_total: Optional[Callable[[int], None]] = None) -> dict:
    """Import a file as a recorded Import (its status and report in the imports table): the CLI, the API and
    the Celery task all come here. Returns the report; a file refused as a whole raises ImportRefused."""
    from kindly.db import get_engine, session_scope

    path = Path(path)
    with session_scope() as session:
        record = session.get(Import, import_id) if import_id else None
        if record is None:
            record = Import(filename=filename or path.name, sha256=file_sha256(path))
            session.add(record)
            session.flush()
        record.status = "running"
        import_id, filename = record.id, filename or record.filename
    try:
        report = import_file(path, get_engine(), import_id, actor, workers, progress, on_total).as_dict()
        report["file"] = filename or path.name
    except Exception as error:
        with session_scope() as session:
            record = session.get(Import, import_id)
            record.status, record.error, record.finished_at = "failed", str(error)[:2000], utcnow()
        raise
    with session_scope() as session:
        record = session.get(Import, import_id)
        record.status, record.report, record.finished_at = "done", {**report, "id": import_id}, utcnow()
        from kindly.records import audit

        audit(session, actor, "accounts_imported", "import", import_id, file=report["file"],
              **{k: report[k] for k in ("rows", "accepted", "created", "updated", "unchanged", "rejected", "duplicates_merged")})
    return {**report, "id": import_id}
