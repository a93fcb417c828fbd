//! The broker over WebSocket: it moves bytes between sockets and the
//! [`Broker`] core, and bounds what each socket may cost. `nexus-broker
//! serve` and `nexus up` both run [`serve`].
//!
//! Bounds (all from [`Limits`]): connections in all, per IP address and
//! not yet authenticated; a deadline for the TLS and WebSocket handshakes
//! and then for the hello; WebSocket messages of at most
//! [`MAX_BATCH`](crate::frame::MAX_BATCH) bytes; and the bytes queued for a
//! connection that does not read, past which it is disconnected. `accept`
//! errors (out of file descriptors) back off instead of spinning.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message;

use crate::broker::{Broker, ConnMap, Limits, Out, PendingAppend};
use crate::ws::Outbound;

/// A connection's outbound side, as the router sees it.
struct Link {
    tx: mpsc::UnboundedSender<Outbound>,
    /// Bytes handed to the connection's writer and not yet written.
    queued: Arc<AtomicUsize>,
    /// Told when the connection must go (it fell too far behind).
    kill: Arc<Notify>,
}

type Links = Arc<Mutex<ConnMap<Link>>>;
type Persist = std::sync::mpsc::Sender<PendingAppend>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The most topic messages stored in one transaction.
const MAX_GROUP: usize = 1024;

/// Stores topic messages in batches on its own thread (SQLite blocks):
/// whatever queued while the last transaction ran goes into the next one,
/// so under load one commit covers many messages, and alone a message
/// waits for nobody. Acks and fan-out follow the commit.
fn spawn_committer(broker: Arc<Broker>, links: Links) -> Persist {
    let (tx, rx) = std::sync::mpsc::channel::<PendingAppend>();
    let max_queued = broker.limits().max_queued_bytes;
    let spawned = std::thread::Builder::new()
        .name("nexus-broker-commit".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(MAX_GROUP);
            let mut outs = Vec::new();
            while let Ok(first) = rx.recv() {
                batch.push(first);
                while batch.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                broker.commit_into(&mut batch, &mut outs);
                route(&links, None, max_queued, outs.drain(..));
            }
        });
    if let Err(e) = spawned {
        eprintln!("nexus-broker: cannot start the commit thread: {e}");
    }
    tx
}

fn send(link: &Link, bytes: bytes::Bytes, max_queued: usize) {
    let queued = link.queued.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
    if queued > max_queued {
        // A reader this far behind is let go; what it missed stays queued
        // (direct messages) or in history (topics) for when it returns.
        link.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
        link.kill.notify_one();
        return;
    }
    let _ = link.tx.send(Outbound::Frame(bytes));
}

fn route(
    links: &Links,
    persist: Option<&Persist>,
    max_queued: usize,
    outs: impl IntoIterator<Item = Out>,
) {
    let s = lock(links);
    for o in outs {
        match o {
            Out::Persist(p) => {
                if let Some(tx) = persist {
                    let conn = p.conn;
                    if tx.send(*p).is_err() {
                        if let Some(c) = s.get(&conn) {
                            let f = crate::frame::Frame::error(
                                crate::frame::Refusal::Internal,
                                "the broker cannot store messages; try again",
                            );
                            send(c, f.encode().into(), max_queued);
                        }
                    }
                }
            }
            Out::Send(c, bytes) => {
                if let Some(link) = s.get(&c) {
                    send(link, bytes, max_queued);
                }
            }
            Out::Close(c) => {
                if let Some(link) = s.get(&c) {
                    let _ = link.tx.send(Outbound::Close);
                }
            }
        }
    }
}

/// How a broker is served beyond its [`Limits`].
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Serve `wss://` with this certificate; plain `ws://` without.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// When an acknowledged message is on disk ([`start`] opens the store
    /// with it).
    pub durability: crate::store::Durability,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("tls", &self.tls.is_some())
            .field("durability", &self.durability)
            .finish()
    }
}

