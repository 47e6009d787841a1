"""bot.normalize: dates, amounts and installment counts in English and Chinese.

`today` is fixed to Sunday 2026-11-29 (weeks run Monday to Sunday, so "next friday" and
"this friday" are both 2026-12-04 on that day; see the Wednesday cases for the difference).
"""

import ast
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.normalize import find_entities, parse_amount, parse_count, parse_date, zh_to_int

TODAY = date(2026, 11, 29)  # a Sunday
WEDNESDAY = date(2026, 12, 2)


def found(text, today=TODAY, country="US"):
    return [(e["entity"], e["text"], e["value"]) for e in find_entities(text, today, country)]


# (text, expected date value); the whole text is the expected span
ABSOLUTE_DATES = [
    ("March 5, 1985", "1985-03-05"),
    ("march 5 1985", "1985-03-05"),
    ("March 5th, 1985", "1985-03-05"),
    ("5 March 1985", "1985-03-05"),
    ("the 5th of March 1985", "1985-03-05"),
    ("march fifth nineteen eighty five", "1985-03-05"),
    ("July fourteenth, nineteen ninety", "1990-07-14"),
    ("january first two thousand and one", "2001-01-01"),
    ("Mar 5th '85", "1985-03-05"),
    ("Mar. 5, '85", "1985-03-05"),
    ("Dec 31 '99", "1999-12-31"),
    ("3/5/1985", "1985-03-05"),
    ("3-5-1985", "1985-03-05"),
    ("12/31/1990", "1990-12-31"),
    ("3/5/85", "1985-03-05"),
    ("1985-03-05", "1985-03-05"),
    ("1985/3/5", "1985-03-05"),
    ("1985.3.5", "1985-03-05"),
    ("19850305", "1985-03-05"),
    ("1985年3月5日", "1985-03-05"),
    ("85年3月5号", "1985-03-05"),
    ("八五年三月五号", "1985-03-05"),
    ("一九八五年三月五日", "1985-03-05"),
    ("1990年7月14号", "1990-07-14"),
    ("一九九零年七月十四号", "1990-07-14"),
    ("二〇〇一年一月一日", "2001-01-01"),
    ("零五年十二月三十一号", "2005-12-31"),
    ("１９８５年３月５日", "1985-03-05"),  # full-width digits
    ("一九八五零三零五", "1985-03-05"),  # keypad digits read out in Chinese
    ("march the 5th 1985", "1985-03-05"),
    ("七九年八月十五", "1979-08-15"),  # spoken, without 日/号
    ("5th of march, 1985", "1985-03-05"),
]


@pytest.mark.parametrize("text,value", ABSOLUTE_DATES)
def test_absolute_dates(text, value):
    assert found(text) == [("date", text, value)]


