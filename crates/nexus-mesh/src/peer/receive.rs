//! What arrives, and how it is kept: every direct message goes into the
//! local [`Inbox`](crate::inbox::Inbox) and only then is acknowledged to
//! the broker; topic messages are stored too (caught up from history, or
//! live); a mesh key in a direct message is taken by the key policy; and
//! a message is marked shown only after the caller has shown it. A command
//! that does not read the inbox acknowledges nothing, so what arrived
//! during it stays queued at the broker: no path drops a message.

use crate::client::{open_dm, Connection};
use crate::frame::{Frame, PeerInfo};
use crate::identity::unhex;
use crate::policy::{key_handout, key_request, root_key_arrival, Handout, KeyArrival, PendingJoin};
use crate::session::Step;
use crate::{topic, MeshError};

use super::{now_ms, Answer, Envelope, Incoming, Item, Keeper, Op, Peer, ANSWER_WAIT, CATCH_UP};

/// What shows one message; an error (a closed stdout, say) stops the
/// showing and leaves that message and the rest unshown, for next time.
pub type Show<'a> = dyn FnMut(&Incoming) -> Result<(), MeshError> + 'a;

/// What hears a resident process's notices (see [`Peer::keep`]); `Send`,
/// so the keeping runs on any thread.
pub type Tell<'a> = dyn FnMut(&Incoming) -> Result<(), MeshError> + Send + 'a;

fn name_of(peers: &[PeerInfo], id: &str) -> String {
    peers
        .iter()
        .find(|p| p.peer == id)
        .map_or_else(|| id.to_string(), |p| p.name.clone())
}

impl Peer {
    /// Takes in one frame from the broker: a direct message is committed
    /// to the inbox and then acknowledged; a topic message is stored; a
    /// join notice is answered by the key policy and then acknowledged.
    /// Returns a notice to show, if any.
    pub(super) async fn absorb(
        &mut self,
        mesh: &str,
        c: &Connection,
        f: Frame,
    ) -> Result<Option<Incoming>, MeshError> {
        let step = crate::session::triage(self.identity.peer_id().as_str(), &f);
        match (step, f) {
            (Step::Store { ack }, f) => {
                self.inbox.store(mesh, &f)?;
                if let Some(id) = ack {
                    c.ack(&id)?;
                }
                Ok(None)
            }
            (Step::Refused { code, message }, _) => Ok(Some(Incoming::Notice {
                text: format!("broker: {code}: {message}"),
            })),
            (Step::Ignore, _) => Ok(None),
            (
                Step::Joined,
                Frame::MemberJoined {
                    peer,
                    name,
                    x25519,
                    invite,
                },
            ) => {
                let joined = Frame::Ack {
                    id: format!("joined-{peer}"),
                };
                // Invites issued since this peer loaded its state (by
                // another command, while a daemon runs) count too.
                self.reload()?;
                let Some((epoch, root)) = self.root(mesh)? else {
                    return Ok(None);
                };
                let label = format!("{name} ({})", crate::policy::short(&peer));
                let notice = match key_handout(&self.membership(mesh)?.keys, &invite) {
                    Handout::Send => {
                        let newcomer = PeerInfo::newcomer(&peer, &name, &x25519);
                        self.send_key(c, &newcomer, mesh, epoch, &root).await?;
                        self.update(|st| {
                            if let Some(m) = st.meshes.get_mut(mesh) {
                                m.keys.granted.insert(peer.clone());
                            }
                        })?;
                        format!("{label} joined; sent them the mesh key")
                    }
                    Handout::Confirm => {
                        self.update(|st| {
                            if let Some(m) = st.meshes.get_mut(mesh) {
                                m.keys.pending.insert(
                                    peer.clone(),
                                    PendingJoin {
                                        name: name.clone(),
                                        x25519,
                                        invite,
                                    },
                                );
                            }
                        })?;
                        format!(
                            "{label} joined through a multi-use invite; run `nexus mesh approve {peer}` to send them the mesh key"
                        )
                    }
                    Handout::Refuse(why) => {
                        format!("{label} joined, but gets no mesh key: {why}")
                    }
                };
                // Answered (and recorded) first, then acknowledged.
                c.send(&joined)?;
                Ok(Some(Incoming::Notice { text: notice }))
            }
            (Step::Joined, _) => Ok(None),
        }
    }

