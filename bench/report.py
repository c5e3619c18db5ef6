"""Format the results as Markdown tables, ready for docs/performance.md.

Every figure is shown with its ratio to a reference measured in the same
run, because on a shared machine absolute numbers move from run to run
while ratios between neighbouring measurements move much less.
"""

import dataclasses
import math


@dataclasses.dataclass
class LoadRow:
    """One throughput measurement: a rate and its latencies."""

    name: str
    reference: str
    rate: float
    p50: float = math.nan
    p99: float = math.nan
    errors: int = 0
    unit: str = "images/s"


@dataclasses.dataclass
class ValueRow:
    """One single-figure measurement (a size or a duration)."""

    name: str
    reference: str
    value: float
    unit: str


@dataclasses.dataclass
class Target:
    """One performance target and whether this run met it."""

    name: str
    measured: str
    required: str
    holds: bool


def load_table(rows):
    """Return the throughput and latency rows as a Markdown table."""
    by_name = {row.name: row for row in rows}
    lines = ["| measurement | reference | rate | x ref | p50 ms | x ref "
             "| p99 ms | x ref | errors |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for row in rows:
        ref = by_name.get(row.reference)
        cells = [row.name, row.reference or "-",
                 f"{row.rate:.1f} {row.unit}", _ratio(row.rate, ref, "rate"),
                 _ms(row.p50), _ratio(row.p50, ref, "p50"),
                 _ms(row.p99), _ratio(row.p99, ref, "p99"),
                 str(row.errors)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def value_table(rows):
    """Return single-figure rows as a Markdown table."""
    by_name = {row.name: row for row in rows}
    lines = ["| measurement | value | reference | x ref |",
             "|---|--:|---|--:|"]
    for row in rows:
        ref = by_name.get(row.reference)
        lines.append(f"| {row.name} | {_value(row.value, row.unit)} | "
                     f"{row.reference or '-'} | "
                     f"{_ratio(row.value, ref, 'value')} |")
    return "\n".join(lines)


def target_table(targets):
    """Return the targets, what was measured and whether each holds."""
    lines = ["| target | measured | required | holds |",
             "|---|--:|--:|:-:|"]
    for target in targets:
        verdict = "yes" if target.holds else "**NO**"
        lines.append(f"| {target.name} | {target.measured} | "
                     f"{target.required} | {verdict} |")
    return "\n".join(lines)


def pairs_table(pairs, heading=("item", "value")):
    """Return (key, value) pairs as a two-column Markdown table."""
    lines = [f"| {heading[0]} | {heading[1]} |", "|---|---|"]
    lines.extend(f"| {key} | {value} |" for key, value in pairs)
    return "\n".join(lines)


def _ratio(value, reference, field):
    """Return value / the reference's field as 'N.NN', or '-'."""
    if reference is None:
        return "-"
    base = getattr(reference, field)
    if math.isnan(value) or math.isnan(base) or base == 0:
        return "-"
    return f"{value / base:.2f}"


def _ms(seconds):
    """Return seconds as milliseconds with one decimal, or '-'."""
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def _value(value, unit):
    """Return a single figure with its unit."""
    if unit == "MiB":
        return f"{value / 2**20:.1f} MiB"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        # Given in seconds, like every other duration here.
        return f"{value * 1000:.2f} ms"
    return f"{value:g} {unit}"
