//! The wire frames: versioned and typed. A frame is one byte of protocol
//! version, one byte of kind, and a binary body for that kind (the layout
//! is in docs/MESH.md): strings and byte strings are a LEB128 length and
//! the bytes, integers are LEB128, a nonce is its 24 raw bytes. Message
//! bodies are raw ciphertext, so the broker forwards and stores a frame as
//! the bytes it received, without re-encoding it.
//!
//! Decoding is strict and never panics: unknown versions and kinds,
//! truncated or trailing bytes and invalid UTF-8 are errors the broker
//! answers with an error frame. Version 1 frames (JSON bodies, hex
//! ciphertext) are still read, so queues and history stored by older
//! brokers stay readable.

use serde::{Deserialize, Serialize};

use crate::MeshError;

/// The protocol version this build speaks.
pub const VERSION: u8 = 2;

/// The JSON-bodied version older builds wrote; still decoded.
pub const LEGACY_VERSION: u8 = 1;

/// Protocol version 3: a version-2 frame with a request id after its kind
/// byte (`[3, kind, id varint, body]`). A client sends a request this way,
/// and the broker sends the request's answer (`Done`, `Error`, `PeerList`,
/// `HistoryPage`, `InviteCode`) back with the same id, so one connection
/// carries several requests at once and an error refuses only its own
/// request. Frames that answer nothing stay version 2; both are read.
pub const REQUEST_VERSION: u8 = 3;

/// The kinds that answer a request.
pub const ANSWER_KINDS: [Kind; 5] = [
    Kind::Error,
    Kind::PeerList,
    Kind::HistoryPage,
    Kind::Done,
    Kind::InviteCode,
];

/// The most bytes a frame may have.
pub const MAX_FRAME: usize = 256 * 1024;

/// The kind byte of a batch: several frames in one WebSocket message,
/// each a LEB128 length and the frame. Batching is the transport's
/// business (whoever has many frames queued for one connection sends them
/// as one batch); receivers unpack a batch with [`split_batch`] before the
/// frames reach the protocol state machines, which never see it.
pub const BATCH: u8 = 21;

/// The most bytes a batch, or any WebSocket message, may have. Writers
/// start a new batch at 16 KiB, so a batch is at most that plus one frame.
pub const MAX_BATCH: usize = 1 << 20;

/// Whether `bytes` is a batch of frames (see [`BATCH`]).
pub fn is_batch(bytes: &[u8]) -> bool {
    matches!(bytes, [VERSION, BATCH, ..])
}

/// Encodes `frames` (each already encoded) as one batch.
pub fn encode_batch<B: AsRef<[u8]>>(frames: &[B]) -> Vec<u8> {
    let len: usize = frames.iter().map(|f| f.as_ref().len() + 3).sum();
    let mut w = Vec::with_capacity(2 + len);
    w.push(VERSION);
    w.push(BATCH);
    for f in frames {
        put_bytes(&mut w, f.as_ref());
    }
    w
}

/// The frames in a batch, as slices of it (no copies). A batch that is
/// too large, truncated, or holds another batch is an error.
pub fn split_batch(batch: &bytes::Bytes) -> Result<Vec<bytes::Bytes>, MeshError> {
    if batch.len() > MAX_BATCH {
        return Err(MeshError::Frame(format!(
            "batch of {} bytes exceeds the {MAX_BATCH}-byte limit",
            batch.len()
        )));
    }
    if !is_batch(batch) {
        return Err(MeshError::Frame("not a batch".into()));
    }
    let mut r = Reader(&batch[2..]);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let f = r.bytes()?;
        if is_batch(f) {
            return Err(MeshError::Frame("a batch may not hold a batch".into()));
        }
        let start = f.as_ptr() as usize - batch.as_ptr() as usize;
        out.push(batch.slice(start..start + f.len()));
    }
    Ok(out)
}

/// Whether an encoded frame is one a connection may send before it has
/// authenticated: a hello, a create or a join, or fetching an invite by its
/// short code. The broker decodes nothing else from a stranger.
pub fn is_pre_auth(bytes: &[u8]) -> bool {
    matches!(bytes, [VERSION, 1 | 7 | 8 | 19, ..])
}

