"""Bring a database to the latest schema: `python -m kindly.migrate [DATABASE_URL]`."""
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from kindly.settings import ROOT, settings


def upgrade(url: str = "") -> None:
    url = url or settings.database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


if __name__ == "__main__":
    upgrade(sys.argv[1] if len(sys.argv) > 1 else "")
