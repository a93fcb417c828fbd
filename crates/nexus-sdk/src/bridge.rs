//! Runs a bridge ([`nexus_mesh::bridge`]): follows the forwarded topics in
//! both meshes and publishes each message's copy in the other. Through the
//! daemon when one runs for this home (its keepers hold the connections),
//! else in this process.
//!
//! At least once, and never twice in a mesh: an inbox item is marked read
//! only after its copy is acknowledged by the other mesh's broker (a copy
//! that fails is retried, with a growing pause, until it is); after a crash
//! the unread item comes back, and its copy, published again under the same
//! derived id, is stored once.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use nexus_mesh::bridge::{Arrived, Bridge, Config, Decision, Skip};
use nexus_mesh::peer::{Answer, Op};

use crate::mesh::{InboxItem, MeshEvent};
use crate::{Error, ErrorCode, Mesh, Result};

/// What a running bridge reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BridgeEvent {
    /// Following both meshes.
    Started {
        /// The two meshes.
        meshes: Vec<String>,
        /// The topics forwarded.
        topics: Vec<String>,
        /// Through the daemon.
        daemon: bool,
    },
    /// A copy was stored in the other mesh.
    Forwarded {
        /// From this mesh.
        from: String,
        /// Into this one.
        to: String,
        /// The topic.
        topic: String,
        /// The original sender.
        origin_from: String,
        /// The copy's id.
        id: String,
        /// Bridges crossed.
        hops: u8,
    },
    /// A topic message left where it was.
    Skipped {
        /// In this mesh.
        mesh: String,
        /// The topic.
        topic: String,
        /// Why.
        reason: Skip,
    },
    /// Something is wrong; the bridge waits and tries again.
    Trouble {
        /// What.
        text: String,
    },
}

/// One message handed to the forwarding loop, and the way to say it may be
/// marked read.
struct Delivery {
    mesh: String,
    item: InboxItem,
    done: oneshot::Sender<()>,
}

/// Follows `mesh` and hands each item over, asking for the next (which
/// marks this one read) only once the loop is done with it.
async fn follow(m: Mesh, mesh: String, tx: mpsc::Sender<Delivery>) -> Result<()> {
    let mut f = m.follow(Some(&mesh)).await?;
    loop {
        let item = f.next().await?;
        let (done, wait) = oneshot::channel();
        let d = Delivery {
            mesh: mesh.clone(),
            item,
            done,
        };
        if tx.send(d).await.is_err() || wait.await.is_err() {
            // The loop stopped: this item stays unread.
            return Ok(());
        }
    }
}

/// Runs the bridge `config` until an error that waiting cannot fix (a
/// stopped daemon, a mesh this peer left); `on_event` hears what it does.
pub async fn run(
    mesh: &Mesh,
    config: Config,
    mut on_event: impl FnMut(&BridgeEvent),
) -> Result<()> {
    let home = mesh.home();
    let prints = [
        nexus_mesh::peer::mesh_fingerprint(&home, &config.meshes[0])?,
        nexus_mesh::peer::mesh_fingerprint(&home, &config.meshes[1])?,
    ];
    let me = match mesh.run(Some(&config.meshes[0]), Op::Whoami).await? {
        Answer::Me { peer, .. } => peer,
        a => {
            return Err(Error::new(
                ErrorCode::Internal,
                format!("unexpected answer {a:?}"),
            ))
        }
    };
    for m in &config.meshes {
        for t in config.topic_names() {
            mesh.topic(Some(m), t, true).await?;
        }
    }
    let (tx, mut rx) = mpsc::channel::<Delivery>(1);
    let mut followers = tokio::task::JoinSet::new();
    for m in &config.meshes {
        followers.spawn(follow(mesh.clone(), m.clone(), tx.clone()));
    }
    drop(tx);
    on_event(&BridgeEvent::Started {
        meshes: config.meshes.clone(),
        topics: config.topic_names().iter().map(|t| t.to_string()).collect(),
        daemon: mesh.daemon_running().await,
    });
    let mut bridge = Bridge::new(config, &me, prints);
    loop {
        tokio::select! {
            d = rx.recv() => {
                let Some(d) = d else { break };
                forward(mesh, &mut bridge, &d, &mut on_event).await;
                let _ = d.done.send(());
            }
            Some(ended) = followers.join_next() => {
                let e = match ended {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(e) => Error::new(ErrorCode::Internal, format!("a follower stopped: {e}")),
                };
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Decides on one item and, for a copy, publishes it until the other
/// broker acknowledges it.
async fn forward(
    mesh: &Mesh,
    bridge: &mut Bridge,
    d: &Delivery,
    on_event: &mut impl FnMut(&BridgeEvent),
) {
    let MeshEvent::Topic {
        id,
        topic,
        from,
        from_name,
        text,
        bridged,
    } = &d.item.message
    else {
        return;
    };
    let arrived = Arrived {
        mesh: &d.mesh,
        id,
        topic,
        from,
        from_name,
        text,
        bridged: bridged.as_ref().map(|b| (&b.origin, b.hops)),
    };
    let f = match bridge.decide(&arrived) {
        Decision::Forward(f) => f,
        Decision::Skip(reason) => {
            on_event(&BridgeEvent::Skipped {
                mesh: d.mesh.clone(),
                topic: topic.clone(),
                reason,
            });
            return;
        }
    };
    let mut pause = Duration::from_millis(250);
    loop {
        let op = Op::Relay {
            topic: f.topic.clone(),
            id: f.id.clone(),
            envelope: f.envelope.clone(),
        };
        match mesh.run(Some(&f.mesh), op).await {
            Ok(_) => break,
            Err(e) => {
                on_event(&BridgeEvent::Trouble {
                    text: format!(
                        "could not forward #{} into {} ({e}); trying again in {} ms",
                        f.topic,
                        f.mesh,
                        pause.as_millis()
                    ),
                });
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
    bridge.forwarded(&f);
    on_event(&BridgeEvent::Forwarded {
        from: d.mesh.clone(),
        to: f.mesh.clone(),
        topic: f.topic.clone(),
        origin_from: f.envelope.origin.from.clone(),
        id: f.id.clone(),
        hops: f.envelope.hops,
    });
}
