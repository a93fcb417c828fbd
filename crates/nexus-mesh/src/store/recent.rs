//! The SQLite store's memory of recent message ids: one message per id and
//! topic, checked in memory over a window of each topic's latest messages.
//! The ids are stored with the messages (`topic_log.id`, written in the
//! same sequential append), and a topic's window is read back from there
//! the first time it is needed after a start, so a random-keyed index is
//! never written per message (it cost a tenth of the broker's throughput
//! and grows the WAL by a page per message; docs/PERFORMANCE.md).

use std::collections::{HashMap, VecDeque};

/// Each topic's window: a duplicate of one of its latest this-many
/// messages is caught (a retry after a lost ack, a bridged copy by a second
/// path); an older one is stored again.
pub(super) const WINDOW: usize = 4096;

/// Topics whose windows are held at once (least recently used goes first;
/// it is read back from the database when needed again).
pub(super) const TOPICS: usize = 512;

/// An id as stored: 32 hex digits as their 16 bytes, anything else as is.
pub(super) fn id_bytes(id: &str) -> Vec<u8> {
    let b = id.as_bytes();
    if b.len() == 32 && b.iter().all(u8::is_ascii_hexdigit) {
        let nib = |c: u8| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => c - b'A' + 10,
        };
        return b.chunks(2).map(|p| nib(p[0]) << 4 | nib(p[1])).collect();
    }
    b.to_vec()
}

/// An id in memory: its 16 bytes (a hex id), else 16 bytes of its SHA-256.
fn short(id: &[u8]) -> u128 {
    match <[u8; 16]>::try_from(id) {
        Ok(b) => u128::from_be_bytes(b),
        Err(_) => {
            let d = ring::digest::digest(&ring::digest::SHA256, id);
            let mut b = [0u8; 16];
            b.copy_from_slice(&d.as_ref()[..16]);
            u128::from_be_bytes(b)
        }
    }
}

#[derive(Default)]
struct Window {
    seqs: HashMap<u128, i64>,
    order: VecDeque<u128>,
}

impl Window {
    fn insert(&mut self, id: u128, seq: i64) {
        if self.seqs.insert(id, seq).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.seqs.remove(&old);
            }
        }
    }
}

/// The windows held, by topic number.
#[derive(Default)]
pub(super) struct RecentIds {
    topics: HashMap<i64, Window>,
    used: VecDeque<i64>,
}

impl RecentIds {
    /// Whether topic `t`'s window is held (else [`load`](Self::load) it).
    pub(super) fn has(&self, t: i64) -> bool {
        self.topics.contains_key(&t)
    }

    /// Holds topic `t`'s window: `(id, seq)` oldest first.
    pub(super) fn load(&mut self, t: i64, ids: impl IntoIterator<Item = (Vec<u8>, i64)>) {
        let mut w = Window::default();
        for (id, seq) in ids {
            w.insert(short(&id), seq);
        }
        self.topics.insert(t, w);
        self.touch(t);
        while self.used.len() > TOPICS {
            if let Some(old) = self.used.pop_front() {
                self.topics.remove(&old);
            }
        }
    }

    fn touch(&mut self, t: i64) {
        if self.used.back() != Some(&t) {
            self.used.retain(|x| *x != t);
            self.used.push_back(t);
        }
    }

    /// The sequence number of `id` in topic `t`, if it is in the window.
    pub(super) fn get(&mut self, t: i64, id: &[u8]) -> Option<i64> {
        self.touch(t);
        self.topics.get(&t)?.seqs.get(&short(id)).copied()
    }

    /// Records a stored message.
    pub(super) fn insert(&mut self, t: i64, id: &[u8], seq: i64) {
        self.topics.entry(t).or_default().insert(short(id), seq);
    }

    /// Forgets everything (after a transaction rolled back).
    pub(super) fn clear(&mut self) {
        self.topics.clear();
        self.used.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_stored_as_their_bytes() {
        assert_eq!(id_bytes(&"0aF1".repeat(8)), [0x0a, 0xf1].repeat(8));
        assert_eq!(id_bytes("p1"), b"p1");
        assert_eq!(id_bytes(&"zz".repeat(16)), "zz".repeat(16).as_bytes());
    }

    #[test]
    fn windows_and_topics_are_bounded() {
        let mut r = RecentIds::default();
        r.load(
            1,
            (0..WINDOW as i64 + 10).map(|i| (i.to_be_bytes().to_vec(), i)),
        );
        assert_eq!(
            r.get(1, &0i64.to_be_bytes()),
            None,
            "the oldest left the window"
        );
        assert_eq!(
            r.get(1, &(WINDOW as i64).to_be_bytes()),
            Some(WINDOW as i64)
        );
        for t in 2..=TOPICS as i64 + 1 {
            r.load(t, []);
        }
        assert!(!r.has(1), "the least recently used topic was let go");
        assert!(r.topics.len() <= TOPICS && r.used.len() <= TOPICS);
        r.insert(2, b"x", 7);
        assert_eq!(r.get(2, b"x"), Some(7));
        r.clear();
        assert!(!r.has(2));
    }
}