/// A frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// Client → broker: who I am, signed over mesh ‖ peer ‖ key ‖ time ‖ nonce.
    Hello {
        /// The mesh.
        mesh: String,
        /// The peer id.
        peer: String,
        /// Ed25519 public key, hex.
        key: String,
        /// Milliseconds since the epoch.
        ts: u64,
        /// A random nonce, hex (replay cache).
        nonce: String,
        /// The signature, hex.
        sig: String,
    },
    /// Broker → client: accepted.
    Welcome {
        /// Messages waiting while the peer was offline.
        queued: u32,
    },
    /// A direct message, sealed with `crypto_box`.
    Dm {
        /// Message id (clients drop duplicates).
        id: String,
        /// Sender peer id.
        from: String,
        /// Recipient peer id.
        to: String,
        /// The `crypto_box` nonce.
        #[serde(with = "hex_nonce")]
        nonce: [u8; 24],
        /// The `crypto_box` ciphertext (MAC first, as libsodium writes it).
        #[serde(with = "hex_bytes")]
        body: Vec<u8>,
    },
    /// A topic message, sealed with the topic key.
    Publish {
        /// Message id.
        id: String,
        /// Sender peer id.
        from: String,
        /// The topic.
        topic: String,
        /// The key epoch.
        epoch: u32,
        /// The XChaCha20-Poly1305 nonce.
        #[serde(with = "hex_nonce")]
        nonce: [u8; 24],
        /// The ciphertext and its tag.
        #[serde(with = "hex_bytes")]
        body: Vec<u8>,
    },
    /// Acknowledges a message id.
    Ack {
        /// The id.
        id: String,
    },
    /// Owner → broker: create a mesh, owned by this key.
    CreateMesh {
        /// The mesh name.
        mesh: String,
        /// Owner Ed25519 key, hex.
        key: String,
        /// Owner X25519 key, hex.
        x25519: String,
        /// Owner display name.
        name: String,
        /// Milliseconds since the epoch.
        ts: u64,
        /// Signature over the fields, hex.
        sig: String,
        /// A random nonce, hex, signed too (the broker's replay cache).
        #[serde(default)]
        nonce: String,
    },
    /// Joiner → broker: join with an owner-signed invite.
    Join {
        /// The invite code.
        invite: String,
        /// Joiner Ed25519 key, hex.
        key: String,
        /// Joiner X25519 key, hex.
        x25519: String,
        /// Joiner display name.
        name: String,
        /// Milliseconds since the epoch.
        ts: u64,
        /// Signature over the fields, hex.
        sig: String,
        /// A random nonce, hex, signed too (the broker's replay cache).
        #[serde(default)]
        nonce: String,
    },
    /// Broker → admins: a peer joined (an admin seals the root key to it).
    MemberJoined {
        /// Peer id.
        peer: String,
        /// Display name.
        name: String,
        /// X25519 key, hex.
        x25519: String,
        /// The invite it joined with, as [`crate::auth::invite_ref`] (the
        /// owner's key hand-out policy depends on it); empty in frames
        /// stored by older brokers.
        #[serde(default)]
        invite: String,
    },
    /// Asks for the member list.
    ListPeers,
    /// The member list.
    PeerList {
        /// Members.
        peers: Vec<PeerInfo>,
    },
    /// Sets this peer's status and/or summary.
    SetPresence {
        /// New status, if changing.
        status: Option<String>,
        /// New summary, if changing.
        summary: Option<String>,
    },
    /// Admin: grant or revoke capabilities.
    Grant {
        /// The peer.
        peer: String,
        /// Capabilities.
        caps: Vec<String>,
        /// Revoke instead of grant.
        revoke: bool,
    },
    /// Admin: block or unblock a peer.
    Block {
        /// The peer.
        peer: String,
        /// Block (true) or unblock.
        blocked: bool,
    },
    /// Asks for a page of a topic's history.
    History {
        /// The topic.
        topic: String,
        /// Entries before this sequence number (newest first); none for the latest.
        before: Option<u64>,
        /// Page size (at most 500).
        limit: u32,
    },
    /// A page of history: `Publish` frames, newest first.
    HistoryPage {
        /// The topic.
        topic: String,
        /// `(sequence, frame)`.
        entries: Vec<(u64, Frame)>,
    },
    /// Admin: make an invite fetchable by its short code.
    PutInvite {
        /// The full invite code.
        code: String,
    },
    /// Anyone: fetch an invite by its short code.
    GetInvite {
        /// The short code (`ABCD-EF01-2345-6789`).
        short: String,
    },
    /// The invite a short code stands for.
    InviteCode {
        /// The full invite code.
        code: String,
    },
    /// Client → broker: are you there? Answered with `done` (`pong`); a
    /// resident client asks when a connection has been quiet, to find a
    /// half-open one.
    Ping,
    /// A request succeeded.
    Done {
        /// What was done.
        what: String,
    },
    /// Something was refused; the connection stays up.
    Error {
        /// A stable code (`malformed`, `too_large`, `rate_limited`, ...).
        code: String,
        /// What to do about it.
        message: String,
    },
}

/// Why the broker refused something: the `code` of an `error` frame,
/// typed. The wire carries the snake_case name; a code this build does not
/// know reads as [`Refusal::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A hello that does not verify or is stale.
    BadHello,
    /// An invite that does not verify, or is for another mesh.
    BadInvite,
    /// A request with a bad field (a key that is not hex, an unknown capability).
    BadRequest,
    /// A signature that does not verify.
    BadSignature,
    /// The peer is blocked in the mesh.
    Blocked,
    /// The peer lacks the capability (admin, read, dm, broadcast).
    Forbidden,
    /// The broker failed (its storage).
    Internal,
    /// The invite has expired.
    InviteExpired,
    /// The invite has no uses left.
    InviteSpent,
    /// A frame that does not decode, or is not allowed here.
    Malformed,
    /// A mesh of that name exists on the broker.
    MeshExists,
    /// Another member has that name.
    NameTaken,
    /// Too many frames; said once per spell.
    RateLimited,
    /// Refused without saying why (to a stranger: whether a mesh or member exists stays private).
    Refused,
    /// A frame claiming another sender.
    Spoofed,
    /// A frame over the limit.
    TooLarge,
    /// The identity has the most connections open already.
    TooManyConnections,
    /// A frame before hello.
    Unauthenticated,
    /// No invite has that short code.
    UnknownInvite,
    /// No member has that id.
    UnknownPeer,
    /// A code from a newer broker.
    Other(String),
}

impl Refusal {
    /// Every code this build knows.
    pub const KNOWN: [Refusal; 20] = [
        Refusal::BadHello,
        Refusal::BadInvite,
        Refusal::BadRequest,
        Refusal::BadSignature,
        Refusal::Blocked,
        Refusal::Forbidden,
        Refusal::Internal,
        Refusal::InviteExpired,
        Refusal::InviteSpent,
        Refusal::Malformed,
        Refusal::MeshExists,
        Refusal::NameTaken,
        Refusal::RateLimited,
        Refusal::Refused,
        Refusal::Spoofed,
        Refusal::TooLarge,
        Refusal::TooManyConnections,
        Refusal::Unauthenticated,
        Refusal::UnknownInvite,
        Refusal::UnknownPeer,
    ];

    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Refusal::BadHello => "bad_hello",
            Refusal::BadInvite => "bad_invite",
            Refusal::BadRequest => "bad_request",
            Refusal::BadSignature => "bad_signature",
            Refusal::Blocked => "blocked",
            Refusal::Forbidden => "forbidden",
            Refusal::Internal => "internal",
            Refusal::InviteExpired => "invite_expired",
            Refusal::InviteSpent => "invite_spent",
            Refusal::Malformed => "malformed",
            Refusal::MeshExists => "mesh_exists",
            Refusal::NameTaken => "name_taken",
            Refusal::RateLimited => "rate_limited",
            Refusal::Refused => "refused",
            Refusal::Spoofed => "spoofed",
            Refusal::TooLarge => "too_large",
            Refusal::TooManyConnections => "too_many_connections",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::UnknownInvite => "unknown_invite",
            Refusal::UnknownPeer => "unknown_peer",
            Refusal::Other(s) => s,
        }
    }

    /// The refusal a wire code names.
    pub fn parse(code: &str) -> Refusal {
        Refusal::KNOWN
            .iter()
            .find(|r| r.as_str() == code)
            .cloned()
            .unwrap_or_else(|| Refusal::Other(code.to_string()))
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member, as peers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Peer id.
    pub peer: String,
    /// Display name.
    pub name: String,
    /// Ed25519 key, hex.
    pub ed25519: String,
    /// X25519 key, hex.
    pub x25519: String,
    /// Connected now.
    pub online: bool,
    /// Status.
    pub status: String,
    /// Summary.
    pub summary: String,
    /// Capabilities.
    pub caps: Vec<String>,
    /// Blocked.
    pub blocked: bool,
}

