//! Cooldowns: a model that keeps failing is skipped for a while.
//!
//! Pure: it reads the recent calls (from the ledger, so cooldowns hold
//! across processes and restarts) and the time, and answers.

use crate::config::CooldownConfig;

/// Until when (ms since the epoch) a model is cooling down, if it is.
///
/// `calls` are `(at_ms, failed)`, oldest first. A cooldown starts at the
/// failure that completes `failures` failures within `window_secs`, and
/// lasts `cooldown_secs`. A success after that failure ends it early: the
/// model answered since, so it is healthy again.
pub fn cooling_until(calls: &[(u64, bool)], cfg: &CooldownConfig, now_ms: u64) -> Option<u64> {
    if cfg.failures == 0 {
        return None;
    }
    let n = cfg.failures as usize;
    let window = cfg.window_secs.saturating_mul(1000);
    let mut fails: Vec<u64> = Vec::new();
    let mut until: Option<u64> = None;
    for &(at, failed) in calls {
        if !failed {
            until = None;
            fails.clear();
            continue;
        }
        fails.push(at);
        if fails.len() >= n {
            let first = fails[fails.len() - n];
            if at.saturating_sub(first) <= window {
                until = Some(at.saturating_add(cfg.cooldown_secs.saturating_mul(1000)));
            }
        }
    }
    until.filter(|u| *u > now_ms)
}

/// How far back to look for [`cooling_until`].
pub fn lookback_ms(cfg: &CooldownConfig) -> u64 {
    cfg.window_secs
        .saturating_add(cfg.cooldown_secs)
        .saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: CooldownConfig = CooldownConfig {
        failures: 3,
        window_secs: 60,
        cooldown_secs: 300,
    };

    #[test]
    fn three_failures_in_a_minute_cool_for_five() {
        let calls = [(0, true), (10_000, true), (20_000, true)];
        assert_eq!(cooling_until(&calls, &CFG, 21_000), Some(320_000));
        assert_eq!(cooling_until(&calls, &CFG, 320_001), None);
    }

    #[test]
    fn spread_out_failures_do_not() {
        let calls = [(0, true), (50_000, true), (120_000, true)];
        assert_eq!(cooling_until(&calls, &CFG, 121_000), None);
    }

    #[test]
    fn a_success_ends_it_and_zero_disables() {
        let calls = [(0, true), (1, true), (2, true), (3, false)];
        assert_eq!(cooling_until(&calls, &CFG, 10), None);
        let off = CooldownConfig { failures: 0, ..CFG };
        assert_eq!(cooling_until(&[(0, true); 5], &off, 1), None);
    }
}
