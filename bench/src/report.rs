//! Results: what a scenario measures, how it is printed (a line for people,
//! a JSON line for `compare.sh`), and the comparison table built from the
//! JSON lines of several runs (`juggler-bench --table FILE...`).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

/// One number a scenario measured.
#[derive(Debug, Clone)]
pub struct Measure {
    /// What it is, such as `throughput` or `diff latency`.
    pub metric: &'static str,
    /// The number, in `unit`.
    pub value: f64,
    /// Its unit, such as `msgs/s` or `ms`.
    pub unit: &'static str,
    /// How it was measured (counts, spread), for people.
    pub detail: String,
}

impl Measure {
    /// A measure with its detail.
    pub fn new(metric: &'static str, value: f64, unit: &'static str, detail: String) -> Self {
        Measure {
            metric,
            value,
            unit,
            detail,
        }
    }
}

/// What a scenario run came to: its measures, or why it failed.
pub type Outcome = Result<Vec<Measure>, String>;

/// Who ran a scenario: `juggler` or `raw`, and the runtime.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    /// `juggler` (this library), `raw` (the plain WebSocket baseline) or
    /// `python` (the reference peer).
    pub implementation: &'static str,
    /// `tokio` or `smol`.
    pub runtime: &'static str,
}

/// Prints one scenario's outcome, as JSON lines or as lines for people.
pub fn print(subject: Subject, scenario: &str, outcome: &Outcome, as_json: bool) {
    match (outcome, as_json) {
        (Ok(measures), true) => {
            for m in measures {
                let line = json!({
                    "impl": subject.implementation, "runtime": subject.runtime,
                    "scenario": scenario, "metric": m.metric, "value": m.value,
                    "unit": m.unit, "detail": m.detail, "ok": true,
                });
                println!("{line}");
            }
        }
        (Err(error), true) => {
            let line = json!({
                "impl": subject.implementation, "runtime": subject.runtime,
                "scenario": scenario, "ok": false, "error": error,
            });
            println!("{line}");
        }
        (Ok(measures), false) => {
            for m in measures {
                println!(
                    "{:<5} {:<7} {:<18} {:<22} {:>14} {:<9} {}",
                    subject.runtime,
                    subject.implementation,
                    scenario,
                    m.metric,
                    format_number(m.value),
                    m.unit,
                    m.detail
                );
            }
        }
        (Err(error), false) => println!(
            "{:<5} {:<7} {:<18} FAILED: {error}",
            subject.runtime, subject.implementation, scenario
        ),
    }
}

/// A number with three significant digits at least, thousands separated.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let rounded = value.round() as i64;
        let digits = rounded.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else if magnitude >= 0.01 {
        format!("{value:.3}")
    } else {
        format!("{value:.5}")
    }
}

// ---- the comparison table -------------------------------------------------

/// What a row of the table must reach to meet its target.
#[derive(Debug, Clone, Copy)]
enum Target {
    None,
    /// At least this many times Python (in the better direction).
    VsPython(f64),
    /// At least this fraction of the raw baseline.
    VsRaw(f64),
    /// Both of the above.
    VsPythonAndRaw(f64, f64),
    /// At most this value.
    AtMost(f64),
    /// At least this value.
    AtLeast(f64),
}

impl Target {
    fn describe(self, unit: &str) -> String {
        match self {
            Target::None => "—".to_owned(),
            Target::VsPython(f) => format!("≥{f}× Python"),
            Target::VsRaw(f) => format!("≥{f}× raw"),
            Target::VsPythonAndRaw(p, r) => format!("≥{p}× Python, ≥{r}× raw"),
            Target::AtMost(v) => format!("≤{} {unit}", format_number(v)),
            Target::AtLeast(v) => format!("≥{} {unit}", format_number(v)),
        }
    }

