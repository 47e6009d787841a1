"""An independent check of the contact rules, re-derived from the contact log alone.

It reads a Kindly database (every outbound contact attempt, the accounts' countries, time zones and phones,
verified conversations, opt-outs, flags, handoffs and promises) and reports each contact that broke a rule
of PRODUCT.md section 4. It deliberately shares no code with kindly/contact_policy.py (nor imports it): it
reads the numbers from kindly/policy.yml itself and recomputes every rule its own way, so a mistake in the
policy is not repeated here.

    .venv-app/bin/python bench/contact_log_checker.py sqlite:///path/to/kindly.db

Rules checked, for each outbound attempt at time t:
- flags: no attempt while any account flag is in force;
- opt-out: no attempt on a channel at or after the customer opted out of it;
- open handoff: no attempt while a handoff is waiting or claimed;
- open promise: no collection attempt while a promise made before t has a part due on or after t's local day
  (a promise is taken as open until its last part is due: the log has no settlement times);
- window: t is inside the country's window in the account's time zone and in every zone of the phone's area;
- US: at most 7 counted call attempts in any 7 days, and no call within 7 days after a verified conversation;
- CN: at most 6 counted call attempts and 3 connected calls in the customer's local day;
- double contact: no two attempts to one account on one channel less than 60 seconds apart.
A call attempt counts unless Twilio refused the request outright (outcome "failed" with no call sid).
"""
import sys
from bisect import bisect_left, bisect_right
from collections import defaultdict
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import yaml
from phonenumbers import timezone as phone_timezones
from sqlalchemy import create_engine, text

POLICY_FILE = Path(__file__).resolve().parent.parent / "kindly" / "policy.yml"
DOUBLE_CONTACT = timedelta(seconds=60)


