"""Plan arithmetic and the evaluation of what customers propose (PRODUCT.md section 4)."""
from datetime import date, timedelta
from decimal import Decimal

import pytest

from kindly.plans import Proposal, add_months, default_due_date, evaluate, installment_plan, nearest_count, split_evenly
from kindly.policy import DEFAULT_POLICY_FILE, load_policy

POLICY = load_policy()
TODAY = date(2026, 11, 29)
BALANCE, MINIMUM = Decimal("1000.00"), Decimal("50.00")


def decide(reason=None, **proposal):
    return evaluate(Proposal(**proposal), BALANCE, MINIMUM, reason, TODAY, POLICY)


@pytest.mark.parametrize("balance", ["1000.00", "1000.01", "999.99", "0.05", "12345.67", "24000.00", "100.00"])
@pytest.mark.parametrize("count", [3, 6, 12])
def test_installments_sum_exactly_to_the_balance(balance, count):
    plan = installment_plan(Decimal(balance), count, TODAY + timedelta(days=10), POLICY)
    amounts = [amount for _, amount in plan.schedule]
    assert sum(amounts) == Decimal(balance) == plan.total
    assert len(amounts) == count
    assert all(a == amounts[0] for a in amounts[:-1])
    assert abs(amounts[-1] - amounts[0]) < Decimal("0.01") * count
    assert all(a == a.quantize(Decimal("0.01")) for a in amounts)


def test_split_thirds_last_part_absorbs_rounding():
    assert split_evenly(Decimal("1000.00"), 3) == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]


def test_installments_fall_monthly_and_clamp_to_month_end():
    plan = installment_plan(BALANCE, 3, date(2027, 1, 31), POLICY)
    assert [d for d, _ in plan.schedule] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


@pytest.mark.parametrize("asked, offered", [(1, 3), (3, 3), (4, 3), (5, 6), (9, 12), (10, 12), (24, 12)])
def test_nearest_installment_count(asked, offered):
    assert nearest_count(asked, POLICY) == offered


def test_installment_proposal_within_policy_is_accepted():
    decision = decide(plan_type="installment", count=6, due_date=TODAY + timedelta(days=15))
    assert decision.plan.plan_type == "installment" and decision.plan.installments == 6 and not decision.adjustments


def test_installment_count_not_offered_is_countered():
    decision = decide(plan_type="installment", count=4, due_date=TODAY + timedelta(days=5))
    assert decision.plan.installments == 3 and decision.adjustments == ["count_not_offered"]


def test_installment_without_date_asks_for_it():
    decision = decide(plan_type="installment", count=12)
    assert decision.plan is None and decision.missing == "date"


def test_first_installment_beyond_30_days_is_moved_to_the_limit():
    decision = decide(plan_type="installment", count=3, due_date=TODAY + timedelta(days=45))
    assert decision.plan.due_date == TODAY + timedelta(days=30) and "date_too_late" in decision.adjustments


def test_partial_amount_over_the_balance_becomes_full_payment():
    decision = decide(plan_type="partial", amount=Decimal("5000"), due_date=TODAY + timedelta(days=3))
    assert decision.plan.plan_type == "full" and decision.plan.amount == BALANCE
    assert decision.adjustments == ["amount_over_balance"]


def test_partial_below_minimum_is_raised_to_the_minimum():
    decision = decide(plan_type="partial", amount=Decimal("20"), due_date=TODAY + timedelta(days=3))
    assert decision.plan.amount == MINIMUM and decision.adjustments == ["amount_below_minimum"]


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-50")])
def test_zero_or_negative_amount_is_asked_again(amount):
    decision = decide(plan_type="partial", amount=amount, due_date=TODAY + timedelta(days=3))
    assert decision.plan is None and decision.missing == "amount" and decision.adjustments == ["amount_not_positive"]


def test_partial_date_in_the_past_is_asked_again():
    decision = decide(plan_type="partial", amount=Decimal("100"), due_date=TODAY - timedelta(days=1))
    assert decision.plan is None and decision.missing == "date" and decision.adjustments == ["date_in_past"]
    assert decision.proposal.due_date is None and decision.proposal.amount == Decimal("100")


