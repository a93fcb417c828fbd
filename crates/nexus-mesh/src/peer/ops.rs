//! The mesh verbs as data: an [`Op`] and its [`Answer`], both serde, so
//! one verb runs the same way in this process ([`Peer::run`] opens a
//! connection) or in the resident daemon, on the connection it holds
//! ([`Peer::perform`], fed by a [`Keeper`]). The daemon serialises the ops
//! of one mesh on its one connection; each answer goes back to whoever
//! asked, however many ask at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::client::Connection;
use crate::frame::{Frame, PeerInfo};
use crate::MeshError;

use super::{Incoming, Peer};

/// Frames stored in one commit, at most.
pub(super) const BURST: usize = 512;

/// One mesh verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The members, status and summary opened.
    Peers,
    /// A direct message to a peer (id, id prefix or name).
    Send {
        /// Who.
        to: String,
        /// What.
        text: String,
    },
    /// A topic message under the current key epoch.
    Publish {
        /// The topic.
        topic: String,
        /// What.
        text: String,
    },
    /// A bridge's copy of a topic message from another mesh, under the
    /// id the bridge derived ([`crate::bridge::copy_id`]): the broker keeps
    /// one message per id, however many bridges bring it.
    Relay {
        /// The topic.
        topic: String,
        /// The copy's id.
        id: String,
        /// The message and where it began.
        envelope: crate::bridge::Envelope,
    },
    /// A page of a topic's history, newest first.
    History {
        /// The topic.
        topic: String,
        /// Only messages before this sequence number.
        before: Option<u64>,
        /// At most this many.
        limit: u32,
    },
    /// Sets status and/or summary (sealed under the mesh key).
    Presence {
        /// The status.
        status: Option<String>,
        /// The summary.
        summary: Option<String>,
    },
    /// Grants (or revokes) capabilities.
    Grant {
        /// Who.
        who: String,
        /// `read`, `dm`, `broadcast`, `admin`.
        caps: Vec<String>,
        /// Take them away instead.
        revoke: bool,
    },
    /// Blocks a member and rotates the mesh key.
    Block {
        /// Who.
        who: String,
    },
    /// Sends the mesh key to a newcomer waiting for approval.
    Approve {
        /// Who.
        who: String,
    },
    /// Asks the owner and admins for the current mesh key.
    RequestKey,
    /// The safety number with a member.
    Verify {
        /// Who.
        who: String,
    },
    /// A signed invite (owner only), registered at the broker.
    Invite {
        /// Valid for this long.
        expires_secs: u64,
        /// How many joins it admits.
        uses: u32,
        /// The role it grants.
        role: String,
    },
    /// What the inbox holds unshown (fetched first when run in-process).
    /// Nothing is marked shown: see [`Op::Shown`].
    Inbox,
    /// Marks inbox items shown, by [`Item::seq`].
    Shown {
        /// The items.
        seqs: Vec<i64>,
    },
    /// Unread counts: `direct` and `#topic`.
    Unread,
    /// This peer's name and id.
    Whoami,
}

/// One page entry of a topic's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The topic's sequence number.
    pub seq: u64,
    /// The message, opened (or a notice saying why not).
    pub message: Incoming,
}

/// One inbox item: a message to show, then mark shown by its `seq`; a
/// notice has no `seq` (it is said once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The inbox row, for [`Op::Shown`].
    pub seq: Option<i64>,
    /// What arrived.
    pub message: Incoming,
}

/// What an [`Op`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// [`Op::Peers`].
    Peers {
        /// The members.
        peers: Vec<PeerInfo>,
    },
    /// [`Op::Send`], [`Op::Publish`]: stored by the broker.
    Sent {
        /// The message id.
        id: String,
    },
    /// [`Op::History`].
    History {
        /// Newest first.
        entries: Vec<HistoryEntry>,
    },
    /// Done ([`Op::Presence`], [`Op::Grant`], [`Op::Shown`]).
    Done,
    /// [`Op::Block`]: the new key epoch.
    Blocked {
        /// The epoch.
        epoch: u32,
    },
    /// [`Op::Approve`]: whom the key went to.
    Approved {
        /// Their name.
        name: String,
    },
    /// [`Op::RequestKey`]: how many were asked.
    Asked {
        /// Owner and admins asked.
        count: usize,
    },
    /// [`Op::Verify`].
    Verified {
        /// The member.
        peer: PeerInfo,
        /// The safety number, in groups.
        safety_number: String,
    },
    /// [`Op::Invite`].
    Invite {
        /// `nexus://join/...`.
        link: String,
        /// The full code.
        code: String,
        /// The short code registered at the broker.
        short_code: String,
        /// The broker.
        broker: String,
        /// When it expires, Unix ms.
        expires_ms: u64,
    },
    /// [`Op::Inbox`].
    Inbox {
        /// In arrival order.
        items: Vec<Item>,
    },
    /// [`Op::Unread`].
    Unread {
        /// `("direct", n)`, `("#topic", n)`.
        counts: Vec<(String, u64)>,
    },
    /// [`Op::Whoami`].
    Me {
        /// The display name.
        name: String,
        /// The peer id.
        peer: String,
    },
}

