"""python -m s1x.report SWEEP_DIR: the report of a run or sweep directory again."""
import sys
from pathlib import Path

from s1x.report import write_report

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m s1x.report SWEEP_DIR")
    print(write_report(Path(sys.argv[1])).read_text())
