//! The sans-IO side of keeping one mesh: what to do with each frame that
//! arrives, when to reconnect, and how to page through history to catch
//! up. Frames in, decisions out; time from a [`Clock`], jitter from a
//! [`RandomSource`]. The I/O shell (`Peer::keep`, `Follow`) carries the
//! decisions out: it stores, acknowledges, asks for pages and sleeps. The
//! key decisions themselves are [`crate::policy`]'s, also pure.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{Backoff, Clock, RandomSource};

use crate::frame::{Frame, PeerInfo};

/// Reconnecting: 1 s doubling to 30 s, with jitter, from scratch after a
/// minute connected.
pub const RECONNECT_BASE: Duration = Duration::from_secs(1);
/// The longest wait between reconnection attempts.
pub const RECONNECT_CAP: Duration = Duration::from_secs(30);
/// Connected this long, the next loss starts the schedule over.
pub const RECONNECT_HEALTHY: Duration = Duration::from_secs(60);

/// A connection quiet this long is asked whether it is still there
/// ([`Frame::Ping`]): a half-open connection (a broker that vanished
/// without a word) is found and replaced.
pub const IDLE_PING: Duration = Duration::from_secs(30);
/// How long a ping waits for its answer.
pub const PING_WAIT: Duration = Duration::from_secs(10);

/// Asks `c` whether the broker is still there.
pub async fn ping(c: &crate::client::Connection) -> Result<(), crate::MeshError> {
    match c.request(&Frame::Ping, PING_WAIT).await {
        Ok(_) => Ok(()),
        Err(e) => Err(crate::MeshError::Io(format!(
            "the broker stopped answering ({e})"
        ))),
    }
}

/// The most history entries one page asks for.
pub const PAGE: u32 = 500;

/// What to do with one frame from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A message: store it in the inbox; then, for a direct message,
    /// acknowledge `ack` (only once stored).
    Store {
        /// The id to acknowledge once stored (direct messages).
        ack: Option<String>,
    },
    /// Someone joined: the key policy decides about the mesh key; then
    /// acknowledge the notice.
    Joined,
    /// The broker refused something: say so.
    Refused {
        /// Its code.
        code: String,
        /// Its message.
        message: String,
    },
    /// Nothing to do (this peer's own topic message echoed back, an
    /// answer nobody waits for).
    Ignore,
}

/// What a frame from the broker asks of peer `me`.
pub fn triage(me: &str, f: &Frame) -> Step {
    match f {
        Frame::Dm { id, .. } => Step::Store {
            ack: Some(id.clone()),
        },
        Frame::Publish { from, .. } if from == me => Step::Ignore,
        Frame::Publish { .. } => Step::Store { ack: None },
        Frame::MemberJoined { .. } => Step::Joined,
        Frame::Error { code, message } => Step::Refused {
            code: code.clone(),
            message: message.clone(),
        },
        _ => Step::Ignore,
    }
}

/// Whether the connection is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Trying to connect.
    Connecting,
    /// Connected since this time (ms).
    Live {
        /// Since when.
        since_ms: u64,
    },
    /// Lost; the next attempt is due at `until_ms`.
    Waiting {
        /// When to try again.
        until_ms: u64,
        /// Why it was lost.
        why: String,
    },
}

/// One mesh, as a resident process keeps it.
#[derive(Debug)]
pub struct Session {
    me: String,
    clock: Arc<dyn Clock>,
    backoff: Backoff,
    link: Link,
    /// Peer ids in the member list as last fetched.
    members: BTreeSet<String>,
}

impl Session {
    /// A session for this peer (`me`, its id).
    pub fn new(me: &str, clock: Arc<dyn Clock>, rng: Arc<dyn RandomSource>) -> Session {
        Session {
            me: me.to_string(),
            backoff: Backoff::new(
                clock.clone(),
                rng,
                RECONNECT_BASE,
                RECONNECT_CAP,
                RECONNECT_HEALTHY,
            ),
            clock,
            link: Link::Connecting,
            members: BTreeSet::new(),
        }
    }

    /// The link's state.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Connected, with this member list.
    pub fn connected(&mut self, members: &[PeerInfo]) {
        self.backoff.up();
        self.link = Link::Live {
            since_ms: self.clock.now_millis(),
        };
        self.members(members);
    }