RELATIVE_DATES = [
    ("today", "2026-11-29"),
    ("tomorrow", "2026-11-30"),
    ("day after tomorrow", "2026-12-01"),
    ("yesterday", "2026-11-28"),
    ("friday", "2026-12-04"),
    ("this friday", "2026-12-04"),
    ("next friday", "2026-12-04"),
    ("sunday", "2026-11-29"),
    ("next monday", "2026-11-30"),
    ("last friday", "2026-11-20"),
    ("the 15th", "2026-12-15"),
    ("15th", "2026-12-15"),
    ("the fifteenth", "2026-12-15"),
    ("the 30th", "2026-11-30"),
    ("the 29th", "2026-11-29"),
    ("the 31st", "2026-12-31"),
    ("the first of next month", "2026-12-01"),
    ("the 10th of next month", "2026-12-10"),
    ("end of the month", "2026-11-30"),
    ("end of month", "2026-11-30"),
    ("month end", "2026-11-30"),
    ("end of next month", "2026-12-31"),
    ("beginning of next month", "2026-12-01"),
    ("in two weeks", "2026-12-13"),
    ("in 10 days", "2026-12-09"),
    ("in a week", "2026-12-06"),
    ("in 6 months", "2027-05-29"),
    ("a week from now", "2026-12-06"),
    ("three days from today", "2026-12-02"),
    ("next month", "2026-12-29"),
    ("next week", "2026-12-06"),
    ("March 5th", "2027-03-05"),
    ("december 24", "2026-12-24"),
    ("November 29", "2026-11-29"),
    ("February 29", "2028-02-29"),
    ("今天", "2026-11-29"),
    ("明天", "2026-11-30"),
    ("后天", "2026-12-01"),
    ("大后天", "2026-12-02"),
    ("昨天", "2026-11-28"),
    ("周五", "2026-12-04"),
    ("星期五", "2026-12-04"),
    ("礼拜五", "2026-12-04"),
    ("这周五", "2026-12-04"),
    ("本周五", "2026-12-04"),
    ("下周五", "2026-12-04"),
    ("下星期五", "2026-12-04"),
    ("下礼拜五", "2026-12-04"),
    ("下周一", "2026-11-30"),
    ("星期天", "2026-11-29"),
    ("下下周一", "2026-12-07"),
    ("上周五", "2026-11-20"),
    ("15号", "2026-12-15"),
    ("十五号", "2026-12-15"),
    ("15日", "2026-12-15"),
    ("三十一号", "2026-12-31"),
    ("月底", "2026-11-30"),
    ("下个月底", "2026-12-31"),
    ("月初", "2026-12-01"),
    ("下个月初", "2026-12-01"),
    ("下个月10号", "2026-12-10"),
    ("下月十号", "2026-12-10"),
    ("下个月", "2026-12-29"),
    ("下周", "2026-12-06"),
    ("两周后", "2026-12-13"),
    ("两个星期后", "2026-12-13"),
    ("十天后", "2026-12-09"),
    ("10天以后", "2026-12-09"),
    ("三个月后", "2027-02-28"),  # clamped to the end of February
    ("半年后", "2027-05-29"),
    ("3月5日", "2027-03-05"),
    ("三月五号", "2027-03-05"),
    ("十二月一号", "2026-12-01"),
    ("6/12", "2027-06-12"),
    ("12/24", "2026-12-24"),
    # periods: this/end of = the last day; last = same day one period back
    ("this week", "2026-11-29"),
    ("this month", "2026-11-30"),
    ("end of the week", "2026-11-29"),
    ("end of next week", "2026-12-06"),
    ("end of the year", "2026-12-31"),
    ("last week", "2026-11-22"),
    ("last month", "2026-10-29"),
    ("this weekend", "2026-11-29"),
    ("next weekend", "2026-12-05"),
    ("two weeks ago", "2026-11-15"),
    ("a month ago", "2026-10-29"),
    ("这周", "2026-11-29"),
    ("这个月", "2026-11-30"),
    ("本月", "2026-11-30"),
    ("上周", "2026-11-22"),
    ("上个月", "2026-10-29"),
    ("周末", "2026-11-29"),
    ("下周末", "2026-12-05"),
    ("月中", "2026-12-15"),
    ("下个月中", "2026-12-15"),
    ("年底", "2026-12-31"),
    ("三天前", "2026-11-26"),
    ("两个月以前", "2026-09-29"),
]


@pytest.mark.parametrize("text,value", RELATIVE_DATES)
def test_relative_dates(text, value):
    assert found(text) == [("date", text, value)]


@pytest.mark.parametrize("text,value", [
    ("this weekend", "2026-12-05"),
    ("this week", "2026-12-06"),
    ("friday", "2026-12-04"),
    ("this friday", "2026-12-04"),
    ("next friday", "2026-12-11"),
    ("wednesday", "2026-12-02"),
    ("周五", "2026-12-04"),
    ("下周五", "2026-12-11"),
    ("下周三", "2026-12-09"),
    ("the 1st", "2027-01-01"),
    ("1号", "2027-01-01"),
])
def test_relative_dates_on_a_wednesday(text, value):
    assert found(text, WEDNESDAY) == [("date", text, value)]


def test_next_month_is_clamped_to_the_last_day():
    assert parse_date("next month", date(2027, 1, 31)) == date(2027, 2, 28)
    assert parse_date("下个月", date(2028, 1, 31)) == date(2028, 2, 29)


@pytest.mark.parametrize("text", [
    "February 30 1985", "February 30", "1985年2月30日", "2月30日", "13/13/1990",
    "4/31/2020", "April 31st", "四月三十一号", "19851305", "February 29 1985", "32号",
])
def test_invalid_dates_yield_nothing(text):
    assert found(text) == []
    assert parse_date(text, TODAY) is None


