//! When to retry, and how long to wait. Pure: the clock and the random source
//! come in as arguments.

use std::time::{Duration, SystemTime};

use nexus_core::{ProviderError, RandomSource};

/// Exponential backoff with jitter, honouring the server's `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff.
    pub initial_backoff: Duration,
    /// The largest computed backoff.
    pub max_backoff: Duration,
    /// A server-requested wait longer than this is not honoured by waiting:
    /// the error goes back to the caller instead.
    pub max_retry_after: Duration,
    /// The most one request waits between its retries, in all.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            max_total_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Whether to retry after failed attempt number `attempt` (0-based).
    ///
    /// `x-should-retry` from the server wins when present; otherwise only
    /// transient kinds retry (429, 5xx, 529, network, timeouts), never
    /// `insufficient_quota`, auth or other 4xx. A `Retry-After` longer than
    /// `max_retry_after` is not waited out.
    pub fn should_retry(
        &self,
        attempt: u32,
        err: &ProviderError,
        should_retry_header: Option<bool>,
    ) -> bool {
        if attempt >= self.max_retries {
            return false;
        }
        if err.retry_after.is_some_and(|d| d > self.max_retry_after) {
            return false;
        }
        match should_retry_header {
            Some(v) => v && err.kind != nexus_core::ErrorKind::QuotaExceeded,
            None => err.is_retryable(),
        }
    }

    /// Whether waiting `next` after `waited` so far stays within
    /// [`RetryPolicy::max_total_wait`].
    pub fn within_total(&self, waited: Duration, next: Duration) -> bool {
        waited.saturating_add(next) <= self.max_total_wait
    }

    /// How long to wait before retry number `attempt + 1`.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &dyn RandomSource,
    ) -> Duration {
        if let Some(d) = retry_after.filter(|d| *d <= self.max_retry_after) {
            return d;
        }
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        // Jitter down by up to 25%, as the official SDKs do, so clients that
        // failed together do not retry together.
        exp.mul_f64(1.0 - 0.25 * rng.next_f64())
    }
}

/// Reads `retry-after-ms` (milliseconds, OpenAI), then `retry-after`
/// (seconds, or an HTTP date relative to `now`).
pub fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let v = retry_after?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_core::{ErrorKind, SeededRandom};

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(Some("1500"), Some("9"), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(None, Some("3"), now),
            Some(Duration::from_secs(3))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            parse_retry_after(None, Some(&date), now),
            Some(Duration::from_secs(7))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(
            parse_retry_after(None, Some(&past), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(None, Some("soon"), now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        let rng = SeededRandom::new(1);
        for attempt in 0..10 {
            let d = p.delay(attempt, None, &rng);
            let full = Duration::from_millis(500 * (1 << attempt)).min(Duration::from_secs(8));
            assert!(d <= full && d >= full.mul_f64(0.75), "{attempt}: {d:?}");
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3)), &rng),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn what_is_retried() {
        let p = RetryPolicy::default();
        let e = |k| ProviderError::new(k, "x", "m");
        assert!(p.should_retry(0, &e(ErrorKind::RateLimited), None));
        assert!(p.should_retry(1, &e(ErrorKind::Overloaded), None));
        assert!(!p.should_retry(2, &e(ErrorKind::Overloaded), None));
        assert!(!p.should_retry(0, &e(ErrorKind::QuotaExceeded), None));
        assert!(!p.should_retry(0, &e(ErrorKind::QuotaExceeded), Some(true)));
        assert!(!p.should_retry(0, &e(ErrorKind::Auth), None));
        assert!(!p.should_retry(0, &e(ErrorKind::InvalidRequest), None));
        assert!(!p.should_retry(0, &e(ErrorKind::Server), Some(false)));
        let long = e(ErrorKind::RateLimited).with_retry_after(Some(Duration::from_secs(3600)));
        assert!(!p.should_retry(0, &long, None));
    }

    /// Issue 14, defect 5: `retry-after: 45` twice is not 90 s of silence.
    #[test]
    fn the_total_wait_is_capped() {
        let p = RetryPolicy::default();
        assert!(!p.within_total(Duration::ZERO, Duration::from_secs(45)));
        assert!(p.within_total(Duration::from_secs(10), Duration::from_secs(20)));
        assert!(!p.within_total(Duration::from_secs(20), Duration::from_secs(11)));
    }
}
