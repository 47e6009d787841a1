"""Custom actions. Rasa's rules pick the action from the stage and the intent; each action does one step of
PRODUCT.md section 2 and writes its outcome to the database through kindly.records."""
import asyncio
import re
from abc import ABC, abstractmethod
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, FollowupAction, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import Turn
from kindly import records
from kindly.callback_time import callback_moment
from kindly.db import session_scope
from kindly.follow_through import broken_promise_line
from kindly.models import Account, Conversation
from kindly.plans import Decision, Proposal, default_due_date, evaluate, installment_total, split_evenly
from kindly.timeline import verification_locked
from kindly.understanding import is_nonsense, names_account_holder, needs_confirmation, opt_out_reach

HANDOFF_REASONS = {
    "request_human": "requested_human",
    "abuse": "abusive",
    "dispute": "dispute",
    "fraud": "fraud",
    "legal": "legal",
    "deceased": "deceased",
    "vulnerable": "vulnerable",
    "self_harm": "vulnerable",
    "refuse_to_pay": "refuses_to_pay",
    "complaint": "complaint",
}
# Flags follow only from what a verified customer says (an agent sets the rest through the API).
FLAGS_BY_HANDOFF_REASON = {"dispute": "dispute", "fraud": "fraud", "legal": "legal_hold", "deceased": "deceased", "vulnerable": "vulnerable"}
REASON_CODES_BY_INTENT = {
    "reason_forgot": "forgot",
    "reason_income_delay": "income_delay",
    "reason_job_loss": "job_loss",
    "reason_medical": "medical",
    "reason_family_emergency": "family_emergency",
    "dispute": "dispute",
    "fraud": "fraud",
    "refuse_to_pay": "refuses",
    "already_paid": "already_paid",
}
DIGITS = re.compile(r"\d")
HARDSHIP_REASONS = {"job_loss", "medical", "family_emergency", "income_delay"}
PLAN_TYPES_BY_INTENT = {"pay_full": "full", "pay_partial": "partial", "installments": "installment", "defer": "deferral"}
# A callback request that already names a time needs no follow-up question.
TIME_WORDS = re.compile(
    r"\d|morning|afternoon|evening|tonight|noon|tomorrow|later today|上午|下午|晚上|中午|明天|后天|点|周|星期",
    re.IGNORECASE,
)
PAYMENT_METHODS = {
    "bank transfer": "bank_transfer", "transfer": "bank_transfer", "转账": "bank_transfer",
    "app": "app", "手机银行": "app", "online": "online", "网银": "online",
    "card": "card", "check": "check", "cheque": "check", "cash": "cash", "现金": "cash",
    "支付宝": "alipay", "alipay": "alipay", "微信": "wechat_pay", "wechat": "wechat_pay",
    "autopay": "autopay", "自动还款": "autopay", "branch": "branch", "柜台": "branch", "网点": "branch",
}


# ---------------------------------------------------------------- prompts


def prompt_for_stage(turn: Turn) -> None:
    """Ask the question the current stage is waiting for."""
    stage = turn.stage
    if stage in ("opening", "right_party"):
        turn.reply("ask_for_customer")
    elif stage == "callback":
        turn.reply("ask_callback_time")
    elif stage == "verify":
        ask_dob(turn)
    elif stage == "reason":
        turn.reply(reason_prompt(turn))
    elif stage == "options":
        turn.reply("ask_option")
    elif stage == "existing_plan":
        turn.reply("ask_keep_plan")
    elif stage == "hardship":
        turn.reply("ask_hardship_person")
    elif stage == "confirm":
        decision = current_decision(turn, Proposal.from_slot(turn.slot("proposal")))
        if decision.plan:
            read_back(turn, decision)
        else:
            turn.reply("ask_option")
    elif stage == "paid_details":
        turn.reply("ask_payment_details")
    else:
        turn.reply("conversation_closed")


