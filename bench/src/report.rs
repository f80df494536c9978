//! Results: what a scenario measures and how it is printed (a line for
//! people, a JSON line for `compare.sh`). The comparison table, with the
//! targets, is `bench/table.py`'s.

use serde_json::json;

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
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
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
}
