"""Money and dates in the customer's language, via babel."""
from datetime import date
from decimal import Decimal

from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency

LOCALES = {"en": "en_US", "zh": "zh_CN"}


def money(amount: Decimal, currency: str, language: str) -> str:
    return format_currency(amount, currency, locale=LOCALES[language])


def day(value: date, language: str) -> str:
    return babel_format_date(value, format="long", locale=LOCALES[language])