impl PeerInfo {
    /// What a peer knows of a newcomer from a join notice: enough to seal
    /// to its X25519 key.
    pub fn newcomer(peer: &str, name: &str, x25519: &str) -> PeerInfo {
        PeerInfo {
            peer: peer.to_string(),
            name: name.to_string(),
            ed25519: String::new(),
            x25519: x25519.to_string(),
            online: false,
            status: String::new(),
            summary: String::new(),
            caps: Vec::new(),
            blocked: false,
        }
    }
}

/// A frame's kind: the byte after the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// `hello`.
    Hello = 1,
    /// `welcome`.
    Welcome = 2,
    /// `dm`.
    Dm = 3,
    /// `publish`.
    Publish = 4,
    /// `ack`.
    Ack = 5,
    /// `error`.
    Error = 6,
    /// `create_mesh`.
    CreateMesh = 7,
    /// `join`.
    Join = 8,
    /// `member_joined`.
    MemberJoined = 9,
    /// `list_peers`.
    ListPeers = 10,
    /// `peer_list`.
    PeerList = 11,
    /// `set_presence`.
    SetPresence = 12,
    /// `grant`.
    Grant = 13,
    /// `block`.
    Block = 14,
    /// `history`.
    History = 15,
    /// `history_page`.
    HistoryPage = 16,
    /// `done`.
    Done = 17,
    /// `put_invite`.
    PutInvite = 18,
    /// `get_invite`.
    GetInvite = 19,
    /// `invite_code`.
    InviteCode = 20,
    /// `batch`.
    Batch = 21,
    /// `ping`.
    Ping = 22,
}

impl Kind {
    /// The kind a byte names, if any.
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Welcome,
            3 => Kind::Dm,
            4 => Kind::Publish,
            5 => Kind::Ack,
            6 => Kind::Error,
            7 => Kind::CreateMesh,
            8 => Kind::Join,
            9 => Kind::MemberJoined,
            10 => Kind::ListPeers,
            11 => Kind::PeerList,
            12 => Kind::SetPresence,
            13 => Kind::Grant,
            14 => Kind::Block,
            15 => Kind::History,
            16 => Kind::HistoryPage,
            17 => Kind::Done,
            18 => Kind::PutInvite,
            19 => Kind::GetInvite,
            20 => Kind::InviteCode,
            21 => Kind::Batch,
            22 => Kind::Ping,
            _ => return None,
        })
    }

    /// Its name in the docs (`list_peers`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hello => "hello",
            Kind::Welcome => "welcome",
            Kind::Dm => "dm",
            Kind::Publish => "publish",
            Kind::Ack => "ack",
            Kind::Error => "error",
            Kind::CreateMesh => "create_mesh",
            Kind::Join => "join",
            Kind::MemberJoined => "member_joined",
            Kind::ListPeers => "list_peers",
            Kind::PeerList => "peer_list",
            Kind::SetPresence => "set_presence",
            Kind::Grant => "grant",
            Kind::Block => "block",
            Kind::History => "history",
            Kind::HistoryPage => "history_page",
            Kind::Done => "done",
            Kind::PutInvite => "put_invite",
            Kind::GetInvite => "get_invite",
            Kind::InviteCode => "invite_code",
            Kind::Batch => "batch",
            Kind::Ping => "ping",
        }
    }
}

