"""The importer (kindly/importer.py): the small parsers, table by table, then whole messy files (CSV in UTF-8,
UTF-8 with a BOM and GB18030, and XLSX) written to the test database, re-imported and updated, and the
POST /api/imports endpoint over HTTP on a real gateway."""
import csv
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import select

from kindly.db import get_engine, session_scope
from kindly.importer import (
    ImportRefused, bank_flagged, detect_encoding, import_file, normalise_header, parse_date, parse_days, parse_money,
    run_import,
)
from kindly.models import Account, AuditLog, Conversation, Import, Promise
from kindly.policy import load_policy
from kindly.privacy import dob_matches
from tests.conftest import ADMIN_HEADERS

HEADER = ["External ID", "Name", "Phone", "Country", "Balance", "Minimum Due", "DPD", "Due Date", "Card Last4",
          "DOB", "Risk", "Branch", ""]


def messy_rows(tag: str, area: str) -> list[list]:
    """A bank's list as it really comes: mixed phone formats, a duplicate id, a shared phone, bad dates, a
    blank line, an extra and a blank column, Chinese names. `tag` keeps ids apart between tests; `area` is a
    US area code of the test's own so that phones are not shared with other tests' accounts."""
    t = tag
    return [
        HEADER,
        [f"{t}-001", "Alex Morgan", f"({area}) 555-0101", "US", "$1,200.00", "50", "12", "2026-11-01", "4242", "1985-03-05", "", "Downtown", ""],  # 2: merged into 9
        [f"{t}-002", "王芳", f"138 1{area} 5678", "CN", "¥8,000", "400", "45", "2026/10/01", "0042", "1988年2月3日", "恶意逾期", "", ""],  # 3: flagged
        [f"{t}-003", "李雷", f"+86 139-1{area}-5678", "China", "3000", "150", "20", "20261110", "1234", "1990-07-08", "正常", "", ""],  # 4: early
        [f"{t}-004", "Bad Phone", "12345", "US", "100", "10", "5", "2026-11-01", "1111", "1980-01-01", "", "", ""],  # 5: phone
        [f"{t}-005", "Bad Birth", f"+1 {area} 555 0123", "US", "100", "10", "5", "2026-11-01", "2222", "03/05/1985", "", "", ""],  # 6: dob
        [f"{t}-006", "No Such Day", f"+1 {area} 555 0124", "US", "100", "10", "5", "2026-02-30", "3333", "1980-01-01", "", "", ""],  # 7: due_date
        ["", "", "", "", "", "", "", "", "", "", "", "", ""],  # 8: a blank line
        [f"{t}-001", "Alex Morgan", f"{area}.555.0101", "US", "1,100.00", "50", "13", "2026-11-01", "4242", "1985-03-05", "", "Downtown", "x"],  # 9: early
        [f"{t}-007", "Minimum Too High", f"+1 {area} 555 0125", "US", "100", "200", "40", "2026-10-01", "4444", "1979-05-05", "", "", ""],  # 10: minimum_due
        [f"{t}-008", "Unknown Risk", f"+1 {area} 555 0126", "US", "500", "25", "40", "2026-10-01", "5555", "1979-05-05", "vip", "", ""],  # 11: bank_flag
        [f"{t}-009", "Jordan Morgan", f"1-{area}-555-0101", "US", "900", "45", "35", "2026-10-01", "6666", "1982-04-04", "high_risk", "", ""],  # 12: flagged, shares Alex's phone
        [f"{t}-010", "王芳", f"1381{area}5678", "CN", "500", "50", "60", "2026-09-01", "7777", "1988-02-03", "", "", ""],  # 13: late, shares 王芳's phone
        ["", "No Id", f"+1 {area} 555 0127", "US", "100", "10", "5", "2026-11-01", "8888", "1980-01-01", "", "", ""],  # 14: external_id
        [f"{t}-011", "Toll Free", "(800) 234-5678", "US", "100", "10", "5", "2026-11-01", "9999", "1980-01-01", "", "", ""],  # 15: timezone
        [f"{t}-012", "Ten Days", f"+1 {area} 555 0128", "US", "100", "10", "ten", "2026-11-01", "1212", "1980-01-01", "", "", ""],  # 16: days_past_due
        [f"{t}-013", "Stale Then Bad", f"+1 {area} 555 0129", "US", "100", "10", "5", "2026-11-01", "1313", "1980-01-01", "", "", ""],  # 17: merged into 18
        [f"{t}-013", "Stale Then Bad", f"+1 {area} 555 0129", "US", "abc", "10", "5", "2026-11-01", "1313", "1980-01-01", "", "", ""],  # 18: balance
        [f"{t}-014", "Mars", f"+1 {area} 555 0130", "FR", "100", "10", "5", "2026-11-01", "1414", "1980-01-01", "", "", ""],  # 19: country
    ]


