//! When a crashed extension restarts: backoff from 0.5 s doubling to 60 s,
//! and past 5 crashes in 10 minutes it is disabled and the user told.
//! Sans-IO: times come in as milliseconds from the caller's clock.

use std::collections::VecDeque;
use std::time::Duration;

/// Crashes within [`WINDOW_MS`] that disable an extension.
pub const MAX_CRASHES: usize = 5;
/// The window crashes are counted in.
pub const WINDOW_MS: u64 = 10 * 60 * 1000;
/// A run this long resets the backoff.
pub const HEALTHY_MS: u64 = 60 * 1000;

/// What to do after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Start it again after this long.
    Restart(Duration),
    /// Too many crashes: disable it, and say why.
    Disable(String),
}

/// One extension's crash history.
#[derive(Debug, Clone, Default)]
pub struct CrashPolicy {
    crashes: VecDeque<u64>,
    streak: u32,
}

impl CrashPolicy {
    /// Records a crash at `now_ms` after a run that started at `started_ms`.
    pub fn crashed(&mut self, started_ms: u64, now_ms: u64) -> Verdict {
        if now_ms.saturating_sub(started_ms) >= HEALTHY_MS {
            self.streak = 0;
        }
        self.crashes.push_back(now_ms);
        while self
            .crashes
            .front()
            .is_some_and(|&t| now_ms.saturating_sub(t) > WINDOW_MS)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() > MAX_CRASHES {
            return Verdict::Disable(format!(
                "it crashed {} times in 10 minutes; fix it, then `nexus ext enable ID`",
                self.crashes.len()
            ));
        }
        let delay = Duration::from_millis(500u64.saturating_mul(1 << self.streak.min(7)))
            .min(Duration::from_secs(60));
        self.streak += 1;
        Verdict::Restart(delay)
    }

    /// Crashes counted in the window.
    pub fn recent(&self) -> usize {
        self.crashes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_then_disables() {
        let mut p = CrashPolicy::default();
        let mut t = 0;
        let mut delays = Vec::new();
        for _ in 0..MAX_CRASHES {
            t += 1000;
            match p.crashed(t - 100, t) {
                Verdict::Restart(d) => delays.push(d.as_millis()),
                v => panic!("{v:?}"),
            }
        }
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000]);
        assert!(matches!(p.crashed(t, t + 1000), Verdict::Disable(_)));
        // Crashes far apart never disable, and a healthy run resets the backoff.
        let mut q = CrashPolicy::default();
        for i in 0..20u64 {
            let at = i * (WINDOW_MS / 2);
            assert_eq!(
                q.crashed(at.saturating_sub(HEALTHY_MS), at),
                Verdict::Restart(Duration::from_millis(500))
            );
        }
    }
}