    /// Whether `value` meets the target, given the ratios to Python and
    /// raw (already oriented: above 1 is better than them); `None` when
    /// something needed is missing.
    fn met(self, value: f64, vs_python: Option<f64>, vs_raw: Option<f64>) -> Option<bool> {
        match self {
            Target::None => None,
            Target::VsPython(f) => Some(vs_python? >= f),
            Target::VsRaw(f) => Some(vs_raw? >= f),
            Target::VsPythonAndRaw(p, r) => Some(vs_python? >= p && vs_raw? >= r),
            Target::AtMost(v) => Some(value <= v),
            Target::AtLeast(v) => Some(value >= v),
        }
    }
}

/// One row: a scenario's metric for us, Python and raw.
struct Row {
    scenario: &'static str,
    metric: &'static str,
    python_metric: Option<&'static str>,
    raw_metric: Option<&'static str>,
    higher_is_better: bool,
    target: Target,
}

impl Row {
    /// The metric as the table shows it, naming raw's metric where it is
    /// another one.
    fn label(&self) -> String {
        match self.raw_metric {
            Some(raw_metric) if raw_metric != self.metric => {
                format!("{} (raw: {raw_metric})", self.metric)
            }
            _ => self.metric.to_owned(),
        }
    }
}

const fn row(
    scenario: &'static str,
    metric: &'static str,
    python_metric: Option<&'static str>,
    raw_metric: Option<&'static str>,
    higher_is_better: bool,
    target: Target,
) -> Row {
    Row {
        scenario,
        metric,
        python_metric,
        raw_metric,
        higher_is_better,
        target,
    }
}

const THROUGHPUT: &str = "throughput";
const PER_FRAME: &str = "throughput per-frame";
const BATCHED: &str = "throughput batched";

/// The table's rows: scenario, our metric, Python's and raw's metric to
/// compare with, whether higher is better, the target.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    row("messages-100b", THROUGHPUT, Some(THROUGHPUT), Some(BATCHED), true, Target::VsPythonAndRaw(15.0, 0.7)),
    row("messages-100b", THROUGHPUT, None, Some(PER_FRAME), true, Target::None),
    row("messages-10kb", THROUGHPUT, Some(THROUGHPUT), Some(BATCHED), true, Target::VsPythonAndRaw(15.0, 0.7)),
    row("messages-10kb", THROUGHPUT, None, Some(PER_FRAME), true, Target::None),
    row("rpc-sequential", "calls", Some("calls"), Some("calls"), true, Target::VsRaw(0.8)),
    row("rpc-64", "calls", Some("calls"), Some("calls"), true, Target::VsRaw(0.8)),
    row("state-1k", "diff latency", Some("diff latency"), None, false, Target::None),
    row("state-1k", "diff cpu", Some("diff cpu"), None, false, Target::None),
    row("state-1k", "ops latency", None, None, false, Target::None),
    row("state-1k", "ops cpu", None, None, false, Target::None),
    row("state-100k", "diff latency", Some("diff latency"), None, false, Target::VsPython(10.0)),
    row("state-100k", "diff cpu", Some("diff cpu"), None, false, Target::None),
    row("state-100k", "ops latency", None, None, false, Target::None),
    row("state-100k", "ops cpu", None, None, false, Target::AtMost(1.0)),
    row("full-sync-100k", "sync time", Some("sync time"), None, false, Target::None),
    row("fanout-100", "latency", Some("latency"), None, false, Target::None),
    row("fanout-100", "latency shared-state", Some("latency"), None, false, Target::None),
    row("fanout-1000", "latency", Some("latency"), None, false, Target::None),
    row("fanout-1000", "latency shared-state", Some("latency"), None, false, Target::AtMost(50.0)),
    row("idle-memory-1000", "memory per connection", Some("memory per connection"), None, false, Target::AtMost(16.0)),
    row("idle-memory-10000", "memory per connection", Some("memory per connection"), None, false, Target::AtMost(16.0)),
    row("idle-memory-10000", "connections held", Some("connections held"), None, true, Target::AtLeast(10_000.0)),
];