/// Connections open now: in all, per address, and not yet authenticated.
#[derive(Default)]
struct Census {
    total: AtomicUsize,
    unauthenticated: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place in the [`Census`], given back when dropped.
struct Seat {
    census: Arc<Census>,
    ip: IpAddr,
    authenticated: bool,
}

impl Census {
    /// A seat for a new connection from `ip`, or `None` if a limit is
    /// reached (the socket is then closed at once).
    fn seat(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Seat> {
        let mut per_ip = lock(&self.per_ip);
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if mine >= limits.max_connections_per_ip
            || self.total.load(Ordering::Relaxed) >= limits.max_connections
            || self.unauthenticated.load(Ordering::Relaxed) >= limits.max_unauthenticated
        {
            return None;
        }
        per_ip.insert(ip, mine + 1);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
        Some(Seat {
            census: self.clone(),
            ip,
            authenticated: false,
        })
    }
}

impl Seat {
    fn authenticated(&mut self) {
        if !self.authenticated {
            self.authenticated = true;
            self.census.unauthenticated.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.authenticated();
        self.census.total.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = lock(&self.census.per_ip);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Serves `broker` on `listener` (plain WebSocket) until the task is aborted.
pub fn serve(listener: TcpListener, broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    serve_with(listener, broker, ServeOptions::default())
}

/// Serves `broker` on `listener` with `options` until the task is aborted.
pub fn serve_with(
    listener: TcpListener,
    broker: Arc<Broker>,
    options: ServeOptions,
) -> tokio::task::JoinHandle<()> {
    serve_fed(listener, broker, options, None)
}

/// Work from outside the connections: a cluster node's deliveries of what
/// other nodes stored ([`Broker::remote_publish`] and the like), run on the
/// broker and routed to this node's connections.
pub type Feed = Box<dyn FnOnce(&Broker) -> Vec<Out> + Send>;

/// [`serve_with`], also running what arrives on `feed`.
pub fn serve_fed(
    listener: TcpListener,
    broker: Arc<Broker>,
    options: ServeOptions,
    feed: Option<mpsc::UnboundedReceiver<Feed>>,
) -> tokio::task::JoinHandle<()> {
    let links: Links = Arc::new(Mutex::new(ConnMap::default()));
    let persist = spawn_committer(broker.clone(), links.clone());
    if let Some(mut feed) = feed {
        let (broker, links) = (broker.clone(), links.clone());
        tokio::spawn(async move {
            let max = broker.limits().max_queued_bytes;
            while let Some(work) = feed.recv().await {
                route(&links, None, max, work(&broker));
            }
        });
    }
    let census = Arc::new(Census::default());
    tokio::spawn(async move {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let mut failing = false;
        loop {
            let (sock, addr) = match listener.accept().await {
                Ok(a) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    failing = false;
                    a
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE) and the like: wait for
                    // connections to close instead of spinning on accept.
                    if !failing {
                        eprintln!("nexus-broker: accept failed ({e}); backing off");
                    }
                    failing = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            };
            let limits = *broker.limits();
            let Some(seat) = census.seat(addr.ip(), &limits) else {
                drop(sock);
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(connection(
                sock,
                seat,
                broker.clone(),
                links.clone(),
                persist.clone(),
                options.tls.clone(),
            ));
        }
    })
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

async fn connection(
    sock: tokio::net::TcpStream,
    mut seat: Seat,
    broker: Arc<Broker>,
    links: Links,
    persist: Persist,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let limits = *broker.limits();
    let deadline = Duration::from_millis(limits.handshake_timeout_ms);
    let handshake = async {
        let stream: crate::tls::Stream = match tls {
            Some(acceptor) => Box::new(acceptor.accept(sock).await.ok()?),
            None => Box::new(sock),
        };
        tokio_tungstenite::accept_async_with_config(stream, Some(crate::ws::config()))
            .await
            .ok()
    };
    let Ok(Some(ws)) = tokio::time::timeout(deadline, handshake).await else {
        return;
    };
    let (sink, mut stream) = ws.split();
    let conn = broker.connect();
    let (tx, rx) = mpsc::unbounded_channel::<Outbound>();
    let queued = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    lock(&links).insert(
        conn,
        Link {
            tx,
            queued: queued.clone(),
            kill: kill.clone(),
        },
    );
    let writer = tokio::spawn(crate::ws::pump(sink, rx, Some(queued)));
    // The hello (or create or join) must come within the deadline too.
    let hello_by = tokio::time::Instant::now() + deadline;
    loop {
        let next = tokio::select! {
            m = stream.next() => m,
            () = kill.notified() => break,
            () = tokio::time::sleep_until(hello_by), if !seat.authenticated => break,
        };
        let Some(Ok(m)) = next else { break };
        let bytes = match m {
            Message::Binary(b) => b,
            Message::Text(t) => t.into(),
            Message::Close(_) => break,
            _ => continue,
        };
        match crate::ws::frames_of(bytes) {
            Ok(frames) => {
                let mut outs = Vec::new();
                for f in frames {
                    outs.extend(broker.receive(conn, f));
                }
                route(&links, Some(&persist), limits.max_queued_bytes, outs);
            }
            Err(e) => {
                let f = crate::frame::Frame::error(crate::frame::Refusal::Malformed, e.to_string());
                route(
                    &links,
                    None,
                    limits.max_queued_bytes,
                    vec![Out::Send(conn, f.encode().into())],
                );
            }
        }
        if !seat.authenticated && broker.is_authenticated(conn) {
            seat.authenticated();
        }
    }
    broker.disconnect(conn);
    lock(&links).remove(&conn);
    // Let the writer send what is queued (an error frame, a close) for a
    // moment; a reader that does not read is cut off.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

/// Opens the SQLite store at `db`, binds `listen`, and serves with
/// `limits` (and TLS when `options` has it). Returns the URL clients use
/// (`ws://` or `wss://`) and the serving task. `nexus-broker serve` and
/// `nexus up` both start the broker through this.
pub async fn start(
    listen: &str,
    db: &std::path::Path,
    limits: Limits,
    options: ServeOptions,
) -> Result<(String, tokio::task::JoinHandle<()>), crate::MeshError> {
    limits.validate()?;
    let store = Arc::new(crate::store::SqliteStore::open_with(
        db,
        options.durability,
    )?);
    start_with(listen, store, limits, options).await
}

/// [`start`] over any store.
pub async fn start_with(
    listen: &str,
    store: Arc<dyn crate::store::BrokerStore>,
    limits: Limits,
    options: ServeOptions,
) -> Result<(String, tokio::task::JoinHandle<()>), crate::MeshError> {
    let (url, task, _) = start_node(listen, store, limits, options, None).await?;
    Ok((url, task))
}

/// A cluster node's part in [`start_node`]: who is online elsewhere, and
/// the feed of what other nodes stored.
pub struct Node {
    /// Heartbeats heard from the other nodes.
    pub presence: Arc<crate::broker::cluster::Presence>,
    /// Deliveries to run on this node.
    pub feed: mpsc::UnboundedReceiver<Feed>,
}

/// [`start_with`], as one node of a cluster when `node` is given; also
/// returns the broker (for the node's heartbeats).
pub async fn start_node(
    listen: &str,
    store: Arc<dyn crate::store::BrokerStore>,
    limits: Limits,
    options: ServeOptions,
    node: Option<Node>,
) -> Result<(String, tokio::task::JoinHandle<()>, Arc<Broker>), crate::MeshError> {
    limits.validate()?;
    let mut broker =
        Broker::new(store, Arc::new(nexus_core::SystemClock), limits).with_group_commit();
    let feed = match node {
        Some(n) => {
            broker = broker.with_presence(n.presence);
            Some(n.feed)
        }
        None => None,
    };
    let broker = Arc::new(broker);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| crate::MeshError::Io(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| crate::MeshError::Io(e.to_string()))?;
    let scheme = if options.tls.is_some() { "wss" } else { "ws" };
    Ok((
        format!("{scheme}://{addr}"),
        serve_fed(listener, broker.clone(), options, feed),
        broker,
    ))
}

/// Ctrl-C or SIGTERM, whichever comes first; says which. The handlers are
/// installed when this is called (call it before saying "listening", or a
/// signal in between would kill the process the default way), and the
/// future waits.
pub fn shutdown_signal() -> impl std::future::Future<Output = &'static str> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::terminate())
            .and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = signals {
            return tokio::select! {
                _ = int.recv() => "interrupt",
                _ = term.recv() => "SIGTERM",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "interrupt"
    }
}
