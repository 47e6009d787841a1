"""Issue 6 end to end, over signed Twilio webhooks: the bot remembers the account, never acts on a guess, and
loses nothing a customer says. The customer lines are new phrasings, not copied from data/."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from kindly.db import session_scope
from kindly.models import AuditLog
from tests.conftest import ZH_ACCOUNT
from tests.e2e.helpers import DEBT_WORDS, new_account
from tests.e2e.test_twilio import daytime_account, sim
from tests.e2e.twilio_peer import Call, replies, sms, spoken

LANG = {"en": {}, "zh": ZH_ACCOUNT}
ITS_ME = {"en": "yep that's me", "zh": "嗯，是我本人"}
DOB = {"en": "march 5 1985", "zh": "1988年2月3日"}
WRONG_DOB = {"en": ["june 1 1990", "02/02/1977", "1969-12-31"], "zh": ["1990年6月1日", "七七年二月二号", "19691231"]}
YES = {"en": "yes please", "zh": "好的可以"}
CLARIFY = {"en": "Just so I get this right", "zh": "跟您确认一下"}


def text(phone: str, body: str) -> str:
    """One SMS from the customer; the bot's replies as one string."""
    return " ".join(replies(sms(phone, body)))


def verified_by_sms(api, language: str, **overrides) -> tuple[dict, str]:
    account = new_account(api, **{**LANG[language], **overrides})
    text(account["phone"], "hi")
    text(account["phone"], ITS_ME[language])
    return account, text(account["phone"], DOB[language])


def confirm_if_asked(phone: str, said: str, language: str) -> str:
    """A reading below its threshold is confirmed first; the customer says yes."""
    return text(phone, YES[language]) if CLARIFY[language] in said else said


def account_state(api, account: dict) -> dict:
    return api.get(f"/api/accounts/{account['id']}").json()


def handoffs(api, account: dict) -> list[dict]:
    return api.get("/api/handoffs", params={"account_id": account["id"]}).json()


def no_flags(api, account: dict) -> bool:
    return not any(account_state(api, account)["flags"].values())


def assert_nothing_disclosed(said: str, account: dict) -> None:
    for word in DEBT_WORDS + [account["balance"], account["minimum_due"], account["card_last4"]]:
        assert word.lower() not in said.lower(), f"{word!r} said before verification: {said}"


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize("language, lines", [
    ("en", {"reason": "totally slipped my mind tbh", "plan": "can i do installments over 6 months",
            "change": "actually can we make it 12 months instead", "keep": "yeah keep it as is"}),
    ("zh", {"reason": "这个月忙忘了", "plan": "我想分6期",
            "change": "能不能改成分12期", "keep": "不用改，就按原来的"}),
])
def test_a_second_contact_picks_up_the_plan_and_a_change_supersedes_it(api, language, lines):
    account, _ = verified_by_sms(api, language)
    phone = account["phone"]
    text(phone, lines["reason"])
    proposed = text(phone, lines["plan"])
    # No dead end: the bot proposes the first date itself, and a yes accepts it.
    assert ("If another date suits you better" in proposed) if language == "en" else ("换个日期" in proposed)
    text(phone, YES[language])
    [first] = api.get("/api/promises", params={"account_id": account["id"]}).json()
    assert first["installments"] == 6 and first["status"] == "open"
    assert date.fromisoformat(first["due_date"]) <= date.today() + timedelta(days=31)

    text(phone, "hello again")
    text(phone, ITS_ME[language])
    reminded = text(phone, DOB[language])
    assert ("You already have a plan" in reminded) if language == "en" else ("您已经登记过" in reminded)
    assert Decimal(first["schedule"][0]["amount"]).to_eng_string().split(".")[0] in reminded.replace(",", "")
    text(phone, lines["change"])
    text(phone, YES[language])
    promises = api.get("/api/promises", params={"account_id": account["id"]}).json()
    assert [p["status"] for p in promises] == ["cancelled", "open"]
    assert promises[0]["superseded_by_id"] == promises[1]["id"] and promises[1]["installments"] == 12

    text(phone, "hi")
    text(phone, ITS_ME[language])
    text(phone, DOB[language])
    text(phone, lines["keep"])
    promises = api.get("/api/promises", params={"account_id": account["id"]}).json()
    assert [p["status"] for p in promises] == ["cancelled", "open"]  # kept, not stacked