impl Frame {
    /// This frame's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Hello { .. } => Kind::Hello,
            Frame::Welcome { .. } => Kind::Welcome,
            Frame::Dm { .. } => Kind::Dm,
            Frame::Publish { .. } => Kind::Publish,
            Frame::Ack { .. } => Kind::Ack,
            Frame::Error { .. } => Kind::Error,
            Frame::CreateMesh { .. } => Kind::CreateMesh,
            Frame::Join { .. } => Kind::Join,
            Frame::MemberJoined { .. } => Kind::MemberJoined,
            Frame::ListPeers => Kind::ListPeers,
            Frame::PeerList { .. } => Kind::PeerList,
            Frame::SetPresence { .. } => Kind::SetPresence,
            Frame::Grant { .. } => Kind::Grant,
            Frame::Block { .. } => Kind::Block,
            Frame::History { .. } => Kind::History,
            Frame::HistoryPage { .. } => Kind::HistoryPage,
            Frame::Done { .. } => Kind::Done,
            Frame::PutInvite { .. } => Kind::PutInvite,
            Frame::GetInvite { .. } => Kind::GetInvite,
            Frame::InviteCode { .. } => Kind::InviteCode,
            Frame::Ping => Kind::Ping,
        }
    }

    /// The kind byte of an encoded frame, read without decoding it.
    pub fn kind_of(bytes: &[u8]) -> Option<Kind> {
        bytes.get(1).copied().and_then(Kind::from_byte)
    }

    /// An error frame.
    pub fn error(code: Refusal, message: impl Into<String>) -> Frame {
        Frame::Error {
            code: code.as_str().to_string(),
            message: message.into(),
        }
    }

    /// Encodes the frame as request `id` (version 3).
    pub fn encode_request(&self, id: u64) -> Vec<u8> {
        let mut w = Vec::with_capacity(self.size_hint() + 10);
        w.push(REQUEST_VERSION);
        w.push(self.kind() as u8);
        put_uint(&mut w, id);
        self.put_body(&mut w);
        w
    }

    /// The request id of an encoded frame (version 3), read without
    /// decoding the rest.
    pub fn request_id(bytes: &[u8]) -> Option<u64> {
        match bytes {
            [REQUEST_VERSION, _, rest @ ..] => Reader(rest).uint().ok(),
            _ => None,
        }
    }

    /// An encoded version-2 answer, addressed to request `id` (version 3);
    /// anything else is returned as it is.
    pub fn address(bytes: &[u8], id: u64) -> Vec<u8> {
        let [VERSION, kind, body @ ..] = bytes else {
            return bytes.to_vec();
        };
        let mut w = Vec::with_capacity(bytes.len() + 10);
        w.push(REQUEST_VERSION);
        w.push(*kind);
        put_uint(&mut w, id);
        w.extend_from_slice(body);
        w
    }

    /// Decodes a frame and its request id (version 3; `None` otherwise).
    pub fn decode_addressed(bytes: &[u8]) -> Result<(Option<u64>, Frame), MeshError> {
        match bytes {
            [REQUEST_VERSION, kind, rest @ ..] if bytes.len() <= MAX_FRAME => {
                let mut r = Reader(rest);
                let id = r.uint()?;
                let f = Self::take_body(*kind, &mut r)?;
                if !r.0.is_empty() {
                    return Err(MeshError::Frame(format!(
                        "{} unexpected bytes after the frame",
                        r.0.len()
                    )));
                }
                Ok((Some(id), f))
            }
            _ => Self::decode(bytes).map(|f| (None, f)),
        }
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(self.size_hint());
        w.push(VERSION);
        w.push(self.kind() as u8);
        self.put_body(&mut w);
        w
    }

    fn size_hint(&self) -> usize {
        match self {
            Frame::Dm {
                id, from, to, body, ..
            } => 40 + id.len() + from.len() + to.len() + body.len(),
            Frame::Publish {
                id,
                from,
                topic,
                body,
                ..
            } => 40 + id.len() + from.len() + topic.len() + body.len(),
            _ => 128,
        }
    }

    fn put_body(&self, w: &mut Vec<u8>) {
        match self {
            Frame::Hello {
                mesh,
                peer,
                key,
                ts,
                nonce,
                sig,
            } => {
                put_str(w, mesh);
                put_str(w, peer);
                put_str(w, key);
                put_uint(w, *ts);
                put_str(w, nonce);
                put_str(w, sig);
            }
            Frame::Welcome { queued } => put_uint(w, u64::from(*queued)),
            Frame::Dm {
                id,
                from,
                to,
                nonce,
                body,
            } => {
                put_str(w, id);
                put_str(w, from);
                put_str(w, to);
                w.extend_from_slice(nonce);
                put_bytes(w, body);
            }
            Frame::Publish {
                id,
                from,
                topic,
                epoch,
                nonce,
                body,
            } => {
                put_str(w, id);
                put_str(w, from);
                put_str(w, topic);
                put_uint(w, u64::from(*epoch));
                w.extend_from_slice(nonce);
                put_bytes(w, body);
            }
            Frame::Ack { id } => put_str(w, id),
            Frame::CreateMesh {
                mesh,
                key,
                x25519,
                name,
                ts,
                sig,
                nonce,
            } => {
                put_str(w, mesh);
                put_str(w, key);
                put_str(w, x25519);
                put_str(w, name);
                put_uint(w, *ts);
                put_str(w, sig);
                put_str(w, nonce);
            }
            Frame::Join {
                invite,
                key,
                x25519,
                name,
                ts,
                sig,
                nonce,
            } => {
                put_str(w, invite);
                put_str(w, key);
                put_str(w, x25519);
                put_str(w, name);
                put_uint(w, *ts);
                put_str(w, sig);
                put_str(w, nonce);
            }
            Frame::MemberJoined {
                peer,
                name,
                x25519,
                invite,
            } => {
                put_str(w, peer);
                put_str(w, name);
                put_str(w, x25519);
                put_str(w, invite);
            }
            Frame::ListPeers | Frame::Ping => {}
            Frame::PeerList { peers } => {
                put_uint(w, peers.len() as u64);
                for p in peers {
                    put_str(w, &p.peer);
                    put_str(w, &p.name);
                    put_str(w, &p.ed25519);
                    put_str(w, &p.x25519);
                    w.push(u8::from(p.online));
                    put_str(w, &p.status);
                    put_str(w, &p.summary);
                    put_uint(w, p.caps.len() as u64);
                    for c in &p.caps {
                        put_str(w, c);
                    }
                    w.push(u8::from(p.blocked));
                }
            }
            Frame::SetPresence { status, summary } => {
                put_opt_str(w, status.as_deref());
                put_opt_str(w, summary.as_deref());
            }
            Frame::Grant { peer, caps, revoke } => {
                put_str(w, peer);
                put_uint(w, caps.len() as u64);
                for c in caps {
                    put_str(w, c);
                }
                w.push(u8::from(*revoke));
            }
            Frame::Block { peer, blocked } => {
                put_str(w, peer);
                w.push(u8::from(*blocked));
            }
            Frame::History {
                topic,
                before,
                limit,
            } => {
                put_str(w, topic);
                match before {
                    Some(b) => {
                        w.push(1);
                        put_uint(w, *b);
                    }
                    None => w.push(0),
                }
                put_uint(w, u64::from(*limit));
            }
            Frame::HistoryPage { topic, entries } => {
                put_str(w, topic);
                put_uint(w, entries.len() as u64);
                for (seq, f) in entries {
                    put_uint(w, *seq);
                    put_bytes(w, &f.encode());
                }
            }
            Frame::PutInvite { code } | Frame::InviteCode { code } => put_str(w, code),
            Frame::GetInvite { short } => put_str(w, short),
            Frame::Done { what } => put_str(w, what),
            Frame::Error { code, message } => {
                put_str(w, code);
                put_str(w, message);
            }
        }
    }

    /// Decodes a frame.
    pub fn decode(bytes: &[u8]) -> Result<Frame, MeshError> {
        if bytes.len() > MAX_FRAME {
            return Err(MeshError::Frame(format!(
                "frame of {} bytes exceeds the {MAX_FRAME}-byte limit",
                bytes.len()
            )));
        }
        let [version, kind, body @ ..] = bytes else {
            return Err(MeshError::Frame("frame shorter than its header".into()));
        };
        match *version {
            REQUEST_VERSION => Self::decode_addressed(bytes).map(|(_, f)| f),
            VERSION => {
                let mut r = Reader(body);
                let f = Self::take_body(*kind, &mut r)?;
                if !r.0.is_empty() {
                    return Err(MeshError::Frame(format!(
                        "{} unexpected bytes after the frame",
                        r.0.len()
                    )));
                }
                Ok(f)
            }
            LEGACY_VERSION => {
                // Version 1 is read only for what older brokers stored and
                // now forward: direct messages, topic messages and join
                // notices, none of which nests a frame. Anything else in
                // version 1 is refused before any JSON is parsed.
                if !matches!(*kind, 3 | 4 | 9) {
                    return Err(MeshError::Frame(format!(
                        "version-1 frames of kind {kind} are no longer read; upgrade the peer"
                    )));
                }
                let f: Frame = serde_json::from_slice(body)
                    .map_err(|e| MeshError::Frame(format!("malformed frame body: {e}")))?;
                if f.kind() as u8 != *kind {
                    return Err(MeshError::Frame(
                        "frame kind does not match its body".into(),
                    ));
                }
                Ok(f)
            }
            v => Err(MeshError::Frame(format!(
                "protocol version {v} is not supported (this build speaks {VERSION})"
            ))),
        }
    }

    fn take_body(kind: u8, r: &mut Reader<'_>) -> Result<Frame, MeshError> {
        Ok(match kind {
            1 => Frame::Hello {
                mesh: r.str()?,
                peer: r.str()?,
                key: r.str()?,
                ts: r.uint()?,
                nonce: r.str()?,
                sig: r.str()?,
            },
            2 => Frame::Welcome { queued: r.u32()? },
            3 => Frame::Dm {
                id: r.str()?,
                from: r.str()?,
                to: r.str()?,
                nonce: r.nonce()?,
                body: r.bytes()?.to_vec(),
            },
            4 => PublishView::read(r)?.to_frame(),
            5 => Frame::Ack { id: r.str()? },
            6 => Frame::Error {
                code: r.str()?,
                message: r.str()?,
            },
            7 => Frame::CreateMesh {
                mesh: r.str()?,
                key: r.str()?,
                x25519: r.str()?,
                name: r.str()?,
                ts: r.uint()?,
                sig: r.str()?,
                nonce: r.str()?,
            },
            8 => Frame::Join {
                invite: r.str()?,
                key: r.str()?,
                x25519: r.str()?,
                name: r.str()?,
                ts: r.uint()?,
                sig: r.str()?,
                nonce: r.str()?,
            },
            9 => Frame::MemberJoined {
                peer: r.str()?,
                name: r.str()?,
                x25519: r.str()?,
                // Brokers before the invite field queued notices without it.
                invite: if r.0.is_empty() {
                    String::new()
                } else {
                    r.str()?
                },
            },
            10 => Frame::ListPeers,
            11 => {
                let n = r.count()?;
                let mut peers = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    peers.push(PeerInfo {
                        peer: r.str()?,
                        name: r.str()?,
                        ed25519: r.str()?,
                        x25519: r.str()?,
                        online: r.bool()?,
                        status: r.str()?,
                        summary: r.str()?,
                        caps: r.strs()?,
                        blocked: r.bool()?,
                    });
                }
                Frame::PeerList { peers }
            }
            12 => Frame::SetPresence {
                status: r.opt_str()?,
                summary: r.opt_str()?,
            },
            13 => Frame::Grant {
                peer: r.str()?,
                caps: r.strs()?,
                revoke: r.bool()?,
            },
            14 => Frame::Block {
                peer: r.str()?,
                blocked: r.bool()?,
            },
            15 => Frame::History {
                topic: r.str()?,
                before: if r.bool()? { Some(r.uint()?) } else { None },
                limit: r.u32()?,
            },
            16 => {
                // A page holds topic messages and nothing else: each entry
                // is read as a publish, never decoded as a frame of any
                // kind, so a page cannot nest pages (no recursion at all).
                let topic = r.str()?;
                let n = r.count()?;
                let mut entries = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let seq = r.uint()?;
                    let entry = r.bytes()?;
                    let v = PublishView::parse(entry).unwrap_or_else(|| {
                        Err(MeshError::Frame(
                            "a history page may hold only topic messages".into(),
                        ))
                    })?;
                    entries.push((seq, v.to_frame()));
                }
                Frame::HistoryPage { topic, entries }
            }
            17 => Frame::Done { what: r.str()? },
            18 => Frame::PutInvite { code: r.str()? },
            19 => Frame::GetInvite { short: r.str()? },
            20 => Frame::InviteCode { code: r.str()? },
            22 => Frame::Ping,
            BATCH => {
                return Err(MeshError::Frame(
                    "a batch holds frames; unpack it with split_batch".into(),
                ))
            }
            k => return Err(MeshError::Frame(format!("unknown frame kind {k}"))),
        })
    }
}

