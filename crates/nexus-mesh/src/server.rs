//! The broker over WebSocket: it moves bytes between sockets and the
//! [`Broker`] core, and nothing else. `nexus-broker serve` and `nexus up`
//! both run [`serve`].

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::broker::{Broker, ConnMap, Out, PendingAppend};
use crate::ws::Outbound;

type Senders = Arc<Mutex<ConnMap<mpsc::UnboundedSender<Outbound>>>>;
type Persist = std::sync::mpsc::Sender<PendingAppend>;

/// The most topic messages stored in one transaction.
const MAX_GROUP: usize = 1024;

/// Stores topic messages in batches on its own thread (SQLite blocks):
/// whatever queued while the last transaction ran goes into the next one,
/// so under load one commit covers many messages, and alone a message
/// waits for nobody. Acks and fan-out follow the commit.
fn spawn_committer(broker: Arc<Broker>, senders: Senders) -> Persist {
    let (tx, rx) = std::sync::mpsc::channel::<PendingAppend>();
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
                route(&senders, None, outs.drain(..));
            }
        });
    if let Err(e) = spawned {
        eprintln!("nexus-broker: cannot start the commit thread: {e}");
    }
    tx
}

fn route(senders: &Senders, persist: Option<&Persist>, outs: impl IntoIterator<Item = Out>) {
    let s = senders
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for o in outs {
        match o {
            Out::Persist(p) => {
                if let Some(tx) = persist {
                    let conn = p.conn;
                    if tx.send(*p).is_err() {
                        if let Some(c) = s.get(&conn) {
                            let f = crate::frame::Frame::error(
                                "internal",
                                "the broker cannot store messages; try again",
                            );
                            let _ = c.send(Outbound::Frame(f.encode().into()));
                        }
                    }
                }
            }
            Out::Send(c, bytes) => {
                if let Some(tx) = s.get(&c) {
                    let _ = tx.send(Outbound::Frame(bytes));
                }
            }
            Out::Close(c) => {
                if let Some(tx) = s.get(&c) {
                    let _ = tx.send(Outbound::Close);
                }
            }
        }
    }
}

/// Serves `broker` on `listener` until the task is aborted.
pub fn serve(listener: TcpListener, broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    let senders: Senders = Arc::new(Mutex::new(ConnMap::default()));
    let persist = spawn_committer(broker.clone(), senders.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            let broker = broker.clone();
            let senders = senders.clone();
            let persist = persist.clone();
            tokio::spawn(async move {
                // Frames over the broker's limit still arrive, to be refused
                // with an error frame; only absurd ones break the socket.
                let Ok(ws) =
                    tokio_tungstenite::accept_async_with_config(sock, Some(crate::ws::config()))
                        .await
                else {
                    return;
                };
                let (sink, mut stream) = ws.split();
                let conn = broker.connect();
                let (tx, rx) = mpsc::unbounded_channel::<Outbound>();
                senders
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(conn, tx);
                let writer = tokio::spawn(crate::ws::pump(sink, rx));
                while let Some(Ok(m)) = stream.next().await {
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
                            route(&senders, Some(&persist), outs);
                        }
                        Err(e) => {
                            let f = crate::frame::Frame::error("malformed", e.to_string());
                            route(&senders, None, vec![Out::Send(conn, f.encode().into())]);
                        }
                    }
                }
                broker.disconnect(conn);
                senders
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&conn);
                writer.abort();
            });
        }
    })
}

/// Opens the SQLite store at `db`, binds `listen`, and serves. Returns the
/// `ws://` URL clients use and the serving task. `nexus-broker serve` and
/// `nexus up` both start the broker through this.
pub async fn start(
    listen: &str,
    db: &std::path::Path,
) -> Result<(String, tokio::task::JoinHandle<()>), crate::MeshError> {
    let store = Arc::new(crate::store::SqliteStore::open(db)?);
    let broker = Arc::new(
        Broker::new(
            store,
            Arc::new(nexus_core::SystemClock),
            crate::broker::Limits::default(),
        )
        .with_group_commit(),
    );
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| crate::MeshError::Io(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| crate::MeshError::Io(e.to_string()))?;
    Ok((format!("ws://{addr}"), serve(listener, broker)))
}
