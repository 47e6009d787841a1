"""Rule-based dates, money amounts and installment counts in English and Chinese.

Pure standard library: both the Rasa engine venv and the app venv import this module.

How it works:
1. The text is copied to a working string of the same length (lower case, full-width ASCII
   folded), then every spelled-out number is replaced by its digits: "two hundred" -> "200",
   "fifth" -> "5th", "nineteen eighty five" -> "1985", "两千五" -> "2500", "八五" -> "85".
   Each working-string character remembers which original characters it came from.
2. Regex rules written for digits only run over the working string and propose
   (span, entity, value) candidates. A rule that matches the shape of an expression but finds
   it invalid ("February 30 1985") still claims its span, with no value, so that no shorter
   rule reads part of it as something else.
3. Overlaps go to the longest match (context words such as "split it in" or "pay" count),
   then the leftmost; invalid candidates are dropped at the end.

Conventions (see docs/intents.md):
- Weeks run Monday to Sunday: "next friday" / "下周五" is the Friday of next week;
  "friday" / "this friday" / "周五" is the coming one (today if today is Friday).
- "next week" is today + 7 and "next month" the same day next month (clamped); "last week" /
  上周 and "last month" / 上个月 go back the same way. "this week" / 这周 and "this month" /
  这个月 / 本月 mean by the end of it (Sunday, the last day of the month), like "end of next
  week", 月底 and 年底. "this weekend" / 周末 is the coming Saturday (today on a Sunday).
  月初 is the 1st of next month and 月中 the coming 15th.
- Two-digit years take the century that puts the date in the past.
- A date without a year, and "the 15th" / "15号", is the next occurrence on or after today.
- Numeric dates are month first in the US, day first elsewhere; when a full date is impossible
  that way but fine the other way ("17.04.1986" in the US), the other way is used.
- Bare numbers are money only in context: after a pay verb ("pay 200", "还200", "先还三千",
  "只欠800"); a Chinese numeral with 百/千/万 anywhere unless a classifier follows (两万, but
  not 一百个人); a Chinese numeral with 十 only when it is the whole message ("十五").
- "一年"/"a year" is an installment count (12) only as "分一年" or "over a year";
  "in 12 months" is a date, except after split/spread/divide/break ("split it in 12 months").
- A count followed by 了 is a duration, not a count ("去世两个月了").
"""

import calendar
import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["find_entities", "parse_date", "parse_amount", "parse_count", "zh_to_int"]

# --------------------------------------------------------------------------- numbers

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}


def zh_to_int(s):
    """Chinese numeral to int: "十五" 15, "两千五" 2500, "一千零五十" 1050, "一万五" 15000,
    and digit by digit without magnitude characters: "一九八五" 1985, "八五" 85. None if invalid."""
    if not s or any(c not in _ZH_DIGITS and c not in _ZH_UNITS for c in s):
        return None
    if all(c in _ZH_DIGITS for c in s):
        return int("".join(str(_ZH_DIGITS[c]) for c in s))
    total = section = 0
    digit = None
    last_unit = 1
    for c in s:
        if c in _ZH_DIGITS:
            if digit:  # two non-zero digits in a row, e.g. "五五十"
                return None
            digit = _ZH_DIGITS[c]
        elif c == "万":
            if digit is None and section == 0:
                return None
            total = (total + section + (digit or 0)) * 10000
            section, digit, last_unit = 0, None, 10000
        else:
            if digit is None:
                if c != "十" or section or total:
                    return None
                digit = 1  # "十五" = 15
            section += digit * _ZH_UNITS[c]
            digit, last_unit = None, _ZH_UNITS[c]
    if digit is not None:
        if s[-2] in _ZH_UNITS and last_unit >= 100:
            digit *= last_unit // 10  # colloquial "两千五" = 2500, "一万五" = 15000
        section += digit
    return total + section


_EN_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_EN_TENS = {w: 20 + 10 * i for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())}
_EN_ORDS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth".split())}
_EN_ORDS.update(twentieth=20, thirtieth=30)


