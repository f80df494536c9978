//! What the benches read about their own process: CPU time, resident
//! memory, and the open-file limit. Linux only (`/proc`).

use std::time::Duration;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The CPU time the whole process has used so far (user + system, every
/// thread), from `/proc/self/stat`. Its unit is the clock tick (usually
/// 10 ms), though the kernel derives the sum from its precise run time,
/// so many short intervals add up without bias.
pub fn cpu_time() -> Result<Duration, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|err| format!("cannot read /proc/self/stat: {err}"))?;
    let ticks =
        parse_stat_cpu_ticks(&stat).ok_or_else(|| format!("unexpected /proc/self/stat: {stat}"))?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / per_second,
    ))
}

/// `utime + stime` from the text of `/proc/<pid>/stat`: fields 14 and 15,
/// counted after the command name (field 2, in parentheses, which may
/// itself hold spaces and parentheses, hence the search for the last `)`).
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // The fields after the name start at field 3 (`state`).
    let mut fields = after_name.split_ascii_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The process's resident memory in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|err| format!("cannot read /proc/self/status: {err}"))?;
    parse_vm_rss(&status).ok_or_else(|| "no VmRSS in /proc/self/status".to_owned())
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Raises the soft open-file limit to the hard limit and returns the new
/// soft limit (`None`: unlimited).
pub fn raise_nofile_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "1234 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 17 4 0 0 20 0 1";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(21));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t 10 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
    }

    #[test]
    fn reads_own_process() {
        assert!(cpu_time().is_ok());
        assert!(rss_bytes().unwrap() > 0);
    }
}
