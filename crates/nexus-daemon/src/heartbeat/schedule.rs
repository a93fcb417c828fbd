//! When the heartbeat beats, sans-IO: every `interval` from the last beat,
//! only within the active hours (local time, given as an offset), checked
//! against the wall clock so a machine that slept beats soon after it
//! wakes (once, not once per missed beat).

use std::time::Duration;

/// The longest interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Parses `off`, `0` (off) or a duration like `90s`, `30m`, `1h`, `24h`.
pub fn parse_interval(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s == "off" || s == "0" {
        return Ok(None);
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not an interval like 30m, 1h or off"))?;
    let d = match unit {
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}` is not an interval like 30m, 1h or off")),
    };
    if d.is_zero() {
        return Ok(None);
    }
    if d > MAX_INTERVAL {
        return Err(format!(
            "a heartbeat interval is at most 24h (or off), not {s}"
        ));
    }
    Ok(Some(d))
}

/// Hours of the day (local) the heartbeat may beat in: `start..end`, which
/// may wrap past midnight (`22..6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    /// First hour, 0-23.
    pub start: u8,
    /// The hour it ends at, 0-24.
    pub end: u8,
}

impl ActiveHours {
    /// Parses `9-18` (or `22-6`).
    pub fn parse(s: &str) -> Result<ActiveHours, String> {
        let bad = || format!("active hours are like 9-18 (local time), not `{s}`");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let start: u8 = a.trim().parse().map_err(|_| bad())?;
        let end: u8 = b.trim().parse().map_err(|_| bad())?;
        if start > 23 || end > 24 || start == end {
            return Err(bad());
        }
        Ok(ActiveHours { start, end })
    }

    /// Whether `hour` (0-23) is within.
    pub fn contains(&self, hour: u8) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&hour)
        } else {
            hour >= self.start || hour < self.end
        }
    }
}

/// The heartbeat's schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Every this long; `None` is off.
    pub interval: Option<Duration>,
    /// Only in these hours, if given.
    pub active: Option<ActiveHours>,
    /// Local time's offset from UTC, seconds (for the active hours).
    pub utc_offset_secs: i64,
    /// The last beat (ms since the epoch), if any.
    pub last_ms: Option<u64>,
    /// When the schedule began (the daemon started): the first beat is
    /// one interval after.
    pub since_ms: u64,
}

impl Schedule {
    fn hour_at(&self, ms: u64) -> u8 {
        let local = (ms / 1000) as i64 + self.utc_offset_secs;
        (local.rem_euclid(86_400) / 3600) as u8
    }

    /// When the next beat is due (ms), or `None` when off. A beat missed
    /// while the machine slept is due at once (one beat, not many); one
    /// that falls outside the active hours moves to their next start.
    pub fn next_ms(&self, now_ms: u64) -> Option<u64> {
        let interval = self.interval?.as_millis() as u64;
        let mut due = match self.last_ms {
            Some(last) => (last + interval).max(last),
            // The first beat one interval after the daemon starts.
            None => self.since_ms + interval,
        };
        if let Some(active) = self.active {
            // Step forward an hour at a time to the next active hour.
            for _ in 0..25 {
                if active.contains(self.hour_at(due.max(now_ms))) {
                    break;
                }
                let t = due.max(now_ms);
                due = (t / 3_600_000 + 1) * 3_600_000;
            }
        }
        Some(due)
    }

    /// Whether a beat is due at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        self.next_ms(now_ms).is_some_and(|d| now_ms >= d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nexus_core::{Clock, ManualClock};

    const H: u64 = 3_600_000;

    #[test]
    fn intervals_parse_and_out_of_range_is_refused() {
        assert_eq!(
            parse_interval("1h").unwrap(),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_interval("24h").unwrap(), Some(MAX_INTERVAL));
        assert_eq!(parse_interval("off").unwrap(), None);
        assert_eq!(parse_interval("0").unwrap(), None);
        assert!(parse_interval("25h").unwrap_err().contains("at most 24h"));
        assert_eq!(
            parse_interval("10s").unwrap(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_interval("0s").unwrap(), None);
        assert!(parse_interval("soon").is_err());
        assert!(ActiveHours::parse("9-18").is_ok());
        assert!(ActiveHours::parse("9-9").is_err());
        assert!(ActiveHours::parse("25-3").is_err());
    }

    #[test]
    fn beats_every_interval_by_the_manual_clock_and_once_after_a_sleep() {
        let clock = ManualClock::new(1_000 * H);
        let mut s = Schedule {
            interval: Some(Duration::from_secs(3600)),
            active: None,
            utc_offset_secs: 0,
            last_ms: None,
            since_ms: clock.now_millis(),
        };
        assert_eq!(s.next_ms(clock.now_millis()), Some(1_001 * H));
        assert!(!s.due(clock.now_millis()));
        clock.advance(Duration::from_secs(3600));
        assert!(s.due(clock.now_millis()));
        s.last_ms = Some(clock.now_millis());
        assert!(!s.due(clock.now_millis()));
        // The machine sleeps through ten beats: one beat on waking.
        clock.advance(Duration::from_secs(10 * 3600));
        assert!(s.due(clock.now_millis()));
        s.last_ms = Some(clock.now_millis());
        assert_eq!(s.next_ms(clock.now_millis()), Some(clock.now_millis() + H));
        // Off: never.
        s.interval = None;
        assert_eq!(s.next_ms(clock.now_millis()), None);
    }

    #[test]
    fn active_hours_hold_beats_until_they_open_even_across_midnight() {
        // 17:30 UTC, local time UTC+2 (19:30); active 9-18 local.
        let now = 1_000 * 24 * H + 17 * H + H / 2;
        let s = Schedule {
            interval: Some(Duration::from_secs(3600)),
            active: Some(ActiveHours::parse("9-18").unwrap()),
            utc_offset_secs: 2 * 3600,
            last_ms: Some(now - H),
            since_ms: 0,
        };
        // Due now by interval, but 19:30 local is outside: the next is 09:00 local (07:00 UTC).
        let next = s.next_ms(now).unwrap();
        assert_eq!(next, 1_001 * 24 * H + 7 * H);
        assert!(!s.due(now));
        // Night hours wrap past midnight.
        let night = ActiveHours::parse("22-6").unwrap();
        assert!(night.contains(23) && night.contains(0) && night.contains(5));
        assert!(!night.contains(6) && !night.contains(12));
    }
}
