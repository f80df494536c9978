#!/usr/bin/env python3
"""The comparison table of bench/compare.sh, from the JSON lines of its runs.

    python3 bench/table.py FILE...     # Markdown table on stdout
    python3 bench/table.py --self-test

The rows, with the metric each implementation reports and the target each
must reach, live here, beside the script that compares, not in the
benchmark binary: juggler-bench (ours and the raw baselines) and
python_peer_bench.py (the Python peer) only measure and print one JSON
object per line:

    {"impl": "juggler"|"raw"|"python", "runtime": ..., "scenario": ...,
     "metric": ..., "value": ..., "unit": ..., "ok": true}
    {"impl": ..., "runtime": ..., "scenario": ..., "ok": false, "error": ...}

Ratios are oriented so that above 1x is better for us.
"""

import json
import math
import sys

THROUGHPUT = "throughput"
PER_FRAME = "throughput per-frame"
BATCHED = "throughput batched"
SPLIT = "throughput split"
OWN_THREADS = "throughput own threads"
TWO_PROCESSES = "throughput two processes"

# Targets: None, ("python", f), ("raw", f), ("python+raw", p, r),
# ("at most", v), ("at least", v).
# (scenario, our metric, Python's metric, raw's metric, higher is better,
# target)
ROWS = [
    # The targets: the fair ceilings (Python as two processes, raw
    # with each end on its own thread: bench/src/scenarios/raw_split.rs),
    # for ours as deployed (two-worker runtime) and ours in the raw split
    # layout (each end on its own current_thread runtime; tokio only).
    ("messages-100b", THROUGHPUT, TWO_PROCESSES, SPLIT, True, ("python+raw", 15.0, 0.8)),
    ("messages-100b", OWN_THREADS, TWO_PROCESSES, SPLIT, True, ("python+raw", 15.0, 0.8)),
    ("messages-10kb", THROUGHPUT, TWO_PROCESSES, SPLIT, True, ("raw", 0.8)),
    ("messages-10kb", OWN_THREADS, TWO_PROCESSES, SPLIT, True, ("raw", 0.8)),
    # The same against Python in one process and raw on one runtime.
    ("messages-100b", THROUGHPUT, THROUGHPUT, BATCHED, True, None),
    ("messages-100b", THROUGHPUT, None, PER_FRAME, True, None),
    ("messages-10kb", THROUGHPUT, THROUGHPUT, BATCHED, True, None),
    ("messages-10kb", THROUGHPUT, None, PER_FRAME, True, None),
    ("rpc-sequential", "calls", "calls two processes", "calls split", True, None),
    ("rpc-64", "calls", "calls two processes", "calls split", True, None),
    ("rpc-sequential", "calls", "calls", "calls", True, ("raw", 0.8)),
    ("rpc-64", "calls", "calls", "calls", True, ("raw", 0.8)),
    # Awaited as in #[tokio::main]'s main task (tokio only), raw alike.
    ("rpc-sequential", "calls main task", None, "calls main task", True, None),
    ("rpc-sequential", "main task \u00f7 spawned", None, None, True, ("at least", 0.8)),
    ("state-1k", "diff latency", "diff latency", None, False, None),
    ("state-1k", "diff cpu", "diff cpu", None, False, None),
    ("state-1k", "ops latency", None, None, False, None),
    ("state-1k", "ops cpu", None, None, False, None),
    ("state-100k", "diff latency", "diff latency", None, False, ("python", 10.0)),
    ("state-100k", "diff cpu", "diff cpu", None, False, None),
    ("state-100k", "diff build", None, None, False, None),
    ("state-100k", "diff compute", None, None, False, None),
    ("state-100k", "first ops latency", None, None, False, ("at most", 1.0)),
    ("state-100k", "ops latency", None, None, False, None),
    ("state-100k", "ops cpu", None, None, False, ("at most", 1.0)),
    ("full-sync-100k", "sync time", "sync time two processes", None, False, ("python", 10.0)),
    ("full-sync-100k", "sync time", "sync time", None, False, None),
    ("full-sync-100k", "serde floor", None, None, False, None),
    ("fanout-100", "latency", "latency", None, False, None),
    ("fanout-100", "latency shared-state", "latency", None, False, None),
    ("fanout-1000", "latency", "latency", None, False, None),
    ("fanout-1000", "latency shared-state", "latency", None, False, ("at most", 50.0)),
    # 10,000 clients in two child processes (bench/src/scenarios/fanout_processes.rs).
    ("fanout-10000", "latency", None, None, False, None),
    ("fanout-10000", "latency shared-state", None, None, False, ("at most", 100.0)),
    ("fanout-10000", "server cpu shared-state", None, None, False, None),
    # The same at the default 0.2 s autoflush delay: CPU per change.
    ("fanout-1000-autoflush", "cpu", None, None, False, None),
    ("fanout-1000-autoflush", "cpu shared-state", None, None, False, None),
    ("fanout-1000-autoflush", "cpu shared \u00f7 per-connection", None, None, False, ("at most", 0.3)),
    # Raw: the same 0.7 echo with each end on its own thread (the Python
    # runs' layout) and batched writes (bench/src/scenarios/raw_split.rs).
    ("v07-requests-sequential", "requests", "requests", "requests", True, ("python", 10.0)),
    ("v07-requests-64", "requests", "requests", "requests", True, ("python", 10.0)),
    ("v07-notify", "notifications", "notifications", None, True, None),
    # Like with like: a whole new state (deep copy, built before the
    # window) on both sides; and one entry changed through each side's
    # path API (ours update_state, Python's state.set(path, value), which
    # shares the rest and diffs). The mixed pair is shown too.
    ("v07-state-100k", "diff latency", "whole-state diff latency", None, False, ("python", 10.0)),
    ("v07-state-100k", "diff latency", "path-set diff latency", None, False, None),
    ("v07-state-100k", "diff build", None, None, False, None),
    ("v07-state-100k", "ops latency", "path-set diff latency", None, False, ("python", 10.0)),
    ("v07-state-100k", "first sync", "first sync", None, False, None),
    ("v07-fanout-1000", "latency shared-state", "latency", None, False, ("at most", 50.0)),
    ("idle-memory-1000", "memory per connection", "memory per connection", None, False, ("at most", 16.0)),
    ("idle-memory-10000", "memory per connection", "memory per connection", None, False, ("at most", 16.0)),
    ("idle-memory-10000", "connections held", "connections held", None, True, ("at least", 10000.0)),
]

