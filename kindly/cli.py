"""The collections manager's command line: `kindly import FILE`, `kindly campaign create|start|pause|resume|status`.

Run it as `python -m kindly ...` (or `scripts/kindly ...`, which picks the app venv)."""
import argparse
import json
import os
import sys
from datetime import datetime
from decimal import Decimal
from typing import Optional

from tqdm import tqdm


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def import_command(args: argparse.Namespace) -> int:
    from kindly.importer import ImportRefused, run_import

    if args.payments:
        return payments_command(args)
    bars: list[tqdm] = []

    def on_total(total: int) -> None:
        bars.append(tqdm(total=total, unit=" rows", file=sys.stderr, disable=args.quiet, dynamic_ncols=True))

    try:
        report = run_import(args.file, actor="cli", workers=args.workers, progress=lambda n: bars[0].update(n), on_total=on_total)
    except (ImportRefused, FileNotFoundError) as error:
        print(f"kindly import: {error}", file=sys.stderr)
        return 2
    finally:
        for bar in bars:
            bar.close()
    if args.json:
        _print_json(report)
        return 0
    print(f"{report['file']} ({report['encoding']}): {report['rows']} rows")
    for name in ("accepted", "created", "updated", "unchanged", "rejected", "duplicates_merged"):
        print(f"  {name:18} {report[name]}")
    print("  segments           " + ", ".join(f"{k} {v}" for k, v in report["segments"].items()))
    if report["ignored_columns"]:
        print("  ignored columns    " + ", ".join(report["ignored_columns"]))
    for rejection in report["rejections"][: args.show]:
        print(f"  row {rejection['row']}: {rejection['field']}: {rejection['reason']}")
    if len(report["rejections"]) > args.show:
        print(f"  ... {len(report['rejections']) - args.show} more (--json shows them all)")
    for shared in report["shared_phones"][: args.show]:
        rule = "one contact per step" if shared["same_name"] else "held for review (different names)"
        print(f"  phone {shared['phone']} shared by {', '.join(shared['external_ids'])}: {rule}")
    print(f"  import id          {report['id']}")
    return 0


def payments_command(args: argparse.Namespace) -> int:
    """`kindly import --payments FILE`: the bank's payments feed (kindly/payments.py)."""
    from kindly.importer import ImportRefused
    from kindly.payments import import_payments_file

    try:
        report = import_payments_file(args.file)
    except (ImportRefused, FileNotFoundError) as error:
        print(f"kindly import --payments: {error}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(report)
        return 0
    print(f"{report['file']} ({report['encoding']}): {report['rows']} payments")
    print(f"  {'recorded':18} {report['recorded']}\n  {'duplicates':18} {report['duplicates']}\n  {'rejected':18} {len(report['rejected'])}")
    for rejection in report["rejected"][: args.show]:
        print(f"  row {rejection['row']}: {rejection['field']}: {rejection['reason']}")
    if len(report["rejected"]) > args.show:
        print(f"  ... {len(report['rejected']) - args.show} more (--json shows them all)")
    return 0


def _when(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    from kindly.models import as_utc

    return as_utc(datetime.fromisoformat(text))


def campaign_command(args: argparse.Namespace) -> int:
    from kindly import campaigns
    from kindly.db import session_scope

    try:
        if args.action == "create":
            with session_scope() as session:
                campaign = campaigns.create_campaign(
                    session, name=args.name, segment=args.segment, filter=json.loads(args.filter or "{}"),
                    plan=campaigns.parse_plan(args.plan), starts_at=_when(args.starts_at),
                    calls_per_second=Decimal(args.calls_per_second), texts_per_second=Decimal(args.texts_per_second),
                )
                campaign_id = campaign.id
        else:
            campaign_id = args.campaign
            actions = {"start": campaigns.start, "pause": campaigns.pause, "resume": campaigns.resume}
            if args.action in actions:
                actions[args.action](campaign_id)
    except (campaigns.CampaignError, ValueError) as error:
        print(f"kindly campaign {args.action}: {error}", file=sys.stderr)
        return 2
    with session_scope() as session:
        _print_json(campaigns.progress(session, campaign_id))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kindly", description="Kindly for collections managers.")
    commands = top.add_subparsers(dest="command", required=True)

    imports = commands.add_parser("import", help="import and clean an account list (CSV or XLSX)")
    imports.add_argument("file")
    imports.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes that clean rows (default: one per core)")
    imports.add_argument("--json", action="store_true", help="print the whole report as JSON")
    imports.add_argument("--show", type=int, default=20, help="rejections listed (default 20)")
    imports.add_argument("--quiet", action="store_true", help="no progress bar")
    imports.add_argument("--payments", action="store_true",
                         help="FILE is the payments feed: account_id or external_id, amount, paid_on, reference, currency (optional)")
    imports.set_defaults(run=import_command)

    campaign = commands.add_parser("campaign", help="create, start, pause, resume a campaign, or show its progress")
    actions = campaign.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create")
    create.add_argument("name")
    create.add_argument("--segment", choices=("early", "late", "flagged"))
    create.add_argument("--filter", help='JSON, e.g. {"country": "CN", "min_days_past_due": 10}')
    create.add_argument("--plan", default="sms,voice+24h", help="steps: channel[+Nh][xR], e.g. 'sms,voice+24hx2' (default sms,voice+24h)")
    create.add_argument("--starts-at", help="ISO time (UTC unless it says); default: when started")
    create.add_argument("--calls-per-second", default="1")
    create.add_argument("--texts-per-second", default="1")
    for name in ("start", "pause", "resume", "status"):
        action = actions.add_parser(name)
        action.add_argument("campaign", type=int)
    campaign.set_defaults(run=campaign_command)
    return top


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)