def _en_below_100(w, i):
    """(value, is_ordinal, next index) for "seven", "twenty one", "thirty-first", "fifth"."""
    word = w[i]
    if word in _EN_TENS:
        nxt = w[i + 1] if i + 1 < len(w) else ""
        if 1 <= _EN_UNITS.get(nxt, 0) <= 9:
            return _EN_TENS[word] + _EN_UNITS[nxt], False, i + 2
        if _EN_ORDS.get(nxt, 99) <= 9:
            return _EN_TENS[word] + _EN_ORDS[nxt], True, i + 2
        return _EN_TENS[word], False, i + 1
    if word in _EN_UNITS:
        return _EN_UNITS[word], False, i + 1
    if word in _EN_ORDS:
        return _EN_ORDS[word], True, i + 1
    return None


def _en_then(w, j, value, ordinal, multiplier, tail):
    """Extends value by "hundred [and] X" / "thousand [and] X"."""
    if ordinal or j >= len(w) or w[j] != multiplier:
        return value, ordinal, j
    value *= 100 if multiplier == "hundred" else 1000
    j += 1
    k = j + 1 if j < len(w) and w[j] == "and" else j
    rest = tail(w, k) if k < len(w) else None
    if rest:
        return value + rest[0], rest[1], rest[2]
    return value, False, j


def _en_below_1000(w, i):
    if w[i] == "a" and i + 1 < len(w) and w[i + 1] in ("hundred", "thousand"):
        value, ordinal, j = 1, False, i + 1
    else:
        found = _en_below_100(w, i)
        if found is None:
            return None
        value, ordinal, j = found
    return _en_then(w, j, value, ordinal, "hundred", _en_below_100)


def _en_number(w, i):
    """(value, is_ordinal, next index) for the English number starting at word i, or None."""
    # Said in pairs: "nineteen eighty five" 1985, "twenty twenty six" 2026, "nineteen oh five"
    # 1905, and money as people say it: "one fifty" 150, "twelve ninety nine" 1299.
    head = 20 if w[i] == "twenty" else _EN_UNITS.get(w[i], 0)
    if head and i + 1 < len(w):
        if w[i + 1] == "oh" and 1 <= _EN_UNITS.get(w[i + 2] if i + 2 < len(w) else "", 0) <= 9:
            return head * 100 + _EN_UNITS[w[i + 2]], False, i + 3
        pair = _en_below_100(w, i + 1)
        if pair and not pair[1] and pair[0] >= 10:
            return head * 100 + pair[0], False, pair[2]
    found = _en_below_1000(w, i)
    if found is None:
        return None
    return _en_then(w, found[2], found[0], found[1], "thousand", _en_below_1000)


# --------------------------------------------------------------------------- working text

# Not right after 周/星期/礼拜: "下周一一次性" is 下周一 + 一次性, not 下周 + 11.
_ZH_NUMERAL = re.compile("(?<!周)(?<!星期)(?<!礼拜)[零〇一二两三四五六七八九十百千万]+")
_EN_CHAIN = re.compile(r"[a-z]+(?:[ \t-]+[a-z]+)*")
_WORD = re.compile(r"[a-z]+")


def _fold(c):
    if "\uff01" <= c <= "\uff5e":  # full-width ASCII
        c = chr(ord(c) - 0xFEE0)
    elif c == "\u3000":
        c = " "
    elif c in "‘’`´":
        c = "'"
    low = c.lower()
    return low if len(low) == 1 else c


