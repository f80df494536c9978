//! How long the reconnecting client waits between rounds of attempts: a
//! pure schedule, so that it can be checked without a clock.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with jitter.
///
/// Before round `k` of failed attempts (counted since the last connection
/// that stayed up), the client waits `min(max_delay, initial_delay ×
/// multiplier^(k-1))`, shortened by a random fraction of up to `jitter`:
/// with the default jitter of 0.5 a 4 s delay becomes anything from 2 s to
/// 4 s, so that clients cut off together do not all come back at once.
///
/// ```
/// use std::time::Duration;
/// use juggler_driver::Backoff;
///
/// let backoff = Backoff::default().jitter(0.0);
/// assert_eq!(backoff.delay(0, 0.7), Duration::ZERO);
/// assert_eq!(backoff.delay(1, 0.7), Duration::from_millis(250));
/// assert_eq!(backoff.delay(3, 0.7), Duration::from_secs(1));
/// assert_eq!(backoff.delay(50, 0.7), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The delay before the second round. Default 0.25 s.
    pub initial_delay: Duration,
    /// What each further failed round multiplies the delay by. Default 2.
    pub multiplier: f64,
    /// The longest delay. Default 5 s, the reference `Application`'s
    /// fixed retry delay.
    pub max_delay: Duration,
    /// The largest fraction (0 to 1) taken off a delay at random.
    /// Default 0.5.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_delay: Duration::from_millis(250),
            multiplier: 2.0,
            max_delay: Duration::from_secs(5),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// Sets the first delay.
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets the growth factor (values below 1 count as 1).
    #[must_use]
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the longest delay.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the jitter fraction (clamped to 0..=1).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The wait before a round that follows `failed_rounds` rounds without
    /// a lasting connection; `random` (0 to 1) picks the jitter. No wait
    /// when nothing failed yet.
    pub fn delay(&self, failed_rounds: u32, random: f64) -> Duration {
        if failed_rounds == 0 {
            return Duration::ZERO;
        }
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(failed_rounds - 1).unwrap_or(i32::MAX);
        let max = self.max_delay.as_secs_f64();
        let initial = self.initial_delay.as_secs_f64();
        let full = if initial == 0.0 {
            0.0
        } else {
            (initial * multiplier.powi(exponent)).min(max)
        };
        let jitter = clamp_unit(self.jitter) * clamp_unit(random);
        let seconds = full * (1.0 - jitter);
        // `full` is finite and at most `max_delay`; NaN cannot get here
        // because both factors were clamped.
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

fn clamp_unit(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// A number from 0 to 1 that differs between calls and processes, for
/// jitter; from the standard library's per-process random hash keys, so
/// that no RNG crate is needed for something this small.
pub(crate) fn random_unit() -> f64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    // 53 random bits make an evenly spread f64 in [0, 1).
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_then_stays_at_the_maximum() {
        let backoff = Backoff::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1))
            .jitter(0.0);
        let delays: Vec<u128> = (0..7).map(|k| backoff.delay(k, 0.5).as_millis()).collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_shortens_by_at_most_its_fraction() {
        let backoff = Backoff::default().jitter(0.5);
        assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(backoff.delay(3, 1.0), Duration::from_millis(500));
    }

    #[test]
    fn random_units_spread() {
        let draws: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(draws.iter().any(|x| *x < 0.25) && draws.iter().any(|x| *x > 0.75));
    }

    proptest! {
        #[test]
        fn delays_stay_within_their_bounds(
            initial_ms in 0u64..10_000,
            max_ms in 0u64..100_000,
            multiplier in prop::num::f64::ANY,
            jitter in prop::num::f64::ANY,
            random in prop::num::f64::ANY,
            rounds in 0u32..u32::MAX,
        ) {
            let backoff = Backoff::default()
                .initial_delay(Duration::from_millis(initial_ms))
                .max_delay(Duration::from_millis(max_ms))
                .multiplier(multiplier)
                .jitter(jitter);
            let delay = backoff.delay(rounds, random);
            prop_assert!(delay <= Duration::from_millis(max_ms));
            if rounds == 0 {
                prop_assert_eq!(delay, Duration::ZERO);
            }
            let unjittered = backoff.jitter(0.0).delay(rounds, random);
            prop_assert!(delay <= unjittered);
            let floor = unjittered.as_secs_f64() * (1.0 - clamp_unit(jitter));
            prop_assert!(delay.as_secs_f64() >= floor - 1e-9);
        }
    }
}