@pytest.mark.parametrize("language, line", [
    ("en", "I already promised 400 on the 11th on the phone"),
    ("zh", "我上周电话里已经答应过11号还400了"),
])
def test_a_promise_mentioned_is_not_a_payment(api, language, line):
    account, _ = verified_by_sms(api, language)
    text(account["phone"], "i forgot" if language == "en" else "忘了")
    said = text(account["phone"], line)
    record = api.get("/api/conversations", params={"account_id": account["id"]}).json()[-1]
    assert record["disposition"] != "already_paid" and record["reason_code"] != "already_paid"
    assert ("can't find a plan" in said) if language == "en" else ("没有查到您的还款计划" in said)


@pytest.mark.parametrize("language, line", [
    ("en", "somebody stole my card details and ran up charges i never made"),
    ("zh", "我的卡被人盗刷了，这些消费都不是我本人的"),
])
def test_fraud_from_a_verified_customer_flags_the_account_and_stops_contact(api, language, line):
    account, _ = verified_by_sms(api, language, timezone="America/New_York" if language == "en" else "Asia/Shanghai")
    confirm_if_asked(account["phone"], text(account["phone"], line), language)
    [handoff] = handoffs(api, account)
    assert handoff["reason"] == "fraud"
    assert account_state(api, account)["flags"]["fraud"] is True
    history = account_state(api, account)["flag_history"]
    assert history[0]["set_by"] == "bot" and history[0]["cleared_at"] is None
    api.post(f"/api/handoffs/{handoff['id']}/resolve", json={"disposition": "handoff", "note": "fraud team", "resume_bot": True})
    refused = api.post("/api/contacts", json={"account_id": account["id"], "channel": "sms"})
    assert refused.status_code == 409 and refused.json()["detail"]["rule"] in ("fraud", "calling_window")
    # An agent clears it, with who and why.
    cleared = api.post(f"/api/accounts/{account['id']}/flags/fraud/clear", json={"by": "dana", "reason": "claim withdrawn"})
    assert cleared.status_code == 200 and cleared.json()["flags"]["fraud"] is False
    assert cleared.json()["flag_history"][0]["cleared_by"] == "agent:dana"
    again = api.post(f"/api/accounts/{account['id']}/flags/fraud/clear", json={"by": "dana", "reason": "twice"})
    assert again.status_code == 409


@pytest.mark.parametrize("language, line, reason", [
    ("en", "my attorney is handling this, talk to him", "legal"),
    ("en", "someone opened this card in my name, it's identity theft", "fraud"),
    ("en", "this is his wife, he passed away in october", "deceased"),
    ("en", "I want to file a formal complaint about you people", "complaint"),
    ("zh", "这事我已经交给律师了，你们找他", "legal"),
    ("zh", "这张卡是别人冒用我身份证办的", "fraud"),
    ("zh", "我是他太太，他上个月已经去世了", "deceased"),
    ("zh", "我要投诉你们", "complaint"),
])
def test_before_verification_statements_are_handed_off_without_flags(api, language, line, reason):
    account = new_account(api, **LANG[language])
    opening = text(account["phone"], "hi")
    said = confirm_if_asked(account["phone"], text(account["phone"], line), language)
    [handoff] = handoffs(api, account)
    assert handoff["reason"] == reason and "NOT verified" in handoff["summary"]
    assert line[:20] in handoff["summary"] or line[:8] in handoff["summary"]
    assert no_flags(api, account)
    assert_nothing_disclosed(opening + said, account)


@pytest.mark.parametrize("language, line", [
    ("en", "hi, I got a message from you guys?"),
    ("en", "got a text from this number about my card, what's going on"),
    ("zh", "你好，我收到你们发的短信了"),
    ("zh", "刚才收到你们的信息，说我的卡怎么了？"),
])
def test_an_opening_that_only_says_we_wrote_is_not_acted_on(api, language, line):
    account = new_account(api, **LANG[language])
    said = text(account["phone"], line)
    assert handoffs(api, account) == [] and no_flags(api, account)
    assert_nothing_disclosed(said, account)
    text(account["phone"], "no" if language == "en" else "不是")
    assert handoffs(api, account) == [] or handoffs(api, account)[0]["reason"] not in ("legal", "fraud")


@pytest.mark.parametrize("language, name, line", [
    ("en", "Michael Turner", "Michael"),
    ("en", "Michael Turner", "Michael speaking"),
    ("zh", "王丽", "王丽就是我"),
    ("zh", "王丽", "王女士是我"),
])
def test_the_holder_answering_with_their_name_is_asked_to_verify(api, language, name, line):
    account = new_account(api, **{**LANG[language], "name": name})
    text(account["phone"], "hello")
    said = text(account["phone"], line)
    assert ("date of birth" in said) if language == "en" else ("出生日期" in said)