EXPECTED_REJECTIONS = [
    (5, "phone", "not a valid phone number"),
    (6, "date_of_birth", "not a date (use YYYY-MM-DD)"),  # the report never repeats a date of birth
    (7, "due_date", "not a date (use YYYY-MM-DD): '2026-02-30'"),
    (10, "minimum_due", "minimum_due cannot exceed balance"),
    (11, "bank_flag", "unknown risk value 'vip' (see segments in kindly/policy.yml)"),
    (14, "external_id", "String should have at least 1 character"),
    (15, "timezone", "required: the phone's area spans several time zones"),
    (16, "days_past_due", "not a number of days: 'ten'"),
    (18, "balance", "not an amount: 'abc'"),
    (19, "country", "Input should be 'US' or 'CN'"),
]


def write_csv(path: Path, rows: list[list], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list]) -> Path:
    """As a spreadsheet program saves it: numbers as numbers, dates as dates, 0042 lost to 42."""
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            column = HEADER[index] if index < len(HEADER) else ""
            if column in ("DPD", "Minimum Due") and value.isdigit():
                value = int(value)
            elif column == "Card Last4" and value.isdigit():
                value = int(value)
            elif column == "Due Date" and len(value) == 10 and value[4] == "-":
                try:
                    value = datetime.fromisoformat(value)
                except ValueError:
                    pass
            cells.append(value if value != "" else None)
        sheet.append(cells)
    workbook.save(path)
    return path


def accounts_by_id(prefix: str) -> dict[str, Account]:
    with session_scope() as session:
        return {a.external_id: a for a in session.scalars(select(Account).where(Account.external_id.like(f"{prefix}-%")))}


# ------------------------------------------------------------------------------------------ the small parsers


@pytest.mark.parametrize("value, expected", [
    ("2026-11-01", date(2026, 11, 1)), ("2026/11/01", date(2026, 11, 1)), ("20261101", date(2026, 11, 1)),
    ("2026.11.01", date(2026, 11, 1)), ("2026年11月1日", date(2026, 11, 1)), ("2026年11月1", date(2026, 11, 1)),
    (" 2026-11-01 ", date(2026, 11, 1)), (datetime(2026, 11, 1, 0, 0), date(2026, 11, 1)), (date(2026, 11, 1), date(2026, 11, 1)),
    ("２０２６-１１-０１", date(2026, 11, 1)),  # full-width digits
])
def test_dates_read(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value, message", [
    ("03/05/1985", "not a date (use YYYY-MM-DD): '03/05/1985'"), ("2026-02-30", "not a date (use YYYY-MM-DD): '2026-02-30'"),
    ("", "required"), (None, "required"), ("2026年2月30日", "not a date: '2026年2月30日'"), ("yesterday", "not a date (use YYYY-MM-DD): 'yesterday'"),
])
def test_dates_refused(value, message):
    with pytest.raises(ValueError) as error:
        parse_date(value)
    assert str(error.value) == message


@pytest.mark.parametrize("value, expected", [
    ("$1,200.00", "1200.00"), ("¥8,000", "8000"), ("￥8000", "8000"), ("8000元", "8000"), ("1200.5", "1200.5"),
    (1200, "1200"), (Decimal("12.30"), "12.30"), (12.3, "12.3"), ("RMB 99", "99"),
])
def test_money_read(value, expected):
    assert parse_money(value) == expected


@pytest.mark.parametrize("value", ["abc", "", "1.2.3", "12,3a"])
def test_money_refused(value):
    with pytest.raises(ValueError):
        parse_money(value)


@pytest.mark.parametrize("value, expected", [("12", 12), (" 7 ", 7), (45.0, 45), ("30.0", 30)])
def test_days_read(value, expected):
    assert parse_days(value) == expected