@pytest.mark.parametrize("text,country,value", [
    ("3/5/1985", "US", "1985-03-05"),
    ("3/5/1985", "CN", "1985-05-03"),
    ("3-5-1985", "CN", "1985-05-03"),
    ("5.3.1985", "GB", "1985-03-05"),
    ("13/5/1985", "US", "1985-05-13"),  # only one order is possible
    ("4.17.1986", "CN", "1986-04-17"),
    ("17.04.1986", "US", "1986-04-17"),
    ("6/12", "US", "2027-06-12"),
    ("6/12", "CN", "2026-12-06"),
    ("13/5", "US", None),  # without a year, only the country's order
    ("13/5/1985", "CN", "1985-05-13"),
    ("1985/3/5", "CN", "1985-03-05"),  # year first is never ambiguous
    ("19850305", "CN", "1985-03-05"),
])
def test_day_month_order_by_country(text, country, value):
    assert found(text, country=country) == ([("date", text, value)] if value else [])


@pytest.mark.parametrize("text,value", [
    ("Mar 5th '85", "1985-03-05"),
    ("Mar 5th '25", "2025-03-05"),  # 2025 is already past
    ("Dec 5th '26", "1926-12-05"),  # 2026-12-05 is still ahead, so 1926
    ("Nov 29 '26", "2026-11-29"),
    ("05年3月5号", "2005-03-05"),
    ("3/5/30", "1930-03-05"),
])
def test_two_digit_years_are_in_the_past(text, value):
    assert found(text) == [("date", text, value)]


def test_past_dates_are_returned_as_past():
    assert parse_date("November 1, 2026", TODAY) == date(2026, 11, 1)
    assert parse_date("2020年1月1日", TODAY) == date(2020, 1, 1)
    assert parse_date("yesterday", TODAY) == date(2026, 11, 28)


AMOUNTS = [
    ("$200", "200.00"),
    ("$1,250.50", "1250.50"),
    ("$ 75", "75.00"),
    ("200 dollars", "200.00"),
    ("200 bucks", "200.00"),
    ("two hundred bucks", "200.00"),
    ("two hundred and fifty dollars", "250.00"),
    ("a hundred dollars", "100.00"),
    ("one thousand two hundred dollars", "1200.00"),
    ("1,000 dollars", "1000.00"),
    ("1.5k", "1500.00"),
    ("$2k", "2000.00"),
    ("¥500", "500.00"),
    ("￥500", "500.00"),
    ("500元", "500.00"),
    ("500块", "500.00"),
    ("五百块", "500.00"),
    ("五百元", "500.00"),
    ("两千五", "2500.00"),
    ("一千二", "1200.00"),
    ("三千五百块钱", "3500.00"),
    ("2000块钱", "2000.00"),
    ("1万", "10000.00"),
    ("一万五", "15000.00"),
    ("五百", "500.00"),
    ("三千", "3000.00"),
    ("$0", "0.00"),
    ("0 dollars", "0.00"),
    ("-$50", "-50.00"),
    ("minus 50", "-50.00"),
    ("minus $50", "-50.00"),
    ("minus 5 dollars", "-5.00"),
    ("$200 dollars", "200.00"),
    ("two fifty bucks", "250.00"),  # said in pairs
]


@pytest.mark.parametrize("text,value", AMOUNTS)
def test_amounts(text, value):
    assert found(text) == [("amount", text, value)]


@pytest.mark.parametrize("text,span,value", [
    ("pay 200", "200", "200.00"),
    ("I can pay two hundred", "two hundred", "200.00"),
    ("还200", "200", "200.00"),
    ("还五百", "五百", "500.00"),
    ("先还三千", "三千", "3000.00"),
    ("付五百", "五百", "500.00"),
    ("我已经还了五百", "五百", "500.00"),
    ("I'll pay you one fifty", "one fifty", "150.00"),
    ("3-5 dollars", "5 dollars", "5.00"),  # a dash is a minus only right before a currency sign
    ("可以先还个1000不？", "1000", "1000.00"),
    ("我明明只欠800", "800", "800.00"),
    ("先转300过去", "300", "300.00"),
    ("医药费就花了两万", "两万", "20000.00"),  # 百/千/万 numerals are money anywhere
    ("我手上只有一千五，先还这些", "一千五", "1500.00"),
    ("十五", "十五", "15.00"),  # 十 numerals only as the whole message
    ("两千五吧", "两千五", "2500.00"),
    ("那就五百吧", "五百", "500.00"),
])
def test_bare_numbers_that_are_money_by_context(text, span, value):
    assert found(text) == [("amount", span, value)]