@pytest.mark.parametrize("language, noise", [("en", ["!!!!", "@@#$%"]), ("zh", ["啊啊啊啊啊", "。。。。"]), ("en", ["asdfgh", "jkjkjkjk"])])
def test_nonsense_is_never_an_answer_and_twice_reaches_a_person(api, language, noise):
    account, _ = verified_by_sms(api, language)
    first = text(account["phone"], noise[0])
    assert ("didn't quite get that" in first) if language == "en" else ("没太明白" in first)
    text(account["phone"], noise[1])
    [handoff] = handoffs(api, account)
    assert handoff["reason"] == "bot_failure"
    record = api.get("/api/conversations", params={"account_id": account["id"]}).json()[-1]
    assert record["reason_code"] is None  # nonsense was not taken as the reason


# ---------------------------------------------------------------- safety


@pytest.mark.parametrize("language, line, line_number", [
    ("en", "I lost my job and honestly some days I don't want to live anymore", "988"),
    ("zh", "工作丢了，说实话有时候真的不想活了", "12356"),
])
def test_self_harm_inside_a_reason_gets_the_crisis_line_not_options(api, language, line, line_number):
    account, _ = verified_by_sms(api, language)
    said = text(account["phone"], line)
    assert line_number in said
    assert "monthly payments" not in said and "分3期" not in said
    [handoff] = handoffs(api, account)
    assert handoff["reason"] == "vulnerable" and "Safety phrase matched" in handoff["summary"]


def test_a_question_about_what_to_do_is_not_vulnerable(api):
    account, _ = verified_by_sms(api, "zh")
    text(account["phone"], "那我现在该怎么办？")
    assert all(h["reason"] != "vulnerable" for h in handoffs(api, account))


@pytest.mark.parametrize("language, line", [("en", "I want to make a complaint about how I've been treated"), ("zh", "我要投诉你们")])
def test_a_complaint_is_handed_off_as_a_complaint(api, language, line):
    account, _ = verified_by_sms(api, language)
    text(account["phone"], line)
    assert [h["reason"] for h in handoffs(api, account)] == ["complaint"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_flagged_account_is_verified_then_handed_off_as_flagged(api, language):
    account = new_account(api, **{**LANG[language], "segment": "flagged"})
    text(account["phone"], "hi")
    asked = text(account["phone"], ITS_ME[language])
    assert handoffs(api, account) == [] and (("date of birth" in asked) if language == "en" else ("出生日期" in asked))
    text(account["phone"], DOB[language])
    assert [h["reason"] for h in handoffs(api, account)] == ["flagged_account"]


@pytest.mark.parametrize("language, line", [("en", "honestly I can't pay anything at all right now"), ("zh", "我现在一分钱都还不上")])
def test_cant_pay_anything_leads_to_hardship_not_consequences(api, language, line):
    account, _ = verified_by_sms(api, language)
    text(account["phone"], "i forgot" if language == "en" else "忘了")
    said = text(account["phone"], line)
    assert "credit bureaus" not in said and "征信" not in said
    assert ("colleague" in said) if language == "en" else ("人工" in said)
    text(account["phone"], YES[language])
    assert [h["reason"] for h in handoffs(api, account)] == ["requested_human"]


# ---------------------------------------------------------------- the lockout


def test_the_lockout_holds_across_three_conversations_on_two_channels(api):
    account = new_account(api)
    phone = account["phone"]
    text(phone, "hi")
    text(phone, "yes")
    assert "doesn't match" in text(phone, WRONG_DOB["en"][0])
    text(phone, "ok bye")  # the first conversation ends with one failed attempt
    second = Call(phone)
    second.answer()
    second.say("yes it's me")
    assert "doesn't match" in spoken(second.say(WRONG_DOB["en"][1]))  # the caller hangs up
    third = Call(phone)
    third.answer()
    third.say("speaking")
    locked = third.say(WRONG_DOB["en"][2])
    assert "unable to confirm your identity" in spoken(locked) and locked.find("Hangup") is not None
    [handoff] = handoffs(api, account)
    assert handoff["reason"] == "verification_locked"
    with session_scope() as session:
        assert session.scalar(select(AuditLog).where(AuditLog.action == "verification_locked", AuditLog.entity_id == str(account["id"])))
    conversations = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert [c["channel"] for c in conversations] == ["sms", "voice", "voice"] and not any(c["verified"] for c in conversations)
    # Once an agent gives the thread back, a fourth conversation inside the window can't even try the right date.
    api.post(f"/api/handoffs/{handoff['id']}/resolve", json={"disposition": "verification_failed", "note": "", "resume_bot": True})
    text(phone, "hello?")
    said = text(phone, "yes")
    assert "can't verify your identity right now" in said and "date of birth" not in said
    assert "can't verify your identity right now" in text(phone, DOB["en"])  # even the right date, in a new conversation
    assert not any(c["verified"] for c in api.get("/api/conversations", params={"account_id": account["id"]}).json())


# ---------------------------------------------------------------- one thread per customer


def test_replies_to_an_agent_after_a_voice_handoff_reach_the_agent(api):
    account = daytime_account(api)
    call = Call(account["phone"])
    call.answer()
    call.say("get me a real person please")
    [handoff] = handoffs(api, account)
    sent = api.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "Hi, it's Dana. When can I call you?"})
    assert sent.status_code == 201, sent.text
    assert replies(sms(account["phone"], "after 5 works, thanks")) == []  # the bot stays out
    detail = api.get(f"/api/handoffs/{handoff['id']}").json()
    assert [(m["role"], m["text"]) for m in detail["messages"]][-2:] == [
        ("agent", "Hi, it's Dana. When can I call you?"), ("user", "after 5 works, thanks")]
    # Resolved without giving the thread back to the bot: the next message reopens it, visibly.
    api.post(f"/api/handoffs/{handoff['id']}/resolve", json={"disposition": "callback_requested", "note": "", "resume_bot": False})
    assert replies(sms(account["phone"], "actually make it 6")) == []
    waiting = api.get("/api/handoffs", params={"status": "waiting"}).json()
    assert handoff["id"] in [h["id"] for h in waiting]
    assert api.get(f"/api/handoffs/{handoff['id']}").json()["messages"][-1]["text"] == "actually make it 6"
    notices = [m for m in sim("GET", "/sim/messages").json() if m["to"] == "+15005550100" and f"#{handoff['id']}" in m["body"]]
    assert len(notices) >= 1
    # A call while a person holds the thread goes to the person.
    again = Call(account["phone"])
    assert again.answer().find("Dial") is not None