@pytest.mark.parametrize("value", ["ten", "", "3.5"])
def test_days_refused(value):
    with pytest.raises(ValueError):
        parse_days(value)


@pytest.mark.parametrize("header, field", [
    ("External ID", "external_id"), ("\ufeffexternal_id", "external_id"), ("DOB", "date_of_birth"), ("Risk", "bank_flag"),
    ("Phone Number", "phone"), ("DPD", "days_past_due"), ("客户号", "external_id"), ("姓名", "name"), ("Branch", "branch"),
    ("  card-last4 ", "card_last4"), (None, ""),
])
def test_headers(header, field):
    assert normalise_header(header) == field


@pytest.mark.parametrize("value, flagged", [
    ("", False), (None, False), ("normal", False), ("正常", False), ("轻微逾期", False), ("长期逾期", False),
    ("malicious", True), ("HIGH_RISK", True), ("恶意逾期", True), (" high_risk ", True),
])
def test_bank_flags(value, flagged):
    assert bank_flagged(value, load_policy()) is flagged


def test_unknown_bank_flag_is_refused():
    with pytest.raises(ValueError, match="unknown risk value 'vip'"):
        bank_flagged("vip", load_policy())


def test_encodings_detected(tmp_path):
    assert detect_encoding(write_csv(tmp_path / "a.csv", [["姓名"], ["王芳"]], "utf-8")) == "utf-8-sig"
    assert detect_encoding(write_csv(tmp_path / "b.csv", [["姓名"], ["王芳"]], "utf-8-sig")) == "utf-8-sig"
    assert detect_encoding(write_csv(tmp_path / "c.csv", [["姓名"], ["王芳"]], "gb18030")) == "gb18030"


# ------------------------------------------------------------------------------------------ whole files


def check_messy_report(report: dict, tag: str) -> None:
    assert (report["rows"], report["accepted"], report["created"], report["updated"], report["unchanged"],
            report["rejected"], report["duplicates_merged"]) == (17, 5, 5, 0, 0, 10, 2)
    assert [(r["row"], r["field"], r["reason"]) for r in report["rejections"]] == EXPECTED_REJECTIONS
    assert report["duplicates"] == [
        {"row": 2, "external_id": f"{tag}-001", "merged_into_row": 9},
        {"row": 17, "external_id": f"{tag}-013", "merged_into_row": 18},
    ]
    assert report["segments"] == {"early": 2, "late": 1, "flagged": 2}
    shared = {tuple(s["external_ids"]): (s["same_name"], s["phone"]) for s in report["shared_phones"]}
    assert shared == {(f"{tag}-001", f"{tag}-009"): (False, "…0101"), (f"{tag}-002", f"{tag}-010"): (True, "…5678")}


def check_messy_accounts(tag: str, area: str) -> None:
    accounts = accounts_by_id(tag)
    assert sorted(accounts) == [f"{tag}-001", f"{tag}-002", f"{tag}-003", f"{tag}-009", f"{tag}-010"]
    # The stale row 17 of 013 is not applied in place of its invalid last row 18.
    alex = accounts[f"{tag}-001"]
    assert (alex.name, alex.phone, alex.balance, alex.minimum_due, alex.days_past_due, alex.segment, alex.timezone,
            alex.language, alex.currency, alex.due_date) == (
        "Alex Morgan", f"+1{area}5550101", Decimal("1100.00"), Decimal("50.00"), 13, "early", "America/Denver", "en", "USD",
        date(2026, 11, 1))
    assert dob_matches(date(1985, 3, 5), alex.dob_hmac)
    wang = accounts[f"{tag}-002"]
    assert (wang.name, wang.phone, wang.balance, wang.segment, wang.language, wang.currency, wang.timezone, wang.card_last4,
            wang.due_date) == ("王芳", f"+861381{area}5678", Decimal("8000.00"), "flagged", "zh", "CNY", "Asia/Shanghai", "0042", date(2026, 10, 1))
    assert dob_matches(date(1988, 2, 3), wang.dob_hmac)
    li = accounts[f"{tag}-003"]
    assert (li.name, li.phone, li.country, li.segment, li.due_date) == ("李雷", f"+861391{area}5678", "CN", "early", date(2026, 11, 10))
    assert accounts[f"{tag}-009"].segment == "flagged"
    assert accounts[f"{tag}-010"].segment == "late"