def utc(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def phone_zones(phone: str) -> set[str]:
    zones = set(phone_timezones.time_zones_for_number(phonenumbers.parse(phone)))
    return zones - {"Etc/Unknown"}


def check(url: str) -> dict[str, list[str]]:
    policy = yaml.safe_load(POLICY_FILE.read_text())
    windows = {c: (time.fromisoformat(w["start"]), time.fromisoformat(w["end"])) for c, w in policy["calling_window"].items()}
    caps = policy["contact_caps"]
    engine = create_engine(url)
    violations: dict[str, list[str]] = defaultdict(list)
    with engine.connect() as db:
        accounts = {r.id: r for r in db.execute(text("SELECT id, country, timezone, phone FROM accounts"))}
        attempts = db.execute(text(
            "SELECT id, account_id, channel, purpose, outcome, connected, external_ref, at FROM contact_attempts "
            "WHERE direction = 'outbound' ORDER BY at")).all()
        flags = defaultdict(list)
        for r in db.execute(text("SELECT account_id, flag, set_at, cleared_at FROM account_flags")):
            flags[r.account_id].append((r.flag, utc(r.set_at), utc(r.cleared_at) if r.cleared_at else None))
        opt_outs = {(r.account_id, r.channel): utc(r.at) for r in db.execute(text("SELECT account_id, channel, at FROM opt_outs"))}
        handoffs = defaultdict(list)
        for r in db.execute(text("SELECT account_id, status, created_at, resolved_at FROM handoffs")):
            handoffs[r.account_id].append((utc(r.created_at), utc(r.resolved_at) if r.resolved_at else None))
        talks = defaultdict(list)
        for r in db.execute(text("SELECT account_id, started_at FROM conversations WHERE verified")):
            talks[r.account_id].append(utc(r.started_at))
        promises = defaultdict(list)
        for r in db.execute(text(
                "SELECT p.account_id, p.created_at, max(i.due_date) AS last_due FROM promises p "
                "JOIN promise_installments i ON i.promise_id = p.id GROUP BY p.id, p.account_id, p.created_at")):
            last_due = r.last_due if not isinstance(r.last_due, str) else datetime.fromisoformat(r.last_due).date()
            promises[r.account_id].append((utc(r.created_at), last_due))
    for times in talks.values():
        times.sort()

    zones_of: dict[int, set[str]] = {}
    counted_calls: dict[int, list[datetime]] = defaultdict(list)
    last_on_channel: dict[tuple[int, str], datetime] = {}
    cn_days: dict[tuple[int, object], list[int]] = defaultdict(lambda: [0, 0])
    for a in attempts:
        at, account = utc(a.at), accounts[a.account_id]
        label = f"attempt {a.id} (account {a.account_id}, {a.channel}, {at:%Y-%m-%d %H:%M} UTC)"
        for flag, set_at, cleared_at in flags[a.account_id]:
            if set_at <= at and (cleared_at is None or at < cleared_at):
                violations["flag"].append(f"{label}: flag {flag} in force")
        opted = opt_outs.get((a.account_id, a.channel))
        if opted is not None and at >= opted:
            violations["opt_out"].append(f"{label}: opted out of {a.channel} at {opted:%Y-%m-%d %H:%M}")
        for created, resolved in handoffs[a.account_id]:
            if created <= at and (resolved is None or at < resolved):
                violations["open_handoff"].append(f"{label}: a handoff is open")
        if a.purpose == "collection":
            home_day = at.astimezone(ZoneInfo(account.timezone)).date()
            for created, last_due in promises[a.account_id]:
                if created < at and last_due >= home_day:
                    violations["open_promise"].append(f"{label}: a promise made {created:%Y-%m-%d} is due until {last_due}")
        if a.account_id not in zones_of:
            zones_of[a.account_id] = {account.timezone} | phone_zones(account.phone)
        start, end = windows.get(account.country, windows["US"])
        for zone in sorted(zones_of[a.account_id]):
            local = at.astimezone(ZoneInfo(zone)).time()
            if not start <= local < end:
                violations["window"].append(f"{label}: {local:%H:%M} in {zone}")
        key = (a.account_id, a.channel)
        if key in last_on_channel and at - last_on_channel[key] < DOUBLE_CONTACT:
            violations["double_contact"].append(f"{label}: {at - last_on_channel[key]} after the previous one")
        last_on_channel[key] = at
        if a.channel != "voice" or (a.outcome == "failed" and a.external_ref is None):
            continue
        if account.country == "CN":
            day = cn_days[(a.account_id, at.astimezone(ZoneInfo(account.timezone)).date())]
            day[0] += 1
            day[1] += 1 if a.connected else 0
            if day[0] > caps["CN"]["attempts_per_day"]:
                violations["cn_attempts_per_day"].append(f"{label}: call attempt {day[0]} of the day")
            if a.connected and day[1] > caps["CN"]["connected_per_day"]:
                violations["cn_connected_per_day"].append(f"{label}: connected call {day[1]} of the day")
            continue
        calls = counted_calls[a.account_id]
        calls.append(at)
        in_week = len(calls) - bisect_right(calls, at - timedelta(days=7))
        if in_week > caps["US"]["attempts_per_7_days"]:
            violations["us_attempts_per_7_days"].append(f"{label}: call {in_week} in 7 days")
        quiet = timedelta(days=caps["US"]["quiet_days_after_conversation"])
        spoken = talks[a.account_id]
        if bisect_left(spoken, at) - bisect_left(spoken, at - quiet) > 0:
            violations["us_quiet_after_conversation"].append(f"{label}: within {quiet.days} days of a verified conversation")
    return dict(violations), len(attempts)


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///var/kindly.db"
    violations, attempts = check(url)
    total = sum(len(v) for v in violations.values())
    print(f"{attempts} outbound attempts checked, {total} violations")
    for rule, found in sorted(violations.items()):
        print(f"  {rule}: {len(found)}")
        for line in found[:5]:
            print(f"    {line}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
