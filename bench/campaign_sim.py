"""Campaign simulation: 30 days of weekly campaigns in simulated time, with the real campaign dispatcher and
the real contact policy (kindly/campaigns.py, kindly/contact_policy.py) on a throwaway SQLite database, and
Twilio and the customers faked in process. Customers answer or not, reach voicemail, talk, pass
verification, promise, pay or break the promise, reply to texts and opt out, at random (seeded).

    .venv-app/bin/python bench/campaign_sim.py --accounts 100000
    .venv-app/bin/python bench/campaign_sim.py --accounts 5000 --days 30

Prints the contacts, right-party contacts, promises kept and broken, then the violations the separate
checker (bench/contact_log_checker.py, which shares no code with the policy) finds in the contact log.
"""
import argparse
import heapq
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # a Monday; the US changes to summer time on 8 March
TICK = timedelta(minutes=15)
TALK = timedelta(seconds=45)  # an answered call: what the customer says (an opt-out, a promise) comes this long after it starts
PLAN = "sms,voice+3hx2,voice+24hx1"
PLACES = [("US", "America/Denver", "+1303{n:07d}"), ("US", "America/New_York", "+1212{n:07d}"),
          ("US", "America/Los_Angeles", "+1415{n:07d}"), ("CN", "Asia/Shanghai", "+86138{n:08d}")]


@dataclass
class Customer:
    answers: float  # chance of picking up a call
    voicemail: float  # chance that an unanswered call reaches voicemail
    replies: float  # chance of replying to a text
    right_party: float
    promises: float
    keeps: float
    opts_out: float


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class SimPacer:
    """The one-token bucket in simulated time: waiting moves the simulated clock on."""

    def __init__(self, clock: Clock):
        self.clock, self.next_slot = clock, {}

    def reserve_slot(self, bucket: str, per_second: float) -> float:
        now = self.clock.now.timestamp()
        slot = max(now, self.next_slot.get(bucket, now))
        self.next_slot[bucket] = slot + 1 / per_second
        return slot - now