/// A topic message read in place: its fields borrow the encoded frame.
/// The broker routes and stores a publish through this, without copying
/// it or allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishView<'a> {
    /// Message id.
    pub id: &'a str,
    /// Sender peer id.
    pub from: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The key epoch.
    pub epoch: u32,
    /// The nonce.
    pub nonce: &'a [u8; 24],
    /// The ciphertext and its tag.
    pub body: &'a [u8],
}

impl<'a> PublishView<'a> {
    /// Reads `bytes` if they are a current-version publish frame (`None`
    /// for any other kind or version: decode those with [`Frame::decode`]).
    /// As strict as [`Frame::decode`].
    pub fn parse(bytes: &'a [u8]) -> Option<Result<PublishView<'a>, MeshError>> {
        let [VERSION, 4, body @ ..] = bytes else {
            return None;
        };
        if bytes.len() > MAX_FRAME {
            return Some(Err(MeshError::Frame(format!(
                "frame of {} bytes exceeds the {MAX_FRAME}-byte limit",
                bytes.len()
            ))));
        }
        let mut r = Reader(body);
        Some(PublishView::read(&mut r).and_then(|v| {
            if r.0.is_empty() {
                Ok(v)
            } else {
                Err(MeshError::Frame(format!(
                    "{} unexpected bytes after the frame",
                    r.0.len()
                )))
            }
        }))
    }

    /// The frame this view reads (copies the fields).
    pub fn to_frame(&self) -> Frame {
        Frame::Publish {
            id: self.id.to_owned(),
            from: self.from.to_owned(),
            topic: self.topic.to_owned(),
            epoch: self.epoch,
            nonce: *self.nonce,
            body: self.body.to_vec(),
        }
    }

    fn read(r: &mut Reader<'a>) -> Result<PublishView<'a>, MeshError> {
        Ok(PublishView {
            id: r.str_ref()?,
            from: r.str_ref()?,
            topic: r.str_ref()?,
            epoch: r.u32()?,
            nonce: r.nonce_ref()?,
            body: r.bytes()?,
        })
    }
}

fn put_uint(w: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        w.push((v as u8) | 0x80);
        v >>= 7;
    }
    w.push(v as u8);
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_uint(w, b.len() as u64);
    w.extend_from_slice(b);
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_bytes(w, s.as_bytes());
}

fn put_opt_str(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            w.push(1);
            put_str(w, s);
        }
        None => w.push(0),
    }
}

