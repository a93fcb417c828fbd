//! What a supervisor decides about one service, sans-IO: its state, when
//! to start it again after it exits, and when to call it degraded. Time
//! from a [`Clock`], jitter from a [`RandomSource`]; the process side
//! (`super::process`) carries the decisions out.
//!
//! Restarts back off from 0.5 s, doubling to 60 s, with jitter, and start
//! over after a minute running. A service never stops being restarted by
//! itself (unless its `restart` policy says so): past five crashes in ten
//! minutes it is `degraded`, still retried at the cap, and says why.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{Backoff, Clock, RandomSource};
use serde::{Deserialize, Serialize};

/// The first wait before a restart.
pub const RESTART_BASE: Duration = Duration::from_millis(500);
/// The longest wait between restarts.
pub const RESTART_CAP: Duration = Duration::from_secs(60);
/// Running this long, the next crash starts the schedule over.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// This many crashes within [`CRASH_WINDOW`] make a service degraded.
pub const DEGRADED_CRASHES: usize = 5;
/// The window [`DEGRADED_CRASHES`] are counted in.
pub const CRASH_WINDOW: Duration = Duration::from_secs(600);

/// When to restart a service that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Whatever the exit.
    #[default]
    Always,
    /// After a failure (a non-zero status or a signal), not after a clean exit.
    OnFailure,
    /// Never: it runs once.
    Never,
}

impl std::str::FromStr for Restart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Restart::Always),
            "on-failure" => Ok(Restart::OnFailure),
            "never" => Ok(Restart::Never),
            other => Err(format!(
                "restart is `{other}`; use always, on-failure or never"
            )),
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum Exit {
    /// It exited with this status.
    Code {
        /// The status.
        code: i32,
    },
    /// A signal killed it.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// It could not be started at all (the command does not exist, ...).
    Spawn {
        /// Why.
        error: String,
    },
}

impl Exit {
    /// Whether it counts as a failure.
    pub fn failed(&self) -> bool {
        !matches!(self, Exit::Code { code: 0 })
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code { code } => write!(f, "exit status {code}"),
            Exit::Signal { signal } => write!(f, "killed by signal {signal}"),
            Exit::Spawn { error } => write!(f, "could not start: {error}"),
        }
    }
}

/// Where a service is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    /// Being started.
    Starting,
    /// Running since this time (ms).
    Running {
        /// Since when.
        since_ms: u64,
    },
    /// Exited; starts again at `until_ms`.
    Backoff {
        /// When it starts again.
        until_ms: u64,
    },
    /// Crashing often; still started again, at the cap, at `until_ms`.
    Degraded {
        /// When it starts again.
        until_ms: u64,
        /// Why it is degraded.
        why: String,
    },
    /// Not running, and not to be started until asked.
    Stopped,
}

impl State {
    /// The state's name: `starting`, `running`, `backoff`, `degraded`, `stopped`.
    pub fn name(&self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running { .. } => "running",
            State::Backoff { .. } => "backoff",
            State::Degraded { .. } => "degraded",
            State::Stopped => "stopped",
        }
    }
}

/// One service's supervision.
#[derive(Debug)]
pub struct Supervision {
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    restart: Restart,
    backoff: Backoff,
    state: State,
    crashes: VecDeque<u64>,
    restarts: u32,
    last_exit: Option<Exit>,
}

impl Supervision {
    /// A service, stopped, restarted as `restart` says.
    pub fn new(clock: Arc<dyn Clock>, rng: Arc<dyn RandomSource>, restart: Restart) -> Self {
        Supervision {
            backoff: Backoff::new(
                clock.clone(),
                rng.clone(),
                RESTART_BASE,
                RESTART_CAP,
                HEALTHY_AFTER,
            ),
            rng,
            clock,
            restart,
            state: State::Stopped,
            crashes: VecDeque::new(),
            restarts: 0,
            last_exit: None,
        }
    }

    /// Its state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// How many times it was started again after exiting.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// How it last ended.
    pub fn last_exit(&self) -> Option<&Exit> {
        self.last_exit.as_ref()
    }

    /// Asked to start (or about to start it again).
    pub fn starting(&mut self) {
        self.state = State::Starting;
    }

    /// It runs.
    pub fn running(&mut self) {
        self.backoff.up();
        self.state = State::Running {
            since_ms: self.clock.now_millis(),
        };
    }

    /// Asked to stop: it stays stopped until asked to start.
    pub fn stopped(&mut self) {
        self.state = State::Stopped;
    }