    /// Takes in a burst of frames: the messages are committed to the inbox
    /// together (one `fsync`), then the direct ones acknowledged; the
    /// rest are absorbed one by one, in order. Returns the notices.
    pub(super) async fn absorb_all(
        &mut self,
        mesh: &str,
        c: &Connection,
        frames: Vec<Frame>,
    ) -> Result<Vec<Incoming>, MeshError> {
        let me = self.identity.peer_id().to_string();
        let (messages, rest): (Vec<Frame>, Vec<Frame>) = frames
            .into_iter()
            .partition(|f| matches!(crate::session::triage(&me, f), Step::Store { .. }));
        let refs: Vec<&Frame> = messages.iter().collect();
        self.inbox.store_all(mesh, &refs)?;
        for f in &messages {
            if let Frame::Dm { id, .. } = f {
                c.ack(id)?;
            }
        }
        let mut said = Vec::new();
        for f in rest {
            if let Some(n) = self.absorb(mesh, c, f).await? {
                said.push(n);
            }
        }
        Ok(said)
    }

    /// Takes the mesh keys waiting in the inbox (by the key policy), in
    /// arrival order; returns what to say about each.
    pub(super) fn take_keys(
        &mut self,
        mesh: &str,
        peers: &[PeerInfo],
    ) -> Result<Vec<Incoming>, MeshError> {
        let mut said = Vec::new();
        for (seq, sender, envelope) in self.unshown_envelopes(mesh, peers)? {
            let Envelope::RootKey {
                mesh: m,
                epoch,
                key,
                names,
            } = envelope
            else {
                continue;
            };
            let sender = &sender;
            let text = if m != mesh {
                format!(
                    "a key for another mesh (`{m}`) from {} was ignored",
                    sender.name
                )
            } else if let Ok(k) = <[u8; 32]>::try_from(unhex(&key).unwrap_or_default()) {
                let membership = self.membership(mesh)?;
                match root_key_arrival(&membership.keys, membership.epoch, sender, epoch) {
                    KeyArrival::Accept => {
                        let rotated = membership.epoch.is_some();
                        self.take_names(mesh, &names)?;
                        if rotated {
                            self.update(|st| {
                                if let Some(m) = st.meshes.get_mut(mesh) {
                                    m.keys.rotated_ms = Some(now_ms());
                                }
                            })?;
                        }
                        self.set_root(mesh, epoch, &k)?;
                        format!(
                            "received the {mesh} key (epoch {epoch}) from {}",
                            sender.name
                        )
                    }
                    // Held by epoch number, but the key itself is gone
                    // (a vault reset): take it again.
                    KeyArrival::Repeat if self.root_at(mesh, epoch)?.is_none() => {
                        self.take_names(mesh, &names)?;
                        self.set_root(mesh, epoch, &k)?;
                        format!(
                            "received the {mesh} key (epoch {epoch}) again from {}",
                            sender.name
                        )
                    }
                    KeyArrival::Repeat => String::new(),
                    KeyArrival::Refuse(why) => format!("refused a mesh key: {why}"),
                }
            } else {
                format!("a malformed mesh key from {} was dropped", sender.name)
            };
            self.inbox.mark_shown(seq)?;
            if !text.is_empty() {
                said.push(Incoming::Notice { text });
            }
        }
        Ok(said)
    }

    /// Keeps the naming key that came with an accepted mesh key, unless
    /// one is held already (it never changes for a mesh).
    fn take_names(&mut self, mesh: &str, names: &str) -> Result<(), MeshError> {
        if names.is_empty() || self.names_key(mesh)?.is_some() {
            return Ok(());
        }
        if let Ok(k) = <[u8; 32]>::try_from(unhex(names).unwrap_or_default()) {
            self.set_names_key(mesh, &k)?;
        }
        Ok(())
    }