@pytest.mark.parametrize("text", [
    "200", "1985", "I have 2 kids", "call me back after 6", "I'm 45 years old",
    "call me at 555-123-4567", "card 4111111111111111", "pay 50%", "还一下", "还12次",
    "我还有两个孩子", "一起还", "万一我还不上", "千万别再打了", "十分感谢", "一个人", "第一次",
    "五", "wait a second", "no one answered", "I was in the hospital for two weeks",
    "一百个人", "两千年", "三百六十五天", "我二十五岁", "I work 24/7", "他已经过世两个月了", "他已经去世半年了",
"我就是不还，有本事告我",
])
def test_nothing_to_find(text):
    assert found(text) == []


@pytest.mark.parametrize("text", ["19850305", "pay 19850305", "还19850305", "12345678"])
def test_keypad_digits_are_never_money(text):
    assert all(e["entity"] != "amount" for e in find_entities(text, TODAY))


COUNTS = [
    ("6 months", "6"),
    ("six months", "6"),
    ("twelve months", "12"),
    ("12 installments", "12"),
    ("3 payments", "3"),
    ("12 monthly payments", "12"),
    ("6-month", "6"),
    ("12期", "12"),
    ("六期", "6"),
    ("六个月", "6"),
    ("十二个月", "12"),
    ("3个月", "3"),
    ("半年", "6"),
]


@pytest.mark.parametrize("text,value", COUNTS)
def test_counts(text, value):
    assert found(text) == [("count", text, value)]


@pytest.mark.parametrize("text,span,value", [
    ("分12期", "12期", "12"),
    ("我想分十二期", "十二期", "12"),
    ("分一年", "一年", "12"),
    ("分三次还", "三次", "3"),
    ("can I split it over 6 months", "6 months", "6"),
    ("spread it over a year", "a year", "12"),
    ("split it in 12 months", "12 months", "12"),
    ("idk maybe split it in 3 months or something", "3 months", "3"),
])
def test_count_spans_leave_out_the_verb(text, span, value):
    assert found(text) == [("count", span, value)]


@pytest.mark.parametrize("text,expected", [
    ("in 6 months", [("date", "in 6 months", "2027-05-29")]),
    ("三个月后", [("date", "三个月后", "2027-02-28")]),
    ("next month", [("date", "next month", "2026-12-29")]),
    ("一年", []),  # a year is a count only as 分一年 / over a year
    ("第3期", []),
])
def test_not_counts(text, expected):
    assert found(text) == expected


SENTENCES = [
    ("can I pay $200 next friday",
     [("amount", "$200", "200.00"), ("date", "next friday", "2026-12-04")]),
    ("I'll pay 500 on the first of next month",
     [("amount", "500", "500.00"), ("date", "the first of next month", "2026-12-01")]),
    ("my birthday is March 5th, 1985 thanks", [("date", "March 5th, 1985", "1985-03-05")]),
    ("I paid it yesterday by bank transfer", [("date", "yesterday", "2026-11-28")]),
    ("I can do two payments of $150 starting tomorrow",
     [("count", "two payments", "2"), ("amount", "$150", "150.00"),
      ("date", "tomorrow", "2026-11-30")]),
    ("我想分12期 ok吗", [("count", "12期", "12")]),
    ("下周五还五百块", [("date", "下周五", "2026-12-04"), ("amount", "五百块", "500.00")]),
    ("我先还三千五百块钱，月底还剩下的",
     [("amount", "三千五百块钱", "3500.00"), ("date", "月底", "2026-11-30")]),
    ("我下个月15号还两千", [("date", "下个月15号", "2026-12-15"), ("amount", "两千", "2000.00")]),
    ("我三号还一千", [("date", "三号", "2026-12-03"), ("amount", "一千", "1000.00")]),
    ("我昨天已经还了五百", [("date", "昨天", "2026-11-28"), ("amount", "五百", "500.00")]),
    ("分六个月，每个月还500元", [("count", "六个月", "6"), ("amount", "500元", "500.00")]),
    ("我是1985年3月5号出生的", [("date", "1985年3月5号", "1985-03-05")]),
    ("能不能两周后还¥2000", [("date", "两周后", "2026-12-13"), ("amount", "¥2000", "2000.00")]),
    ("i'd like to split it up with the first one next friday",
     [("date", "next friday", "2026-12-04")]),
    ("我下周一一次性结清", [("date", "下周一", "2026-11-30")]),
    ("呃，19870722", [("date", "19870722", "1987-07-22")]),
    ("我只刷了两千，怎么变成五千了", [("amount", "两千", "2000.00"), ("amount", "五千", "5000.00")]),
    ("周一到周五", [("date", "周一", "2026-11-30"), ("date", "周五", "2026-12-04")]),
    ("i paid $75 last week", [("amount", "$75", "75.00"), ("date", "last week", "2026-11-22")]),
]