    /// A fresh member list.
    pub fn members(&mut self, members: &[PeerInfo]) {
        self.members = members.iter().map(|p| p.peer.clone()).collect();
    }

    /// The connection was lost (or could not be made): how long to wait.
    pub fn lost(&mut self, why: &str) -> Duration {
        let wait = self.backoff.down();
        self.link = Link::Waiting {
            until_ms: self.clock.now_millis() + wait.as_millis() as u64,
            why: why.to_string(),
        };
        wait
    }

    /// Whether a reconnection attempt is due.
    pub fn due(&self) -> bool {
        match &self.link {
            Link::Waiting { until_ms, .. } => self.clock.now_millis() >= *until_ms,
            _ => false,
        }
    }

    /// What `f` asks for.
    pub fn triage(&self, f: &Frame) -> Step {
        triage(&self.me, f)
    }

    /// Whether any of `frames` comes from (or announces) a peer missing
    /// from the member list: then it should be fetched again, to name
    /// the sender and open what it sent.
    pub fn strangers(&self, frames: &[Frame]) -> bool {
        frames.iter().any(|f| match f {
            Frame::Dm { from, .. } | Frame::Publish { from, .. } => !self.members.contains(from),
            Frame::MemberJoined { .. } => true,
            _ => false,
        })
    }
}

/// Catching up on one topic: pages of history, newest first, back to the
/// last sequence number seen (or at most `cap` messages back).
#[derive(Debug, Clone)]
pub struct CatchUp {
    topic: String,
    mark: u64,
    cap: usize,
    newest: u64,
    before: Option<u64>,
    taken: usize,
    done: bool,
    left_behind: bool,
}

impl CatchUp {
    /// From `mark`, the newest sequence number already stored.
    pub fn new(topic: &str, mark: u64, cap: usize) -> CatchUp {
        CatchUp {
            topic: topic.to_string(),
            mark,
            cap,
            newest: mark,
            before: None,
            taken: 0,
            done: false,
            left_behind: false,
        }
    }

    /// The next page to ask for, or `None` when caught up.
    pub fn request(&self) -> Option<Frame> {
        (!self.done).then(|| Frame::History {
            topic: self.topic.clone(),
            before: self.before,
            limit: PAGE,
        })
    }

    /// Takes a page: returns the entries to store (those after the mark),
    /// and plans the next page.
    pub fn page(&mut self, entries: Vec<(u64, Frame)>) -> Vec<Frame> {
        let Some(&(oldest, _)) = entries.last() else {
            self.done = true;
            return Vec::new();
        };
        self.newest = self.newest.max(entries[0].0);
        let fresh: Vec<Frame> = entries
            .into_iter()
            .filter(|(seq, _)| *seq > self.mark)
            .map(|(_, f)| f)
            .collect();
        self.taken += fresh.len();
        if oldest <= self.mark + 1 {
            self.done = true;
        } else if self.taken >= self.cap {
            self.done = true;
            self.left_behind = true;
        } else {
            self.before = Some(oldest);
        }
        fresh
    }

    /// The mark to keep once what [`page`](Self::page) returned is stored.
    pub fn new_mark(&self) -> u64 {
        self.newest
    }

