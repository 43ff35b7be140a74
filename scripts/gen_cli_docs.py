"""Write docs/cli.md from the Typer app (``--check``: exit 1 when the file is out of date).

python scripts/gen_cli_docs.py            # regenerate docs/cli.md
python scripts/gen_cli_docs.py --check    # CI: fail if it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segforge.atomic import atomic_write_text
from segforge.cli.cli_reference import DOCS_PATH, render_cli_reference

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/cli.md is stale")
    args = parser.parse_args(argv)
    target = REPO / DOCS_PATH
    text = render_cli_reference()
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if args.check:
        if current != text:
            print(f"{target} is out of date: run `python scripts/gen_cli_docs.py`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        atomic_write_text(target, text)
        print(f"wrote {target}")
    else:
        print(f"{target} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