class _Text:
    """The working string `t`, with the original span of every character and the kind of
    every number it spelled out: "zh" digit by digit (八五), "zh_ten" with 十 (十五),
    "zh_big" with 百/千/万 (两千五), "en" for English words."""

    def __init__(self, text):
        folded = "".join(_fold(c) for c in text)
        replacements = []
        for m in _ZH_NUMERAL.finditer(folded):
            value = zh_to_int(m.group())
            if value is None:
                continue
            if any(c in "百千万" for c in m.group()):
                replacements.append((m.start(), m.end(), str(value), "zh_big"))
            elif "十" in m.group():
                replacements.append((m.start(), m.end(), str(value), "zh_ten"))
            else:  # digit by digit, keeping leading zeros: "零五年" -> "05年"
                digits = "".join(str(_ZH_DIGITS[c]) for c in m.group())
                replacements.append((m.start(), m.end(), digits, "zh"))
        for chain in _EN_CHAIN.finditer(folded):
            words = [(chain.start() + m.start(), chain.start() + m.end())
                     for m in _WORD.finditer(chain.group())]
            w = [folded[a:b] for a, b in words]
            i = 0
            while i < len(w):
                found = _en_number(w, i)
                if found is None:
                    i += 1
                    continue
                value, ordinal, j = found
                replacements.append((words[i][0], words[j - 1][1],
                                     f"{value}th" if ordinal else str(value), "en"))
                i = j
        replacements.sort()

        parts, self.spans, self.kinds = [], [], {}
        pos = 0
        for start, end, new, kind in replacements:
            parts.append(folded[pos:start])
            self.spans.extend((k, k + 1) for k in range(pos, start))
            self.kinds[len(self.spans)] = kind
            parts.append(new)
            self.spans.extend((start, end) for _ in new)
            pos = end
        parts.append(folded[pos:])
        self.spans.extend((k, k + 1) for k in range(pos, len(folded)))
        self.t = "".join(parts)

    def original(self, start, end):
        return self.spans[start][0], self.spans[end - 1][1]


# --------------------------------------------------------------------------- helpers

_SKIP = object()  # a rule's resolver returns this when the match is not an entity at all

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NB = r"(?<![\d.])(?<!\d,)"  # not inside a longer number
_ORD = r"(?:st|nd|rd|th)"
_MONTHS = {name: number for number, names in enumerate([
    "january jan", "february feb", "march mar", "april apr", "may", "june jun", "july jul",
    "august aug", "september sept sep", "october oct", "november nov", "december dec"], start=1)
    for name in names.split()}
_MON = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_WEEKDAYS = {d: i for i, d in enumerate(
    "monday tuesday wednesday thursday friday saturday sunday".split())}
_ZH_WEEKDAYS = dict(zip("一二三四五六日天1234567", [0, 1, 2, 3, 4, 5, 6, 6, 0, 1, 2, 3, 4, 5, 6]))