class World:
    """The customers and the fake Twilio: what each contact leads to, written where the real channels write it."""

    def __init__(self, clock: Clock, seed: int):
        self.clock, self.rng = clock, random.Random(seed)
        self.customers: dict[int, Customer] = {}
        self.events: list = []  # (time, seq, callable)
        self.seq = itertools.count()
        self.stats = dict(contacts=0, calls=0, texts=0, answered=0, voicemail=0, right_party=0, promises=0, kept=0,
                          broken=0, opt_outs=0, sms_replies=0)
        from kindly.models import ContactAttempt, Conversation

        # Built once, as the dispatcher's are: each contact runs them.
        self.answer_attempt = update(ContactAttempt.__table__).where(ContactAttempt.__table__.c.id == bindparam("attempt_id"))
        self.add_conversation = insert(Conversation.__table__)
        self.note_conversation = update(Conversation.__table__).where(Conversation.__table__.c.id == bindparam("conversation_id"))

    def customer(self, account_id: int) -> Customer:
        if account_id not in self.customers:
            r = self.rng
            self.customers[account_id] = Customer(answers=r.uniform(0.1, 0.6), voicemail=r.uniform(0.2, 0.5),
                                                  replies=r.uniform(0.05, 0.4), right_party=r.uniform(0.7, 0.95),
                                                  promises=r.uniform(0.2, 0.6), keeps=r.uniform(0.3, 0.9),
                                                  opts_out=r.uniform(0.0, 0.08))
        return self.customers[account_id]

    def wait(self, seconds: float) -> None:
        """The dispatcher waiting for its pacer's slot: simulated time goes on, and so do the customers (a reply, a
        payment), written when they happen, as the real channels would, not after the dispatcher's run."""
        self.clock.now += timedelta(seconds=seconds)
        self.run_events(self.clock.now)

    def later(self, delay: timedelta, action) -> None:
        heapq.heappush(self.events, (self.clock.now + delay, next(self.seq), action))

    def next_event(self) -> datetime:
        return self.events[0][0] if self.events else datetime.max.replace(tzinfo=timezone.utc)

    def run_events(self, until: datetime) -> None:
        while self.events and self.events[0][0] <= until:
            at, _, action = heapq.heappop(self.events)
            action(at)

    # ---------------------------------------------------------------- fake Twilio
    # The world writes with plain statements on one connection: it stands for Twilio and the bot, whose own
    # costs are not what the simulation measures.
    def send(self, reserved):
        """Twilio's answer, written on the reserved attempt where channels/outbound.py writes it."""
        from kindly.db import get_engine
        from kindly.models import ContactAttempt

        customer, now = self.customer(reserved.account_id), self.clock.now
        self.stats["contacts"] += 1
        answer = dict(external_ref=f"SIM{reserved.id}", outcome=None, connected=False, conversation_id=None)
        with get_engine().begin() as db:
            if reserved.channel == "sms":
                self.stats["texts"] += 1
                conversation_id = self.new_conversation(db, reserved.account_id, "sms", now)
                answer.update(outcome="sent", connected=True, conversation_id=conversation_id)
                if self.rng.random() < customer.replies:
                    self.later(timedelta(minutes=self.rng.randint(2, 180)), lambda at: self.sms_reply(reserved.account_id, conversation_id, at))
            else:
                self.stats["calls"] += 1
                if self.rng.random() < customer.answers:
                    answer.update(outcome="answered", connected=True)
                    self.stats["answered"] += 1
                    self.conversation(db, reserved.account_id, self.new_conversation(db, reserved.account_id, "voice", now + TALK), now + TALK)
                else:
                    voicemail = self.rng.random() < customer.voicemail
                    self.stats["voicemail"] += voicemail
                    answer["outcome"] = "voicemail" if voicemail else self.rng.choice(["no_answer", "no_answer", "busy", "failed"])
            db.execute(self.answer_attempt, dict(answer, attempt_id=reserved.id))
        for name, value in answer.items():
            setattr(reserved, name, value)
        return reserved

    def sms_reply(self, account_id: int, conversation_id: str, at: datetime) -> None:
        from kindly.db import get_engine

        self.stats["sms_replies"] += 1
        with get_engine().begin() as db:
            self.conversation(db, account_id, conversation_id, at, text="(reply)")

    def new_conversation(self, db, account_id: int, channel: str, at: datetime) -> str:
        from kindly.models import new_id

        conversation_id = new_id()
        db.execute(self.add_conversation, dict(id=conversation_id, account_id=account_id, channel=channel, direction="outbound",
                                                        language="en", stage="opening", verified=False, started_at=at, last_activity_at=at))
        return conversation_id

    def conversation(self, db, account_id: int, conversation_id: str, at: datetime, text: str = "(hello)") -> None:
        """A person on the line or in the thread: opt out, fail the right-party check, or talk (and maybe promise)."""
        from kindly.models import Conversation, OptOut, Promise, PromiseInstallment, TranscriptTurn

        customer = self.customer(account_id)
        db.execute(insert(TranscriptTurn.__table__), dict(conversation_id=conversation_id, role="user", text=text, at=at))
        outcome = dict(last_activity_at=at)
        if self.rng.random() < customer.opts_out:
            channel = db.scalar(select(Conversation.channel).where(Conversation.id == conversation_id))
            if not db.scalar(select(OptOut.id).where(OptOut.account_id == account_id, OptOut.channel == channel)):
                db.execute(insert(OptOut.__table__).values(account_id=account_id, channel=channel, at=at, conversation_id=conversation_id))
                self.stats["opt_outs"] += 1
            outcome["disposition"] = "opted_out"
        elif self.rng.random() >= customer.right_party:
            outcome["disposition"] = "third_party"
        else:
            outcome["verified"] = True
            self.stats["right_party"] += 1
            if self.rng.random() < customer.promises:
                due = (at + timedelta(days=self.rng.randint(2, 10))).date()
                promise_id = db.execute(insert(Promise.__table__).values(
                    account_id=account_id, conversation_id=conversation_id, amount=Decimal("100.00"), currency="USD", due_date=due,
                    plan_type="partial", installments=1, total=Decimal("100.00"), status="open", created_at=at)).inserted_primary_key[0]
                db.execute(insert(PromiseInstallment.__table__).values(promise_id=promise_id, seq=1, due_date=due, amount=Decimal("100.00")))
                outcome["disposition"] = "promise_to_pay"
                self.stats["promises"] += 1
                settle_at = datetime.combine(due + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=12)
                self.later(settle_at - self.clock.now, lambda when: self.settle(promise_id, account_id))
            else:
                outcome["disposition"] = "no_commitment"
        db.execute(self.note_conversation, dict(outcome, conversation_id=conversation_id))

    def settle(self, promise_id: int, account_id: int) -> None:
        """The payments feed, the day after the promised date: kept (the account is paid off) or broken."""
        from kindly.db import get_engine
        from kindly.models import Account, Promise

        kept = self.rng.random() < self.customer(account_id).keeps
        with get_engine().begin() as db:
            db.execute(update(Promise.__table__).where(Promise.id == promise_id).values(status="kept" if kept else "broken"))
            if kept:
                db.execute(update(Account.__table__).where(Account.id == account_id).values(days_past_due=0, balance=Decimal("0.01")))
        self.stats["kept" if kept else "broken"] += 1