DASH = "\u2014"
TIMES = "\u00d7"


def format_number(value):
    """Three significant digits at least, thousands separated."""
    magnitude = abs(value)
    if magnitude >= 1000:
        # Half away from zero, as the Rust side prints (Python's round()
        # rounds half to even).
        rounded = int(math.floor(magnitude + 0.5))
        return f"{'-' if value < 0 else ''}{rounded:,}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.5f}"


def describe(target, unit):
    if target is None:
        return DASH
    kind = target[0]
    if kind == "python":
        return f"\u2265{target[1]}{TIMES} Python"
    if kind == "raw":
        return f"\u2265{target[1]}{TIMES} raw"
    if kind == "python+raw":
        return f"\u2265{target[1]}{TIMES} Python, \u2265{target[2]}{TIMES} raw"
    if kind == "at most":
        return f"\u2264{format_number(target[1])} {unit}"
    return f"\u2265{format_number(target[1])} {unit}"


def met(target, value, vs_python, vs_raw):
    """Whether `value` meets `target` (None when it cannot be told)."""
    if target is None:
        return None
    kind = target[0]
    if kind == "python":
        return None if vs_python is None else vs_python >= target[1]
    if kind == "raw":
        return None if vs_raw is None else vs_raw >= target[1]
    if kind == "python+raw":
        if vs_python is None or vs_raw is None:
            return None
        return vs_python >= target[1] and vs_raw >= target[2]
    if kind == "at most":
        return value <= target[1]
    return value >= target[1]


def label(row):
    _, metric, python_metric, raw_metric, _, _ = row
    theirs = [f"{name}: {their}" for name, their in (("Python", python_metric),
                                                     ("raw", raw_metric))
              if their is not None and their != metric]
    return f"{metric} ({'; '.join(theirs)})" if theirs else metric