def ask_dob(turn: Turn, *lead: str) -> None:
    """The question once per reply: after a wrong answer, the short form."""
    keys = [*lead, "ask_dob_again" if lead else "ask_dob"] + (["ask_dob_keypad"] if turn.channel == "voice" else [])
    turn.reply(*keys)


def reason_prompt(turn: Turn) -> str:
    return "ask_reason_late" if turn.account.segment == "late" else "ask_reason"


# ---------------------------------------------------------------- understanding before acting


def misunderstood(turn: Turn) -> None:
    """A turn the bot did not understand; the second in a row goes to a person."""
    streak = int(turn.slot("fallback_streak") or 0) + 1
    if streak >= 2:
        hand_off(turn, "bot_failure")
        return
    turn.reply("not_understood")
    prompt_for_stage(turn)
    turn.set_slot("fallback_streak", streak)


def ask_to_confirm(turn: Turn) -> None:
    """A high-stakes reading below its confidence threshold: ask, and act on the answer next turn."""
    turn.set_slot("pending_intent", turn.intent)
    turn.set_slot("pending_text", turn.masked_text)
    turn.set_slot("resume_stage", turn.stage)
    turn.reply(f"clarify_{turn.intent}")
    turn.move_to("clarify")


def settle_clarification(turn: Turn) -> None:
    """The answer to ask_to_confirm: yes acts on the confirmed reading, anything else carries on where we were."""
    pending, words = turn.slot("pending_intent"), turn.slot("pending_text")
    resume_stage(turn)
    if turn.intent == "affirm" and pending in CONFIRMED_STEPS:
        turn.confirmed_intent, turn.confirmed_words = pending, words
        CONFIRMED_STEPS[pending](turn)
        return
    turn.reply("clarify_declined")
    prompt_for_stage(turn)


def resume_stage(turn: Turn) -> None:
    if turn.stage == "clarify":
        turn.move_to(turn.slot("resume_stage") or "right_party")
    for name in ("pending_intent", "pending_text", "resume_stage"):
        turn.set_slot(name, None)


def reroute(turn: Turn, chosen: Callable[[Turn], None]) -> Callable[[Turn], None]:
    """What the classifier can't know: nonsense is never an answer, the holder's own name confirms the right
    party, and a high-stakes guess is confirmed before anything is done."""
    if turn.stage == "clarify" and chosen is not settle_clarification:
        resume_stage(turn)  # the customer moved on instead of answering the question
    if turn.dob_check and turn.stage in ("opening", "right_party", "verify"):
        return verify_identity if turn.stage == "verify" else confirm_right_party
    if is_nonsense(turn.text):
        return misunderstood
    if turn.stage in ("opening", "right_party") and turn.intent in NAME_ANSWER_INTENTS and names_account_holder(turn.text, turn.account.name):
        return confirm_right_party
    unverified_payment_talk = turn.intent == "already_paid" and not turn.conversation.verified  # verify_first says nothing
    if needs_confirmation(turn.intent, turn.confidence, turn.policy.act_above, turn.risk_phrase is not None) and not unverified_payment_talk:
        return ask_to_confirm
    return chosen


# ---------------------------------------------------------------- opening, right party, verification


def open_conversation(turn: Turn) -> None:
    keys = ["opening_intro"] + (["recording_notice"] if turn.channel == "voice" else []) + ["ask_for_customer"]
    turn.reply(*keys)
    turn.move_to("right_party")


def confirm_right_party(turn: Turn) -> None:
    turn.move_to("verify")
    if verification_locked(turn.session, turn.account.id):
        locked_out(turn)
    elif turn.dob_check:
        verify_identity(turn)
    else:
        ask_dob(turn)


def locked_out(turn: Turn) -> None:
    """Verification is locked on the account (too many failures in the window): nothing is disclosed."""
    turn.reply("verification_locked")
    turn.end("verification_failed")


