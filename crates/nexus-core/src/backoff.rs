//! [`Backoff`]: when to try again after a failure, sans-IO. Delays double
//! from `base` to `cap`, each with up to a quarter more at random (so many
//! clients that lost one server do not return in step), and start over
//! once a connection (or a child process) stayed up for `healthy`. Time
//! comes from a [`Clock`] and randomness from a [`RandomSource`], so a test
//! drives it with a manual clock and a seed.

use std::sync::Arc;
use std::time::Duration;

use crate::{Clock, RandomSource};

/// A retry schedule; see the module docs.
#[derive(Debug, Clone)]
pub struct Backoff {
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    base: Duration,
    cap: Duration,
    healthy: Duration,
    /// Failures since the last healthy spell.
    attempt: u32,
    /// When the current spell of being up began, if up.
    up_since: Option<u64>,
}

impl Backoff {
    /// A schedule: `base` doubling to `cap`, reset after `healthy` up.
    pub fn new(
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        base: Duration,
        cap: Duration,
        healthy: Duration,
    ) -> Backoff {
        Backoff {
            clock,
            rng,
            base,
            cap,
            healthy,
            attempt: 0,
            up_since: None,
        }
    }

    /// It came up (connected, started).
    pub fn up(&mut self) {
        self.up_since = Some(self.clock.now_millis());
    }

    /// Failures since the last healthy spell.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// It went down (or never came up): how long to wait before the next
    /// try. A spell up of at least `healthy` starts the schedule over.
    pub fn down(&mut self) -> Duration {
        if let Some(since) = self.up_since.take() {
            let up = self.clock.now_millis().saturating_sub(since);
            if up >= self.healthy.as_millis() as u64 {
                self.attempt = 0;
            }
        }
        let doubled = self
            .base
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX));
        let delay = doubled.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        delay + delay.mul_f64(self.rng.next_f64() * 0.25)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ManualClock, SeededRandom};

    fn backoff(clock: &ManualClock, seed: u64) -> Backoff {
        Backoff::new(
            Arc::new(clock.clone()),
            Arc::new(SeededRandom::new(seed)),
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter_and_is_reproducible() {
        let clock = ManualClock::new(1_000);
        let mut b = backoff(&clock, 7);
        let delays: Vec<Duration> = (0..8).map(|_| b.down()).collect();
        let floors = [1, 2, 4, 8, 16, 30, 30, 30];
        for (d, floor) in delays.iter().zip(floors) {
            let floor = Duration::from_secs(floor);
            assert!(
                *d >= floor && *d <= floor.mul_f64(1.25),
                "{d:?} for {floor:?}"
            );
        }
        assert_eq!(b.attempts(), 8);
        let mut again = backoff(&clock, 7);
        let same: Vec<Duration> = (0..8).map(|_| again.down()).collect();
        assert_eq!(delays, same, "the same seed, the same schedule");
        let mut other = backoff(&clock, 8);
        assert_ne!(delays[0], other.down(), "another seed, another jitter");
    }

    #[test]
    fn a_healthy_spell_starts_over_and_a_short_one_does_not() {
        let clock = ManualClock::new(0);
        let mut b = backoff(&clock, 1);
        for _ in 0..4 {
            b.down();
        }
        // Up for 10 s: not healthy, the schedule goes on (16 s).
        b.up();
        clock.advance(Duration::from_secs(10));
        let d = b.down();
        assert!(d >= Duration::from_secs(16), "{d:?}");
        // Up for 60 s: healthy, back to 1 s.
        b.up();
        clock.advance(Duration::from_secs(60));
        let d = b.down();
        assert!(d < Duration::from_millis(1_250), "{d:?}");
        assert_eq!(b.attempts(), 1);
        // A huge attempt count neither overflows nor passes the cap.
        for _ in 0..100 {
            assert!(b.down() <= Duration::from_millis(37_500));
        }
    }
}