    /// Answers members asking for the mesh key (by the key policy), in
    /// arrival order; returns what to say about each.
    pub(super) async fn answer_key_requests(
        &mut self,
        mesh: &str,
        c: &Connection,
        peers: &[PeerInfo],
    ) -> Result<Vec<Incoming>, MeshError> {
        self.reload()?;
        let mut said = Vec::new();
        for (seq, sender, envelope) in self.unshown_envelopes(mesh, peers)? {
            let Envelope::KeyRequest { mesh: m } = envelope else {
                continue;
            };
            let sender = &sender;
            let label = format!("{} ({})", sender.name, crate::policy::short(&sender.peer));
            let root = self.root(mesh)?;
            let text = match (m == mesh, sender.blocked, root) {
                (false, _, _) => format!("{label} asked for the key of another mesh (`{m}`)"),
                (_, true, _) => format!("{label} is blocked and asked for the key; refused"),
                (_, _, None) => format!("{label} asked for the key, which this peer does not hold"),
                (true, false, Some((epoch, root))) => {
                    match key_request(&self.membership(mesh)?.keys, &sender.peer) {
                        Handout::Send => {
                            self.send_key(c, sender, mesh, epoch, &root).await?;
                            format!("{label} asked for the key again; sent it (epoch {epoch})")
                        }
                        Handout::Confirm => format!(
                            "{label} asks for the key; run `nexus mesh approve {}` to send it",
                            sender.peer
                        ),
                        Handout::Refuse(why) => {
                            format!("{label} asked for the key; refused: {why}")
                        }
                    }
                }
            };
            self.inbox.mark_shown(seq)?;
            said.push(Incoming::Notice { text });
        }
        Ok(said)
    }

    /// The unshown direct messages of `mesh` from known members that open
    /// to an envelope: `(inbox seq, sender, envelope)`, in arrival order.
    fn unshown_envelopes(
        &self,
        mesh: &str,
        peers: &[PeerInfo],
    ) -> Result<Vec<(i64, PeerInfo, Envelope)>, MeshError> {
        let mut out = Vec::new();
        for s in self.inbox.unshown(mesh)? {
            let Frame::Dm { from, .. } = &s.frame else {
                continue;
            };
            let Some(sender) = peers.iter().find(|p| &p.peer == from) else {
                continue;
            };
            let Ok(plain) = open_dm(&self.identity, &sender.x25519, &s.frame) else {
                continue;
            };
            if let Ok(e) = serde_json::from_slice::<Envelope>(&plain) {
                out.push((s.seq, sender.clone(), e));
            }
        }
        Ok(out)
    }

    /// A topic message decrypted, or why it cannot be (yet): `Ok(None)`
    /// when its key has not arrived.
    fn open_topic(
        &self,
        mesh: &str,
        peers: &[PeerInfo],
        f: Frame,
        asked: Option<&str>,
    ) -> Result<Option<Incoming>, MeshError> {
        let Frame::Publish {
            id,
            from,
            topic: wire,
            epoch,
            nonce,
            body,
        } = f
        else {
            return Ok(None);
        };
        let Some(root) = self.root_at(mesh, epoch)? else {
            return Ok(None);
        };
        // The wire carries the topic's keyed id; its name keys and
        // authenticates the message.
        let Some(t) = self.topic_name(mesh, &wire, asked)? else {
            return Ok(Some(Incoming::Notice {
                text: format!(
                    "a message from {} in a topic this peer has not joined",
                    name_of(peers, &from)
                ),
            }));
        };
        let key = topic::topic_key(&root, &t, epoch)?;
        Ok(Some(
            match topic::open_owned(&key, &t, epoch, &from, &nonce, body) {
                Ok(plain) => match crate::bridge::Envelope::decode(&plain) {
                    None => Incoming::Topic {
                        id,
                        topic: t,
                        from_name: name_of(peers, &from),
                        from,
                        text: String::from_utf8_lossy(&plain).into_owned(),
                        bridged: None,
                    },
                    Some(Ok(e)) => Incoming::Topic {
                        id,
                        topic: t,
                        from_name: name_of(peers, &from),
                        from,
                        text: e.text,
                        bridged: Some(super::Bridged {
                            origin: e.origin,
                            hops: e.hops,
                        }),
                    },
                    Some(Err(e)) => Incoming::Notice {
                        text: format!("#{t} from {}: {e}", name_of(peers, &from)),
                    },
                },
                Err(_) => Incoming::Notice {
                    text: format!(
                        "a #{t} message from {} does not decrypt (forged or damaged); kept in the inbox",
                        name_of(peers, &from)
                    ),
                },
            },
        ))
    }