def verify_identity(turn: Turn) -> None:
    if verification_locked(turn.session, turn.account.id):
        locked_out(turn)
        return
    check = turn.dob_check
    if check == "match":
        records.record_verification(turn.session, turn.account, turn.conversation, succeeded=True)
        turn.conversation.verified = True
        turn.set_slot("verified", True)
        disclose(turn)
        return
    stalls = int(turn.slot("stalls") or 0)
    if not check and not DIGITS.search(turn.text) and turn.intent not in ("inform", "nlu_fallback") and stalls < 1:
        # Not an attempt at a date ("yes", "hang on"): ask again once without using up an attempt.
        turn.set_slot("stalls", stalls + 1)
        ask_dob(turn)
        return
    turn.set_slot("stalls", 0)
    records.record_verification(turn.session, turn.account, turn.conversation, succeeded=False)
    if verification_locked(turn.session, turn.account.id):
        records.create_handoff(turn.session, turn.account, turn.conversation, "verification_locked", "")
        records.audit(turn.session, "bot", "verification_locked", "account", turn.account.id, conversation=turn.conversation.id)
        turn.reply("verification_failed")
        turn.end("verification_failed")
    else:
        ask_dob(turn, "dob_mismatch" if check else "dob_not_a_date")


def disclose(turn: Turn) -> None:
    account = turn.account
    turn.reply(f"disclosure_{account.country}")
    if account.segment == "flagged":
        hand_off(turn, "flagged_account")
        return
    turn.reply(
        "account_status",
        last4=account.card_last4,
        days=account.days_past_due,
        balance=turn.money(account.balance),
        minimum=turn.money(account.minimum_due),
    )
    after_verification(turn)


def after_verification(turn: Turn) -> None:
    """Pick up what the customer raised before verification, or the plan they already have, or ask why."""
    topic = turn.slot("deferred_topic")
    turn.set_slot("deferred_topic", None)
    if topic == "already_paid":
        turn.move_to("paid_details")
        turn.reply("ask_payment_details")
    elif topic == "ask_how_to_pay":
        turn.reply("answer_how_to_pay")
        continue_with_plan_or_reason(turn)
    else:
        continue_with_plan_or_reason(turn)


def continue_with_plan_or_reason(turn: Turn) -> None:
    if turn.timeline.get("open_promise"):
        tell_existing_plan(turn)
        return
    missed = broken_promise_line(turn.session, turn.account, turn.language)
    if missed:
        turn.say(missed)  # "The $400.00 due on December 11 hasn't reached us yet." Then: why, and a new plan.
    turn.reply(reason_prompt(turn))
    turn.move_to("reason")


def tell_existing_plan(turn: Turn) -> None:
    promise = turn.timeline["open_promise"]
    amount, when = turn.money(Decimal(promise["next_amount"])), turn.day(date.fromisoformat(promise["next_due_date"]))
    key = "existing_plan_installment" if promise["plan_type"] == "installment" else "existing_plan_single"
    turn.reply(key, "ask_keep_plan", amount=amount, date=when, count=promise["installments"])
    turn.move_to("existing_plan")


def verify_first(turn: Turn, topic: str) -> None:
    """Before verification nothing about the account is said: note what the customer raised and verify first."""
    if turn.confidence >= float(turn.policy.act_above.get(topic, 0)):
        turn.set_slot("deferred_topic", topic)
    turn.reply("verify_first")
    if turn.stage == "opening":
        turn.move_to("right_party")
    prompt_for_stage(turn)


# ---------------------------------------------------------------- an existing plan


def keep_plan(turn: Turn) -> None:
    promise = turn.timeline.get("open_promise")
    if promise is None:  # settled or replaced meanwhile: start from the reason
        continue_with_plan_or_reason(turn)
        return
    records.audit(turn.session, "customer", "promise_reaffirmed", "promise", promise["id"], conversation=turn.conversation.id)
    turn.reply("plan_kept", "close")
    turn.end("promise_to_pay")