/// Reads a frame body; every method fails cleanly on short input.
struct Reader<'a>(&'a [u8]);

fn truncated() -> MeshError {
    MeshError::Frame("the frame ends in the middle of a field".into())
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, MeshError> {
        let (&b, rest) = self.0.split_first().ok_or_else(truncated)?;
        self.0 = rest;
        Ok(b)
    }

    fn uint(&mut self) -> Result<u64, MeshError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                break;
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(MeshError::Frame(
            "an integer in the frame is too large".into(),
        ))
    }

    fn u32(&mut self) -> Result<u32, MeshError> {
        u32::try_from(self.uint()?)
            .map_err(|_| MeshError::Frame("an integer in the frame is too large".into()))
    }

    fn count(&mut self) -> Result<usize, MeshError> {
        let n = self.uint()?;
        // Every element takes at least one byte.
        if n > self.0.len() as u64 {
            return Err(truncated());
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], MeshError> {
        let n = self.count()?;
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b)
    }

    fn str_ref(&mut self) -> Result<&'a str, MeshError> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| MeshError::Frame("a text field in the frame is not UTF-8".into()))
    }

    fn str(&mut self) -> Result<String, MeshError> {
        self.str_ref().map(str::to_owned)
    }

    fn opt_str(&mut self) -> Result<Option<String>, MeshError> {
        Ok(if self.bool()? {
            Some(self.str()?)
        } else {
            None
        })
    }

    fn strs(&mut self) -> Result<Vec<String>, MeshError> {
        let n = self.count()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.str()?);
        }
        Ok(v)
    }

    fn bool(&mut self) -> Result<bool, MeshError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(MeshError::Frame(format!(
                "a flag in the frame is {b}, not 0 or 1"
            ))),
        }
    }

    fn nonce_ref(&mut self) -> Result<&'a [u8; 24], MeshError> {
        let (n, rest) = self.0.split_first_chunk::<24>().ok_or_else(truncated)?;
        self.0 = rest;
        Ok(n)
    }

    fn nonce(&mut self) -> Result<[u8; 24], MeshError> {
        self.nonce_ref().copied()
    }
}

/// Version-1 (JSON) form of byte fields: lowercase hex.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::identity::hex(b))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        crate::identity::unhex(&s).map_err(serde::de::Error::custom)
    }
}

