//! CrashLoopBackOff timing, as Kubernetes does it: the first restart of a
//! crashed container is immediate, then each further restart waits 10 s,
//! doubling up to 5 min; a container that ran for 10 min before exiting
//! starts a fresh streak. Pure functions, unit-tested.

use std::time::Duration;

/// The first back-off delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The longest back-off delay.
pub const MAX: Duration = Duration::from_secs(300);
/// A run at least this long resets the streak.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// How long to wait before the next restart, given how many restarts this
/// streak already had.
pub fn delay(streak: u32) -> Duration {
    if streak == 0 {
        return Duration::ZERO;
    }
    let factor = 1u64 << (streak - 1).min(16);
    INITIAL.saturating_mul(factor as u32).min(MAX)
}

/// The streak after a container that ran for `ran` exited.
pub fn streak_after_run(streak: u32, ran: Duration) -> u32 {
    if ran >= RESET_AFTER { 0 } else { streak }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_ten_seconds_to_five_minutes() {
        let secs: Vec<u64> = (0..9).map(|s| delay(s).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(delay(u32::MAX), MAX);
    }

    #[test]
    fn ten_minutes_up_resets_the_streak() {
        assert_eq!(streak_after_run(5, Duration::from_secs(599)), 5);
        assert_eq!(streak_after_run(5, Duration::from_secs(600)), 0);
    }
}