def change_plan(turn: Turn) -> None:
    offer_options(turn, turn.conversation.reason_code or turn.timeline.get("last_reason_code"))


def promise_reference(turn: Turn) -> None:
    """"I already promised ...": the plan on file, read back; or, if there is none, a new one."""
    if not turn.conversation.verified:
        verify_first(turn, "promise_reference")
    elif turn.timeline.get("open_promise"):
        tell_existing_plan(turn)
    else:
        turn.reply("no_plan_on_file")
        change_plan(turn)


# ---------------------------------------------------------------- reason and options


def record_reason(turn: Turn) -> None:
    code = REASON_CODES_BY_INTENT.get(turn.intent, "other")
    turn.conversation.reason_code = code
    turn.conversation.reason_text = turn.masked_text
    turn.set_slot("reason_code", code)
    turn.reply("empathy_hardship" if code in HARDSHIP_REASONS else "empathy_general")
    offer_options(turn, code)


def offer_options(turn: Turn, reason_code: Optional[str]) -> None:
    account, policy, today = turn.account, turn.policy, turn.today
    six_part = split_evenly(installment_total(account.balance, policy), 6)[0]
    options = {
        "option_full": dict(balance=turn.money(account.balance), date=turn.day(today + timedelta(days=policy.full_max_days))),
        "option_partial": dict(minimum=turn.money(account.minimum_due), date=turn.day(today + timedelta(days=policy.partial_max_days))),
        "option_installments": dict(part=turn.money(six_part)),
    }
    if reason_code in policy.deferral_reasons:
        options["option_deferral"] = dict(date=turn.day(today + timedelta(days=policy.deferral_max_days)))
    # Late accounts hear installments first (PRODUCT.md section 4).
    order = ["option_installments", "option_partial", "option_full"] if account.segment == "late" else ["option_full", "option_partial", "option_installments"]
    order += ["option_deferral"] if "option_deferral" in options else []
    items = [turn.text_for(key, **options[key]) for key in order]
    turn.say(turn.text_for("option_intro"), turn.text_for("options_joined", options=join_options(turn, items)), turn.text_for("ask_option"))
    turn.move_to("options")


def join_options(turn: Turn, items: list[str]) -> str:
    """"a, b, or c" in English; "a；b；或者c" in Chinese."""
    if len(items) == 1:
        return items[0]
    if turn.language == "zh":
        return "；".join(items[:-1]) + "；或者" + items[-1]
    return ", ".join(items[:-1]) + ", or " + items[-1]


def proposal_from_message(turn: Turn) -> Proposal:
    plan_type = PLAN_TYPES_BY_INTENT.get(turn.intent)
    amount = turn.entity_amount()
    if amount is None and turn.mentions_minimum() and turn.intent in ("pay_partial", "defer", "inform"):
        amount = turn.account.minimum_due
    return Proposal(plan_type, amount, turn.entity_date(), turn.entity_count())


def current_decision(turn: Turn, proposal: Proposal) -> Decision:
    account = turn.account
    return evaluate(proposal, account.balance, account.minimum_due, turn.conversation.reason_code, turn.today, turn.policy)


def latest_date_for(turn: Turn, plan_type: Optional[str]):
    policy = turn.policy
    days = {
        "installment": policy.installment_first_due_days,
        "deferral": policy.deferral_max_days,
        "full": policy.full_max_days,
    }.get(plan_type or "", policy.partial_max_days)
    return turn.today + timedelta(days=days)