/// One parsed JSON result line.
struct Entry {
    value: Option<f64>,
    unit: String,
    error: Option<String>,
}

/// Parsed results by (implementation, runtime, scenario, metric).
type Entries = HashMap<(String, String, String, String), Entry>;

/// Builds the comparison table (Markdown) from JSON result lines, plus the
/// list of failures.
pub fn table(lines: &str) -> String {
    let mut entries = Entries::new();
    let mut failures = Vec::new();
    for line in lines
        .lines()
        .filter(|line| line.trim_start().starts_with('{'))
    {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let text = |name: &str| record[name].as_str().unwrap_or("").to_owned();
        let (implementation, runtime, scenario) = (text("impl"), text("runtime"), text("scenario"));
        if record["ok"] == Value::Bool(false) {
            failures.push(format!(
                "{implementation}/{runtime} {scenario}: FAILED: {}",
                text("error")
            ));
            // A failed scenario fails all its metrics.
            for r in ROWS.iter().filter(|r| r.scenario == scenario) {
                for metric in [Some(r.metric), r.python_metric, r.raw_metric]
                    .into_iter()
                    .flatten()
                {
                    entries.insert(
                        (
                            implementation.clone(),
                            runtime.clone(),
                            scenario.clone(),
                            metric.to_owned(),
                        ),
                        Entry {
                            value: None,
                            unit: String::new(),
                            error: Some(text("error")),
                        },
                    );
                }
            }
            continue;
        }
        entries.insert(
            (implementation, runtime, scenario, text("metric")),
            Entry {
                value: record["value"].as_f64(),
                unit: text("unit"),
                error: None,
            },
        );
    }

    let mut out = String::new();
    write_rows(&mut out, &entries, ["tokio", "smol", "tokio"]);
    let one_thread = ["tokio/1-thread", "smol/1-thread", "tokio/1-thread"];
    if entries
        .keys()
        .any(|key| one_thread.contains(&key.1.as_str()))
    {
        out.push_str(
            "\nWith one executor thread per runtime (`--threads 1`; Python is \
             single-threaded either way):\n\n",
        );
        write_rows(&mut out, &entries, one_thread);
    }
    write_stack_rows(&mut out, &entries, ["tokio", "smol"]);
    write_stack_rows(&mut out, &entries, ["tokio/1-thread", "smol/1-thread"]);
    out.push_str(
        "\nRatios are oriented so that above 1× is better for us (ours ÷ theirs for \
         rates, theirs ÷ ours for times and memory).\n",
    );
    if !failures.is_empty() {
        out.push_str("\nFailures:\n");
        for failure in failures {
            let _ = writeln!(out, "- {failure}");
        }
    }
    out
}

/// The entry of one implementation's run for a scenario's metric.
fn get<'a>(
    entries: &'a Entries,
    implementation: &str,
    runtime: &str,
    scenario: &str,
    metric: Option<&str>,
) -> Option<&'a Entry> {
    metric.and_then(|metric| {
        entries.get(&(
            implementation.to_owned(),
            runtime.to_owned(),
            scenario.to_owned(),
            metric.to_owned(),
        ))
    })
}

/// An entry's value as a table cell.
fn cell(entry: Option<&Entry>) -> String {
    match entry {
        None => "—".to_owned(),
        Some(Entry { error: Some(_), .. }) => "FAILED".to_owned(),
        Some(Entry { value: Some(v), .. }) => format_number(*v),
        Some(_) => "?".to_owned(),
    }
}

/// The unit of the first of `entries` that has one.
fn unit_of(entries: &[Option<&Entry>]) -> String {
    entries
        .iter()
        .flatten()
        .map(|e| e.unit.clone())
        .find(|u| !u.is_empty())
        .unwrap_or_default()
}

fn value(entry: Option<&Entry>) -> Option<f64> {
    entry.and_then(|e| e.value)
}

