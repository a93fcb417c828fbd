//! [`Follow`]: the inbox as a pull stream, in this process. Each
//! [`next`](Follow::next) hands over one item; the caller marks it shown
//! with [`shown`](Follow::shown) once it has shown it, so a crash between
//! the two shows it again rather than losing it. A lost connection is said
//! as a notice and reconnected with backoff (1 s doubling to 30 s, with
//! jitter), catching up on what was sent meanwhile.

use std::borrow::BorrowMut;
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::client::Connection;
use crate::frame::PeerInfo;
use crate::MeshError;

use super::{Answer, Incoming, Item, Peer};

/// A followed inbox; see the module docs. It holds its peer, or borrows
/// it (`Follow<&mut Peer>`).
#[derive(Debug)]
pub struct Follow<P: BorrowMut<Peer> = Peer> {
    peer: P,
    mesh: String,
    live: Option<(Connection, Vec<PeerInfo>)>,
    ready: VecDeque<Item>,
    /// Handed over, not yet marked shown: not handed over again.
    handed: BTreeSet<i64>,
    /// The reconnection schedule and the member list.
    session: crate::session::Session,
    /// A wait before the next connection attempt.
    backoff: Option<Duration>,
}

impl<P: BorrowMut<Peer>> Follow<P> {
    /// Follows `mesh`'s inbox as `peer`.
    pub fn new(peer: P, mesh: &str) -> Follow<P> {
        let session = peer.borrow().session();
        Follow {
            peer,
            mesh: mesh.to_string(),
            live: None,
            ready: VecDeque::new(),
            handed: BTreeSet::new(),
            session,
            backoff: None,
        }
    }

    /// Marks an item shown (by its [`Item::seq`]).
    pub fn shown(&mut self, seqs: &[i64]) -> Result<(), MeshError> {
        self.peer.borrow_mut().inbox.mark_all_shown(seqs)?;
        for s in seqs {
            self.handed.remove(s);
        }
        Ok(())
    }

    fn queue(&mut self, items: Vec<Item>) {
        for i in items {
            match i.seq {
                Some(s) if !self.handed.insert(s) => {}
                _ => self.ready.push_back(i),
            }
        }
    }

    /// The next item; waits for one. Only a refusal (blocked, removed) or
    /// a failing local store ends it with an error.
    pub async fn next(&mut self) -> Result<Item, MeshError> {
        loop {
            if let Some(i) = self.ready.pop_front() {
                return Ok(i);
            }
            if let Some(d) = self.backoff.take() {
                tokio::time::sleep(d).await;
            }
            match self.step().await {
                Ok(()) => {}
                Err(MeshError::Io(why)) => {
                    self.live = None;
                    let pause = self.session.lost(&why);
                    tracing::warn!(mesh = %self.mesh, wait_ms = pause.as_millis() as u64, "lost the broker: {why}");
                    self.backoff = Some(pause);
                    self.ready.push_back(Item {
                        seq: None,
                        message: Incoming::Notice {
                            text: format!(
                                "lost the broker ({why}); reconnecting in {:.1}s",
                                pause.as_secs_f64()
                            ),
                        },
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fetches once (connects, takes in what is queued, catches up) and
    /// shows what the inbox holds, marking each shown once `show` returned.
    pub async fn once(&mut self, show: &mut super::Show<'_>) -> Result<(), MeshError> {
        self.step().await?;
        while let Some(i) = self.ready.pop_front() {
            show(&i.message)?;
            if let Some(seq) = i.seq {
                self.shown(&[seq])?;
            }
        }
        Ok(())
    }

    /// Connects and fetches, or takes in the next frame.
    async fn step(&mut self) -> Result<(), MeshError> {
        let Follow {
            peer,
            mesh,
            live,
            session,
            ..
        } = self;
        let peer: &mut Peer = peer.borrow_mut();
        let mut items = Vec::new();
        match live {
            None => {
                let (c, queued) = peer.connect(mesh).await?;
                let Answer::Inbox { items: fetched } = peer.fetch(mesh, &c, queued).await? else {
                    return Err(MeshError::Io(
                        "fetching the inbox answered something else".into(),
                    ));
                };
                let peers = peer.peers_on(&c).await?;
                session.connected(&peers);
                *live = Some((c, peers));
                items = fetched;
            }
            Some((c, peers)) => {
                let Some(f) = c.recv_timeout(crate::session::IDLE_PING).await else {
                    if c.is_closed() {
                        return Err(MeshError::Io("the broker closed the connection".into()));
                    }
                    // Quiet: is the broker still there?
                    return crate::session::ping(c).await;
                };
                if session.strangers(std::slice::from_ref(&f)) {
                    if let Ok(fresh) = peer.peers_on(c).await {
                        session.members(&fresh);
                        *peers = fresh;
                    }
                }
                if let Some(n) = peer.absorb(mesh, c, f).await? {
                    items.push(Item {
                        seq: None,
                        message: n,
                    });
                }
                if c.pending() == 0 {
                    for n in peer.answer_key_requests(mesh, c, peers).await? {
                        items.push(Item {
                            seq: None,
                            message: n,
                        });
                    }
                    items.extend(peer.collect_inbox(mesh, peers)?);
                }
            }
        }
        self.queue(items);
        Ok(())
    }
}
