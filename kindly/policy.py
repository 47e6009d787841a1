"""The collections policy, loaded once from policy.yml (or KINDLY_POLICY_FILE)."""
import os
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.yml")


@dataclass(frozen=True)
class Policy:
    installment_counts: tuple[int, ...]
    installment_first_due_days: int
    installment_fee_percent: Decimal
    partial_max_days: int
    full_max_days: int
    deferral_reasons: frozenset[str]
    deferral_max_days: int
    early_max_days_past_due: int
    flagged_bank_flags: frozenset[str]
    not_flagged_bank_flags: frozenset[str]
    max_verification_attempts: int
    verification_window_hours: int
    act_above: dict
    calling_window: dict
    contact_caps: dict
    crisis_lines: dict
    verify_payment_after_days: int
    reminder_days_before: int
    grace_days: int
    agent_callback_after_minutes: int
    max_agent_callbacks: int

    def contact_hours(self, country: str) -> tuple[time, time]:
        """The calling window in the debtor's local time: the country's, or the US one by default."""
        window = self.calling_window.get(country, self.calling_window["US"])
        return time.fromisoformat(window["start"]), time.fromisoformat(window["end"])


@lru_cache(maxsize=None)
def load_policy(path: str = "") -> Policy:
    raw = yaml.safe_load(Path(path or os.environ.get("KINDLY_POLICY_FILE", DEFAULT_POLICY_FILE)).read_text())
    return Policy(
        installment_counts=tuple(sorted(raw["installments"]["counts"])),
        installment_first_due_days=raw["installments"]["first_due_within_days"],
        installment_fee_percent=Decimal(str(raw["installments"]["fee_percent"])),
        partial_max_days=raw["partial"]["max_days"],
        full_max_days=raw["full"]["max_days"],
        deferral_reasons=frozenset(raw["deferral"]["reasons"]),
        deferral_max_days=raw["deferral"]["max_days"],
        early_max_days_past_due=raw["segments"]["early_max_days_past_due"],
        flagged_bank_flags=frozenset(str(v).casefold() for v in raw["segments"].get("flagged_bank_flags", [])),
        not_flagged_bank_flags=frozenset(str(v).casefold() for v in raw["segments"].get("not_flagged_bank_flags", [""])),
        max_verification_attempts=raw["verification"]["max_attempts"],
        verification_window_hours=raw["verification"]["window_hours"],
        act_above=raw["understanding"]["act_above"],
        calling_window=raw["calling_window"],
        contact_caps=raw["contact_caps"],
        crisis_lines=raw["crisis_lines"],
        verify_payment_after_days=raw["follow_up"]["verify_payment_after_days"],
        reminder_days_before=raw["follow_up"].get("reminder_days_before", 3),
        grace_days=raw["follow_up"].get("grace_days", 2),
        agent_callback_after_minutes=raw["follow_up"].get("agent_callback_after_minutes", 30),
        max_agent_callbacks=raw["follow_up"].get("max_agent_callbacks", 3),
    )


def segment_for(days_past_due: int, policy: Policy, bank_flagged: bool = False) -> str:
    """early / late by days past due; flagged when the bank marks the account high-risk or malicious."""
    if bank_flagged:
        return "flagged"
    return "early" if days_past_due <= policy.early_max_days_past_due else "late"
