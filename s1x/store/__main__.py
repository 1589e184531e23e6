"""`python -m s1x.store verify [STORE_DIR] [--deep] [--repair]`: check every entry of a store against its manifest.

Sizes by default (what each reuse checks too), sha256 with --deep. Damaged entries are listed, one line each, and
with --repair moved aside so that the next run computes them again; the exit status is 1 while any is left.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from s1x.store import MANIFEST_FILE, damage, set_aside


def entries(root: Path) -> list[Path]:
    """Every finished entry: <stage>/<key> directories (temporary, damaged and job files start with a dot)."""
    return sorted(entry for stage in root.iterdir() if stage.is_dir() and not stage.name.startswith(".")
                  for entry in stage.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def verify(root: Path, deep: bool, repair: bool) -> int:
    """Print what is damaged (and what was done with it); return how many damaged entries are left."""
    found = entries(root)
    damaged, unlisted = 0, 0
    for entry in found:
        if not (entry / MANIFEST_FILE).is_file():
            unlisted += 1
            continue
        problem = damage(entry, deep)
        if not problem:
            continue
        where = entry.relative_to(root)
        if repair:
            print(f"damaged {where}: {problem}; moved aside to {set_aside(entry).relative_to(root)}")
        else:
            damaged += 1
            print(f"damaged {where}: {problem}")
    checked = "sizes and sha256" if deep else "sizes"
    print(f"{root}: {len(found)} entries, {checked} checked; {damaged} damaged left; "
          f"{unlisted} written before manifests (served as they are)")
    return damaged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m s1x.store", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check every entry against its manifest")
    check.add_argument("store_dir", nargs="?", default=".s1x/store", help="the store (default: .s1x/store)")
    check.add_argument("--deep", action="store_true", help="hash every file too, not just its size")
    check.add_argument("--repair", action="store_true", help="move damaged entries aside, to be computed again")
    args = parser.parse_args(argv)
    root = Path(args.store_dir)
    if not root.is_dir():
        sys.exit(f"s1x: store_dir {root} is not a directory")
    sys.exit(1 if verify(root.resolve(), args.deep, args.repair) else 0)


if __name__ == "__main__":
    main()
