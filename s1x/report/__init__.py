"""The report stage: tables and plots over the cells of a run or sweep directory.

Takes a run or sweep directory of cells (cell.json each); writes report.md / .csv / .tex and the plots into it.
Usage: python -m s1x.report SWEEP_DIR   (also the last stage of every run and sweep)

It writes into SWEEP_DIR:
- report.md     opens with the verdict of a sweep (s1x/report/verdict.py): per swept axis and benchmark, its
                best value against each other value at the largest budget, with the paired test's numbers
                (s1x/report/paired.py) and each value's Scaling; then the table (a failed cell's status
                carries its error), the plots, and a paragraph reading the scaling curves in words
                (s1x/report/reading.py);
- comparisons.csv  the verdict's comparisons, one row each: axis, series, the two values, n paired, both
                accuracies, the difference and its 95 % bootstrap interval, the discordant counts, McNemar's p;
- pairs.csv     every pair of cells that differ in one swept axis, at each series both have (s1x/report/
                pairwise.py): the same numbers, and p Holm-corrected over the report's pairs; report.md and
                report.tex show them as a table under the cells';
- report.csv    one row per cell, failed and missing ones included: directory, overrides, one column
                per swept override, status, error, then per benchmark n, accuracy, its 95 % interval
                and mean thinking tokens, and per scaling curve Control, Scaling, Performance, as
                plain numbers (accuracies as fractions, Scaling in accuracy per thinking token),
                empty where a cell has none;
- report.tex    a booktabs tabular shaped like the paper's tables (\\input it beside
                \\usepackage{booktabs}): a row per swept value, accuracy and thinking tokens per
                benchmark, Control/Scaling/Performance per curve; a cell that did not finish spans
                its row with its status. budget=scale's per-cap points are in the plot, CSV and Markdown.
                A second table has a row per method run at two budgets or more in separate cells
                (budget=token_conditional budget.tokens=64,128: the paper's Table 3) and its Control,
                Scaling and Performance per benchmark, also in the Markdown;
                a cell with eval.samples > 1 adds majority voting over its first k samples as the
                columns of a benchmark "NAME maj@k" (accuracy, thinking tokens of the k samples together);
- scaling.png   accuracy against mean thinking tokens, a panel per benchmark and a line per method:
                cells that differ only in the budget's amount (budget.tokens, .times, .caps, ...) are
                one line, a budget=scale cell adds a point per cap, and majority voting is a line of
                its own (the paper's parallel scaling against budget forcing's sequential scaling);
                written when a line has two points;
- accuracy.png  accuracy per swept value and benchmark with 95 % intervals; written when a finished
                cell has a plain (not per-cap) benchmark accuracy;
- efficiency.png every method's points on one plot per benchmark with the Pareto front marked, where two
                methods or more finished; with a budget=none cell, report.md adds the thinking tokens each
                method needs to reach plain decoding's accuracy (s1x/report/efficiency.py).

Cells carry their evaluation's typed results (s1x/evaluate/results.py): columns are chosen by benchmark,
curve point and method, and names like "math500@16" or "math500 maj@4" are written for people, never parsed,
so a benchmark may be called anything. Rows are labelled by the swept axis: the overrides whose values differ
between cells. Cells that did not finish are in every table and in no plot. Modules: cells (collect), table
(the model), render (Markdown, CSV, LaTeX), plots, paired (the paired test of two cells), verdict, reading,
efficiency, tracking (W&B), callback (the sweep-end stage).
"""
from __future__ import annotations

from pathlib import Path

from s1x.report.cells import collect_cells
from s1x.report.efficiency import EFFICIENCY_PLOT, plot_efficiency, render_savings
from s1x.report.paired import SweepRecords
from s1x.report.plots import write_plots
from s1x.report.reading import reading
from s1x.report.render import csv_columns, csv_rows, render_csv, render_latex, render_markdown, render_method_markdown
from s1x.report.table import build_table, method_table
from s1x.report.tracking import log_report, wandb_logger
from s1x.report.pairwise import cell_pairs, render_pairs_csv, render_pairs_latex, render_pairs_markdown
from s1x.report.verdict import axis_comparisons, render_comparisons_csv, render_verdict

REPORT_FILE, CSV_FILE, TEX_FILE, COMPARISONS_FILE = "report.md", "report.csv", "report.tex", "comparisons.csv"
PAIRS_FILE = "pairs.csv"


def write_report(sweep_dir: Path) -> Path:
    """Write the tables and plots into sweep_dir (and log them to W&B where its cells went); return report.md."""
    sweep_dir = Path(sweep_dir)
    cells = collect_cells(sweep_dir)
    table = build_table(cells)
    plots = write_plots(table, sweep_dir)
    (sweep_dir / CSV_FILE).write_text(render_csv(table))
    methods = method_table(table)
    tex, markdown = render_latex(table, str(sweep_dir)), render_markdown(table)
    if methods.rows:
        tex += "\n" + render_latex(methods, f"{sweep_dir}: methods across budgets")
        markdown += "\n## Methods across budgets\n\n" + render_method_markdown(methods)
    records = SweepRecords(sweep_dir)
    pairs = cell_pairs(table, records)
    if pairs:
        markdown += "\n## Paired comparisons\n\n" + render_pairs_markdown(pairs)
        tex += "\n" + render_pairs_latex(pairs, str(sweep_dir))
        (sweep_dir / PAIRS_FILE).write_text(render_pairs_csv(pairs))
    (sweep_dir / TEX_FILE).write_text(tex)
    if plot_efficiency(table, sweep_dir / EFFICIENCY_PLOT):
        plots.append(sweep_dir / EFFICIENCY_PLOT)
    saved = render_savings(table)
    if saved:
        markdown += "\n## Efficiency: thinking tokens at plain decoding's accuracy\n\n" + saved
    figures = "".join(f"\n![{path.stem}]({path.name})\n" for path in plots)
    comparisons = axis_comparisons(table, records)
    if comparisons:
        (sweep_dir / COMPARISONS_FILE).write_text(render_comparisons_csv(comparisons))
    verdict = render_verdict(table, comparisons)
    paragraph = reading(table, records, pairs)
    target = sweep_dir / REPORT_FILE
    target.write_text(f"# s1x report: {sweep_dir}\n\n" + (f"## Verdict\n\n{verdict}\n" if verdict else "") + markdown
                      + figures + (f"\n## Reading\n\n{paragraph}\n" if paragraph else ""))
    logger = wandb_logger(sweep_dir, cells)
    if logger is not None:
        log_report(logger, sweep_dir.name, sweep_dir, csv_columns(table), csv_rows(table), plots)
    return target