def test_a_text_after_opting_out_reaches_a_person_and_gets_no_bot_answer(api):
    account = new_account(api)
    text(account["phone"], "STOP")
    assert replies(sms(account["phone"], "why did you text me in the first place")) == []
    [handoff] = handoffs(api, account)
    detail = api.get(f"/api/handoffs/{handoff['id']}").json()
    assert detail["messages"][-1]["text"] == "why did you text me in the first place"


# ---------------------------------------------------------------- opt-outs and wording


@pytest.mark.parametrize("line, stopped", [
    ("please stop calling me", ["voice"]),
    ("stop contacting me, all of it", ["sms", "voice"]),
    ("别再给我打电话了", ["voice"]),
    ("不要再联系我了", ["sms", "voice"]),
])
def test_stop_calling_stops_calls_and_stop_contacting_stops_everything(api, line, stopped):
    account = daytime_account(api, "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in line) else "en")
    text(account["phone"], line)  # unverified: honoured from whoever answers
    state = account_state(api, account)
    assert sorted(o["channel"] for o in state["opt_outs"]) == stopped
    assert state["flags"]["cease"] is (len(stopped) == 2)
    refused = api.post("/api/contacts", json={"account_id": account["id"], "channel": "voice"})
    assert refused.status_code == 409 and refused.json()["detail"]["rule"] in ("opted_out", "cease")


def test_an_inbound_caller_is_thanked_for_calling(api):
    account = new_account(api)
    root = Call(account["phone"]).answer()
    assert "Thanks for calling Harbor Bank" in spoken(root) and "May I speak" not in spoken(root)


@pytest.mark.parametrize("language, stop", [("en", "Reply STOP to opt out."), ("zh", "回复退订可退订。")])
def test_the_opening_sms_says_how_to_opt_out_and_never_mentions_a_call(api, language, stop):
    account = daytime_account(api, language)
    contact = api.post("/api/contacts", json={"account_id": account["id"], "channel": "sms"})
    assert contact.status_code == 201, contact.text
    [message] = [m for m in sim("GET", "/sim/messages").json() if m["to"] == account["phone"]]
    assert message["body"].endswith(stop)
    assert "call" not in message["body"].lower() and "来电" not in message["body"]
    if language == "zh":
        assert "海港银行" in message["body"]