def make_accounts(count: int, seed: int) -> None:
    from kindly.db import get_engine
    from kindly.models import Account

    rng, rows = random.Random(seed), []
    for n in range(count):
        country, zone, phone = PLACES[n % len(PLACES)]
        days = rng.randint(1, 120)
        rows.append(dict(external_id=f"SIM{n:07d}", name=f"Customer {n}", phone=phone.format(n=5550000 + n if country == "US" else n),
                         language="zh" if country == "CN" else "en", timezone=zone, country=country,
                         currency="CNY" if country == "CN" else "USD", balance=Decimal("1000.00"), minimum_due=Decimal("50.00"),
                         days_past_due=days, due_date=START.date() - timedelta(days=days), card_last4="0000",
                         dob_hmac="not-used", segment="early" if days <= 30 else "late", created_at=START))
    with get_engine().begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Account.__table__), rows[start:start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--calls-per-second", default="5")
    parser.add_argument("--texts-per-second", default="10")
    args = parser.parse_args()
    # On tmpfs where there is one: the simulation measures the policy and the dispatcher, not the disk's fsync.
    folder = Path(tempfile.mkdtemp(prefix="kindly-campaign-sim-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        simulate(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def simulate(args: argparse.Namespace, folder: Path) -> None:
    url = f"sqlite:///{folder / 'sim.db'}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("KINDLY_BROKER_URL", f"sqla+sqlite:///{folder / 'broker.db'}")

    from kindly import campaigns
    from kindly.db import session_scope
    from kindly.migrate import upgrade
    from kindly.settings import settings

    if settings.database_url != url:  # kindly was imported before DATABASE_URL was set: never write to that database
        sys.exit(f"the simulation would write to {settings.database_url}, not its own {url}")
    upgrade(url)
    wall, cpu = time.perf_counter(), time.process_time()
    make_accounts(args.accounts, args.seed)
    clock = Clock(START)
    world = World(clock, args.seed)
    dispatcher = campaigns.Dispatcher(send=world.send, pacer=SimPacer(clock), clock=clock, worker="sim",
                                      sleep=world.wait)
    running: list[int] = []
    end = START + timedelta(days=args.days)
    day = 0
    while clock.now < end:
        if clock.now.weekday() == 0 and clock.now.hour == 0 and clock.now.minute == 0:
            with session_scope() as session:
                campaign = campaigns.create_campaign(
                    session, f"week of {clock.now:%Y-%m-%d}", filter={"min_days_past_due": 1}, plan=campaigns.parse_plan(PLAN),
                    calls_per_second=Decimal(args.calls_per_second), texts_per_second=Decimal(args.texts_per_second))
                campaign_id = campaign.id
            campaigns.start(campaign_id, now=clock.now, dispatch=False)
            running.append(campaign_id)
        tick_end = clock.now + TICK
        world.run_events(clock.now)
        for campaign_id in running:
            dispatcher.run(campaign_id)
        world.run_events(clock.now)
        # Then the next tick, or, when nothing is due until later (the night in every zone), straight to that;
        # never past a midnight (the day's line, Monday's campaign).
        next_midnight = datetime.combine(clock.now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
        later = [due for due in map(campaigns.next_due, running) if due is not None] + [world.next_event()]
        clock.now = min(max(clock.now, tick_end, min(later)), next_midnight, end)
        if (clock.now - START).days > day:
            day = (clock.now - START).days
            print(f"  day {day:2d}: {world.stats['contacts']:,} contacts so far ({time.perf_counter() - wall:.0f} s)", flush=True)
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu

    from bench.contact_log_checker import check

    with session_scope() as session:
        summaries = [campaigns.progress(session, campaign_id)["progress"] for campaign_id in running]
    refusals: dict[str, int] = {}
    for summary in summaries:
        for rule, n in summary["refusals"].items():
            refusals[rule] = refusals.get(rule, 0) + n
    s = world.stats
    print(f"\n{args.accounts:,} accounts, {args.days} simulated days, {len(running)} weekly campaigns (plan {PLAN}), "
          f"{args.calls_per_second} calls/s and {args.texts_per_second} texts/s; {seconds:.0f} s of real time, {cpu_seconds:.0f} s of CPU")
    print(f"contacts {s['contacts']:,} (calls {s['calls']:,}, texts {s['texts']:,}); calls answered {s['answered']:,}, "
          f"voicemail {s['voicemail']:,}; text replies {s['sms_replies']:,}")
    print(f"right-party contacts {s['right_party']:,}; promises {s['promises']:,}: kept {s['kept']:,}, broken {s['broken']:,}, "
          f"not yet due {s['promises'] - s['kept'] - s['broken']:,}; opt-outs {s['opt_outs']:,}")
    print("campaign steps refused or held, by the rule in force at the last try: "
          + ", ".join(f"{rule} {n:,}" for rule, n in sorted(refusals.items(), key=lambda kv: -kv[1])))
    violations, attempts = check(url)
    print(f"checker (bench/contact_log_checker.py): {attempts:,} attempts, "
          f"{sum(len(v) for v in violations.values())} violations" + "".join(f"\n  {rule}: {len(v)}, e.g. {v[0]}" for rule, v in violations.items()))


if __name__ == "__main__":
    main()