@pytest.mark.parametrize("encoding, area", [("utf-8", "303"), ("utf-8-sig", "720"), ("gb18030", "970")])
def test_messy_csv(tmp_path, encoding, area):
    tag = "CSV-" + encoding
    report = run_import(write_csv(tmp_path / "accounts.csv", messy_rows(tag, area), encoding))
    check_messy_report(report, tag)
    assert report["encoding"] == ("gb18030" if encoding == "gb18030" else "utf-8-sig")
    assert report["ignored_columns"] == ["Branch"]
    check_messy_accounts(tag, area)
    with session_scope() as session:
        record = session.get(Import, report["id"])
        assert (record.status, record.report["created"], record.filename) == ("done", 5, "accounts.csv")


def test_messy_xlsx(tmp_path):
    tag, area = "XLSX", "719"
    report = run_import(write_xlsx(tmp_path / "accounts.xlsx", messy_rows(tag, area)))
    check_messy_report(report, tag)
    assert report["encoding"] == "xlsx"
    check_messy_accounts(tag, area)


def test_chinese_headers_in_gb18030(tmp_path):
    rows = [["客户号", "姓名", "电话", "country", "余额", "最低还款", "逾期天数", "到期日", "card_last4", "出生日期", "风险"],
            ["ZH-HDR-1", "张伟", "13700001111", "中国", "12000", "600", "90", "2026-09-01", "8080", "1975年12月1日", "长期逾期"],
            ["ZH-HDR-2", "赵敏", "13700002222", "CN", "3000", "150", "10", "2026-11-20", "9090", "1992-06-15", "恶意"]]
    report = run_import(write_csv(tmp_path / "名单.csv", rows, "gb18030"))
    assert (report["encoding"], report["accepted"], report["rejected"], report["segments"]) == (
        "gb18030", 2, 0, {"early": 0, "late": 1, "flagged": 1})
    accounts = accounts_by_id("ZH-HDR")
    assert (accounts["ZH-HDR-1"].name, accounts["ZH-HDR-1"].segment, accounts["ZH-HDR-2"].segment) == ("张伟", "late", "flagged")


def test_same_file_again_changes_nothing(tmp_path):
    tag, area = "AGAIN", "505"
    path = write_csv(tmp_path / "accounts.csv", messy_rows(tag, area))
    run_import(path)
    before = {k: (a.balance, a.dob_hmac, a.segment, a.phone) for k, a in accounts_by_id(tag).items()}
    report = run_import(path)
    assert (report["accepted"], report["created"], report["updated"], report["unchanged"], report["rejected"]) == (5, 0, 0, 5, 10)
    assert {k: (a.balance, a.dob_hmac, a.segment, a.phone) for k, a in accounts_by_id(tag).items()} == before
    with session_scope() as session:
        ids = [str(a.id) for a in accounts_by_id(tag).values()]
        assert session.scalar(select(AuditLog.id).where(AuditLog.action == "account_imported", AuditLog.entity_id.in_(ids))) is None


def test_new_file_updates_balances_and_keeps_history(tmp_path):
    tag, area = "UPDATE", "307"
    rows = messy_rows(tag, area)
    run_import(write_csv(tmp_path / "monday.csv", rows))
    alex = accounts_by_id(tag)[f"{tag}-001"]
    with session_scope() as session:  # a conversation and a promise the bot already recorded
        conversation = Conversation(account_id=alex.id, channel="sms", direction="outbound", language="en", verified=True)
        session.add(conversation)
        session.flush()
        session.add(Promise(account_id=alex.id, conversation_id=conversation.id, amount=Decimal("50.00"), currency="USD",
                            due_date=date(2026, 12, 1), plan_type="partial", installments=1, total=Decimal("50.00")))
        conversation_id = conversation.id
    rows[8] = rows[8][:4] + ["950.00", "50", "44"] + rows[8][7:]  # 001: paid 150, and 31 days later: late now
    rows[9][9] = "1979-05-06"  # 007 was refused for its minimum before; still refused
    report = run_import(write_csv(tmp_path / "tuesday.csv", rows))
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 4)
    alex = accounts_by_id(tag)[f"{tag}-001"]
    assert (alex.balance, alex.days_past_due, alex.segment) == (Decimal("950.00"), 44, "late")
    with session_scope() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "account_imported", AuditLog.entity_id == str(alex.id))).all()
        assert [row.detail["changes"] for row in audit] == [
            {"balance": ["1100.00", "950.00"], "days_past_due": [13, 44], "segment": ["early", "late"]}]
        assert audit[0].detail["import"] == report["id"] and audit[0].detail["row"] == 9
        assert session.get(Conversation, conversation_id).verified is True
        promise = session.scalar(select(Promise).where(Promise.conversation_id == conversation_id))
        assert (promise.amount, promise.status) == (Decimal("50.00"), "open")


