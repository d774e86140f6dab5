"""The benchmark results as a Markdown table, one row per measurement, its details beneath."""
from __future__ import annotations

import math

import polars as pl

HEADER = """# Benchmarks

Speed figures are ratios of two rates measured in the same process, interleaved over the repeats;
`value` is the median over the repeats. Rows without a target are reported for information.
"""


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.4g}"


def markdown_report(results: pl.DataFrame) -> str:
    lines = [HEADER, "| benchmark | value | min – max | unit | repeats | target | met |",
             "|---|---|---|---|---|---|---|"]
    for row in results.iter_rows(named=True):
        spread = f"{_number(row['min'])} – {_number(row['max'])}" if row["repeats"] else "—"
        lines.append(f"| {row['name']} | {_number(row['value'])} | {spread} | {row['unit']} | {row['repeats']} | "
                     f"{row['target'] or '—'} | {'yes' if row['met'] else 'no'} |")
    lines += ["", "## Details", ""]
    lines += [f"- `{row['name']}`: `{row['details']}`" for row in results.iter_rows(named=True)]
    return "\n".join(lines) + "\n"
