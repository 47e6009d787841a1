"""When a callback is asked for (kindly/callback_time.py): the time of day in what customers say, and the
moment it makes with the day, table by table."""
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kindly.callback_time import callback_moment, requested_time

NY = ZoneInfo("America/New_York")
MORNING = datetime(2026, 12, 1, 10, 0, tzinfo=NY)  # a Tuesday, 10:00
EVENING = datetime(2026, 12, 1, 17, 0, tzinfo=NY)


@pytest.mark.parametrize("said, expected", [
    ("call me at 3pm", time(15)),
    ("can u call back around 3:30 pm", time(15, 30)),
    ("after 6", time(18)),
    ("at 9", time(9)),
    ("tmrw at 10am pls", time(10)),
    ("call me back at 11.15", time(11, 15)),
    ("15:00 works", time(15)),
    ("at 7 in the evening", time(19)),
    ("this evening", time(19)),
    ("try me in the morning", time(10)),
    ("afternoon is better", time(15)),
    ("after work", time(18)),
    ("i can do 2 payments", None),
    ("call me in 3 days", None),
    ("give me a week", None),
    ("下午三点给我打", time(15)),
    ("晚上7点吧", time(19)),
    ("明天上午十点半", time(10, 30)),
    ("中午12点", time(12)),
    ("下午两点二十分", time(14, 20)),
    ("3点以后", time(15)),
    ("晚上", time(19)),
    ("下班后再打", time(18)),
    ("明天再说", None),
    ("now is not a good time", None),
])
def test_the_time_of_day_named(said, expected):
    assert requested_time(said) == expected


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


TODAY, TOMORROW = MORNING.date(), MORNING.date() + timedelta(days=1)


@pytest.mark.parametrize("said, named_day, now, expected", [
    ("call me at 3pm", None, MORNING, (TODAY, at(TODAY, 15))),
    ("call me at 3pm", None, EVENING, (TOMORROW, at(TOMORROW, 15))),  # 3pm has passed
    ("tomorrow at 3pm", TOMORROW, MORNING, (TOMORROW, at(TOMORROW, 15))),
    ("tomorrow afternoon", None, MORNING, (TOMORROW, at(TOMORROW, 15))),
    ("friday at 10am", date(2026, 12, 4), MORNING, (date(2026, 12, 4), at(date(2026, 12, 4), 10))),
    ("friday", date(2026, 12, 4), MORNING, (date(2026, 12, 4), None)),
    ("in an hour", None, MORNING, (TODAY, at(TODAY, 11))),
    ("in half an hour", None, MORNING, (TODAY, at(TODAY, 10, 30))),
    ("一个小时以后再打", None, MORNING, (TODAY, at(TODAY, 11))),
    ("later today", None, MORNING, (TODAY, at(TODAY, 12))),
    ("call me later", None, MORNING, (TODAY, at(TODAY, 12))),
    ("今天晚上", None, MORNING, (TODAY, at(TODAY, 19))),
    ("明天下午三点", None, MORNING, (TOMORROW, at(TOMORROW, 15))),
    ("not now", None, MORNING, (TOMORROW, None)),
])
def test_the_moment_of_the_callback(said, named_day, now, expected):
    assert callback_moment(said, named_day, now) == expected