/// An op for a resident keeper, and where its answer goes.
#[derive(Debug)]
pub struct Job {
    /// The verb.
    pub op: Op,
    /// Its answer.
    pub reply: oneshot::Sender<Result<Answer, MeshError>>,
}

/// What a resident keeper ([`Peer::keep`]) serves besides the broker:
/// jobs to run on its connection, and a counter it moves whenever
/// something is stored (so a follower waits for news, not for a timer).
#[derive(Debug)]
pub struct Keeper {
    /// Ops to run; closed means stop.
    pub jobs: mpsc::Receiver<Job>,
    /// Moved on every message stored.
    pub stored: watch::Sender<u64>,
}

impl Peer {
    /// Runs `op` on `mesh` in this process: connects (when the op needs
    /// the broker), runs it, and closes.
    pub async fn run(&mut self, mesh: &str, op: Op) -> Result<Answer, MeshError> {
        if matches!(op, Op::Shown { .. } | Op::Whoami) {
            return self.perform_local(mesh, op);
        }
        let (c, queued) = self.connect(mesh).await?;
        match op {
            Op::Inbox => self.fetch(mesh, &c, queued).await,
            // What waits at the broker counts too: stored first.
            Op::Unread => {
                self.take_in(mesh, &c, queued).await?;
                self.perform_local(mesh, op)
            }
            op => self.perform(mesh, &c, op).await,
        }
    }

    /// An invite to `mesh` (owner only), registered at the broker so its
    /// short code works too.
    pub async fn invite(
        &mut self,
        mesh: &str,
        expires: Duration,
        uses: u32,
        role: &str,
    ) -> Result<crate::auth::Invite, MeshError> {
        let (c, _) = self.connect(mesh).await?;
        self.invite_on(&c, mesh, expires, uses, role).await
    }

    /// Sends the mesh key to a newcomer waiting for approval; their name.
    pub async fn approve(&mut self, mesh: &str, who: &str) -> Result<String, MeshError> {
        let (c, _) = self.connect(mesh).await?;
        self.approve_on(&c, mesh, who).await
    }

    /// Blocks a member and rotates the mesh key; the new epoch.
    pub async fn block(&mut self, mesh: &str, who: &str) -> Result<u32, MeshError> {
        let (c, _) = self.connect(mesh).await?;
        self.block_on(&c, mesh, who).await
    }

    /// Asks the owner and admins for the current key; how many were asked.
    pub async fn request_key(&self, mesh: &str) -> Result<usize, MeshError> {
        let (c, _) = self.connect(mesh).await?;
        self.request_key_on(&c, mesh).await
    }

    pub(super) fn perform_local(&mut self, mesh: &str, op: Op) -> Result<Answer, MeshError> {
        match op {
            Op::Shown { seqs } => {
                self.inbox.mark_all_shown(&seqs)?;
                Ok(Answer::Done)
            }
            Op::Unread => Ok(Answer::Unread {
                counts: self.unread(mesh)?,
            }),
            Op::Whoami => Ok(Answer::Me {
                name: self.identity.name().to_string(),
                peer: self.identity.peer_id().to_string(),
            }),
            _ => Err(MeshError::Invalid("not a local op".into())),
        }
    }

    /// Runs `op` on `mesh` over `c`, a connection that said hello.
    pub async fn perform(
        &mut self,
        mesh: &str,
        c: &Connection,
        op: Op,
    ) -> Result<Answer, MeshError> {
        Ok(match op {
            Op::Peers => Answer::Peers {
                peers: self.peers_opened(c, mesh).await?,
            },
            Op::Send { to, text } => Answer::Sent {
                id: self.send_on(c, &to, &text).await?,
            },
            Op::Publish { topic, text } => Answer::Sent {
                id: self.publish_on(c, mesh, &topic, &text).await?,
            },
            Op::Relay {
                topic,
                id,
                envelope,
            } => Answer::Sent {
                id: self.relay_on(c, mesh, &topic, &id, &envelope).await?,
            },
            Op::History {
                topic,
                before,
                limit,
            } => Answer::History {
                entries: self
                    .history_on(c, mesh, &topic, before, limit)
                    .await?
                    .into_iter()
                    .map(|(seq, message)| HistoryEntry { seq, message })
                    .collect(),
            },
            Op::Presence { status, summary } => {
                self.set_presence_on(c, mesh, status.as_deref(), summary.as_deref())
                    .await?;
                Answer::Done
            }
            Op::Grant { who, caps, revoke } => {
                self.grant_on(c, &who, &caps, revoke).await?;
                Answer::Done
            }
            Op::Block { who } => Answer::Blocked {
                epoch: self.block_on(c, mesh, &who).await?,
            },
            Op::Approve { who } => Answer::Approved {
                name: self.approve_on(c, mesh, &who).await?,
            },
            Op::RequestKey => Answer::Asked {
                count: self.request_key_on(c, mesh).await?,
            },
            Op::Verify { who } => {
                let (peer, safety_number) = self.verify_on(c, mesh, &who).await?;
                Answer::Verified {
                    peer,
                    safety_number,
                }
            }
            Op::Invite {
                expires_secs,
                uses,
                role,
            } => {
                let inv = self
                    .invite_on(c, mesh, Duration::from_secs(expires_secs), uses, &role)
                    .await?;
                Answer::Invite {
                    link: inv.link(),
                    code: inv.code(),
                    short_code: inv.short_code(),
                    broker: inv.broker.clone(),
                    expires_ms: inv.expires_ms,
                }
            }
            Op::Inbox => {
                self.reload()?;
                let peers = self.peers_on(c).await?;
                let mut items: Vec<Item> = self
                    .answer_key_requests(mesh, c, &peers)
                    .await?
                    .into_iter()
                    .map(|message| Item { seq: None, message })
                    .collect();
                items.extend(self.collect_inbox(mesh, &peers)?);
                Answer::Inbox { items }
            }
            op @ (Op::Shown { .. } | Op::Unread | Op::Whoami) => self.perform_local(mesh, op)?,
        })
    }

