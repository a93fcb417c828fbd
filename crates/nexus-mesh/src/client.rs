//! A mesh client connection: frames in and out over WebSocket. It
//! acknowledges nothing by itself: a direct message stays queued at the
//! broker until whoever received it has stored it and calls
//! [`Connection::ack`] (delivery is at-least-once; the peer's inbox keeps a
//! message id once).

use std::collections::VecDeque;
use std::sync::Mutex;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::auth::{sign_hello, Invite};
use crate::broker::{create_payload, join_payload};
use crate::dm::{self, Sealed};
use crate::frame::Frame;
use crate::identity::{hex, random32, unhex, Identity};
use crate::ws::Outbound;
use crate::MeshError;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection to a broker: a handle to the tasks that own the socket (a
/// reader and a writer). Cheap to clone; clones share the connection, and
/// it closes when the last one drops. Requests from several clones (or
/// tasks) overlap, each matched to its answer by request id
/// ([`request`](Self::request)); [`messages`](Self::messages) is what
/// arrives, as a `Stream`. Reconnecting is the owner's:
/// [`crate::peer::Follow`] and `Peer::keep` reconnect with the
/// [`crate::session`] schedule, say hello again and catch up.
#[derive(Clone)]
pub struct Connection(std::sync::Arc<Shared>);

impl std::ops::Deref for Connection {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the clones of a [`Connection`] share.
pub struct Shared {
    out: mpsc::UnboundedSender<Outbound>,
    /// Frames as the reader decoded them, a WebSocket message's worth at a time.
    inbox: tokio::sync::Mutex<mpsc::Receiver<Vec<Frame>>>,
    /// Frames taken off the inbox, not yet returned.
    ready: Mutex<VecDeque<Frame>>,
    /// Frames set aside while waiting for a particular answer.
    stash: Mutex<VecDeque<Frame>>,
    /// Set when the reader stops.
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Requests waiting for their answers, by request id.
    waiting: Waiting,
    /// The next request id.
    next_id: std::sync::atomic::AtomicU64,
}

type Waiting =
    std::sync::Arc<Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<Frame>>>>;

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// WebSocket messages read ahead of the consumer, at most.
pub const INBOX_MESSAGES: usize = 256;

/// Frames set aside while waiting for an answer, at most: a broker that
/// floods a client while it waits gets the connection closed, not memory.
const MAX_ASIDE: usize = 100_000;

/// Time to connect and finish the WebSocket (and TLS) handshake.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A fresh message id.
pub fn message_id() -> Result<String, MeshError> {
    Ok(hex(&random32()?[..16]))
}

impl Connection {
    /// Opens a WebSocket to `url`: `ws://host:port`, or `wss://host:port`
    /// for TLS (see [`crate::tls`]).
    ///
    /// What the broker sends is bounded: a WebSocket message of at most
    /// [`crate::frame::MAX_BATCH`] bytes, frames decoded strictly, and at
    /// most [`INBOX_MESSAGES`] messages read ahead of the consumer (the
    /// socket waits, rather than memory growing).
    ///
    /// `url` may list the nodes of a broker cluster, `ws://a:7447,ws://b:7447`:
    /// they are tried in turn and the first that answers is used.
    pub async fn open(url: &str) -> Result<Connection, MeshError> {
        let mut last = None;
        for u in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            match Self::open_one(u).await {
                Ok(c) => return Ok(c),
                Err(e @ MeshError::Invalid(_)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| MeshError::Invalid("no broker URL given".into())))
    }

    async fn open_one(url: &str) -> Result<Connection, MeshError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let request = url
            .into_client_request()
            .map_err(|e| MeshError::Invalid(format!("`{url}` is not a broker URL: {e}")))?;
        let uri = request.uri();
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => {
                return Err(MeshError::Invalid(format!(
                    "`{url}` is not a broker URL: use ws://HOST:PORT or wss://HOST:PORT"
                )))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| MeshError::Invalid(format!("`{url}` has no host")))?
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let s = crate::tls::connect(&host, port, tls).await?;
            tokio_tungstenite::client_async_with_config(request, s, Some(crate::ws::config()))
                .await
                .map_err(|e| MeshError::Io(format!("cannot reach the broker at {url}: {e}")))
        })
        .await
        .map_err(|_| MeshError::Io(format!("the broker at {url} did not answer in time")))??;
        let (ws, _) = stream;
        let (sink, mut stream) = ws.split();
        let (out, out_rx) = mpsc::unbounded_channel::<Outbound>();
        let (in_tx, inbox) = mpsc::channel::<Vec<Frame>>(INBOX_MESSAGES);
        tokio::spawn(crate::ws::pump(sink, out_rx, None));
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader_closed = closed.clone();
        let waiting = Waiting::default();
        let answers = waiting.clone();
        tokio::spawn(async move {
            loop {
                // A dropped connection stops its reader too, so the
                // socket is released (not held until the broker speaks).
                let m = tokio::select! {
                    m = stream.next() => m,
                    () = in_tx.closed() => break,
                };
                let Some(Ok(m)) = m else { break };
                if let Message::Binary(b) = m {
                    let Ok(parts) = crate::ws::frames_of(b) else {
                        continue;
                    };
                    let mut frames = Vec::with_capacity(parts.len());
                    for p in &parts {
                        match Frame::decode_addressed(p) {
                            // An answer goes to the request that waits for it.
                            Ok((Some(id), f)) => {
                                if let Some(w) = lock(&answers).remove(&id) {
                                    let _ = w.send(f);
                                }
                            }
                            Ok((None, f)) => frames.push(f),
                            Err(_) => {}
                        }
                    }
                    if !frames.is_empty() && in_tx.send(frames).await.is_err() {
                        break;
                    }
                }
            }
            reader_closed.store(true, std::sync::atomic::Ordering::Release);
            // Requests still waiting learn that no answer will come.
            lock(&answers).clear();
        });
        Ok(Connection(std::sync::Arc::new(Shared {
            out,
            inbox: tokio::sync::Mutex::new(inbox),
            ready: Mutex::new(VecDeque::new()),
            stash: Mutex::new(VecDeque::new()),
            closed,
            waiting,
            next_id: std::sync::atomic::AtomicU64::new(1),
        })))
    }

    /// What arrives (messages, notices), as a `Stream` that ends when the
    /// broker closes the connection. Answers to requests are not in it.
    pub fn messages(&self) -> impl futures_util::Stream<Item = Frame> + Send + 'static {
        futures_util::stream::unfold(
            self.clone(),
            |c| async move { c.recv().await.map(|f| (f, c)) },
        )
    }

    /// Sends `f` as a request with an id of its own (protocol version 3)
    /// and waits up to `wait` for its answer, which the broker sends with
    /// the same id: requests on one connection may overlap, and a refusal
    /// refuses only the request it answers. Messages that arrive meanwhile
    /// stay for [`recv`](Self::recv).
    pub async fn request(&self, f: &Frame, wait: std::time::Duration) -> Result<Frame, MeshError> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.waiting).insert(id, tx);
        if self.is_closed() {
            lock(&self.waiting).remove(&id);
            return Err(MeshError::Io("the broker closed the connection".into()));
        }
        if let Err(e) = self.send_raw(f.encode_request(id)) {
            lock(&self.waiting).remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(Frame::Error { code, message })) => Err(MeshError::Refused { code, message }),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(MeshError::Io("the broker closed the connection".into())),
            Err(_) => {
                lock(&self.waiting).remove(&id);
                Err(MeshError::Io("the broker did not answer in time".into()))
            }
        }
    }

    /// Sends a frame.
    pub fn send(&self, f: &Frame) -> Result<(), MeshError> {
        self.send_raw(f.encode())
    }

    /// Tells the broker a direct message is safely stored: it leaves the
    /// broker's queue. Call it only after the message is committed
    /// somewhere that survives a crash.
    pub fn ack(&self, id: &str) -> Result<(), MeshError> {
        self.send(&Frame::Ack { id: id.to_string() })
    }

    /// Whether the connection is gone (the broker closed it, or the
    /// network failed): what was received before can still be read.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Frames received and not yet taken (set aside or read ahead).
    pub fn pending(&self) -> usize {
        lock(&self.stash).len() + lock(&self.ready).len()
    }

    /// Sends raw bytes (tests send malformed frames this way).
    pub fn send_raw(&self, bytes: Vec<u8>) -> Result<(), MeshError> {
        self.out
            .send(Outbound::Frame(bytes.into()))
            .map_err(|_| MeshError::Io("the connection to the broker is closed".into()))
    }

    /// The next frame, or `None` when the broker closed the connection.
    pub async fn recv(&self) -> Option<Frame> {
        if let Some(f) = lock(&self.stash).pop_front() {
            return Some(f);
        }
        self.next_fresh().await
    }

    /// A frame that has already arrived, without waiting (`None` if none
    /// has): drains a burst without a timer per frame. The same rules as
    /// [`recv`](Self::recv) apply.
    pub fn try_recv(&self) -> Option<Frame> {
        if let Some(f) = lock(&self.stash).pop_front() {
            return Some(f);
        }
        let next = lock(&self.ready).pop_front();
        match next {
            Some(f) => Some(f),
            None => {
                let mut inbox = self.inbox.try_lock().ok()?;
                let frames = inbox.try_recv().ok()?;
                self.take_ready(frames)
            }
        }
    }

    /// Keeps a message's worth of frames, returning the first.
    fn take_ready(&self, frames: Vec<Frame>) -> Option<Frame> {
        let mut ready = lock(&self.ready);
        if ready.is_empty() {
            *ready = VecDeque::from(frames);
        } else {
            ready.extend(frames);
        }
        ready.pop_front()
    }

    /// The next frame off the wire.
    async fn next_fresh(&self) -> Option<Frame> {
        let next = lock(&self.ready).pop_front();
        match next {
            Some(f) => Some(f),
            None => {
                let mut inbox = self.inbox.lock().await;
                // Another task may have filled `ready` while this one waited.
                let next = lock(&self.ready).pop_front();
                match next {
                    Some(f) => Some(f),
                    None => self.take_ready(inbox.recv().await?),
                }
            }
        }
    }

    /// Waits for the first frame `want` accepts (or an error frame),
    /// setting the others aside for [`recv`](Self::recv), in order.
    pub async fn wait_for(
        &self,
        d: std::time::Duration,
        want: impl Fn(&Frame) -> bool,
    ) -> Result<Frame, MeshError> {
        let deadline = tokio::time::Instant::now() + d;
        let mut aside = Vec::new();
        let result = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let next = tokio::time::timeout(left, self.next_fresh()).await;
            match next {
                Ok(Some(f)) if want(&f) => break Ok(f),
                Ok(Some(Frame::Error { code, message })) => {
                    break Err(MeshError::Refused { code, message })
                }
                Ok(Some(f)) if aside.len() < MAX_ASIDE => aside.push(f),
                Ok(Some(_)) => {
                    break Err(MeshError::Io(
                        "the broker sent too many frames without answering; closing".into(),
                    ))
                }
                Ok(None) => break Err(MeshError::Io("the broker closed the connection".into())),
                Err(_) => break Err(MeshError::Io("the broker did not answer in time".into())),
            }
        };
        lock(&self.stash).extend(aside);
        result
    }

    /// The next frame within `d`.
    pub async fn recv_timeout(&self, d: std::time::Duration) -> Option<Frame> {
        tokio::time::timeout(d, self.recv()).await.ok().flatten()
    }

    /// Says hello to `mesh` as `id`; returns how many messages were queued.
    pub async fn hello(&self, id: &Identity, mesh: &str) -> Result<u32, MeshError> {
        let nonce = hex(&random32()?[..16]);
        self.send(&sign_hello(id, mesh, now_ms(), &nonce))?;
        self.expect_welcome().await
    }

    async fn expect_welcome(&self) -> Result<u32, MeshError> {
        // A topic message can overtake the welcome (the peer is online the
        // moment the broker accepts it): keep such frames for `recv`.
        match self
            .wait_for(std::time::Duration::from_secs(10), |f| {
                matches!(f, Frame::Welcome { .. })
            })
            .await?
        {
            Frame::Welcome { queued } => Ok(queued),
            _ => Err(MeshError::Io("no welcome from the broker".into())),
        }
    }

    /// Creates `mesh` with `id` as its owner.
    pub async fn create_mesh(&self, id: &Identity, mesh: &str) -> Result<(), MeshError> {
        let key = hex(&id.ed25519_public());
        let x = hex(&id.x25519_public());
        let ts = now_ms();
        let nonce = hex(&random32()?[..16]);
        let sig = hex(&id.sign(&create_payload(mesh, &key, &x, id.name(), ts, &nonce)));
        self.send(&Frame::CreateMesh {
            mesh: mesh.into(),
            key,
            x25519: x,
            name: id.name().into(),
            ts,
            sig,
            nonce,
        })?;
        self.expect_welcome().await.map(|_| ())
    }

    /// Joins with an invite.
    pub async fn join(&self, id: &Identity, invite: &Invite) -> Result<u32, MeshError> {
        let key = hex(&id.ed25519_public());
        let x = hex(&id.x25519_public());
        let ts = now_ms();
        let nonce = hex(&random32()?[..16]);
        let sig = hex(&id.sign(&join_payload(&invite.id, &key, &x, id.name(), ts, &nonce)));
        self.send(&Frame::Join {
            invite: invite.code(),
            key,
            x25519: x,
            name: id.name().into(),
            ts,
            sig,
            nonce,
        })?;
        self.expect_welcome().await
    }

    /// Seals and sends a direct message; returns its id.
    pub fn send_dm(
        &self,
        me: &Identity,
        to_peer: &str,
        to_x25519_hex: &str,
        plaintext: &[u8],
    ) -> Result<String, MeshError> {
        let x: [u8; 32] = unhex(to_x25519_hex)?
            .try_into()
            .map_err(|_| MeshError::Invalid("the recipient's key is not 32 bytes".into()))?;
        let sealed = dm::seal(me, &x, plaintext)?;
        let id = message_id()?;
        self.send(&Frame::Dm {
            id: id.clone(),
            from: me.peer_id().to_string(),
            to: to_peer.to_string(),
            nonce: sealed.nonce,
            body: sealed.ciphertext,
        })?;
        Ok(id)
    }
}

/// Opens a received direct message with the sender's X25519 key.
pub fn open_dm(me: &Identity, sender_x25519_hex: &str, f: &Frame) -> Result<Vec<u8>, MeshError> {
    let Frame::Dm { nonce, body, .. } = f else {
        return Err(MeshError::Invalid("not a direct message".into()));
    };
    let x: [u8; 32] = unhex(sender_x25519_hex)?
        .try_into()
        .map_err(|_| MeshError::Invalid("the sender's key is not 32 bytes".into()))?;
    let sealed = Sealed {
        nonce: *nonce,
        ciphertext: body.clone(),
    };
    dm::open(me, &x, &sealed)
}
