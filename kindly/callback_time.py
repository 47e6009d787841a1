"""When a customer asks to be called back: the time of day in what they said ("at 3pm", "after 6", "this
evening", "下午三点", "一个小时后"), and the moment that makes with the day. Pure, like kindly/plans.py; the
day itself comes from the date entity (bot/normalize.py), and the contact policy still keeps the call inside
the window (kindly/tasks.py)."""
import re
from datetime import date, datetime, time, timedelta
from typing import Optional

from bot.normalize import zh_to_int

# A part of the day without a clock time: a time well inside it.
PARTS_OF_DAY = {
    "morning": time(10), "noon": time(12), "lunchtime": time(12), "lunch time": time(12), "afternoon": time(15),
    "evening": time(19), "tonight": time(19), "after work": time(18),
    "上午": time(10), "早上": time(9), "早晨": time(9), "中午": time(12), "午饭": time(12), "下午": time(15),
    "傍晚": time(18), "晚上": time(19), "今晚": time(19), "下班": time(18),
}
_PM_PARTS = ("afternoon", "evening", "tonight", "下午", "傍晚", "晚上", "今晚", "下班")
# "Later today" with no time.
LATER_TODAY = timedelta(hours=2)

_EN_CLOCK = re.compile(
    r"\b(?:at|around|about|after|by|before|@)?\s*(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?)?(?![\d:.]|\s*(?:days?|weeks?|months?|hours?|dollars|bucks|%))",
    re.IGNORECASE,
)
_ZH_CLOCK = re.compile(r"([零〇一二两三四五六七八九十\d]{1,3})\s*[点點](?:\s*(半)|\s*([零〇一二两三四五六七八九十\d]{1,3})\s*分?)?")
_EN_IN_HOURS = re.compile(r"\bin\s+(an?|one|two|three|\d)\s+(?:more\s+)?hours?\b|\bin\s+half\s+an\s+hour\b", re.IGNORECASE)
_ZH_IN_HOURS = re.compile(r"([一两二三\d])\s*个?\s*(?:小时|钟头)\s*(?:以后|之后|后)|半\s*个?\s*小时\s*(?:以后|之后|后)")
_EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
_TODAY = re.compile(r"\b(?:today|later|this (?:morning|afternoon|evening)|tonight)\b|今天|今晚|等会|等一下|待会|一会", re.IGNORECASE)
_TOMORROW = re.compile(r"\b(?:tomorrow|tmrw|tmr|tomorow|tommorow)\b|明天|明早|明晚", re.IGNORECASE)
_MARKER = re.compile(r"\b(?:at|around|about|after|by|before)\s*$|@\s*$", re.IGNORECASE)


def _number(text: str) -> Optional[int]:
    """"3", "三", "十二", "二十": None when it is not a number."""
    return int(text) if text.isdigit() else zh_to_int(text)


def _part_of_day(text: str) -> Optional[str]:
    lowered = text.lower()
    found = [(lowered.find(part), part) for part in PARTS_OF_DAY if part in lowered]
    return min(found)[1] if found else None


def _on_the_clock(hour: int, minute: int, pm: Optional[bool]) -> Optional[time]:
    """A clock reading; without am or pm, 1 to 7 is the afternoon (nobody asks for a call at 3 at night)."""
    if pm is None:
        pm = 1 <= hour <= 7
    if pm and hour < 12:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


def requested_time(text: str) -> Optional[time]:
    """The time of day a customer named, or None."""
    part = _part_of_day(text)
    pm_part = part in _PM_PARTS if part else None
    if m := _ZH_CLOCK.search(text):
        hour, minute = _number(m.group(1)), 30 if m.group(2) else _number(m.group(3)) if m.group(3) else 0
        clock = _on_the_clock(hour, minute, pm_part) if hour is not None and minute is not None else None
        if clock:
            return clock
    for m in _EN_CLOCK.finditer(text):
        meridiem = (m.group(3) or "").lower()
        # A bare number is a time only after "at", "after" ... or with minutes ("3:30"): not "2 payments".
        if not meridiem and not m.group(2) and not _MARKER.search(text[: m.start(1)]):
            continue
        clock = _on_the_clock(int(m.group(1)), int(m.group(2) or 0), meridiem.startswith("p") if meridiem else pm_part)
        if clock:
            return clock
    return PARTS_OF_DAY[part] if part else None


def _hours_from_now(text: str) -> Optional[timedelta]:
    if m := _EN_IN_HOURS.search(text):
        if m.group(1) is None:
            return timedelta(minutes=30)
        count = m.group(1).lower()
        return timedelta(hours=int(count) if count.isdigit() else _EN_NUMBERS[count])
    if m := _ZH_IN_HOURS.search(text):
        return timedelta(hours=_number(m.group(1))) if m.group(1) else timedelta(minutes=30)
    return None


def callback_moment(text: str, named_day: Optional[date], now: datetime) -> tuple[date, Optional[datetime]]:
    """The day of the callback, and its moment when the customer named a time (in now's time zone). `now` is
    the customer's local time; `named_day` the date they said, if any. A time with no day is today while it is
    still ahead (tomorrow when "tomorrow" is said or it has passed); "later today" is LATER_TODAY from now; no
    time and no day is tomorrow, at the window's opening."""
    if (delay := _hours_from_now(text)) is not None:
        moment = now + delay
        return moment.date(), moment
    clock = requested_time(text)
    if named_day is not None:
        day = named_day
    elif clock is not None and not _TOMORROW.search(text) and datetime.combine(now.date(), clock, now.tzinfo) > now:
        day = now.date()
    elif clock is None and _TODAY.search(text) and not _TOMORROW.search(text):
        later = now + LATER_TODAY  # "call me later": a while from now
        return later.date(), later
    else:
        day = now.date() + timedelta(days=1)
    return day, datetime.combine(day, clock, now.tzinfo) if clock else None