def parse(lines):
    """Entries by (impl, runtime, scenario, metric), and the failures."""
    entries, failures = {}, []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        impl, runtime, scenario = (
            str(record.get(name, "")) for name in ("impl", "runtime", "scenario")
        )
        if record.get("ok") is False:
            error = str(record.get("error", ""))
            failures.append(f"{impl}/{runtime} {scenario}: FAILED: {error}")
            # A failed scenario fails all its metrics.
            for row in ROWS:
                if row[0] == scenario:
                    for metric in row[1:4]:
                        if metric is not None:
                            entries[(impl, runtime, scenario, metric)] = {"error": error}
            continue
        entries[(impl, runtime, scenario, record.get("metric", ""))] = {
            "value": record.get("value"),
            "unit": record.get("unit", ""),
        }
    return entries, failures


def cell(entry):
    if entry is None:
        return DASH
    if "error" in entry:
        return "FAILED"
    if isinstance(entry.get("value"), (int, float)):
        return format_number(entry["value"])
    return "?"


def value(entry):
    if entry is None or not isinstance(entry.get("value"), (int, float)):
        return None
    return float(entry["value"])


def unit_of(*entries):
    for entry in entries:
        if entry and entry.get("unit"):
            return entry["unit"]
    return ""


def ratio(ours, theirs, higher_is_better):
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def show_ratio(r):
    return DASH if r is None else f"{format_number(r)}{TIMES}"