def test_changed_date_of_birth_is_audited_without_its_value(tmp_path):
    tag, area = "DOB", "406"
    rows = [HEADER[:11], [f"{tag}-1", "Sam Lee", f"({area}) 555-0101", "US", "100", "10", "5", "2026-11-01", "4242", "1985-03-05", ""]]
    run_import(write_csv(tmp_path / "a.csv", rows))
    rows[1][9] = "1985-05-03"
    report = run_import(write_csv(tmp_path / "b.csv", rows))
    assert report["updated"] == 1
    account = accounts_by_id(tag)[f"{tag}-1"]
    assert dob_matches(date(1985, 5, 3), account.dob_hmac) and not dob_matches(date(1985, 3, 5), account.dob_hmac)
    with session_scope() as session:
        detail = session.scalar(select(AuditLog.detail).where(AuditLog.action == "account_imported", AuditLog.entity_id == str(account.id)))
    assert detail["changes"] == {"dob_hmac": "changed"}
    assert "1985" not in str(detail)


def test_file_without_required_columns_is_refused(tmp_path):
    path = write_csv(tmp_path / "short.csv", [["external_id", "name"], ["X-1", "Alex"]])
    with pytest.raises(ImportRefused, match="no column for: phone, country, balance"):
        run_import(path)
    with pytest.raises(ImportRefused, match="not a CSV or XLSX"):
        import_file(tmp_path / "short.pdf", get_engine())
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ImportRefused, match="not a readable XLSX"):
        run_import(broken)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_workers_writing_side_by_side_import_exactly_what_one_process_does(request, tmp_path, monkeypatch, database):
    """Chunks of three rows over two worker processes, each writing its own chunks: the same report and the same
    accounts as one process, on both databases (a re-import then changes nothing)."""
    from kindly import importer
    from kindly.db import engine_for
    from kindly.migrate import upgrade

    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    monkeypatch.setattr(importer, "PARALLEL_MIN_ROWS", 1)
    path = write_csv(tmp_path / "accounts.csv", messy_rows("PAR", "385"))
    base = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    results = []
    for workers in (1, 2):
        if base is None:
            url = f"sqlite:///{tmp_path / f'workers-{workers}.db'}"
        else:
            url = base  # a database of its own per run: emptied below
            with engine_for(url).begin() as connection:
                connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        upgrade(url)
        engine = engine_for(url)
        report = import_file(path, engine, "par", "test", workers=workers).as_dict()
        with engine.connect() as connection:
            columns = [c for c in Account.__table__.c if c.name not in ("id", "dob_hmac", "created_at")]
            accounts = sorted(tuple(row) for row in connection.execute(select(*columns)))
        again = import_file(path, engine, "par-again", "test", workers=workers).as_dict()
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, report["accepted"])
        results.append((report, accounts))
        engine.dispose()
    (one, one_accounts), (two, two_accounts) = results
    check_messy_report(two, "PAR")
    assert two == one and two_accounts == one_accounts and len(two_accounts) == 5


# ------------------------------------------------------------------------------------------ POST /api/imports


@pytest.fixture(scope="module")
def gateway(tmp_dir):
    from scripts import services
    from tests.conftest import GATEWAY_PORT

    port = GATEWAY_PORT + 7  # the gateway alone, next to the e2e stack's ports
    env = services.base_env(KINDLY_IMPORT_INLINE_ROWS="30", KINDLY_IMPORT_DIR=str(tmp_dir / "imports"),
                            KINDLY_BROKER_URL=f"sqla+sqlite:///{tmp_dir / 'imports-broker.db'}")
    process = services.start_gateway(port, env, tmp_dir / "logs" / "imports-gateway.log")
    worker = services.start_worker(env, tmp_dir / "logs" / "imports-worker.log", concurrency=1, name="imports@%h")
    url = f"http://127.0.0.1:{port}"
    try:
        services.wait_until_up(f"{url}/health", process)
        with httpx.Client(base_url=url, headers=ADMIN_HEADERS, timeout=120) as client:
            yield client
    finally:
        services.stop(process, worker)