    /// What the inbox holds unshown: keys first (taken by the key policy,
    /// said as notices), then direct and topic messages in arrival order.
    /// One that cannot be read is said as such; a topic message whose key
    /// has not arrived waits (counted in a notice). Nothing is marked shown.
    pub(super) fn collect_inbox(
        &mut self,
        mesh: &str,
        peers: &[PeerInfo],
    ) -> Result<Vec<Item>, MeshError> {
        let mut out: Vec<Item> = self
            .take_keys(mesh, peers)?
            .into_iter()
            .map(|message| Item { seq: None, message })
            .collect();
        let mut waiting = 0;
        for s in self.inbox.unshown(mesh)? {
            let shown = match s.frame {
                Frame::Dm {
                    ref from, ref id, ..
                } => {
                    let sender = peers.iter().find(|p| &p.peer == from);
                    let plain = sender.map(|p| open_dm(&self.identity, &p.x25519, &s.frame));
                    Some(match (sender, plain) {
                        (Some(p), Some(Ok(plain))) => {
                            match serde_json::from_slice::<Envelope>(&plain) {
                                Ok(Envelope::Text { text }) => Incoming::Dm {
                                    id: id.clone(),
                                    from: from.clone(),
                                    from_name: p.name.clone(),
                                    text,
                                },
                                Ok(Envelope::KeyRequest { .. }) => Incoming::Notice {
                                    text: format!(
                                        "{} asked for the mesh key (only the owner and admins answer)",
                                        p.name
                                    ),
                                },
                                _ => Incoming::Notice {
                                    text: format!("a message from {} is not one this version reads", p.name),
                                },
                            }
                        }
                        (Some(p), _) => Incoming::Notice {
                            text: format!(
                                "a message from {} does not decrypt (forged or damaged); kept in the inbox",
                                p.name
                            ),
                        },
                        (None, _) => Incoming::Notice {
                            text: format!("a message from {from}, who is not a member, was kept but not opened"),
                        },
                    })
                }
                Frame::Publish { .. } => {
                    let opened = self.open_topic(mesh, peers, s.frame.clone(), None)?;
                    if opened.is_none() {
                        waiting += 1;
                    }
                    opened
                }
                _ => None,
            };
            if let Some(message) = shown {
                out.push(Item {
                    seq: Some(s.seq),
                    message,
                });
            }
        }
        if waiting > 0 {
            out.push(Item {
                seq: None,
                message: Incoming::Notice {
                    text: format!(
                        "{waiting} topic message(s) wait for their mesh key; they show once it arrives"
                    ),
                },
            });
        }
        Ok(out)
    }

    /// Fetches what is waiting (and, with `follow`, keeps listening; see
    /// [`Follow`](super::Follow)), keeps it in the local inbox, and shows
    /// what is new through `show`, marking each shown once `show` returned.
    pub async fn inbox(
        &mut self,
        mesh: &str,
        follow: bool,
        show: &mut Show<'_>,
    ) -> Result<(), MeshError> {
        let mut f = super::Follow::new(self, mesh);
        if !follow {
            return f.once(show).await;
        }
        loop {
            let i = f.next().await?;
            show(&i.message)?;
            if let Some(seq) = i.seq {
                f.shown(&[seq])?;
            }
        }
    }

