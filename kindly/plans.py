"""Payment plans: the arithmetic (Decimal, cent-exact) and the evaluation of what a customer proposes."""
import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Optional

from kindly.policy import Policy

CENT = Decimal("0.01")
PLAN_TYPES = ("full", "partial", "installment", "deferral")


@dataclass
class Proposal:
    """What the customer has asked for so far; filled in over several turns."""

    plan_type: Optional[str] = None
    amount: Optional[Decimal] = None
    due_date: Optional[date] = None
    count: Optional[int] = None

    def to_slot(self) -> dict:
        return {
            "plan_type": self.plan_type,
            "amount": str(self.amount) if self.amount is not None else None,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "count": self.count,
        }

    @classmethod
    def from_slot(cls, value: Optional[dict]) -> "Proposal":
        value = value or {}
        return cls(
            plan_type=value.get("plan_type"),
            amount=Decimal(value["amount"]) if value.get("amount") else None,
            due_date=date.fromisoformat(value["due_date"]) if value.get("due_date") else None,
            count=value.get("count"),
        )

    def merged(self, other: "Proposal") -> "Proposal":
        """The newer proposal wins field by field; a new plan type starts over on the fields it does not use."""
        plan_type = other.plan_type or self.plan_type
        keep = self if plan_type == self.plan_type or self.plan_type is None else Proposal()
        return Proposal(
            plan_type=plan_type,
            amount=other.amount if other.amount is not None else keep.amount,
            due_date=other.due_date or keep.due_date,
            count=other.count or keep.count,
        )


@dataclass
class Plan:
    plan_type: str
    amount: Decimal
    due_date: date
    installments: int
    total: Decimal
    schedule: list[tuple[date, Decimal]]


@dataclass
class Decision:
    plan: Optional[Plan] = None
    missing: Optional[str] = None  # "plan_type" | "amount" | "date" | "count"
    adjustments: list[str] = field(default_factory=list)
    proposal: Proposal = field(default_factory=Proposal)


def add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def split_evenly(total: Decimal, parts: int) -> list[Decimal]:
    """Equal parts rounded to the cent; the last part absorbs the rounding so the sum is exact."""
    part = (total / parts).quantize(CENT, rounding=ROUND_HALF_UP)
    return [part] * (parts - 1) + [total - part * (parts - 1)]


def installment_total(balance: Decimal, policy: Policy) -> Decimal:
    fee = (balance * policy.installment_fee_percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return balance + fee


def installment_plan(balance: Decimal, count: int, first_due: date, policy: Policy) -> Plan:
    total = installment_total(balance, policy)
    parts = split_evenly(total, count)
    schedule = [(add_months(first_due, i), amount) for i, amount in enumerate(parts)]
    return Plan("installment", parts[0], first_due, count, total, schedule)


def single_payment(plan_type: str, amount: Decimal, due: date) -> Plan:
    return Plan(plan_type, amount, due, 1, amount, [(due, amount)])


def nearest_count(count: int, policy: Policy) -> int:
    # Ties go to the longer plan: the smaller monthly amount is the kinder counter-offer.
    return min(policy.installment_counts, key=lambda allowed: (abs(allowed - count), -allowed))


def deferral_allowed(reason_code: Optional[str], policy: Policy) -> bool:
    return reason_code in policy.deferral_reasons


def _check_date(due: Optional[date], today: date, max_days: int, decision: Decision) -> Optional[date]:
    """None means the date must be asked for (missing or in the past); a late date is moved to the limit."""
    if due is None:
        decision.missing = "date"
        return None
    if due < today:
        decision.adjustments.append("date_in_past")
        decision.missing = "date"
        return None
    latest = today + timedelta(days=max_days)
    if due > latest:
        decision.adjustments.append("date_too_late")
        return latest
    return due


def evaluate(
    proposal: Proposal,
    balance: Decimal,
    minimum_due: Decimal,
    reason_code: Optional[str],
    today: date,
    policy: Policy,
) -> Decision:
    """Accept a proposal within policy, or counter with the nearest allowed option, or say what is missing."""
    decision = Decision(proposal=proposal)
    plan_type, amount = proposal.plan_type, proposal.amount

    if amount is not None and amount <= 0:
        decision.adjustments.append("amount_not_positive")
        decision.missing = "amount"
        decision.proposal = Proposal(plan_type, None, proposal.due_date, proposal.count)
        return decision
    if plan_type is None:
        if amount is not None:
            plan_type = "partial"
        elif proposal.count:
            plan_type = "installment"
        else:
            decision.missing = "plan_type"
            return decision
    if plan_type in ("partial", "deferral") and amount is not None and amount >= balance:
        if amount > balance:
            decision.adjustments.append("amount_over_balance")
        plan_type, amount = ("full", balance) if plan_type == "partial" else (plan_type, balance)
    if plan_type == "partial" and proposal.due_date and deferral_allowed(reason_code, policy):
        # A hardship customer asking for more time than a partial allows gets a deferral, if it fits.
        if proposal.due_date > today + timedelta(days=policy.partial_max_days):
            plan_type = "deferral"

    if plan_type == "deferral" and not deferral_allowed(reason_code, policy):
        decision.adjustments.append("deferral_not_eligible")
        decision.missing = "plan_type"
        decision.proposal = Proposal()
        return decision

    if plan_type == "installment":
        count = proposal.count
        if not count:
            decision.missing = "count"
        elif count not in policy.installment_counts:
            decision.adjustments.append("count_not_offered")
            count = nearest_count(count, policy)
        decision.proposal = Proposal("installment", None, proposal.due_date, count)
        if decision.missing:
            return decision
        first_due = _check_date(proposal.due_date, today, policy.installment_first_due_days, decision)
        decision.proposal.due_date = first_due
        if first_due:
            decision.plan = installment_plan(balance, count, first_due, policy)
        return decision

    if plan_type == "full":
        amount = balance
    elif amount is None:
        if plan_type == "deferral":
            amount = minimum_due
        else:
            decision.missing = "amount"
            decision.proposal = Proposal(plan_type, None, proposal.due_date, None)
            return decision
    elif amount < minimum_due:
        decision.adjustments.append("amount_below_minimum")
        amount = minimum_due

    max_days = {"full": policy.full_max_days, "partial": policy.partial_max_days, "deferral": policy.deferral_max_days}
    decision.proposal = Proposal(plan_type, amount, proposal.due_date, None)
    due = _check_date(proposal.due_date, today, max_days[plan_type], decision)
    decision.proposal.due_date = due
    if due:
        decision.plan = single_payment(plan_type, amount, due)
    return decision


def default_due_date(plan_type: Optional[str], today: date, due_day: int, policy: Policy) -> date:
    """The date the bot proposes when the customer names none ("whenever", "next payday"): for installments the
    account's next due day, for anything else the latest date the policy allows; always within policy."""
    if plan_type == "installment":
        this_month = date(today.year, today.month, min(due_day, calendar.monthrange(today.year, today.month)[1]))
        candidate = add_months(this_month, 1) if this_month <= today else this_month
        return min(candidate, today + timedelta(days=policy.installment_first_due_days))
    max_days = {"full": policy.full_max_days, "deferral": policy.deferral_max_days}.get(plan_type or "", policy.partial_max_days)
    return today + timedelta(days=max_days)
