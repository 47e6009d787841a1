"""Money and dates in the customer's language, via babel."""
from datetime import date
from decimal import Decimal

from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency, format_decimal, get_currency_name

LOCALES = {"en": "en_US", "zh": "zh_CN"}


def money(amount: Decimal, currency: str, language: str) -> str:
    """"$1,000.00" in English; "1,000.00元" or "1,000.00美元" in Chinese, as a Mandarin voice reads them well
    (babel's zh_CN "US$" is read out letter by letter)."""
    if language != "zh":
        return format_currency(amount, currency, locale=LOCALES[language])
    unit = "元" if currency == "CNY" else get_currency_name(currency, locale=LOCALES[language])
    return f"{format_decimal(amount, format='#,##0.00', locale=LOCALES[language])}{unit}"


def day(value: date, language: str) -> str:
    return babel_format_date(value, format="long", locale=LOCALES[language])
