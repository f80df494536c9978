//! What the suites share: the runtime abstraction, the hostile-input
//! bench, the reference peers and a raw HTTP client.

pub mod backend;
pub mod bench;
pub mod browser;
pub mod http;
pub mod python;
pub mod redis;
pub mod relay;
pub mod runtimes;
pub mod tap;

/// This process's `/proc/self/status` field `field` (`VmRSS:`,
/// `VmHWM:`), in bytes: what the memory tests measure.
///
/// # Panics
///
/// Where `/proc` has no such field (not Linux).
pub fn resident(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .unwrap();
    kib << 10
}