def test_api_import_answers_with_the_report(gateway, tmp_path):
    tag, area = "API", "385"
    path = write_csv(tmp_path / "accounts.csv", messy_rows(tag, area), "gb18030")
    with path.open("rb") as handle:
        response = gateway.post("/api/imports", files={"file": ("今日名单.csv", handle, "text/csv")})
    assert response.status_code == 200, response.text
    report = response.json()
    check_messy_report(report, tag)
    assert report["file"] == "今日名单.csv"
    check_messy_accounts(tag, area)
    stored = gateway.get(f"/api/imports/{report['id']}").json()
    assert (stored["status"], stored["filename"], stored["report"]["accepted"]) == ("done", "今日名单.csv", 5)


def test_api_import_refusals(gateway, tmp_path):
    response = gateway.post("/api/imports", files={"file": ("list.pdf", b"%PDF", "application/pdf")})
    assert response.status_code == 422 and "csv" in response.json()["detail"]
    response = gateway.post("/api/imports", files={"file": ("empty.csv", b"", "text/csv")})
    assert (response.status_code, response.json()["detail"]) == (422, "the file is empty")
    response = gateway.post("/api/imports", files={"file": ("short.csv", b"external_id,name\nX,Y\n", "text/csv")})
    assert response.status_code == 422 and "no column for" in response.json()["detail"]
    assert gateway.post("/api/imports").status_code == 422
    assert gateway.get("/api/imports/nope").status_code == 404
    assert httpx.post(f"{gateway.base_url}/api/imports", files={"file": ("a.csv", b"x", "text/csv")}).status_code in (401, 403)


def test_api_queues_a_big_file_for_the_worker(gateway, tmp_path):
    tag, area = "QUEUED", "801"
    rows = [HEADER[:11]] + [[f"{tag}-{n}", "Sam Lee", f"({area}) 555-{n:04d}", "US", "100", "10", "5", "2026-11-01", "4242",
                             "1980-01-01", ""] for n in range(1, 41)]
    rows[5][2] = "12345"
    with write_csv(tmp_path / "big.csv", rows).open("rb") as handle:
        response = gateway.post("/api/imports", files={"file": ("big.csv", handle, "text/csv")})
    assert response.status_code == 202, response.text
    import_id = response.json()["id"]
    assert response.json() == {"id": import_id, "status": "queued"}
    deadline = time.monotonic() + 120
    while (record := gateway.get(f"/api/imports/{import_id}").json())["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert record["status"] == "done", record
    report = record["report"]
    assert (report["accepted"], report["created"], report["rejected"], report["file"]) == (39, 39, 1, "big.csv")
    assert report["rejections"] == [{"row": 6, "field": "phone", "reason": "not a valid phone number"}]
    assert len(accounts_by_id(tag)) == 39


def test_cli_import(tmp_path):
    import json
    import subprocess
    import sys

    from scripts import services

    path = write_csv(tmp_path / "accounts.csv", messy_rows("CLI", "435")[:4])  # header, 001, 002, 003
    done = subprocess.run([sys.executable, "-m", "kindly", "import", str(path), "--json", "--quiet"], capture_output=True,
                          text=True, timeout=120, cwd=services.ROOT, env=services.base_env())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["accepted"], report["created"], report["rejected"], report["file"]) == (3, 3, 0, "accounts.csv")
    shown = subprocess.run([sys.executable, "-m", "kindly", "import", str(path)], capture_output=True, text=True, timeout=120,
                           cwd=services.ROOT, env=services.base_env())
    assert "unchanged          3" in shown.stdout and "rows" in shown.stderr  # the report, and the progress bar
    missing = subprocess.run([sys.executable, "-m", "kindly", "import", str(tmp_path / "nope.csv")], capture_output=True,
                             text=True, timeout=120, cwd=services.ROOT, env=services.base_env())
    assert missing.returncode == 2 and "No such file" in missing.stderr
