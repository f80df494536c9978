#!/usr/bin/env python3
"""Our rows of two builds, run interleaved: old-N.jsonl and new-N.jsonl.

    python3 bench/before_after.py DIR     # Markdown table on stdout

Each file holds the JSON lines of one `juggler-bench --json` run. A row is
one (scenario, metric, runtime) of ours ("impl": "juggler"); it gives the
median over the runs of each build, the change new against old, and the
spread: the largest distance of any single run from its build's median.
A row reads "within ±5%" when the change is within ±5% and the spread is
at most ±5% too; "faster" or "slower" when the change is past ±5% and the
spread within it; otherwise "not resolvable at this noise".
"""

import glob
import json
import os
import statistics
import sys

from table import format_number

LOWER_IS_BETTER = ("latency", "cpu", "build", "compute", "sync")


def load(directory, build):
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, f"{build}-*.jsonl"))):
        rows = {}
        with open(path) as lines:
            for line in lines:
                row = json.loads(line)
                if row.get("impl") == "juggler" and row.get("ok"):
                    key = (row["scenario"], row["metric"], row["runtime"])
                    rows[key] = (row["value"], row["unit"])
        runs.append(rows)
    return runs


def main(directory):
    old, new = load(directory, "old"), load(directory, "new")
    keys = sorted(set().union(*old, *new))
    print(f"{len(old)} runs of the old build, {len(new)} of the new.\n")
    print("| row | runtime | old median | new median | change | spread | reading |")
    print("|---|---|---:|---:|---:|---:|---|")
    readings = {}
    for scenario, metric, runtime in keys:
        olds = [run[(scenario, metric, runtime)][0] for run in old if (scenario, metric, runtime) in run]
        news = [run[(scenario, metric, runtime)][0] for run in new if (scenario, metric, runtime) in run]
        if not olds or not news:
            continue
        unit = next(run[(scenario, metric, runtime)][1] for run in old if (scenario, metric, runtime) in run)
        lower = any(word in metric for word in LOWER_IS_BETTER)
        old_median, new_median = statistics.median(olds), statistics.median(news)
        change = (new_median - old_median) / old_median * 100
        spread = max(
            [abs(v - old_median) / old_median * 100 for v in olds]
            + [abs(v - new_median) / new_median * 100 for v in news]
        )
        better = -change if lower else change
        if spread <= 5 and abs(change) <= 5:
            reading = "within ±5%"
        elif spread <= 5:
            reading = "faster" if better > 0 else "slower"
        else:
            reading = "not resolvable at this noise"
        readings[reading] = readings.get(reading, 0) + 1
        direction = "lower" if lower else "higher"
        print(
            f"| {scenario} {metric} ({unit}, {direction} is better) | {runtime} | {format_number(old_median)} "
            f"| {format_number(new_median)} | {change:+.1f}% | ±{spread:.0f}% | {reading} |"
        )
    print()
    print("Readings: " + ", ".join(f"{count} {reading}" for reading, count in sorted(readings.items())))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