    /// It ended (or could not start). Returns how long to wait before
    /// starting it again, or `None` when its restart policy says not to.
    pub fn exited(&mut self, how: Exit) -> Option<Duration> {
        let now = self.clock.now_millis();
        let failed = how.failed();
        self.last_exit = Some(how);
        let again = match self.restart {
            Restart::Always => true,
            Restart::OnFailure => failed,
            Restart::Never => false,
        };
        if !again {
            self.state = State::Stopped;
            return None;
        }
        let window = CRASH_WINDOW.as_millis() as u64;
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > window)
        {
            self.crashes.pop_front();
        }
        let degraded = self.crashes.len() >= DEGRADED_CRASHES;
        let backoff = self.backoff.down();
        // Degraded: retried at the cap (jittered the same way), never given up.
        let wait = if degraded {
            RESTART_CAP + RESTART_CAP.mul_f64(self.rng.next_f64() * 0.25)
        } else {
            backoff
        };
        let until_ms = now + wait.as_millis() as u64;
        self.restarts += 1;
        self.state = if degraded {
            State::Degraded {
                until_ms,
                why: format!(
                    "{} exits in the last {} minutes, the last: {}; retrying every {} s at most",
                    self.crashes.len(),
                    CRASH_WINDOW.as_secs() / 60,
                    self.last_exit
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                    RESTART_CAP.as_secs()
                ),
            }
        } else {
            State::Backoff { until_ms }
        };
        Some(wait)
    }

    /// Whether a restart is due now.
    pub fn due(&self) -> bool {
        match &self.state {
            State::Backoff { until_ms } | State::Degraded { until_ms, .. } => {
                self.clock.now_millis() >= *until_ms
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nexus_core::{ManualClock, SeededRandom};

    fn supervised(clock: &ManualClock, restart: Restart) -> Supervision {
        Supervision::new(
            Arc::new(clock.clone()),
            Arc::new(SeededRandom::new(5)),
            restart,
        )
    }

    #[test]
    fn a_crashing_service_backs_off_then_is_degraded_but_never_given_up() {
        let clock = ManualClock::new(1_000_000);
        let mut s = supervised(&clock, Restart::Always);
        s.starting();
        s.running();
        let mut waits = Vec::new();
        for i in 0..8 {
            let wait = s.exited(Exit::Code { code: 3 }).unwrap();
            waits.push(wait);
            if i < DEGRADED_CRASHES - 1 {
                assert_eq!(s.state().name(), "backoff", "crash {i}");
            } else {
                assert_eq!(s.state().name(), "degraded", "crash {i}");
                let State::Degraded { why, .. } = s.state() else {
                    unreachable!()
                };
                assert!(why.contains("exit status 3"), "{why}");
            }
            assert!(!s.due());
            clock.advance(wait);
            assert!(s.due());
            s.starting();
            s.running();
        }
        // 0.5 s doubling, jittered by at most a quarter; from the fifth
        // exit within ten minutes, degraded, at the 60 s cap.
        for (w, floor_ms) in waits
            .iter()
            .zip([500u64, 1_000, 2_000, 4_000, 60_000, 60_000, 60_000, 60_000])
        {
            let floor = Duration::from_millis(floor_ms);
            assert!(
                *w >= floor && *w <= floor.mul_f64(1.25),
                "{w:?} vs {floor:?}"
            );
        }
        assert_eq!(s.restarts(), 8);
        assert_eq!(s.last_exit(), Some(&Exit::Code { code: 3 }));
    }

    #[test]
    fn a_minute_running_starts_over_and_old_crashes_age_out() {
        let clock = ManualClock::new(0);
        let mut s = supervised(&clock, Restart::Always);
        s.running();
        for _ in 0..3 {
            let w = s.exited(Exit::Signal { signal: 9 }).unwrap();
            clock.advance(w);
            s.running();
        }
        // Healthy for a minute: the next wait is short again.
        clock.advance(HEALTHY_AFTER);
        let w = s.exited(Exit::Signal { signal: 9 }).unwrap();
        assert!(w < Duration::from_millis(625), "{w:?}");
        assert_eq!(s.state().name(), "backoff");
        // The fifth crash within ten minutes: degraded, retried at the cap.
        clock.advance(w);
        s.running();
        let w = s.exited(Exit::Signal { signal: 9 }).unwrap();
        assert_eq!(s.state().name(), "degraded");
        assert!(w >= RESTART_CAP && w <= RESTART_CAP.mul_f64(1.25), "{w:?}");
        // Ten quiet minutes later, one more crash is just a backoff.
        s.running();
        clock.advance(CRASH_WINDOW + Duration::from_secs(1));
        s.exited(Exit::Code { code: 1 }).unwrap();
        assert_eq!(s.state().name(), "backoff");
    }

    #[test]
    fn restart_policies_and_stop() {
        let clock = ManualClock::new(0);
        let mut once = supervised(&clock, Restart::Never);
        once.running();
        assert_eq!(once.exited(Exit::Code { code: 1 }), None);
        assert_eq!(once.state(), &State::Stopped);
        let mut on_failure = supervised(&clock, Restart::OnFailure);
        on_failure.running();
        assert_eq!(on_failure.exited(Exit::Code { code: 0 }), None);
        assert!(on_failure
            .exited(Exit::Spawn {
                error: "no such file".into()
            })
            .is_some());
        on_failure.stopped();
        assert!(!on_failure.due());
        assert_eq!("on-failure".parse::<Restart>(), Ok(Restart::OnFailure));
        assert!("sometimes"
            .parse::<Restart>()
            .unwrap_err()
            .contains("always"));
    }
}
