"""Custom actions. Rasa's rules pick the action from the stage and the intent; each action does one step of
PRODUCT.md section 2 and writes its outcome to the database through kindly.records."""
import re
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Any, Callable, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, FollowupAction, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import Turn
from kindly import records
from kindly.db import session_scope
from kindly.models import Account, Conversation
from kindly.plans import Decision, Proposal, evaluate, installment_total, split_evenly
from kindly.privacy import dob_matches

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
    keys = [*lead, "ask_dob"] + (["ask_dob_keypad"] if turn.channel == "voice" else [])
    turn.reply(*keys)


def reason_prompt(turn: Turn) -> str:
    return "ask_reason_late" if turn.account.segment == "late" else "ask_reason"


# ---------------------------------------------------------------- opening, right party, verification


def open_conversation(turn: Turn) -> None:
    keys = ["opening_intro"] + (["recording_notice"] if turn.channel == "voice" else []) + ["ask_for_customer"]
    turn.reply(*keys)
    turn.move_to("right_party")


def confirm_right_party(turn: Turn) -> None:
    turn.move_to("verify")
    if turn.entity_date():
        verify_identity(turn)
    else:
        ask_dob(turn)


def verify_identity(turn: Turn) -> None:
    dob = turn.entity_date()
    if dob and dob_matches(dob, turn.account.dob_hmac):
        turn.conversation.verified = True
        turn.set_slot("verified", True)
        disclose(turn)
        return
    if not dob and not DIGITS.search(turn.text) and turn.intent not in ("inform", "nlu_fallback"):
        # Not an attempt at a date ("yes", "hang on"): ask again without using up an attempt.
        ask_dob(turn)
        return
    attempts = int(turn.slot("dob_attempts") or 0) + 1
    turn.set_slot("dob_attempts", attempts)
    records.audit(turn.session, "bot", "verification_failed_attempt", "conversation", turn.conversation.id, attempt=attempts)
    if attempts >= turn.policy.max_verification_attempts:
        turn.reply("verification_failed")
        turn.end("verification_failed")
    else:
        ask_dob(turn, "dob_mismatch" if dob else "dob_not_a_date")


def disclose(turn: Turn) -> None:
    account = turn.account
    turn.reply(
        f"disclosure_{account.country}",
        "account_status",
        last4=account.card_last4,
        days=account.days_past_due,
        balance=turn.money(account.balance),
        minimum=turn.money(account.minimum_due),
    )
    if account.segment == "flagged":
        hand_off(turn, "refuses_to_pay")
        return
    turn.reply(reason_prompt(turn))
    turn.move_to("reason")


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
        "option_full": dict(balance=turn.money(account.balance), days=policy.full_max_days),
        "option_partial": dict(minimum=turn.money(account.minimum_due), date=turn.day(today + timedelta(days=policy.partial_max_days))),
        "option_installments": dict(part=turn.money(six_part)),
    }
    if reason_code in policy.deferral_reasons:
        options["option_deferral"] = dict(date=turn.day(today + timedelta(days=policy.deferral_max_days)))
    # Late accounts hear installments first (PRODUCT.md section 4).
    order = ["option_installments", "option_partial", "option_full"] if account.segment == "late" else ["option_full", "option_partial", "option_installments"]
    order += ["option_deferral"] if "option_deferral" in options else []
    texts = [turn.text_for(key, **options[key]) for key in order]
    turn.say(*([turn.text_for("option_intro")] + texts + [turn.text_for("ask_option")]))
    turn.move_to("options")


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


def evaluate_plan(turn: Turn) -> None:
    proposal = Proposal.from_slot(turn.slot("proposal")).merged(proposal_from_message(turn))
    decision = current_decision(turn, proposal)
    turn.set_slot("proposal", decision.proposal.to_slot())
    account = turn.account
    params = dict(
        minimum=turn.money(account.minimum_due),
        balance=turn.money(account.balance),
        latest=turn.day(latest_date_for(turn, decision.proposal.plan_type)),
        count=decision.proposal.count,
    )
    notes = [f"adj_{a}" if a != "deferral_not_eligible" else a for a in decision.adjustments]
    if decision.plan:
        turn.move_to("confirm")
        if notes:
            turn.reply(*notes, **params)
        read_back(turn, decision)
        return
    turn.move_to("options")
    follow = {
        "amount": "ask_amount",
        "date": "ask_date_installment" if decision.proposal.plan_type == "installment" else "ask_date",
        "count": "ask_count",
        "plan_type": "ask_option",
    }[decision.missing]
    turn.reply(*notes, follow, **params)


def read_back(turn: Turn, decision: Decision) -> None:
    plan = decision.plan
    turn.reply(
        f"readback_{plan.plan_type}",
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


# ---------------------------------------------------------------- at any point


def hand_off(turn: Turn, reason: str) -> None:
    if turn.intent == "self_harm":
        crisis_line = turn.policy.crisis_lines.get(turn.account.country, turn.policy.crisis_lines["US"])
        turn.reply("crisis_line", crisis_line=crisis_line)
    code = REASON_CODES_BY_INTENT.get(turn.intent)
    if code and not turn.conversation.reason_code:
        turn.conversation.reason_code = code
        turn.conversation.reason_text = turn.masked_text
    flag = FLAGS_BY_HANDOFF_REASON.get(reason)
    if flag and turn.conversation.verified:
        records.set_flag(turn.session, turn.account, flag, "bot", f"verified customer said: {turn.masked_text}")
    records.create_handoff(turn.session, turn.account, turn.conversation, reason, turn.masked_text)
    turn.set_slot("stage", "handoff")
    turn.reply("handoff_voice" if turn.channel == "voice" else "handoff_sms")


def opt_out(turn: Turn) -> None:
    records.record_opt_out(turn.session, turn.account, turn.channel, turn.conversation.id)
    turn.reply("opt_out_confirmed", channel_name=turn.text_for(f"channel_{turn.channel}"))
    turn.end("opted_out")


def already_paid(turn: Turn) -> None:
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
    turn.reply("already_paid", "close")
    turn.end("already_paid")


def callback(turn: Turn) -> None:
    if turn.stage != "callback" and not TIME_WORDS.search(turn.text) and not turn.entity_date():
        turn.move_to("callback")
        turn.reply("ask_callback_time")
        return
    when = turn.entity_date() or turn.today + timedelta(days=1)
    turn.conversation.callback_note = turn.masked_text
    turn.conversation.callback_date = when
    records.create_follow_up(turn.session, turn.account, turn.conversation.id, "callback", when, turn.masked_text)
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
    streak = int(turn.slot("fallback_streak") or 0) + 1
    if streak >= 2:
        hand_off(turn, "bot_failure")
        return
    turn.reply("not_understood")
    prompt_for_stage(turn)
    turn.set_slot("fallback_streak", streak)


# ---------------------------------------------------------------- Rasa actions


class KindlyAction(Action, ABC):
    """Loads the turn, runs one step, saves the conversation and returns the slot events."""

    action_name = ""

    def name(self) -> str:
        return self.action_name

    @abstractmethod
    def step(self, turn: Turn) -> None:
        ...

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
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
            self.step(turn)
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


class ActionSessionStart(Action):
    """Starts a session from the metadata the gateway attaches: the conversation it belongs to."""

    def name(self) -> str:
        return "action_session_start"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
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
                ]
        return events + [ActionExecuted("action_listen")]