    /// Takes in what is queued for this peer ([`take_in`](Self::take_in)),
    /// answers key requests, and returns what the inbox holds unshown.
    pub(super) async fn fetch(
        &mut self,
        mesh: &str,
        c: &Connection,
        queued: u32,
    ) -> Result<Answer, MeshError> {
        let (mut items, peers, older) = self.take_in(mesh, c, queued).await?;
        for n in self.answer_key_requests(mesh, c, &peers).await? {
            items.push(Item {
                seq: None,
                message: n,
            });
        }
        items.extend(self.collect_inbox(mesh, &peers)?);
        if let Some(n) = older {
            items.push(Item {
                seq: None,
                message: n,
            });
        }
        Ok(Answer::Inbox { items })
    }

    /// Stores what is queued for this peer (the `queued` frames the welcome
    /// announced, each stored before it is acknowledged) and catches up on
    /// joined topics. Returns the notices said meanwhile, the members, and
    /// a notice if older topic messages were left in history.
    async fn take_in(
        &mut self,
        mesh: &str,
        c: &Connection,
        queued: u32,
    ) -> Result<(Vec<Item>, Vec<PeerInfo>, Option<Incoming>), MeshError> {
        let mut items = Vec::new();
        // The welcome said how many are queued; they follow it at once,
        // and are stored a burst at a time (one commit each).
        let mut left = queued;
        while left > 0 {
            let Some(first) = c.recv_timeout(Duration::from_secs(10)).await else {
                break;
            };
            let mut burst = vec![first];
            while burst.len() < BURST {
                match c.try_recv() {
                    Some(f) => burst.push(f),
                    None => break,
                }
            }
            let counted = burst
                .iter()
                .filter(|f| !matches!(f, Frame::Publish { .. }))
                .count();
            left = left.saturating_sub(u32::try_from(counted).unwrap_or(u32::MAX));
            for n in self.absorb_all(mesh, c, burst).await? {
                items.push(Item {
                    seq: None,
                    message: n,
                });
            }
        }
        let peers = self.peers_on(c).await?;
        // Topic messages that overtook the page requests are stored too.
        while let Some(f) = c.try_recv() {
            if let Some(n) = self.absorb(mesh, c, f).await? {
                items.push(Item {
                    seq: None,
                    message: n,
                });
            }
        }
        let older = self.catch_up(mesh, c).await?;
        Ok((items, peers, older))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_answers_round_trip_as_json() {
        let ops = [
            Op::Peers,
            Op::Send {
                to: "bob".into(),
                text: "hi".into(),
            },
            Op::History {
                topic: "t".into(),
                before: Some(3),
                limit: 10,
            },
            Op::Shown { seqs: vec![1, 2] },
        ];
        for op in ops {
            let text = serde_json::to_string(&op).unwrap();
            assert_eq!(serde_json::from_str::<Op>(&text).unwrap(), op, "{text}");
        }
        assert_eq!(
            serde_json::to_value(Op::Send {
                to: "b".into(),
                text: "t".into()
            })
            .unwrap(),
            serde_json::json!({"op": "send", "to": "b", "text": "t"})
        );
        let a = Answer::Inbox {
            items: vec![Item {
                seq: Some(4),
                message: Incoming::Dm {
                    id: "m".into(),
                    from: "p".into(),
                    from_name: "bob".into(),
                    text: "hi".into(),
                },
            }],
        };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Answer>(&text).unwrap(), a);
        assert!(serde_json::from_str::<Op>(r#"{"op":"launch"}"#).is_err());
    }
}