def _valid(y, m, d):
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _add_months(day, n):
    y, m = divmod(day.month - 1 + n, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _add(today, n, unit):
    if unit in ("day", "天", "日"):
        return today + timedelta(days=n)
    if unit in ("week", "周", "星期", "礼拜"):
        return today + timedelta(weeks=n)
    if unit in ("month", "月"):
        return _add_months(today, n)
    return _add_months(today, 12 * n)  # year, 年


def _period_end(today, unit, n=0):
    """Last day of the week (Sunday), month or year `n` periods from today's."""
    if unit in ("week", "周", "星期", "礼拜"):
        return today + timedelta(days=6 - today.weekday(), weeks=n)
    if unit in ("month", "月"):
        month = _add_months(today.replace(day=1), n)
        return month.replace(day=calendar.monthrange(month.year, month.month)[1])
    return date(today.year + n, 12, 31)


def _upcoming(today, month, day):
    """Next month/day on or after today (Feb 29 may be a few years away)."""
    for year in range(today.year, today.year + 9):
        found = _valid(year, month, day)
        if found and found >= today:
            return found
    return None


def _upcoming_day(today, day):
    """Next day-of-month `day` on or after today, skipping months that lack it."""
    first = today.replace(day=1)
    for n in range(13):
        month = _add_months(first, n)
        found = _valid(month.year, month.month, day)
        if found and found >= today:
            return found
    return None


def _with_year(today, year_text, month, day):
    digits = year_text.lstrip("'")
    if len(digits) == 4:
        return _valid(int(digits), month, day)
    recent = _valid(2000 + int(digits), month, day)
    if recent and recent <= today:
        return recent
    return _valid(1900 + int(digits), month, day)


def _weekday(today, weekday, week):
    """week 0: the coming one (today included); 1: in next week; -1: in last week."""
    if week == 0:
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    monday = today - timedelta(days=today.weekday())
    return monday + timedelta(weeks=week, days=weekday)


def _n(text):
    return 1 if text in ("a", "an") else int(text)


def _decimal(text):
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


# --------------------------------------------------------------------------- rules
# Each rule: (entity, regex, resolver(match, ctx) -> value | None (invalid) | _SKIP).
# If the regex has a group "e", that group is the entity span, otherwise the whole match;
# the words around "e" still count for the match's length, which decides overlaps.


class _Ctx:
    def __init__(self, text, today, country):
        self.text, self.today, self.country = text, today, country.upper()

    def kind(self, m, group):
        return self.text.kinds.get(m.start(group), "digits")


def _date_month_name(m, ctx):
    month, day = _MONTHS[m["mon"]], int(m["d"])
    if m["y"]:
        return _with_year(ctx.today, m["y"], month, day)
    return _upcoming(ctx.today, month, day)


def _date_numeric(m, ctx):
    """3/5/1985: month first in the US, day first elsewhere; with a year, the other order
    when that one is impossible ("17.04.1986" in the US). Without a year ("6/12"), the
    country's order only, so that "24/7" is not a date."""
    a, b = int(m["a"]), int(m["b"])
    orders = [(a, b), (b, a)] if ctx.country == "US" else [(b, a), (a, b)]
    for month, day in orders if m["y"] else orders[:1]:
        if m["y"]:
            found = _with_year(ctx.today, m["y"], month, day)
        else:
            found = _upcoming(ctx.today, month, day) if 1 <= month <= 12 else None
        if found:
            return found
    return None


def _date_ymd(m, ctx):
    year = int(m["y"])
    if not 1900 <= year <= 2100:
        return None
    return _valid(year, int(m["m"]), int(m["d"]))


def _date_zh(m, ctx):
    month, day = int(m["m"]), int(m["d"])
    if m.groupdict().get("y"):
        return _with_year(ctx.today, m["y"], month, day)
    return _upcoming(ctx.today, month, day)


def _date_ordinal_day(m, ctx):
    # A spelled ordinal alone ("second") is too ambiguous; "the second" is a date.
    if not m["the"] and ctx.kind(m, "d") != "digits":
        return _SKIP
    day = int(m["d"])
    if m["which"] == "next":
        month = _add_months(ctx.today.replace(day=1), 1)
        return _valid(month.year, month.month, day)
    return _upcoming_day(ctx.today, day)


def _date_offset(days):
    return lambda m, ctx: ctx.today + timedelta(days=days)


def _date_weekday(m, ctx):
    week = {"next": 1, "last": -1}.get(m["w"], 0)
    return _weekday(ctx.today, _WEEKDAYS[m["wd"]], week)


def _date_zh_weekday(m, ctx):
    prefix = m["w"] or ""
    week = 2 if prefix == "下下" else 1 if prefix[:1] == "下" else -1 if prefix[:1] == "上" else 0
    return _weekday(ctx.today, _ZH_WEEKDAYS[m["wd"]], week)


def _date_weekend(m, ctx):
    """The coming Saturday (today if it is already the weekend), or next week's."""
    if m["w"] in ("next", "下"):
        return _weekday(ctx.today, 5, 1)
    return ctx.today if ctx.today.weekday() == 6 else _weekday(ctx.today, 5, 0)


def _date_period_end(m, ctx):
    """"this week" / "end of next month" / 这个月 / 年底: the last day of that period."""
    next_one = bool(m.groupdict().get("next"))
    return _period_end(ctx.today, m["u"], 1 if next_one else 0)


def _date_next_month_start(m, ctx):
    return _add_months(ctx.today.replace(day=1), 1)


def _date_in(m, ctx):
    """"in two weeks", "10天后", "three days ago", "两个月前"."""
    sign = -1 if m.groupdict().get("ago") else 1
    if m["n"] == "半":
        if m["u"] == "月":
            return ctx.today + timedelta(days=15 * sign)
        return _add_months(ctx.today, 6 * sign) if m["u"] == "年" else _SKIP
    return _add(ctx.today, sign * _n(m["n"]), m["u"])


def _date_shift(n):
    return lambda m, ctx: _add(ctx.today, n, m["u"])


def _date_zh_month_day(m, ctx):
    month = ctx.today.replace(day=1)
    if (m["w"] or "")[:1] == "下":
        month = _add_months(month, 1)
    return _valid(month.year, month.month, int(m["d"]))


def _date_mid_month(m, ctx):
    if (m["w"] or "")[:1] == "下":
        return _add_months(ctx.today.replace(day=1), 1).replace(day=15)
    return _upcoming_day(ctx.today, 15)


def _date_zh_day(m, ctx):
    return _upcoming_day(ctx.today, int(m["d"]))


def _amount(m, ctx):
    value = _decimal(m["n"])
    if value is None:
        return None
    value *= {"k": 1000, "千": 1000, "万": 10000}.get(m.groupdict().get("k") or "", 1)
    return -value if m.groupdict().get("neg") else value


def _amount_after_verb(m, ctx):
    if ctx.kind(m, "n") == "zh" or len(m["n"].split(".")[0].replace(",", "")) > 7:
        return _SKIP  # "还一下" is not money; 8 digits are a keypad date
    return _amount(m, ctx)


def _amount_alone(m, ctx):
    return _amount(m, ctx) if ctx.kind(m, "n") in ("zh_ten", "zh_big") else _SKIP


def _amount_zh_big(m, ctx):
    return _amount(m, ctx) if ctx.kind(m, "n") == "zh_big" else _SKIP


def _count(m, ctx):
    if m["n"] == "半":
        return 6  # 半年
    n = _n(m["n"])
    return 12 * n if (m.groupdict().get("u") or "").startswith(("年", "year")) else n


_EN_VERB = r"\b(?:pay|paying|pay you|send|sending|afford|deposit|give you|put down|payment of)"
_ZH_VERB = "(?:还|付|交|转|欠|刷)(?:了|上|款|个)?"
# after a pay verb, a number followed by a unit is something else (or another rule's amount)
_NOT_UNIT_AFTER = (r"(?![\d.,]*\d|\s*(?:%|percent\b|k\b|dollars?\b|bucks?\b|usd\b|rmb\b|yuan\b"
                   r"|[个期月号日天周年次点岁分块元人美千万]))")
_ZH_CLASSIFIER = "个期月号日天周年次点岁分人位名条张件家倍遍米里斤克层楼页"
_EN_COUNT = r"(?P<n>\d+)[\s-]+(?:monthly\s+)?(?:months?|installments?|instalments?|payments?)\b"

_RULES = [(entity, re.compile(pattern), resolver) for entity, pattern, resolver in [
    # ---- absolute dates
    ("date", rf"\b{_MON}\s*(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}?\b"
             rf"(?:(?:\s*,\s*|\s+)(?:of\s+)?(?P<y>'\d{{2}}|\d{{4}}|\d{{2}})\b)?", _date_month_name),
    ("date", rf"\b(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}?\s+(?:of\s+)?{_MON}"
             rf"(?:,?\s+(?P<y>'\d{{2}}|\d{{4}})\b)?", _date_month_name),
    ("date", r"(?<![\d/.\-])(?P<a>\d{1,2})(?P<sep>[/.\-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})"
             r"(?![\d/\-]|\.\d)", _date_numeric),
    # "6/12" without a year (the empty group y tells _date_numeric so)
    ("date", r"(?<![\d/.\-])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?![\d/]|\.\d)(?P<y>)", _date_numeric),
    ("date", r"(?<![\d/.\-])(?P<y>\d{4})(?P<sep>[/.\-])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
             r"(?![\d/\-]|\.\d)", _date_ymd),
    ("date", rf"{_NB}(?P<y>\d{{4}})(?P<m>\d{{2}})(?P<d>\d{{2}})(?!\d|[.,]\d)", _date_ymd),  # keypad
    ("date", r"(?<!\d)(?P<y>\d{4}|\d{2})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})(?:\s*[日号])?(?!\d)",
     _date_zh),
    ("date", r"(?<!\d)(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]", _date_zh),
    # ---- relative dates, English
    ("date", r"\btoday\b", _date_offset(0)),
    ("date", r"\b(?:tomorrow|tmrw|tmr)\b", _date_offset(1)),
    ("date", r"\bday after tomorrow\b", _date_offset(2)),
    ("date", r"\byesterday\b", _date_offset(-1)),
    ("date", r"\b(?:(?P<w>this coming|this|coming|next|last)\s+)?"
             r"(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", _date_weekday),
    ("date", rf"\b(?:(?P<the>the)\s+)?(?P<d>\d{{1,2}}){_ORD}\b"
             r"(?!\s+(?:\d|payments?\b|installments?\b|instalments?\b|time\b|months?\b))"
             r"(?:\s+of\s+(?:the\s+|this\s+|(?P<which>next)\s+)month\b)?", _date_ordinal_day),
    ("date", r"\bend of (?:the |this |(?P<next>next) )?(?P<u>week|month|year)\b", _date_period_end),
    ("date", r"\bthis (?P<u>week|month)\b", _date_period_end),
    ("date", r"\b(?P<u>month) end\b", _date_period_end),
    ("date", r"\b(?:beginning|start) of (?:the )?next month\b", _date_next_month_start),
    ("date", r"\b(?:(?P<w>this|next)\s+)?weekend\b", _date_weekend),
    ("date", r"\bin\s+(?P<n>\d+|an?)\s+(?P<u>day|week|month|year)s?\b", _date_in),
    ("date", r"\b(?P<n>\d+|an?)\s+(?P<u>day|week|month|year)s?\s+(?:from\s+(?:now|today)|(?P<ago>ago))\b",
     _date_in),
    ("date", r"\bnext\s+(?P<u>week|month)\b", _date_shift(1)),
    ("date", r"\blast\s+(?P<u>week|month)\b", _date_shift(-1)),
    # ---- relative dates, Chinese
    ("date", "今天|今日|今晚", _date_offset(0)),
    ("date", "明天|明日|明早|明晚", _date_offset(1)),
    ("date", "后天", _date_offset(2)),
    ("date", "大后天", _date_offset(3)),
    ("date", "昨天", _date_offset(-1)),
    ("date", "前天", _date_offset(-2)),
    ("date", "(?P<w>下下|下个?|这个?|本|上个?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])", _date_zh_weekday),
    ("date", r"(?P<w>这|本|下)?(?:个)?周末", _date_weekend),
    ("date", "(?:这个?|本)(?P<u>周|星期|礼拜|月)", _date_period_end),
    ("date", "上个?(?P<u>周|星期|礼拜|月)", _date_shift(-1)),
    ("date", "下个?(?P<u>周|星期|礼拜|月)", _date_shift(1)),
    ("date", r"(?<![\d.])(?P<d>\d{1,2})\s*[号日](?!元)", _date_zh_day),
    ("date", "(?:这个|本|(?P<next>下个?))?(?P<u>月)[底末]", _date_period_end),
    ("date", "(?:下个|下)?月初", _date_next_month_start),
    ("date", "(?P<w>这个|本|下个|下)?月中", _date_mid_month),
    ("date", "(?:今年)?(?P<u>年)[底末]", _date_period_end),
    ("date", r"(?P<w>下个?|这个?|本)月(?P<d>\d{1,2})\s*[号日]", _date_zh_month_day),
    ("date", r"(?P<n>\d+|半)\s*个?\s*(?P<u>天|日|周|星期|礼拜|月|年)\s*(?:后|以后|之后|(?P<ago>前|以前|之前))",
     _date_in),
    # ---- installment counts
    ("count", rf"\b{_EN_COUNT}", _count),
    ("count", rf"\b(?:split|spread|divide|break)\b[^.,;!?]{{0,20}}?\bin\s+(?P<e>{_EN_COUNT})", _count),
    ("count", r"\b(?:over|across)\s+(?P<e>(?P<n>\d+|an?)\s+(?P<u>years?))\b", _count),
    ("count", r"(?<!第)(?P<n>\d+)\s*期", _count),
    ("count", r"(?P<n>\d+)\s*个\s*月(?!\s*了)", _count),  # "去世两个月了" is a duration
    ("count", r"(?P<n>半)(?P<u>年)(?!\s*了)", _count),
    ("count", r"分\s*(?P<e>(?P<n>\d+)\s*(?P<u>年|次))", _count),
    # ---- money
    ("amount", rf"(?P<neg>-|\bminus\s+)?[$¥￥]\s*(?P<n>{_NUM})(?P<k>k\b|千|万)?", _amount),
    ("amount", rf"(?P<neg>-(?=[$¥￥])|\bminus\s+)?(?:[$¥￥]\s*)?{_NB}(?P<n>{_NUM})\s*(?P<k>k|千|万)?\s*"
               r"(?:dollars?|bucks?|usd|rmb|yuan)\b", _amount),
    ("amount", rf"(?P<neg>\bminus\s+)?{_NB}(?P<n>{_NUM})\s*(?P<k>千|万)?\s*(?:块钱|块|元钱|元|人民币|美元|美金)",
     _amount),
    ("amount", rf"{_NB}(?P<n>{_NUM})(?P<k>k\b|万)", _amount),
    ("amount", rf"(?P<neg>\bminus\s+)(?P<n>{_NUM})\b", _amount),
    ("amount", rf"{_EN_VERB}\s+(?:you\s+|about\s+|like\s+)?(?P<e>(?P<n>{_NUM}))\b{_NOT_UNIT_AFTER}",
     _amount_after_verb),
    ("amount", rf"{_ZH_VERB}\s*(?P<e>(?P<n>{_NUM})){_NOT_UNIT_AFTER}", _amount_after_verb),
    ("amount", r"^\s*(?:那就|就|那|先|大概)?\s*(?P<e>(?P<n>\d+))\s*(?:吧|吗|呢|啊|呀|行吗|可以吗|行不行)?"
               r"[\s.,!?。，！？~～]*$", _amount_alone),
    # 两万 / 一千五 / 五百 anywhere, unless a classifier makes them something else (一百个人)
    ("amount", rf"{_NB}(?P<n>\d+)(?![\d.]|\s*[{_ZH_CLASSIFIER}%])", _amount_zh_big),
]]


# --------------------------------------------------------------------------- public API

def _extract(text, today, country="US"):
    """[(start, end, entity, value object)] in text order, non-overlapping."""
    work = _Text(text)
    ctx = _Ctx(work, today, country)
    candidates = []
    for entity, regex, resolver in _RULES:
        for m in regex.finditer(work.t):
            value = resolver(m, ctx)
            if value is _SKIP:
                continue
            group = "e" if "e" in regex.groupindex else 0
            start, end = work.original(m.start(group), m.end(group))
            rank = work.original(m.start(), m.end())
            candidates.append((rank[0] - rank[1], start, end, entity, value))
    chosen = []
    for cand in sorted(candidates, key=lambda c: c[:3]):  # longest match, then leftmost
        if all(cand[2] <= c[1] or cand[1] >= c[2] for c in chosen):
            chosen.append(cand)
    return sorted((c[1:] for c in chosen if c[4] is not None), key=lambda c: c[0])


def _format(value):
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def find_entities(text, today, country="US"):
    """All dates, amounts and installment counts in `text`, as Rasa-style entity dicts."""
    return [{"entity": entity, "start": start, "end": end, "text": text[start:end],
             "value": _format(value)}
            for start, end, entity, value in _extract(text, today, country)]


def _first(text, entity, today, country="US"):
    return next((value for _, _, e, value in _extract(text, today, country) if e == entity), None)


def _whole_number(text):
    """The number the whole text is ("200", "六", "twelve"), or None."""
    work = _Text(text.strip(" \t\n.,!?。，！？"))
    return _decimal(work.t) if re.fullmatch(_NUM, work.t) else None


def parse_date(text, today, country="US"):
    """The first date in `text` as a datetime.date, or None."""
    return _first(text, "date", today, country)


def parse_amount(text):
    """The first money amount in `text`, or the whole text read as a number, as a Decimal
    with 2 decimals; None if there is none. A bare number is accepted here because the
    caller asked for an amount, but not one that reads as a date (keypad "19850305")."""
    found = _extract(text, date.today())
    value = next((v for _, _, e, v in found if e == "amount"), None)
    if value is None and not any(e == "date" for _, _, e, _ in found):
        value = _whole_number(text)
        if value is not None and len(str(int(abs(value)))) > 7:
            value = None
    return None if value is None else value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def parse_count(text):
    """The first installment count in `text` ("6 months", "分12期"), or the whole text read
    as a whole number ("6", "十二"), as an int; None if there is none."""
    value = _first(text, "count", date.today())
    if value is None:
        number = _whole_number(text)
        if number is not None and number == int(number):
            value = int(number)
    return value