def rows_for(entries, labels):
    """The main table's rows for the runs labelled (ours tokio, ours smol, raw)."""
    out = [
        "| scenario | metric | unit | ours tokio | ours smol | Python | raw | tokio vs Python "
        "| smol vs Python | tokio vs raw | smol vs raw | target | met |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for row in ROWS:
        scenario, metric, python_metric, raw_metric, higher, target = row
        tokio = entries.get(("juggler", labels[0], scenario, metric))
        smol = entries.get(("juggler", labels[1], scenario, metric))
        python = entries.get(("python", "asyncio", scenario, python_metric))
        raw = entries.get(("raw", labels[2], scenario, raw_metric))
        if tokio is None and smol is None and raw is None:
            continue
        unit = unit_of(tokio, smol, python, raw)
        tokio_py = ratio(value(tokio), value(python), higher)
        smol_py = ratio(value(smol), value(python), higher)
        tokio_raw = ratio(value(tokio), value(raw), higher)
        smol_raw = ratio(value(smol), value(raw), higher)
        verdicts = []
        for name, v, py, rw in (("tokio", value(tokio), tokio_py, tokio_raw),
                                ("smol", value(smol), smol_py, smol_raw)):
            if v is not None:
                verdict = met(target, v, py, rw)
                if verdict is not None:
                    verdicts.append(f"{name} {'met' if verdict else 'MISSED'}")
        out.append("| " + " | ".join([
            scenario, label(row), unit, cell(tokio), cell(smol), cell(python), cell(raw),
            show_ratio(tokio_py), show_ratio(smol_py), show_ratio(tokio_raw),
            show_ratio(smol_raw), describe(target, unit),
            ", ".join(verdicts) if verdicts else DASH,
        ]) + " |")
    return out


def stack_rows(entries, labels):
    """Each runtime against the raw library on the same runtime; nothing
    when no raw smol run is in `entries`."""
    if not any(key[0] == "raw" and key[1] == labels[1] for key in entries):
        return []
    out = [
        "",
        "Each runtime against the plain WebSocket library on the same runtime "
        "(raw tokio: tokio-tungstenite; raw smol: async-tungstenite over smol's "
        f"sockets, the library juggler-smol uses), runs labelled `{labels[0]}` and "
        f"`{labels[1]}`:",
        "",
        "| scenario | metric | unit | ours tokio | raw tokio | tokio vs raw tokio "
        "| ours smol | raw smol | smol vs raw smol |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in ROWS:
        scenario, metric, _, raw_metric, higher, _ = row
        if raw_metric is None:
            continue
        ours_tokio = entries.get(("juggler", labels[0], scenario, metric))
        raw_tokio = entries.get(("raw", labels[0], scenario, raw_metric))
        ours_smol = entries.get(("juggler", labels[1], scenario, metric))
        raw_smol = entries.get(("raw", labels[1], scenario, raw_metric))
        if all(e is None for e in (ours_tokio, raw_tokio, ours_smol, raw_smol)):
            continue
        unit = unit_of(ours_tokio, raw_tokio, ours_smol, raw_smol)
        out.append("| " + " | ".join([
            scenario, label(row), unit, cell(ours_tokio), cell(raw_tokio),
            show_ratio(ratio(value(ours_tokio), value(raw_tokio), higher)),
            cell(ours_smol), cell(raw_smol),
            show_ratio(ratio(value(ours_smol), value(raw_smol), higher)),
        ]) + " |")
    return out


def table(lines):
    """The whole comparison, Markdown."""
    entries, failures = parse(lines)
    out = rows_for(entries, ("tokio", "smol", "tokio"))
    one_thread = ("tokio/1-thread", "smol/1-thread", "tokio/1-thread")
    if any(key[1] in one_thread for key in entries):
        out += ["", "With one executor thread per runtime (`--threads 1`; Python is "
                "single-threaded either way):", ""]
        out += rows_for(entries, one_thread)
    out += stack_rows(entries, ("tokio", "smol"))
    out += stack_rows(entries, ("tokio/1-thread", "smol/1-thread"))
    out += ["", "Ratios are oriented so that above 1\u00d7 is better for us (ours \u00f7 "
            "theirs for rates, theirs \u00f7 ours for times and memory)."]
    if failures:
        out += ["", "Failures:"] + [f"- {failure}" for failure in failures]
    return "\n".join(out) + "\n"


def self_test():
    assert format_number(1_234_567.4) == "1,234,567"
    assert format_number(123.4) == "123"
    assert format_number(12.34) == "12.3"
    assert format_number(1.234) == "1.23"
    assert format_number(0.1234) == "0.123"

    text = table([
        '{"impl":"juggler","runtime":"tokio","scenario":"fanout-1000","metric":"latency shared-state","value":20.0,"unit":"ms","ok":true}',
        '{"impl":"python","runtime":"asyncio","scenario":"fanout-1000","metric":"latency","value":11500.0,"unit":"ms","ok":true}',
        '{"impl":"juggler","runtime":"smol","scenario":"fanout-1000","ok":false,"error":"boom"}',
    ])
    assert "| fanout-1000 | latency shared-state (Python: latency) | ms | 20.0 | FAILED | 11,500 |" in text, text
    assert "575\u00d7" in text, text
    assert "tokio met" in text, text
    assert "FAILED: boom" in text, text

    text = table([
        '{"impl":"juggler","runtime":"tokio","scenario":"rpc-64","metric":"calls","value":300.0,"unit":"calls/s","ok":true}',
        '{"impl":"raw","runtime":"tokio","scenario":"rpc-64","metric":"calls","value":200.0,"unit":"calls/s","ok":true}',
        '{"impl":"juggler","runtime":"smol","scenario":"rpc-64","metric":"calls","value":50.0,"unit":"calls/s","ok":true}',
        '{"impl":"raw","runtime":"smol","scenario":"rpc-64","metric":"calls","value":100.0,"unit":"calls/s","ok":true}',
    ])
    # The main table measures smol against raw tokio, the second against raw smol.
    assert ("| rpc-64 | calls | calls/s | 300 | 50.0 | \u2014 | 200 | \u2014 | \u2014 "
            "| 1.50\u00d7 | 0.250\u00d7 |") in text, text
    assert "| rpc-64 | calls | calls/s | 300 | 200 | 1.50\u00d7 | 50.0 | 100 | 0.500\u00d7 |" in text, text

    text = table(['{"impl":"raw","runtime":"tokio","scenario":"rpc-64","metric":"calls","value":200.0,"unit":"calls/s","ok":true}'])
    assert "raw smol" not in text, text
    print("table.py: 3 passed, 0 failed")


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    if not argv or any(arg.startswith("-") for arg in argv):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    lines = []
    for path in argv:
        with open(path, encoding="utf-8") as handle:
            lines += handle.read().splitlines()
    sys.stdout.write(table(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
