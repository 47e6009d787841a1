"""`make chat ACCOUNT=<external_id>`: hold the whole conversation in the terminal as that account's customer."""
import os
import sys

from sqlalchemy import select

from channels.conversation import START_TEXT, send_message, start_conversation
from kindly.db import session_scope
from kindly.migrate import upgrade
from kindly.models import Account
from scripts import seed_demo, services

ENGINE_PORT = int(os.environ.get("RASA_PORT", "5005"))
ACTION_PORT = int(os.environ.get("ACTION_PORT", "5055"))


def ensure_services() -> list:
    """Reuse a running `make run`; otherwise start the engine and the action server for this chat."""
    if services.is_up(f"http://127.0.0.1:{ENGINE_PORT}/") and services.is_up(f"http://127.0.0.1:{ACTION_PORT}/health"):
        return []
    print("starting the engine and the action server (about half a minute)...", flush=True)
    env = services.base_env()
    logs = services.ROOT / "var" / "log"
    actions = services.start_action_server(ACTION_PORT, env, logs / "actions.log")
    engine = services.start_engine(ENGINE_PORT, ACTION_PORT, env, logs / "engine.log")
    services.wait_until_up(f"http://127.0.0.1:{ACTION_PORT}/health", actions)
    services.wait_until_up(f"http://127.0.0.1:{ENGINE_PORT}/", engine, timeout=300)
    return [engine, actions]


def main(external_id: str) -> None:
    upgrade()
    seed_demo.seed()
    with session_scope() as session:
        account = session.scalar(select(Account).where(Account.external_id == external_id))
        if account is None:
            sys.exit(f"no account {external_id!r}.\n{seed_demo.describe()}")
        account_id, name, language = account.id, account.name, account.language
    started = ensure_services()
    try:
        conversation_id = start_conversation(account_id, channel="sms", direction="outbound")
        print(f"You are {name} ({external_id}, {language}). Type your replies; Ctrl-D to leave.\n")
        reply = send_message(conversation_id, START_TEXT)
        while True:
            for message in reply.messages:
                print(f"bot> {message}")
            if reply.ended:
                print(f"[conversation ended: {reply.disposition}]")
                break
            try:
                text = input("you> ")
            except EOFError:
                break
            reply = send_message(conversation_id, text)
    finally:
        services.stop(*started)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "DEMO-EN-1")
