"""Import benchmark: generate an account list, then import, clean, deduplicate and segment it into a fresh
SQLite database; print the time and the peak memory.

    .venv-app/bin/python bench/import_1m.py                 # 1,000,000 rows (the issue's goal: <= 60 s, <= 1.5 GB)
    .venv-app/bin/python bench/import_1m.py --rows 20000

The whole pipeline runs as `kindly import` runs it (reading, cleaning, the date-of-birth hash, deduplication,
segments and the chunked writes), into a fresh database, then once more over the same file (which must change
nothing). The generated file has ~1% rows repeating an external_id (the last wins), ~0.5% invalid rows and ~0.2%
phones shared between two accounts.
"""
import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = ["external_id", "name", "phone", "country", "balance", "minimum_due", "days_past_due", "due_date",
          "card_last4", "date_of_birth", "risk"]
US_AREAS = ["303", "720", "970", "719", "505", "406", "307", "385", "801", "212", "646", "718", "917", "312", "773",
            "415", "510", "650", "408", "206"]
EN_NAMES = ["Alex Morgan", "Sam Lee", "Jordan Smith", "Taylor Brown", "Casey Davis", "Riley Wilson", "Jamie Clark"]
ZH_NAMES = ["王芳", "李雷", "张伟", "刘洋", "陈静", "杨帆", "赵敏"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    today = date.today()
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for i in range(rows):
            n = i
            if rng.random() < 0.01 and i > 10:
                n = rng.randrange(i)  # the same external_id again: a newer statement of an earlier row
            cn = n % 3 == 0
            phone = f"138{n:08d}" if cn else f"({US_AREAS[n % 20]}) {200 + (n // 20) // 10000 % 700}-{(n // 20) % 10000:04d}"
            if rng.random() < 0.002 and n > 1:
                phone = f"138{n - 3:08d}" if cn else f"({US_AREAS[(n - 20) % 20]}) {200 + ((n - 20) // 20) // 10000 % 700}-{((n - 20) // 20) % 10000:04d}"
            days = rng.randint(1, 180)
            balance = rng.randint(200, 50000)
            row = [f"ACC{n:08d}", rng.choice(ZH_NAMES if cn else EN_NAMES), phone, "CN" if cn else "US",
                   f"{balance}.{rng.randint(0, 99):02d}", f"{max(1, balance // 20)}.00", days,
                   (today - timedelta(days=days)).isoformat(), f"{rng.randint(0, 9999):04d}",
                   (date(1950, 1, 1) + timedelta(days=rng.randint(0, 18000))).isoformat(),
                   "malicious" if rng.random() < 0.03 else ""]
            broken = rng.random()
            if broken < 0.002:
                row[2] = "12345"
            elif broken < 0.004:
                row[9] = "05/03/1985"
            elif broken < 0.005:
                row[5] = str(balance * 2)
            out.writerow(row)


def cpu_seconds() -> tuple[float, float]:
    """CPU time used so far by this process and by its finished worker processes: on a shared machine, a
    figure other people's load does not inflate."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def peak_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of the largest worker process, in MB (Linux: ru_maxrss in KB)."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def run(path: Path, database: Path, workers: int) -> tuple[dict, float]:
    from kindly import importer
    from kindly.db import engine_for
    from kindly.migrate import upgrade

    url = f"sqlite:///{database}"
    upgrade(url)
    started = time.perf_counter()
    report = importer.import_file(path, engine_for(url), "bench", "bench", workers=workers).as_dict()
    return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kindly-import-bench-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'unused.db'}"
    os.environ.setdefault("DOB_HASH_KEY", "bench-dob-hash-key")

    path = folder / "accounts.csv"
    started = time.perf_counter()
    generate(path, args.rows)
    print(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")

    cpu_before = cpu_seconds()
    load_before = os.getloadavg()[0]
    report, seconds = run(path, folder / "accounts.db", args.workers)
    main_cpu, workers_cpu = (after - before for after, before in zip(cpu_seconds(), cpu_before))
    main_mb, worker_mb = peak_mb()
    print(f"\nimport into an empty database, {args.workers} worker processes:")
    print(f"  {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s; peak memory: main {main_mb:.0f} MB, largest worker {worker_mb:.0f} MB, "
          f"together at most {main_mb + args.workers * worker_mb:.0f} MB")
    print(f"  CPU: main process {main_cpu:.1f} s, worker processes {workers_cpu:.1f} s together; machine load "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores)")
    print("  " + ", ".join(f"{k} {report[k]:,}" for k in ("rows", "accepted", "created", "rejected", "duplicates_merged")))
    print(f"  segments {report['segments']}, shared phones {len(report['shared_phones']):,}")
    again, seconds_again = run(path, folder / "accounts.db", args.workers)
    print(f"  the same file again: {seconds_again:.1f} s, created {again['created']}, updated {again['updated']}, unchanged {again['unchanged']:,}")


if __name__ == "__main__":
    main()
