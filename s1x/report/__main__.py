"""python -m s1x.report SWEEP_DIR: the report of a run or sweep directory again.

python -m s1x.report --audit CELL_DIR [--sample N] [--seed S]: a seeded sample of one cell's verdicts for a
person to check, and the answers math-verify and normalised string equality judge differently (audit.py).
"""
import argparse
import sys
from pathlib import Path

from s1x.report import write_report
from s1x.report.audit import audit

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m s1x.report", description="The report of a run or sweep "
                                     "directory, or with --audit a sample of one cell's verdicts.")
    parser.add_argument("sweep_dir", nargs="?", type=Path, metavar="SWEEP_DIR")
    parser.add_argument("--audit", type=Path, metavar="CELL_DIR", help="audit this cell's grading instead")
    parser.add_argument("--sample", type=int, default=20, help="verdicts to show (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    args = parser.parse_args()
    if (args.sweep_dir is None) == (args.audit is None):
        parser.error("give SWEEP_DIR, or --audit CELL_DIR")
    if args.audit:
        try:
            print(audit(args.audit, args.sample, args.seed))
        except FileNotFoundError as error:
            sys.exit(str(error))
    else:
        print(write_report(args.sweep_dir).read_text())
