"""`python -m kindly import FILE`, `python -m kindly campaign ...` (see kindly/cli.py)."""
import sys

from kindly.cli import main

sys.exit(main())