/// Ours against theirs, oriented so that above 1 is better for us.
fn ratio(ours: Option<f64>, theirs: Option<f64>, higher_is_better: bool) -> Option<f64> {
    match (ours, theirs) {
        (Some(o), Some(t)) if o > 0.0 && t > 0.0 => {
            Some(if higher_is_better { o / t } else { t / o })
        }
        _ => None,
    }
}

fn show_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("—".to_owned(), |r| format!("{}×", format_number(r)))
}

/// Appends the table rows of the runs labelled `labels` (ours on tokio,
/// ours on smol, raw) to `out`.
fn write_rows(out: &mut String, entries: &Entries, labels: [&str; 3]) {
    let get = |implementation: &str, runtime: &str, scenario: &str, metric: Option<&str>| {
        get(entries, implementation, runtime, scenario, metric)
    };

    out.push_str(
        "| scenario | metric | unit | ours tokio | ours smol | Python | raw | tokio vs Python | smol vs Python | tokio vs raw | smol vs raw | target | met |\n",
    );
    out.push_str("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n");
    for r in ROWS {
        let tokio = get("juggler", labels[0], r.scenario, Some(r.metric));
        let smol = get("juggler", labels[1], r.scenario, Some(r.metric));
        let python = get("python", "asyncio", r.scenario, r.python_metric);
        let raw = get("raw", labels[2], r.scenario, r.raw_metric);
        if [tokio, smol, raw].iter().all(Option::is_none) {
            continue;
        }
        let unit = unit_of(&[tokio, smol, python, raw]);
        let tokio_py = ratio(value(tokio), value(python), r.higher_is_better);
        let smol_py = ratio(value(smol), value(python), r.higher_is_better);
        let tokio_raw = ratio(value(tokio), value(raw), r.higher_is_better);
        let smol_raw = ratio(value(smol), value(raw), r.higher_is_better);
        let verdict = |name: &str, v: Option<f64>, py: Option<f64>, raw: Option<f64>| {
            v.and_then(|v| r.target.met(v, py, raw))
                .map(|met| format!("{name} {}", if met { "met" } else { "MISSED" }))
        };
        let met: Vec<String> = [
            verdict("tokio", value(tokio), tokio_py, tokio_raw),
            verdict("smol", value(smol), smol_py, smol_raw),
        ]
        .into_iter()
        .flatten()
        .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.label(),
            unit,
            cell(tokio),
            cell(smol),
            cell(python),
            cell(raw),
            show_ratio(tokio_py),
            show_ratio(smol_py),
            show_ratio(tokio_raw),
            show_ratio(smol_raw),
            r.target.describe(&unit),
            if met.is_empty() {
                "—".to_owned()
            } else {
                met.join(", ")
            },
        );
    }
}