def with_defaults(turn: Turn, decision: Decision) -> tuple[Decision, list[str]]:
    """No dead ends: a missing date gets the policy's default at once ("whenever", "next payday"); an amount
    or a count asked for twice without an answer gets its default (the minimum, the middle count)."""
    proposal, notes = decision.proposal, []
    asked_before = turn.slot("last_ask") == decision.missing
    if decision.missing == "date":
        proposal.due_date = default_due_date(proposal.plan_type, turn.today, turn.account.due_date.day, turn.policy)
        notes.append("default_date")
    elif decision.missing == "amount" and asked_before:
        proposal.amount = turn.account.minimum_due
        notes.append("default_amount")
    elif decision.missing == "count" and asked_before:
        counts = turn.policy.installment_counts
        proposal.count = counts[len(counts) // 2]
        notes.append("default_count")
    else:
        return decision, notes
    return current_decision(turn, proposal), notes


def evaluate_plan(turn: Turn) -> None:
    proposal = Proposal.from_slot(turn.slot("proposal")).merged(proposal_from_message(turn))
    decision = current_decision(turn, proposal)
    adjustments = [f"adj_{a}" if a != "deferral_not_eligible" else a for a in decision.adjustments]
    decision, defaults = with_defaults(turn, decision)
    turn.set_slot("proposal", decision.proposal.to_slot())
    account = turn.account
    params = dict(
        minimum=turn.money(account.minimum_due),
        balance=turn.money(account.balance),
        latest=turn.day(latest_date_for(turn, decision.proposal.plan_type)),
        count=decision.proposal.count,
    )
    if decision.plan:
        turn.set_slot("last_ask", None)
        turn.move_to("confirm")
        notes = adjustments + [n for n in defaults if n != "default_date"]
        if notes:
            turn.reply(*notes, **params)
        read_back(turn, decision, proposed_date="default_date" in defaults)
        return
    if decision.missing == "plan_type" and turn.slot("last_ask") == "plan_type":
        hand_off(turn, "bot_failure")  # asked which option twice without an answer: a person takes over
        return
    turn.set_slot("last_ask", decision.missing)
    turn.move_to("options")
    follow = {"amount": "ask_amount", "count": "ask_count", "plan_type": "ask_option"}[decision.missing]
    turn.reply(*adjustments, follow, **params)


def read_back(turn: Turn, decision: Decision, proposed_date: bool = False) -> None:
    plan = decision.plan
    key = f"readback_{plan.plan_type}"
    if plan.plan_type == "installment" and plan.schedule[-1][1] != plan.amount:
        key = "readback_installment_uneven"
    turn.reply(
        key,
        *(["other_date_welcome"] if proposed_date else []),
        amount=turn.money(plan.amount),
        date=turn.day(plan.due_date),
        count=plan.installments,
        last_part=turn.money(plan.schedule[-1][1]),
        total=turn.money(plan.total),
    )


def confirm_plan(turn: Turn) -> None:
    decision = current_decision(turn, Proposal.from_slot(turn.slot("proposal")))
    if not decision.plan:
        evaluate_plan(turn)
        return
    records.record_promise(turn.session, turn.account, turn.conversation, decision.plan)
    turn.reply("promise_saved", "close")
    turn.end("promise_to_pay")


def decline(turn: Turn) -> None:
    if turn.intent == "cannot_pay":
        hardship(turn)
        return
    if turn.stage == "confirm":
        turn.set_slot("proposal", None)
        turn.move_to("options")
        turn.reply("ask_option")
        return
    declines = int(turn.slot("decline_count") or 0) + 1
    turn.set_slot("decline_count", declines)
    if declines >= 2:
        turn.reply("no_commitment_close")
        turn.end("no_commitment")
    else:
        turn.reply("consequences", "ask_option")
        turn.move_to("options")


def hardship(turn: Turn) -> None:
    """"I can't pay anything": a deferral where the reason allows it, otherwise the offer of a person."""
    if not turn.conversation.reason_code:
        turn.conversation.reason_code = "other"
        turn.conversation.reason_text = turn.masked_text
    if turn.conversation.reason_code in turn.policy.deferral_reasons:
        latest = turn.today + timedelta(days=turn.policy.deferral_max_days)
        turn.reply("hardship_deferral", "ask_option", date=turn.day(latest), minimum=turn.money(turn.account.minimum_due))
        turn.move_to("options")
    else:
        turn.reply("hardship_person_offer", "ask_hardship_person")
        turn.move_to("hardship")


def answer_hardship_offer(turn: Turn) -> None:
    if turn.intent in ("affirm", "cannot_pay", "request_human"):
        hand_off(turn, "requested_human")
    else:
        turn.reply("no_commitment_close")
        turn.end("no_commitment")


# ---------------------------------------------------------------- at any point


def hand_off(turn: Turn, reason: str) -> None:
    if turn.intent == "self_harm":
        country = turn.account.country if turn.account.country in turn.policy.crisis_lines else "US"
        turn.reply(f"crisis_line_{country}", crisis_line=turn.policy.crisis_lines[country])
    code = REASON_CODES_BY_INTENT.get(turn.intent)
    if code and not turn.conversation.reason_code and turn.conversation.verified:
        turn.conversation.reason_code = code
        turn.conversation.reason_text = turn.masked_text
    flag = FLAGS_BY_HANDOFF_REASON.get(reason)
    if flag and turn.conversation.verified:
        records.set_flag(turn.session, turn.account, flag, "bot", f"verified customer said: {turn.masked_text}")
    matched = turn.risk_phrase
    phrase = f"{matched.get('value')} ({matched.get('role')})" if matched and not turn.confirmed_intent else ""
    records.create_handoff(turn.session, turn.account, turn.conversation, reason, turn.masked_text, phrase)
    turn.set_slot("stage", "handoff")
    turn.reply("handoff_voice" if turn.channel == "voice" else "handoff_sms")


CEASE_ROLES = ("cease_all", "cease_calls")


def opt_out(turn: Turn) -> None:
    """Honoured from whoever answers, verified or not: it only restricts what we do."""
    reach = record_cease_request(turn)
    turn.reply("opt_out_confirmed_" + ("all" if len(reach) > 1 else reach[0]))
    turn.end("opted_out")


def record_cease_request(turn: Turn) -> tuple[str, ...]:
    """Opt the customer out of the channels the request reaches; "stop contacting me" also sets `cease`."""
    role = next((p["role"] for p in turn.risk_phrases if p.get("role") in CEASE_ROLES), None)
    reach = opt_out_reach(turn.text, role, turn.channel)
    for channel in reach:
        records.record_opt_out(turn.session, turn.account, channel, turn.conversation.id)
    if len(reach) > 1:
        records.set_flag(turn.session, turn.account, "cease", "customer", f"asked to stop all contact: {turn.masked_text}")
    return reach


def already_paid(turn: Turn) -> None:
    if not turn.conversation.verified:
        verify_first(turn, "already_paid")
        return
    paid_on = turn.entity_date()
    lowered = turn.text.lower()
    method = next((m for word, m in PAYMENT_METHODS.items() if word in lowered), None)
    if not paid_on and not method and turn.stage != "paid_details":
        turn.move_to("paid_details")
        turn.reply("ask_payment_details")
        return
    note = f"Customer says already paid; date: {paid_on or 'not given'}; method: {method or 'not given'}; said: {turn.masked_text}"
    turn.conversation.reason_code = "already_paid"
    turn.conversation.reason_text = turn.masked_text
    days = turn.policy.verify_payment_after_days
    records.create_follow_up(turn.session, turn.account, turn.conversation.id, "verify_payment", turn.today + timedelta(days=days), note)
    turn.reply("already_paid", "close", days=days)
    turn.end("already_paid")


def callback(turn: Turn) -> None:
    if turn.stage != "callback" and not TIME_WORDS.search(turn.text) and not turn.entity_date():
        turn.move_to("callback")
        turn.reply("ask_callback_time")
        return
    named_day = turn.entity_date()
    now = datetime.now(ZoneInfo(turn.account.timezone))
    when, moment = callback_moment(turn.text, named_day if named_day and named_day >= now.date() else None, now)
    turn.conversation.callback_note = turn.masked_text
    turn.conversation.callback_date = when
    # Without a moment (no time named), the window's opening that day.
    records.create_follow_up(turn.session, turn.account, turn.conversation.id, "callback", when, turn.masked_text, due_at=moment)
    turn.reply("callback_noted")
    turn.end("callback_requested")


def wrong_number(turn: Turn) -> None:
    records.set_flag(turn.session, turn.account, "wrong_number", "bot", f"whoever answered said: {turn.masked_text}")
    turn.reply("wrong_number")
    turn.end("wrong_number")


def third_party(turn: Turn) -> None:
    turn.reply("third_party")
    turn.end("third_party")


def answer_question(turn: Turn) -> None:
    account = turn.account
    if turn.intent == "ask_how_to_pay" and not turn.conversation.verified:
        verify_first(turn, "ask_how_to_pay")
        return
    if turn.intent == "ask_who":
        turn.reply("answer_who")
    elif turn.intent == "ask_how_to_pay":
        turn.reply("answer_how_to_pay")
    elif turn.conversation.verified:
        turn.reply("answer_purpose_verified", last4=account.card_last4, days=account.days_past_due)
    else:
        turn.reply("answer_purpose_unverified")
    if turn.stage == "opening":
        turn.move_to("right_party")
    prompt_for_stage(turn)


def repeat_last(turn: Turn) -> None:
    """Say again what the bot said since the customer's previous message."""
    said = []
    user_turns = 0
    for event in reversed(turn.tracker.events):
        if event.get("event") == "user":
            user_turns += 1
            if user_turns == 2:
                break
        elif event.get("event") == "bot" and user_turns == 1 and event.get("text"):
            said.insert(0, event["text"])
    if said:
        for text in said:
            turn.dispatcher.utter_message(text=text)
    else:
        prompt_for_stage(turn)


def acknowledge(turn: Turn) -> None:
    if turn.stage == "opening":
        open_conversation(turn)
    else:
        prompt_for_stage(turn)


def goodbye(turn: Turn) -> None:
    turn.reply("goodbye")
    turn.end("no_commitment")


def not_understood(turn: Turn) -> None:
    """Free-text stages take any answer; elsewhere a second miss in a row goes to a person."""
    free_text_steps: dict[str, Callable[[Turn], None]] = {
        "opening": open_conversation,
        "callback": callback,
        "verify": verify_identity,
        "reason": record_reason,
        "paid_details": already_paid,
    }
    off_topic = turn.intent == "out_of_scope"
    if turn.stage in free_text_steps and (turn.stage == "opening" or not off_topic):
        free_text_steps[turn.stage](turn)
        return
    misunderstood(turn)


# What a high-stakes reading does once the customer confirms it (see ask_to_confirm).
CONFIRMED_STEPS: dict[str, Callable[[Turn], None]] = {
    "legal": lambda turn: hand_off(turn, "legal"),
    "fraud": lambda turn: hand_off(turn, "fraud"),
    "dispute": lambda turn: hand_off(turn, "dispute"),
    "deceased": lambda turn: hand_off(turn, "deceased"),
    "refuse_to_pay": lambda turn: hand_off(turn, "refuses_to_pay"),
    "already_paid": already_paid,
    "wrong_number": wrong_number,
    "third_party": third_party,
}
# Intents a customer's answer to "May I speak with <name>?" may carry when they answer with their name.
NAME_ANSWER_INTENTS = {"affirm", "greet", "inform", "ask_who", "ask_purpose", "repeat", "out_of_scope", "nlu_fallback", "thank"}


# ---------------------------------------------------------------- Rasa actions


class KindlyAction(Action, ABC):
    """Loads the turn, runs one step, saves the conversation and returns the slot events."""

    action_name = ""

    def name(self) -> str:
        return self.action_name

    @abstractmethod
    def step(self, turn: Turn) -> None:
        ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        # The database work blocks: it runs off the action server's event loop.
        return await asyncio.to_thread(self.run_step, dispatcher, tracker)

    def run_step(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
        with session_scope() as session:
            conversation = session.get(Conversation, tracker.get_slot("conversation_id") or "")
            if conversation is None:
                return []
            account = session.get(Account, conversation.account_id)
            turn = Turn(dispatcher, tracker, session, account, conversation)
            if conversation.ended_at is not None:
                turn.reply("conversation_closed")
                return []
            turn.set_slot("fallback_streak", 0)
            step = reroute(turn, self.step)
            if step is not opt_out and any(p.get("role") in CEASE_ROLES for p in turn.risk_phrases):
                record_cease_request(turn)  # "stop calling me, I'm filing a complaint": both are honoured
            step(turn)
            conversation.last_activity_at = records.utcnow()
            # Every step ends the bot's turn (the "listen after" rules say the same); naming it here spares
            # the engine a policy prediction per turn.
            return turn.events + [FollowupAction("action_listen")]


def kindly_action(action_name: str, step: Callable[[Turn], None]) -> type:
    return type(action_name, (KindlyAction,), {"action_name": action_name, "step": staticmethod(step)})


ActionOpenConversation = kindly_action("action_open_conversation", open_conversation)
ActionConfirmRightParty = kindly_action("action_confirm_right_party", confirm_right_party)
ActionVerifyIdentity = kindly_action("action_verify_identity", verify_identity)
ActionRecordReason = kindly_action("action_record_reason", record_reason)
ActionEvaluatePlan = kindly_action("action_evaluate_plan", evaluate_plan)
ActionConfirmPlan = kindly_action("action_confirm_plan", confirm_plan)
ActionDecline = kindly_action("action_decline", decline)
ActionHandoff = kindly_action("action_handoff", lambda turn: hand_off(turn, HANDOFF_REASONS[turn.intent]))
ActionOptOut = kindly_action("action_opt_out", opt_out)
ActionAlreadyPaid = kindly_action("action_already_paid", already_paid)
ActionCallback = kindly_action("action_callback", callback)
ActionWrongNumber = kindly_action("action_wrong_number", wrong_number)
ActionThirdParty = kindly_action("action_third_party", third_party)
ActionAnswerQuestion = kindly_action("action_answer_question", answer_question)
ActionRepeat = kindly_action("action_repeat", repeat_last)
ActionAcknowledge = kindly_action("action_acknowledge", acknowledge)
ActionGoodbye = kindly_action("action_goodbye", goodbye)
ActionNotUnderstood = kindly_action("action_not_understood", not_understood)
ActionSettleClarification = kindly_action("action_settle_clarification", settle_clarification)
ActionPromiseReference = kindly_action("action_promise_reference", promise_reference)
ActionKeepPlan = kindly_action("action_keep_plan", keep_plan)
ActionChangePlan = kindly_action("action_change_plan", change_plan)
ActionHardship = kindly_action("action_hardship", hardship)
ActionAnswerHardshipOffer = kindly_action("action_answer_hardship_offer", answer_hardship_offer)


class ActionSessionStart(Action):
    """Starts a session from the metadata the gateway attaches: the conversation it belongs to."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        return await asyncio.to_thread(self.start, tracker)

    def start(self, tracker: Tracker) -> list:
        metadata = tracker.get_slot("session_started_metadata") or {}
        events: list = [SessionStarted()]
        conversation_id = metadata.get("conversation_id")
        with session_scope() as session:
            conversation = session.get(Conversation, conversation_id or "")
            if conversation is not None:
                events += [
                    SlotSet("conversation_id", conversation.id),
                    SlotSet("language", conversation.language),
                    SlotSet("channel", conversation.channel),
                    SlotSet("stage", conversation.stage),
                    SlotSet("verified", conversation.verified),
                ]
        return events + [ActionExecuted("action_listen")]
