"""The follow-through decisions (kindly/follow_through.py), table by table: what the payments make of each part
and of the promise, when reminders are due, whether an "already paid" claim holds, and the next opening of the
calling window across daylight-saving changes."""
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal as D

import pytest

from kindly.follow_through import (
    allocate,
    claim_confirmed,
    due_moment,
    next_window_opening,
    part_status,
    promise_status,
    reminder_dates,
    retry_after_refusal,
    settle,
)

UTC = timezone.utc
DUE = date(2026, 12, 11)
US = (time(8), time(21))
CN = (time(8), time(22))


@pytest.mark.parametrize("amounts, paid, expected", [
    (["400.00"], "0", ["0"]),
    (["400.00"], "150.00", ["150.00"]),
    (["400.00"], "400.00", ["400.00"]),
    (["400.00"], "450.00", ["400.00"]),  # an overpayment shows on no part
    (["333.33", "333.33", "333.34"], "500.00", ["333.33", "166.67", "0"]),  # early money goes to the next part
    (["333.33", "333.33", "333.34"], "1000.00", ["333.33", "333.33", "333.34"]),
    (["100.00", "100.00"], "-5", ["0", "0"]),
])
def test_payments_fill_the_parts_in_order(amounts, paid, expected):
    assert allocate([D(a) for a in amounts], D(paid)) == [D(e) for e in expected]


@pytest.mark.parametrize("paid, today, expected", [
    ("0", DUE - timedelta(days=5), "open"),  # not due yet
    ("400.00", DUE - timedelta(days=5), "kept"),  # paid early
    ("400.00", DUE, "kept"),  # paid on the day
    ("0", DUE, "open"),
    ("0", DUE + timedelta(days=2), "open"),  # inside the grace
    ("0", DUE + timedelta(days=3), "broken"),  # grace passed, nothing paid
    ("399.99", DUE + timedelta(days=3), "partially_kept"),  # grace passed, a cent short
    ("100.00", DUE + timedelta(days=1), "open"),  # partly paid, still in the grace
    ("400.00", DUE + timedelta(days=30), "kept"),  # a late payment still closes the part
])
def test_part_status(paid, today, expected):
    assert part_status(D("400.00"), D(paid), DUE, today, grace_days=2) == expected


@pytest.mark.parametrize("parts, expected", [
    (["kept"], "kept"),
    (["kept", "kept", "kept"], "kept"),
    (["open"], "open"),
    (["kept", "open", "open"], "open"),
    (["partially_kept", "open"], "partially_kept"),
    (["kept", "broken", "open"], "broken"),
    (["partially_kept", "broken"], "broken"),  # any broken part breaks the promise
])
def test_promise_status(parts, expected):
    assert promise_status(parts) == expected


def test_settle_an_installment_plan_with_a_short_first_part():
    parts = [(date(2026, 12, 11), D("400.00")), (date(2027, 1, 11), D("400.00")), (date(2027, 2, 11), D("400.00"))]
    states, status = settle(parts, D("300.00"), date(2026, 12, 14), grace_days=2)
    assert [(s.paid, s.status) for s in states] == [(D("300.00"), "partially_kept"), (D("0"), "open"), (D("0"), "open")]
    assert status == "partially_kept"
    states, status = settle(parts, D("800.00"), date(2027, 1, 14), grace_days=2)
    assert [s.status for s in states] == ["kept", "kept", "open"] and status == "open"
    states, status = settle(parts, D("800.00"), date(2027, 2, 14), grace_days=2)
    assert [s.status for s in states] == ["kept", "kept", "broken"] and status == "broken"


@pytest.mark.parametrize("due, promised_on, days_before, expected", [
    (DUE, date(2026, 12, 1), 3, [("before", date(2026, 12, 8)), ("due", DUE)]),
    (DUE, date(2026, 12, 8), 3, [("due", DUE)]),  # the reminder day is the day of the promise: skipped
    (DUE, date(2026, 12, 9), 3, [("due", DUE)]),
    (DUE, DUE, 3, []),  # promised for today: the confirmation was the reminder
    (DUE, date(2026, 12, 1), 0, [("due", DUE)]),
    (date(2027, 3, 1), date(2027, 2, 1), 3, [("before", date(2027, 2, 26)), ("due", date(2027, 3, 1))]),
])
def test_reminder_dates(due, promised_on, days_before, expected):
    assert reminder_dates(due, promised_on, days_before) == expected


@pytest.mark.parametrize("payments, expected", [
    ([], False),
    ([(date(2026, 11, 20), D("50.00"))], True),  # on the due date the claim is about, the minimum
    ([(date(2026, 11, 19), D("500.00"))], False),  # before it: an earlier month's payment
    ([(date(2026, 11, 25), D("20.00"))], False),  # less than the minimum due
    ([(date(2026, 11, 25), D("20.00")), (date(2026, 11, 28), D("30.00"))], True),
])
def test_an_already_paid_claim_holds_with_the_minimum_paid_since_the_due_date(payments, expected):
    assert claim_confirmed(payments, since=date(2026, 11, 20), minimum=D("50.00")) is expected