/// Appends the table of each runtime against the raw WebSocket library on
/// that runtime (`labels`: tokio's and smol's run labels), for the rows
/// that have a raw baseline; nothing when no raw smol run is in `entries`.
fn write_stack_rows(out: &mut String, entries: &Entries, labels: [&str; 2]) {
    let has_raw_smol = entries
        .keys()
        .any(|key| key.0 == "raw" && key.1 == labels[1]);
    if !has_raw_smol {
        return;
    }
    let _ = writeln!(
        out,
        "\nEach runtime against the plain WebSocket library on the same runtime \
         (raw tokio: tokio-tungstenite; raw smol: async-tungstenite over smol's \
         sockets, the library juggler-smol uses), runs labelled `{}` and `{}`:\n",
        labels[0], labels[1]
    );
    out.push_str(
        "| scenario | metric | unit | ours tokio | raw tokio | tokio vs raw tokio | ours smol | raw smol | smol vs raw smol |\n",
    );
    out.push_str("|---|---|---|--:|--:|--:|--:|--:|--:|\n");
    for r in ROWS.iter().filter(|r| r.raw_metric.is_some()) {
        let ours_tokio = get(entries, "juggler", labels[0], r.scenario, Some(r.metric));
        let raw_tokio = get(entries, "raw", labels[0], r.scenario, r.raw_metric);
        let ours_smol = get(entries, "juggler", labels[1], r.scenario, Some(r.metric));
        let raw_smol = get(entries, "raw", labels[1], r.scenario, r.raw_metric);
        if [ours_tokio, raw_tokio, ours_smol, raw_smol]
            .iter()
            .all(Option::is_none)
        {
            continue;
        }
        let unit = unit_of(&[ours_tokio, raw_tokio, ours_smol, raw_smol]);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.label(),
            unit,
            cell(ours_tokio),
            cell(raw_tokio),
            show_ratio(ratio(
                value(ours_tokio),
                value(raw_tokio),
                r.higher_is_better
            )),
            cell(ours_smol),
            cell(raw_smol),
            show_ratio(ratio(value(ours_smol), value(raw_smol), r.higher_is_better)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(format_number(1_234_567.4), "1,234,567");
        assert_eq!(format_number(123.4), "123");
        assert_eq!(format_number(12.34), "12.3");
        assert_eq!(format_number(1.234), "1.23");
        assert_eq!(format_number(0.1234), "0.123");
    }

    #[test]
    fn builds_a_table_with_ratios_and_verdicts() {
        let lines = [
            r#"{"impl":"juggler","runtime":"tokio","scenario":"fanout-1000","metric":"latency shared-state","value":20.0,"unit":"ms","ok":true}"#,
            r#"{"impl":"python","runtime":"asyncio","scenario":"fanout-1000","metric":"latency","value":11500.0,"unit":"ms","ok":true}"#,
            r#"{"impl":"juggler","runtime":"smol","scenario":"fanout-1000","ok":false,"error":"boom"}"#,
        ]
        .join("\n");
        let table = table(&lines);
        assert!(
            table.contains("| fanout-1000 | latency shared-state | ms | 20.0 | FAILED | 11,500 |"),
            "{table}"
        );
        assert!(table.contains("575×"), "{table}");
        assert!(table.contains("tokio met"), "{table}");
        assert!(table.contains("FAILED: boom"), "{table}");
    }

    #[test]
    fn compares_each_runtime_with_raw_on_the_same_runtime() {
        let lines = [
            r#"{"impl":"juggler","runtime":"tokio","scenario":"rpc-64","metric":"calls","value":300.0,"unit":"calls/s","ok":true}"#,
            r#"{"impl":"raw","runtime":"tokio","scenario":"rpc-64","metric":"calls","value":200.0,"unit":"calls/s","ok":true}"#,
            r#"{"impl":"juggler","runtime":"smol","scenario":"rpc-64","metric":"calls","value":50.0,"unit":"calls/s","ok":true}"#,
            r#"{"impl":"raw","runtime":"smol","scenario":"rpc-64","metric":"calls","value":100.0,"unit":"calls/s","ok":true}"#,
        ]
        .join("\n");
        let table = table(&lines);
        // The main table measures smol against raw tokio, the second one
        // against raw smol.
        assert!(
            table.contains(
                "| rpc-64 | calls | calls/s | 300 | 50.0 | — | 200 | — | — | 1.50× | 0.250× |"
            ),
            "{table}"
        );
        assert!(
            table
                .contains("| rpc-64 | calls | calls/s | 300 | 200 | 1.50× | 50.0 | 100 | 0.500× |"),
            "{table}"
        );
    }

    #[test]
    fn leaves_out_the_same_runtime_table_without_a_raw_smol_run() {
        let lines = r#"{"impl":"raw","runtime":"tokio","scenario":"rpc-64","metric":"calls","value":200.0,"unit":"calls/s","ok":true}"#;
        assert!(!table(lines).contains("raw smol"), "{}", table(lines));
    }
}
