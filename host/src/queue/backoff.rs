//! Retry delays: exponential with full jitter, so jobs that failed together (a database restart)
//! do not all come back at the same instant.

use std::time::Duration;

/// The delay before the retry that follows failed attempt number `attempt` (1 for the first):
/// uniformly random in `[d/2, d]` where `d = base × 2^(attempt-1)`, at most `max`.
pub fn delay(attempt: i64, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.clamp(1, 32) as u32 - 1;
    let ceiling = base.saturating_mul(2u32.saturating_pow(exponent)).min(max);
    let half = ceiling / 2;
    let spread = ceiling.saturating_sub(half).as_millis() as u64;
    half + Duration::from_millis(rand::random_range(0..=spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_jitter_and_stop_growing_at_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for attempt in 1..=20 {
            let ceiling = (base * 2u32.pow((attempt - 1) as u32)).min(max);
            for _ in 0..50 {
                let d = delay(attempt, base, max);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
        // Nonsense attempt numbers neither panic nor overflow.
        assert!(delay(0, base, max) <= base);
        assert!(delay(i64::MAX, base, max) <= max);
    }

    #[test]
    fn jitter_spreads_retries() {
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|_| delay(5, Duration::from_secs(1), Duration::from_secs(600)))
            .collect();
        assert!(spread.len() > 10, "{} distinct delays of 50", spread.len());
    }
}