    /// Whether older unseen messages were left in history (the cap).
    pub fn left_behind(&self) -> bool {
        self.left_behind
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nexus_core::{ManualClock, SeededRandom};

    fn publish(id: &str, from: &str) -> Frame {
        Frame::Publish {
            id: id.into(),
            from: from.into(),
            topic: "t".into(),
            epoch: 0,
            nonce: [0; 24],
            body: vec![1],
        }
    }

    fn dm(id: &str, from: &str) -> Frame {
        Frame::Dm {
            id: id.into(),
            from: from.into(),
            to: "me".into(),
            nonce: [0; 24],
            body: vec![1],
        }
    }

    fn session(clock: &ManualClock) -> Session {
        Session::new(
            "me",
            Arc::new(clock.clone()),
            Arc::new(SeededRandom::new(3)),
        )
    }

    #[test]
    fn frames_are_triaged_store_first_ack_after() {
        let clock = ManualClock::new(0);
        let mut s = session(&clock);
        s.connected(&[PeerInfo::newcomer("bob", "bob", "x")]);
        assert_eq!(
            s.triage(&dm("d1", "bob")),
            Step::Store {
                ack: Some("d1".into())
            }
        );
        assert_eq!(s.triage(&publish("p1", "bob")), Step::Store { ack: None });
        assert_eq!(s.triage(&publish("p2", "me")), Step::Ignore);
        assert_eq!(
            s.triage(&Frame::MemberJoined {
                peer: "eve".into(),
                name: "eve".into(),
                x25519: "x".into(),
                invite: String::new()
            }),
            Step::Joined
        );
        assert!(matches!(
            s.triage(&Frame::error(crate::frame::Refusal::Blocked, "no")),
            Step::Refused { code, .. } if code == "blocked"
        ));
        assert_eq!(s.triage(&Frame::Ack { id: "a".into() }), Step::Ignore);
        // A sender missing from the member list asks for a fresh one.
        assert!(!s.strangers(&[dm("d", "bob"), publish("p", "bob")]));
        assert!(s.strangers(&[dm("d", "bob"), dm("d2", "carol")]));
    }

    #[test]
    fn a_lost_link_waits_by_the_manual_clock_and_backs_off() {
        let clock = ManualClock::new(10_000);
        let mut s = session(&clock);
        assert_eq!(s.link(), &Link::Connecting);
        let first = s.lost("refused");
        assert!(first >= RECONNECT_BASE && first <= RECONNECT_BASE.mul_f64(1.25));
        assert!(!s.due());
        clock.advance(first - Duration::from_millis(1));
        assert!(!s.due());
        clock.advance(Duration::from_millis(1));
        assert!(s.due());
        // Failing to connect again doubles the wait.
        let second = s.lost("refused");
        assert!(second >= Duration::from_secs(2), "{second:?}");
        s.connected(&[]);
        assert_eq!(
            s.link(),
            &Link::Live {
                since_ms: 10_000 + first.as_millis() as u64
            }
        );
        // A minute connected: the next loss waits a second again.
        clock.advance(RECONNECT_HEALTHY);
        let again = s.lost("the broker restarted");
        assert!(again < Duration::from_millis(1_250), "{again:?}");
        assert!(matches!(s.link(), Link::Waiting { why, .. } if why == "the broker restarted"));
    }

    fn page(seqs: std::ops::RangeInclusive<u64>) -> Vec<(u64, Frame)> {
        seqs.rev()
            .map(|s| (s, publish(&format!("m{s}"), "bob")))
            .collect()
    }

    #[test]
    fn catching_up_pages_back_to_the_mark_and_moves_it_only_forward() {
        // Seen up to 100; history holds 101..=1300: three pages.
        let mut c = CatchUp::new("t", 100, 10_000);
        assert!(matches!(
            c.request(),
            Some(Frame::History {
                before: None,
                limit: PAGE,
                ..
            })
        ));
        assert_eq!(c.page(page(801..=1300)).len(), 500);
        assert!(matches!(
            c.request(),
            Some(Frame::History {
                before: Some(801),
                ..
            })
        ));
        assert_eq!(c.page(page(301..=800)).len(), 500);
        // The last page reaches behind the mark: only 101..=300 are new.
        assert_eq!(c.page(page(1..=300)).len(), 200);
        assert!(c.request().is_none());
        assert_eq!(c.new_mark(), 1300);
        assert!(!c.left_behind());
        // Nothing new: an empty page, and the mark stays.
        let mut c = CatchUp::new("t", 50, 10_000);
        assert!(c.page(Vec::new()).is_empty());
        assert!(c.request().is_none());
        assert_eq!(c.new_mark(), 50);
    }

    #[test]
    fn catching_up_stops_at_the_cap_and_says_so() {
        let mut c = CatchUp::new("t", 0, 600);
        c.page(page(1501..=2000));
        c.page(page(1001..=1500));
        assert!(c.request().is_none(), "600 taken: stop");
        assert!(c.left_behind());
        assert_eq!(c.new_mark(), 2000);
        assert_eq!(c.topic(), "t");
    }
}