def test_partial_date_beyond_14_days_is_countered_with_the_latest_allowed():
    decision = decide(plan_type="partial", amount=Decimal("100"), due_date=TODAY + timedelta(days=20))
    assert decision.plan.due_date == TODAY + timedelta(days=14) and decision.adjustments == ["date_too_late"]


def test_hardship_customer_asking_for_more_time_gets_a_deferral():
    decision = decide("job_loss", plan_type="partial", amount=Decimal("100"), due_date=TODAY + timedelta(days=25))
    assert decision.plan.plan_type == "deferral" and decision.plan.due_date == TODAY + timedelta(days=25)


@pytest.mark.parametrize("reason", ["job_loss", "medical", "family_emergency", "income_delay"])
def test_deferral_for_hardship_defaults_to_the_minimum(reason):
    decision = decide(reason, plan_type="deferral", due_date=TODAY + timedelta(days=30))
    assert decision.plan.plan_type == "deferral" and decision.plan.amount == MINIMUM


@pytest.mark.parametrize("reason", [None, "forgot", "other", "dispute"])
def test_deferral_without_hardship_is_refused(reason):
    decision = decide(reason, plan_type="deferral", due_date=TODAY + timedelta(days=10))
    assert decision.plan is None and decision.adjustments == ["deferral_not_eligible"]


def test_deferral_beyond_30_days_is_moved_to_the_limit():
    decision = decide("medical", plan_type="deferral", due_date=TODAY + timedelta(days=60))
    assert decision.plan.due_date == TODAY + timedelta(days=30) and decision.adjustments == ["date_too_late"]


def test_full_payment_needs_a_date():
    assert decide(plan_type="full").missing == "date"
    plan = decide(plan_type="full", due_date=TODAY).plan
    assert plan.amount == BALANCE and plan.plan_type == "full"


def test_amount_alone_is_a_partial_and_count_alone_an_installment():
    assert decide(amount=Decimal("200")).proposal.plan_type == "partial"
    assert decide(count=6).proposal.plan_type == "installment"
    assert decide(due_date=TODAY).missing == "plan_type"


def test_proposal_merges_across_turns_and_survives_the_slot():
    first = Proposal(plan_type="installment", count=6)
    merged = Proposal.from_slot(first.to_slot()).merged(Proposal(due_date=TODAY + timedelta(days=7)))
    assert merged == Proposal("installment", None, TODAY + timedelta(days=7), 6)
    switched = merged.merged(Proposal(plan_type="partial", amount=Decimal("80")))
    assert switched == Proposal("partial", Decimal("80"), None, None)


def test_fee_is_added_to_the_installment_total(tmp_path):
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text(DEFAULT_POLICY_FILE.read_text().replace('fee_percent: "0"', 'fee_percent: "2.5"'))
    policy = load_policy(str(policy_file))
    plan = installment_plan(Decimal("1000.00"), 6, TODAY, policy)
    assert plan.total == Decimal("1025.00") and sum(a for _, a in plan.schedule) == Decimal("1025.00")


@pytest.mark.parametrize("plan_type, due_day, expected", [
    ("installment", 15, date(2026, 12, 15)),   # the next due day
    ("installment", 30, date(2026, 11, 30)),   # still ahead this month
    ("installment", 29, date(2026, 12, 29)),   # today is the due day: next month, 30 days out
    ("installment", 31, date(2026, 11, 30)),   # clamped to the month's last day
    ("full", 15, TODAY + timedelta(days=POLICY.full_max_days)),
    ("partial", 15, TODAY + timedelta(days=POLICY.partial_max_days)),
    ("deferral", 15, TODAY + timedelta(days=POLICY.deferral_max_days)),
    (None, 15, TODAY + timedelta(days=POLICY.partial_max_days)),
])
def test_default_due_date_is_within_policy(plan_type, due_day, expected):
    assert default_due_date(plan_type, TODAY, due_day, POLICY) == expected


def test_default_installment_date_never_exceeds_the_first_due_limit():
    for day in range(1, 32):
        for offset in range(0, 400, 7):
            today = TODAY + timedelta(days=offset)
            proposed = default_due_date("installment", today, day, POLICY)
            assert today < proposed <= today + timedelta(days=POLICY.installment_first_due_days)