    /// Keeps `mesh` for a resident process (the daemon): stores every
    /// message in the inbox (acknowledging each once stored), takes keys,
    /// hands keys to newcomers and answers key requests by the key policy,
    /// and reconnects like `inbox --follow`; but marks nothing read: the
    /// user's `inbox` shows what arrived. `tell` hears the notices.
    ///
    /// Between frames it runs the [`Keeper`]'s jobs on its connection, one
    /// at a time; while it has no connection, a job is answered at once
    /// with why. It returns `Ok` when the jobs channel closes.
    pub async fn keep(
        &mut self,
        mesh: &str,
        tell: &mut Tell<'_>,
        keeper: &mut Keeper,
    ) -> Result<(), MeshError> {
        let mut session = self.session();
        // The members as last seen: the inbox opens with them while the
        // broker is away.
        let mut known = Vec::new();
        loop {
            let why = match self
                .keep_once(mesh, tell, keeper, &mut known, &mut session)
                .await
            {
                Ok(true) => return Ok(()),
                Ok(false) => "the broker closed the connection".to_string(),
                Err(MeshError::Io(why)) => why,
                Err(e) => return Err(e),
            };
            let pause = session.lost(&why);
            tracing::warn!(
                mesh,
                wait_ms = pause.as_millis() as u64,
                "lost the broker: {why}"
            );
            tell(&Incoming::Notice {
                text: format!(
                    "lost the broker ({why}); retrying in {:.1}s",
                    pause.as_secs_f64()
                ),
            })?;
            let wake = tokio::time::Instant::now() + pause;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => break,
                    job = keeper.jobs.recv() => match job {
                        // What the local inbox answers, it answers.
                        Some(j) => {
                            let answer = match j.op {
                                op @ (Op::Shown { .. } | Op::Unread | Op::Whoami) => self.perform_local(mesh, op),
                                Op::Inbox => self
                                    .collect_inbox(mesh, &known)
                                    .map(|items| Answer::Inbox { items }),
                                _ => Err(MeshError::Io(format!(
                                    "nexusd has no connection to the broker of {mesh} ({why}); it retries by itself"
                                ))),
                            };
                            let _ = j.reply.send(answer);
                        }
                        None => return Ok(()),
                    },
                }
            }
        }
    }

    /// A session for keeping a mesh: the system clock, jitter from entropy.
    pub(super) fn session(&self) -> crate::session::Session {
        crate::session::Session::new(
            self.identity.peer_id().as_str(),
            std::sync::Arc::new(nexus_core::SystemClock),
            std::sync::Arc::new(nexus_core::SeededRandom::from_entropy()),
        )
    }

    /// One connection's worth of [`keep`](Self::keep): `Ok(true)` when
    /// the jobs channel closed, `Ok(false)` when the broker closed.
    async fn keep_once(
        &mut self,
        mesh: &str,
        tell: &mut Tell<'_>,
        keeper: &mut Keeper,
        known: &mut Vec<PeerInfo>,
        session: &mut crate::session::Session,
    ) -> Result<bool, MeshError> {
        self.reload()?;
        let (c, _) = self.connect(mesh).await?;
        let mut peers = self.peers_on(&c).await?;
        known.clone_from(&peers);
        session.connected(&peers);
        tell(&Incoming::Notice {
            text: format!("connected to {mesh}"),
        })?;
        loop {
            // What has arrived, a burst at a time (one commit each).
            loop {
                let mut burst = Vec::new();
                while burst.len() < super::ops::BURST {
                    match c.try_recv() {
                        Some(f) => burst.push(f),
                        None => break,
                    }
                }
                if burst.is_empty() {
                    break;
                }
                if session.strangers(&burst) {
                    peers = self.peers_on(&c).await.unwrap_or(peers);
                    known.clone_from(&peers);
                    session.members(&peers);
                }
                let news = burst
                    .iter()
                    .any(|f| matches!(f, Frame::Dm { .. } | Frame::Publish { .. }));
                for n in self.absorb_all(mesh, &c, burst).await? {
                    tell(&n)?;
                }
                if news {
                    keeper.stored.send_modify(|n| *n += 1);
                }
            }
            for n in self.answer_key_requests(mesh, &c, &peers).await? {
                tell(&n)?;
            }
            for n in self.take_keys(mesh, &peers)? {
                tell(&n)?;
            }
            // Topics joined since (by another command) are caught up too.
            self.reload()?;
            let before = self.inbox.last_seq()?;
            self.catch_up(mesh, &c).await?;
            if self.inbox.last_seq()? != before {
                keeper.stored.send_modify(|n| *n += 1);
            }
            tokio::select! {
                f = c.recv_timeout(crate::session::IDLE_PING) => match f {
                    Some(f) => {
                        let news = matches!(f, Frame::Dm { .. } | Frame::Publish { .. });
                        if let Some(n) = self.absorb(mesh, &c, f).await? {
                            tell(&n)?;
                        }
                        if news {
                            keeper.stored.send_modify(|n| *n += 1);
                        }
                    }
                    None if c.is_closed() => return Ok(false),
                    // Quiet: is the broker still there?
                    None => crate::session::ping(&c).await?,
                },
                job = keeper.jobs.recv() => match job {
                    Some(j) => {
                        let answer = self.perform(mesh, &c, j.op).await;
                        let lost = matches!(answer, Err(MeshError::Io(_))) && c.is_closed();
                        let _ = j.reply.send(answer);
                        if lost {
                            return Ok(false);
                        }
                    }
                    None => return Ok(true),
                },
            }
        }
    }

    /// Stores each joined topic's history after its mark (paging back, up
    /// to [`CATCH_UP`] messages a topic), then moves the marks: what is
    /// stored is kept, so the marks move only past stored messages.
    /// Returns a notice if older messages were left in history.
    pub(super) async fn catch_up(
        &mut self,
        mesh: &str,
        c: &Connection,
    ) -> Result<Option<Incoming>, MeshError> {
        let topics = self.membership(mesh)?.topics.clone();
        let mut left = Vec::new();
        for t in topics {
            let mark = self.membership(mesh)?.seen.get(&t).copied().unwrap_or(0);
            let mut plan =
                crate::session::CatchUp::new(&self.wire_topic(mesh, &t)?, mark, CATCH_UP);
            while let Some(ask) = plan.request() {
                let Frame::HistoryPage { entries, .. } = c.request(&ask, ANSWER_WAIT).await? else {
                    break;
                };
                // A page is stored in one commit.
                let fresh = plan.page(entries);
                self.absorb_all(mesh, c, fresh).await?;
            }
            if plan.left_behind() {
                left.push(t.clone());
            }
            let newest = plan.new_mark();
            self.update(|st| {
                if let Some(m) = st.meshes.get_mut(mesh) {
                    // Marks only move forward (another command may have
                    // moved them meanwhile).
                    let mark = m.seen.entry(t).or_insert(0);
                    *mark = (*mark).max(newest);
                }
            })?;
        }
        Ok((!left.is_empty()).then(|| Incoming::Notice {
            text: format!(
                "more than {CATCH_UP} unseen messages in {}; older ones are in `nexus mesh topic history`",
                left.iter().map(|t| format!("#{t}")).collect::<Vec<_>>().join(", ")
            ),
        }))
    }

    /// Unread counts of `mesh` in the local inbox: `("direct", n)` and
    /// `("#topic", n)`.
    pub fn unread(&self, mesh: &str) -> Result<Vec<(String, u64)>, MeshError> {
        let mut out = Vec::new();
        for (place, n) in self.inbox.unread(mesh)? {
            // Topics are stored by their wire id: name them.
            let place = match place.strip_prefix('#') {
                Some(wire) => match self.topic_name(mesh, wire, None)? {
                    Some(name) => format!("#{name}"),
                    None => "#(a topic not joined)".to_string(),
                },
                None => place,
            };
            out.push((place, n));
        }
        Ok(out)
    }

    /// A page of `topic_name`'s history, newest first, decrypted.
    pub(crate) async fn history_on(
        &mut self,
        c: &Connection,
        mesh: &str,
        topic_name: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, Incoming)>, MeshError> {
        let peers = self.peers_on(c).await?;
        let page = Frame::History {
            topic: self.wire_topic(mesh, topic_name)?,
            before,
            limit,
        };
        let Frame::HistoryPage { entries, .. } = c.request(&page, ANSWER_WAIT).await? else {
            return Err(MeshError::Io("no history from the broker".into()));
        };
        let mut out = Vec::new();
        for (seq, f) in entries {
            let epoch = match &f {
                Frame::Publish { epoch, .. } => *epoch,
                _ => continue,
            };
            let i = self.open_topic(mesh, &peers, f, Some(topic_name))?.unwrap_or_else(|| Incoming::Notice {
                text: format!("a #{topic_name} message for key epoch {epoch}, which this peer does not hold"),
            });
            out.push((seq, i));
        }
        Ok(out)
    }
}