/// Version-1 (JSON) form of a nonce: 48 hex digits.
mod hex_nonce {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8; 24], s: S) -> Result<S::Ok, S::Error> {
        super::hex_bytes::serialize(b, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 24], D::Error> {
        super::hex_bytes::deserialize(d)?
            .try_into()
            .map_err(|_| serde::de::Error::custom("a nonce is 24 bytes"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refusal_codes_are_typed_and_unknown_ones_kept() {
        for r in Refusal::KNOWN {
            assert_eq!(Refusal::parse(r.as_str()), r);
        }
        assert_eq!(
            Refusal::parse("from_the_future"),
            Refusal::Other("from_the_future".into())
        );
        let e = crate::MeshError::Refused {
            code: "name_taken".into(),
            message: "m".into(),
        };
        assert_eq!(e.refusal(), Some(Refusal::NameTaken));
        assert_eq!(
            Frame::error(Refusal::TooLarge, "x"),
            Frame::Error {
                code: "too_large".into(),
                message: "x".into()
            }
        );
    }

    #[test]
    fn a_request_id_travels_with_its_request_and_its_answer() {
        let req = Frame::History {
            topic: "t".into(),
            before: Some(9),
            limit: 5,
        };
        let bytes = req.encode_request(300);
        assert_eq!(&bytes[..4], &[REQUEST_VERSION, 15, 0xac, 0x02]);
        assert_eq!(Frame::request_id(&bytes), Some(300));
        assert_eq!(
            Frame::decode_addressed(&bytes).unwrap(),
            (Some(300), req.clone())
        );
        assert_eq!(Frame::decode(&bytes).unwrap(), req);
        // A version-2 frame has none, and reads as before.
        let v2 = req.encode();
        assert_eq!(Frame::request_id(&v2), None);
        assert_eq!(Frame::decode_addressed(&v2).unwrap(), (None, req));
        // An answer is addressed by splicing the id in: same body.
        let done = Frame::Done { what: "ok".into() };
        let addressed = Frame::address(&done.encode(), 7);
        assert_eq!(addressed, done.encode_request(7));
        assert_eq!(
            Frame::address(&addressed, 9),
            addressed,
            "only version 2 is addressed"
        );
        // Damaged ids and trailing bytes are refused, never misread.
        assert!(Frame::decode(&[REQUEST_VERSION, 17]).is_err());
        assert!(Frame::decode(&[REQUEST_VERSION, 17, 0x80]).is_err());
        let mut extra = done.encode_request(1);
        extra.push(0);
        assert!(Frame::decode(&extra).is_err());
        assert!(!is_pre_auth(&Frame::ListPeers.encode_request(1)));
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..300)
    }

    fn peer_info() -> impl Strategy<Value = PeerInfo> {
        let s = ".{0,20}";
        (
            (s, s, s, s),
            any::<bool>(),
            (s, s),
            proptest::collection::vec(s, 0..4),
            any::<bool>(),
        )
            .prop_map(
                |((peer, name, ed25519, x25519), online, (status, summary), caps, blocked)| {
                    PeerInfo {
                        peer,
                        name,
                        ed25519,
                        x25519,
                        online,
                        status,
                        summary,
                        caps,
                        blocked,
                    }
                },
            )
    }

    /// Every kind of frame, with arbitrary (also non-ASCII) text.
    fn frame() -> impl Strategy<Value = Frame> {
        let s = ".{0,40}";
        let leaf = prop_oneof![
            (s, s, s, any::<u64>(), s, s).prop_map(|(mesh, peer, key, ts, nonce, sig)| {
                Frame::Hello {
                    mesh,
                    peer,
                    key,
                    ts,
                    nonce,
                    sig,
                }
            }),
            any::<u32>().prop_map(|queued| Frame::Welcome { queued }),
            (s, s, s, any::<[u8; 24]>(), bytes()).prop_map(|(id, from, to, nonce, body)| {
                Frame::Dm {
                    id,
                    from,
                    to,
                    nonce,
                    body,
                }
            }),
            (s, s, s, any::<u32>(), any::<[u8; 24]>(), bytes()).prop_map(
                |(id, from, topic, epoch, nonce, body)| Frame::Publish {
                    id,
                    from,
                    topic,
                    epoch,
                    nonce,
                    body,
                }
            ),
            s.prop_map(|id| Frame::Ack { id }),
            (s, s).prop_map(|(code, message)| Frame::Error { code, message }),
            (s, s, s, s, any::<u64>(), s, s).prop_map(
                |(mesh, key, x25519, name, ts, sig, nonce)| Frame::CreateMesh {
                    mesh,
                    key,
                    x25519,
                    name,
                    ts,
                    sig,
                    nonce,
                }
            ),
            (s, s, s, s, any::<u64>(), s, s).prop_map(
                |(invite, key, x25519, name, ts, sig, nonce)| Frame::Join {
                    invite,
                    key,
                    x25519,
                    name,
                    ts,
                    sig,
                    nonce,
                }
            ),
            (s, s, s, s).prop_map(|(peer, name, x25519, invite)| Frame::MemberJoined {
                peer,
                name,
                x25519,
                invite
            }),
            Just(Frame::ListPeers),
            Just(Frame::Ping),
            proptest::collection::vec(peer_info(), 0..4)
                .prop_map(|peers| Frame::PeerList { peers }),
            (proptest::option::of(s), proptest::option::of(s))
                .prop_map(|(status, summary)| Frame::SetPresence { status, summary }),
            (s, proptest::collection::vec(s, 0..4), any::<bool>())
                .prop_map(|(peer, caps, revoke)| Frame::Grant { peer, caps, revoke }),
            (s, any::<bool>()).prop_map(|(peer, blocked)| Frame::Block { peer, blocked }),
            (s, proptest::option::of(any::<u64>()), any::<u32>()).prop_map(
                |(topic, before, limit)| Frame::History {
                    topic,
                    before,
                    limit
                }
            ),
            s.prop_map(|code| Frame::PutInvite { code }),
            s.prop_map(|short| Frame::GetInvite { short }),
            s.prop_map(|code| Frame::InviteCode { code }),
            s.prop_map(|what| Frame::Done { what }),
        ];
        let page = (
            ".{0,20}",
            proptest::collection::vec((any::<u64>(), publish()), 0..4),
        )
            .prop_map(|(topic, entries)| Frame::HistoryPage { topic, entries });
        prop_oneof![9 => leaf, 1 => page]
    }

    fn publish() -> impl Strategy<Value = Frame> {
        let s = ".{0,40}";
        (s, s, s, any::<u32>(), any::<[u8; 24]>(), bytes()).prop_map(
            |(id, from, topic, epoch, nonce, body)| Frame::Publish {
                id,
                from,
                topic,
                epoch,
                nonce,
                body,
            },
        )
    }

    /// A version-2 history page whose one entry is a page, `depth` deep:
    /// about 1,800 levels fit in 12 KB.
    fn nested_page(depth: usize) -> Vec<u8> {
        let mut f = Frame::Ack { id: "x".into() }.encode();
        for _ in 0..depth {
            let mut w = vec![VERSION, 16];
            put_str(&mut w, "t");
            put_uint(&mut w, 1);
            put_uint(&mut w, 1);
            put_bytes(&mut w, &f);
            f = w;
        }
        f
    }

    /// Runs `f` on a thread with a small stack, as a fuzzer would: deep
    /// recursion overflows it and aborts the test binary.
    fn on_small_stack<T: Send + 'static>(kib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(kib * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deeply_nested_pages_are_refused_without_recursing() {
        for depth in [2, 1_800, 20_000] {
            let b = nested_page(depth);
            let err = on_small_stack(64, move || Frame::decode(&b).unwrap_err().to_string());
            assert!(err.contains("only topic messages"), "{depth}: {err}");
        }
        // The same in the legacy JSON encoding.
        let mut json = String::from("{\"ack\":{\"id\":\"x\"}}");
        for _ in 0..2_000 {
            json = format!("{{\"history_page\":{{\"topic\":\"t\",\"entries\":[[1,{json}]]}}}}");
        }
        let mut v1 = vec![LEGACY_VERSION, 16];
        v1.extend_from_slice(json.as_bytes());
        let err = on_small_stack(64, move || Frame::decode(&v1).unwrap_err().to_string());
        assert!(err.contains("no longer read"), "{err}");
        // One level that is not a publish is refused too.
        let one = Frame::HistoryPage {
            topic: "t".into(),
            entries: vec![(1, Frame::ListPeers)],
        };
        assert!(Frame::decode(&one.encode()).is_err());
    }

    #[test]
    fn pre_auth_kinds_are_known_from_two_bytes() {
        assert!(is_pre_auth(&[VERSION, 1]));
        assert!(
            !is_pre_auth(&[LEGACY_VERSION, 8, b'{']),
            "version 1 is for stored frames"
        );
        assert!(!is_pre_auth(&[VERSION, 16]));
        assert!(!is_pre_auth(&[VERSION]));
        assert!(!is_pre_auth(&Frame::ListPeers.encode()));
    }

    proptest! {
        #[test]
        fn round_trips(f in frame()) {
            prop_assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        }

        #[test]
        fn the_legacy_json_encoding_still_decodes_what_was_stored(f in frame()) {
            let mut v1 = vec![LEGACY_VERSION, f.kind() as u8];
            v1.extend_from_slice(&serde_json::to_vec(&f).unwrap());
            if matches!(f, Frame::Dm { .. } | Frame::Publish { .. } | Frame::MemberJoined { .. }) {
                prop_assert_eq!(Frame::decode(&v1).unwrap(), f);
            } else {
                prop_assert!(Frame::decode(&v1).unwrap_err().to_string().contains("no longer read"));
            }
        }

        #[test]
        fn the_publish_view_agrees_with_decode(f in frame(), cut in any::<prop::sample::Index>()) {
            let b = f.encode();
            match (&f, PublishView::parse(&b)) {
                (Frame::Publish { id, from, topic, epoch, nonce, body }, Some(Ok(v))) => {
                    prop_assert_eq!(
                        (v.id, v.from, v.topic, v.epoch, v.nonce, v.body),
                        (id.as_str(), from.as_str(), topic.as_str(), *epoch, nonce, body.as_slice())
                    );
                }
                (Frame::Publish { .. }, other) => prop_assert!(false, "{:?}", other),
                (_, v) => prop_assert!(v.is_none()),
            }
            // Truncated, the view fails exactly when decoding fails.
            let short = &b[..cut.index(b.len())];
            if let Some(v) = PublishView::parse(short) {
                prop_assert_eq!(v.is_ok(), Frame::decode(short).is_ok());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Frame::decode(&bytes);
            let mut v2 = vec![VERSION];
            v2.extend_from_slice(&bytes);
            let _ = Frame::decode(&v2);
        }

        #[test]
        fn every_truncation_is_refused(f in frame()) {
            let b = f.encode();
            for cut in 0..b.len() {
                // A shorter valid frame could only come from a prefix that
                // is itself a whole frame of the same kind; ListPeers is.
                if let Ok(g) = Frame::decode(&b[..cut]) {
                    // A member-joined notice from an older broker has no
                    // invite field: it reads as one with an empty invite.
                    if let Frame::MemberJoined { invite, .. } = &g {
                        prop_assert!(invite.is_empty());
                        continue;
                    }
                    prop_assert_eq!(g.encode(), b[..cut].to_vec());
                    prop_assert!(cut >= 2);
                }
            }
        }

        #[test]
        fn trailing_bytes_are_refused(f in frame(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
            let mut b = f.encode();
            b.extend_from_slice(&extra);
            prop_assert!(Frame::decode(&b).is_err());
        }

        #[test]
        fn a_changed_kind_byte_never_decodes_to_the_same_frame(f in frame(), k in 0u8..=255) {
            let mut b = f.encode();
            prop_assume!(b[1] != k);
            b[1] = k;
            if let Ok(g) = Frame::decode(&b) {
                prop_assert_eq!(g.kind() as u8, k);
            }
        }
    }

    proptest! {
        #[test]
        fn batches_round_trip(fs in proptest::collection::vec(frame(), 0..8)) {
            let encoded: Vec<Vec<u8>> = fs.iter().map(Frame::encode).collect();
            let batch = bytes::Bytes::from(encode_batch(&encoded));
            prop_assert!(is_batch(&batch));
            let parts = split_batch(&batch).unwrap();
            let back: Vec<Frame> = parts.iter().map(|p| Frame::decode(p).unwrap()).collect();
            prop_assert_eq!(back, fs);
        }

        #[test]
        fn arbitrary_batches_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = vec![VERSION, BATCH];
            b.extend_from_slice(&body);
            if let Ok(parts) = split_batch(&bytes::Bytes::from(b)) {
                for p in parts {
                    let _ = Frame::decode(&p);
                }
            }
        }
    }

    #[test]
    fn nested_truncated_and_bare_batches_are_refused() {
        let inner = encode_batch(&[Frame::ListPeers.encode()]);
        let nested = bytes::Bytes::from(encode_batch(std::slice::from_ref(&inner)));
        assert!(split_batch(&nested)
            .unwrap_err()
            .to_string()
            .contains("may not hold a batch"));
        let mut cut = encode_batch(&[Frame::Ack { id: "abc".into() }.encode()]);
        cut.pop();
        assert!(split_batch(&bytes::Bytes::from(cut)).is_err());
        assert!(Frame::decode(&inner)
            .unwrap_err()
            .to_string()
            .contains("split_batch"));
    }

    #[test]
    fn a_publish_is_its_header_fields_and_raw_ciphertext() {
        let f = Frame::Publish {
            id: "m1".into(),
            from: "p".into(),
            topic: "t".into(),
            epoch: 300,
            nonce: [7; 24],
            body: vec![9; 200],
        };
        let b = f.encode();
        let mut want = vec![VERSION, 4, 2, b'm', b'1', 1, b'p', 1, b't', 0xac, 0x02];
        want.extend_from_slice(&[7; 24]);
        want.extend_from_slice(&[0xc8, 0x01]);
        want.extend_from_slice(&[9; 200]);
        assert_eq!(b, want);
    }

    #[test]
    fn oversized_wrong_version_and_bad_fields_are_errors() {
        assert!(Frame::decode(&vec![VERSION; MAX_FRAME + 1]).is_err());
        let mut b = Frame::Ack { id: "x".into() }.encode();
        b[0] = 9;
        assert!(Frame::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
        let msg = |b: &[u8]| Frame::decode(b).unwrap_err().to_string();
        assert!(msg(&[VERSION, 99]).contains("unknown frame kind 99"));
        assert!(msg(&[VERSION, 5, 2, 0xff, 0xfe]).contains("UTF-8"));
        assert!(msg(&[VERSION, 14, 0, 7]).contains("not 0 or 1"));
        assert!(msg(&[VERSION, 2, 0xff, 0xff, 0xff, 0xff, 0x7f]).contains("too large"));
        assert!(
            msg(&[VERSION, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
                .contains("too large")
        );
        assert!(msg(&[VERSION, 5, 40, b'a']).contains("middle of a field"));
    }
}
