//! A broker node of a JetStream cluster: the I/O around
//! [`nexus_mesh::broker::cluster`]. Each node
//! - follows every mesh's topic stream and the DM queue with ordered
//!   consumers (from the moment it starts: a peer that connects later
//!   catches up from history) and hands what *other* nodes stored to its
//!   own connections (a message carries its node in `Nexus-Node`);
//! - watches the members bucket: a grant or a block made on another node
//!   takes effect here at once (a blocked member's connections close);
//! - says who is connected to it on core NATS (`nexus.presence`) every
//!   second, and counts a peer online while another node's last heartbeat
//!   listing it is under 2.5 s old.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use nexus_mesh::broker::cluster::Presence;
use nexus_mesh::broker::Broker;
use nexus_mesh::server::Feed;
use tokio::sync::mpsc;

use crate::jetstream::JetStreamStore;

/// How often a node says who is connected to it.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a node's heartbeat holds.
pub const PRESENCE_EXPIRY_MS: u64 = 2_500;

const PRESENCE_SUBJECT: &str = "nexus.presence";

fn unhex(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = b
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The presence table a node's broker reads.
pub fn presence() -> Arc<Presence> {
    Arc::new(Presence::new(PRESENCE_EXPIRY_MS))
}

/// Runs the node's side of the cluster for `broker` until the process
/// ends: feeds go to `feed`, heartbeats to and from `presence`.
pub fn spawn(
    store: &JetStreamStore,
    broker: Arc<Broker>,
    presence: Arc<Presence>,
    feed: mpsc::UnboundedSender<Feed>,
) {
    let js = store.context();
    let me = store.node().to_string();
    tokio::spawn(follow_topics(js.clone(), me.clone(), feed.clone()));
    tokio::spawn(follow_queue(js.clone(), me.clone(), feed.clone()));
    tokio::spawn(watch_members(js.clone(), feed));
    tokio::spawn(heartbeats(js.client(), me, broker, presence));
}

/// Whether `m` was stored by this node (and so delivered here already).
fn ours(m: &async_nats::Message, me: &str) -> bool {
    m.headers
        .as_ref()
        .and_then(|h| h.get("Nexus-Node"))
        .is_some_and(|n| n.as_str() == me)
}

/// An ordered consumer on `stream` from `policy`, its messages handed to
/// `each`; made again if it fails (a node of the cluster went away).
async fn follow(
    js: jetstream::Context,
    stream: String,
    filter: String,
    mut policy: consumer::DeliverPolicy,
    mut each: impl FnMut(async_nats::Message),
) {
    let mut last = 0u64;
    loop {
        let made = async {
            let s = js.get_stream_no_info(&stream).await.ok()?;
            let c = s
                .create_consumer(consumer::push::OrderedConfig {
                    deliver_subject: js.client().new_inbox(),
                    filter_subject: filter.clone(),
                    deliver_policy: policy,
                    ..Default::default()
                })
                .await
                .ok()?;
            c.messages().await.ok()
        };
        if let Some(mut messages) = made.await {
            while let Some(Ok(m)) = messages.next().await {
                if let Ok(info) = m.info() {
                    last = info.stream_sequence;
                }
                each(m.message);
            }
        }
        // Go on after what was seen; never replay it.
        if last > 0 {
            policy = consumer::DeliverPolicy::ByStartSequence {
                start_sequence: last + 1,
            };
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Follows every mesh's topic stream, finding new meshes every second.
async fn follow_topics(js: jetstream::Context, me: String, feed: mpsc::UnboundedSender<Feed>) {
    let mut known = std::collections::HashSet::new();
    let mut first = true;
    loop {
        let mut names = js.stream_names();
        let mut found = Vec::new();
        while let Some(Ok(n)) = names.next().await {
            if n.starts_with("NEXUS_T_") && !known.contains(&n) {
                found.push(n);
            }
        }
        for name in found {
            known.insert(name.clone());
            let Some(mesh) = unhex(&name["NEXUS_T_".len()..]) else {
                continue;
            };
            // A mesh already there at start: from now (peers that connect
            // catch up from history). One made since: from its start.
            let policy = if first {
                consumer::DeliverPolicy::New
            } else {
                consumer::DeliverPolicy::All
            };
            let (feed, me) = (feed.clone(), me.clone());
            tokio::spawn(follow(js.clone(), name, String::new(), policy, move |m| {
                if ours(&m, &me) {
                    return;
                }
                let mesh = mesh.clone();
                let _ = feed.send(Box::new(move |b: &Broker| {
                    b.remote_publish(&mesh, m.payload)
                }));
            }));
        }
        first = false;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Follows the DM queue: each message to its recipient's connections here.
async fn follow_queue(js: jetstream::Context, me: String, feed: mpsc::UnboundedSender<Feed>) {
    follow(
        js,
        "NEXUS_Q".into(),
        String::new(),
        consumer::DeliverPolicy::New,
        move |m| {
            if ours(&m, &me) {
                return;
            }
            // nexus.q.<mesh>.<peer>
            let mut parts = m.subject.split('.').skip(2);
            let (Some(mesh), Some(to)) =
                (parts.next().and_then(unhex), parts.next().and_then(unhex))
            else {
                return;
            };
            let _ = feed.send(Box::new(move |b: &Broker| {
                b.remote_dm(&mesh, &to, m.payload)
            }));
        },
    )
    .await;
}

/// Watches the members bucket: every change is reloaded here.
async fn watch_members(js: jetstream::Context, feed: mpsc::UnboundedSender<Feed>) {
    loop {
        if let Ok(kv) = js.get_key_value("nexus_members").await {
            if let Ok(mut w) = kv.watch_all().await {
                while let Some(Ok(e)) = w.next().await {
                    // <mesh>.<peer>
                    let Some((m, p)) = e.key.split_once('.') else {
                        continue;
                    };
                    let (Some(mesh), Some(peer)) = (unhex(m), unhex(p)) else {
                        continue;
                    };
                    let _ = feed.send(Box::new(move |b: &Broker| b.member_changed(&mesh, &peer)));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Heartbeat {
    node: String,
    online: Vec<(String, String)>,
}

/// Says every [`HEARTBEAT`] who is connected here, and hears the others.
async fn heartbeats(
    client: async_nats::Client,
    me: String,
    broker: Arc<Broker>,
    presence: Arc<Presence>,
) {
    let listen = {
        let (client, me, presence) = (client.clone(), me.clone(), presence.clone());
        async move {
            let Ok(mut sub) = client.subscribe(PRESENCE_SUBJECT).await else {
                return;
            };
            while let Some(m) = sub.next().await {
                if let Ok(h) = serde_json::from_slice::<Heartbeat>(&m.payload) {
                    if h.node != me {
                        presence.heard(&h.node, h.online, now_ms());
                    }
                }
            }
        }
    };
    tokio::spawn(listen);
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let h = Heartbeat {
            node: me.clone(),
            online: broker.online_here(),
        };
        if let Ok(b) = serde_json::to_vec(&h) {
            let _ = client.publish(PRESENCE_SUBJECT, b.into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_from_their_hex() {
        assert_eq!(
            unhex(&nexus_mesh::identity::hex(b"lab")).as_deref(),
            Some("lab")
        );
        assert_eq!(unhex("6"), None);
        assert_eq!(unhex("zz"), None);
    }
}