def at(year, month, day, hour, minute=0, zone="UTC"):
    from zoneinfo import ZoneInfo
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize("now, zones, window, expected", [
    # Inside the window: now.
    (at(2026, 12, 1, 10, zone="America/New_York"), ["America/New_York"], US, at(2026, 12, 1, 10, zone="America/New_York")),
    # Before it: today's opening; after it: tomorrow's.
    (at(2026, 12, 1, 6, 30, zone="America/New_York"), ["America/New_York"], US, at(2026, 12, 1, 8, zone="America/New_York")),
    (at(2026, 12, 1, 21, zone="America/New_York"), ["America/New_York"], US, at(2026, 12, 2, 8, zone="America/New_York")),
    # US spring forward (8 March 2026): 08:00 EDT is 12:00 UTC, an hour earlier in UTC than the day before.
    (at(2026, 3, 7, 22, zone="America/New_York"), ["America/New_York"], US, datetime(2026, 3, 8, 12, tzinfo=UTC)),
    (at(2026, 3, 6, 22, zone="America/New_York"), ["America/New_York"], US, datetime(2026, 3, 7, 13, tzinfo=UTC)),
    # US fall back (1 November 2026): 08:00 EST is 13:00 UTC.
    (at(2026, 10, 31, 22, zone="America/New_York"), ["America/New_York"], US, datetime(2026, 11, 1, 13, tzinfo=UTC)),
    # China has no daylight saving; its window closes at 22:00.
    (at(2026, 12, 1, 21, 30, zone="Asia/Shanghai"), ["Asia/Shanghai"], CN, at(2026, 12, 1, 21, 30, zone="Asia/Shanghai")),
    (at(2026, 12, 1, 22, zone="Asia/Shanghai"), ["Asia/Shanghai"], CN, at(2026, 12, 2, 8, zone="Asia/Shanghai")),
    # Two zones (account in New York, phone in Los Angeles): the window must be open in both.
    (at(2026, 12, 1, 9, zone="America/New_York"), ["America/New_York", "America/Los_Angeles"], US,
     at(2026, 12, 1, 8, zone="America/Los_Angeles")),
    (at(2026, 12, 1, 23, zone="America/Los_Angeles"), ["America/New_York", "America/Los_Angeles"], US,
     at(2026, 12, 2, 8, zone="America/Los_Angeles")),
    # Zones whose windows never overlap: no moment at all.
    (at(2026, 12, 1, 9, zone="Asia/Shanghai"), ["Asia/Shanghai", "America/New_York"], (time(8), time(12)), None),
])
def test_next_window_opening(now, zones, window, expected):
    assert next_window_opening(now, zones, *window) == expected


def test_due_moment_of_a_follow_up():
    zones = ["America/New_York"]
    # Its own moment wins; a naive one read back from SQLite is UTC.
    own = datetime(2026, 12, 3, 15, 30)
    assert due_moment("callback", DUE, own, zones, zones[0], *US) == own.replace(tzinfo=UTC)
    # A contact waits for the window on its day; a payment check starts at the day's local midnight.
    assert due_moment("reminder", DUE, None, zones, zones[0], *US) == at(2026, 12, 11, 8, zone="America/New_York")
    assert due_moment("verify_payment", DUE, None, zones, zones[0], *US) == at(2026, 12, 11, 0, zone="America/New_York")


@pytest.mark.parametrize("rule, now, expected", [
    # Outside the window: its next opening.
    ("calling_window", at(2026, 12, 1, 22, zone="America/New_York"), at(2026, 12, 2, 8, zone="America/New_York")),
    # The policy said no while our arithmetic says the window is open: look again a little later.
    ("calling_window", at(2026, 12, 1, 10, zone="America/New_York"), at(2026, 12, 1, 10, 15, zone="America/New_York")),
    # A cap: tomorrow's opening.
    ("attempt_cap", at(2026, 12, 1, 10, zone="America/New_York"), at(2026, 12, 2, 8, zone="America/New_York")),
    ("recent_conversation", at(2026, 12, 1, 10, zone="America/New_York"), at(2026, 12, 2, 8, zone="America/New_York")),
    # Holds are final.
    ("opted_out", at(2026, 12, 1, 10, zone="America/New_York"), None),
    ("cease", at(2026, 12, 1, 10, zone="America/New_York"), None),
    ("open_handoff", at(2026, 12, 1, 10, zone="America/New_York"), None),
])
def test_when_a_refused_contact_is_tried_again(rule, now, expected):
    zones = ["America/New_York"]
    assert retry_after_refusal(rule, now, zones, zones[0], *US) == expected