@pytest.mark.parametrize("text,expected", SENTENCES)
def test_sentences(text, expected):
    assert found(text) == expected


def test_entity_dicts_and_offsets():
    text = "OK, $1,250.50 by the 15th, 分12期"
    entities = find_entities(text, TODAY)
    assert entities == [
        {"entity": "amount", "start": 4, "end": 13, "text": "$1,250.50", "value": "1250.50"},
        {"entity": "date", "start": 17, "end": 25, "text": "the 15th", "value": "2026-12-15"},
        {"entity": "count", "start": 28, "end": 31, "text": "12期", "value": "12"},
    ]
    for e in entities:
        assert text[e["start"]:e["end"]] == e["text"]


def test_offsets_survive_spelled_out_numbers():
    text = "嗯，一九八五年三月五号。And I'll pay two hundred and fifty dollars."
    entities = find_entities(text, TODAY)
    assert [(text[e["start"]:e["end"]], e["value"]) for e in entities] == [
        ("一九八五年三月五号", "1985-03-05"),
        ("two hundred and fifty dollars", "250.00"),
    ]


def test_parse_date():
    assert parse_date("March 5, 1985", TODAY) == date(1985, 3, 5)
    assert parse_date("3/5/1985", TODAY, country="CN") == date(1985, 5, 3)
    assert parse_date("下周五", TODAY) == date(2026, 12, 4)
    assert parse_date("no date here", TODAY) is None


@pytest.mark.parametrize("text,value", [
    ("$1,250.50", Decimal("1250.50")),
    ("两千五", Decimal("2500.00")),
    ("200", Decimal("200.00")),  # asked for an amount, a bare number will do
    ("twelve", Decimal("12.00")),
    ("-$50", Decimal("-50.00")),
    ("19850305", None),
    ("hello", None),
])
def test_parse_amount(text, value):
    assert parse_amount(text) == value


@pytest.mark.parametrize("text,value", [
    ("6 months", 6), ("分12期", 12), ("半年", 6), ("12", 12), ("六", 6), ("twelve", 12),
    ("maybe", None), ("0", 0), ("1.5", None),
])
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text,value", [
    ("零", 0), ("五", 5), ("十", 10), ("十五", 15), ("二十一", 21), ("三十一", 31),
    ("一百零五", 105), ("一千零五十", 1050), ("两千五", 2500), ("一千二", 1200),
    ("三千五百", 3500), ("一万", 10000), ("一万五", 15000), ("十二万", 120000),
    ("一九八五", 1985), ("八五", 85), ("二〇〇一", 2001),
    ("千万", None), ("万一", None), ("", None), ("abc", None),
])
def test_zh_to_int(text, value):
    assert zh_to_int(text) == value


@pytest.mark.parametrize("text,value", [
    ("zero dollars", "0.00"), ("ninety nine dollars", "99.00"), ("ninety-nine bucks", "99.00"),
    ("a thousand dollars", "1000.00"), ("two thousand and one dollars", "2001.00"),
    ("twenty twenty six dollars", "2026.00"),  # said in pairs, like a year
])
def test_english_number_words(text, value):
    assert found(text) == [("amount", text, value)]


def test_module_uses_only_the_standard_library():
    source = Path(__file__).resolve().parents[2] / "bot" / "normalize.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"calendar", "datetime", "decimal", "re"}
