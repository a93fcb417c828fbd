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

/// An ephemeral push consumer on `stream` from `policy` (in memory, one
/// replica, flow-controlled, heartbeats every second), its messages handed
/// to `each` in order; made again from the next sequence if it fails or
/// falls silent (its server went away).
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
                .create_consumer(consumer::push::Config {
                    deliver_subject: js.client().new_inbox(),
                    filter_subject: filter.clone(),
                    deliver_policy: policy,
                    ack_policy: consumer::AckPolicy::None,
                    flow_control: true,
                    // A consumer whose server died is noticed within two
                    // missed heartbeats and made again from where it was
                    // (an ordered consumer's are fixed at 5 s).
                    idle_heartbeat: Duration::from_secs(1),
                    memory_storage: true,
                    num_replicas: 1,
                    inactive_threshold: Duration::from_secs(30),
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

/// What `nexus-broker status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The NATS server answering, and its version.
    pub server: String,
    /// Its version.
    pub version: String,
    /// The NATS cluster's name (none for a lone server).
    pub cluster: Option<String>,
    /// The other servers it advertises.
    pub servers: Vec<String>,
    /// Whether JetStream is on.
    pub jetstream: bool,
    /// The DM stream's leader and replicas (`name`, `current`).
    pub leader: Option<String>,
    /// Its replicas: name and whether each is current.
    pub replicas: Vec<(String, bool)>,
    /// Broker nodes heard within one heartbeat, with their peers online.
    pub brokers: Vec<(String, usize)>,
}

/// Asks the NATS servers who serves, how JetStream's cluster stands, and
/// listens one heartbeat and a half for the broker nodes.
pub async fn status(servers: &str) -> Result<Status, nexus_mesh::MeshError> {
    let bad = |e: &dyn std::fmt::Display| nexus_mesh::MeshError::Io(format!("NATS: {e}"));
    let addrs: Vec<async_nats::ServerAddr> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            nexus_mesh::MeshError::Invalid(format!("a NATS server address does not parse: {e}"))
        })?;
    let client = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(addrs))
        .await
        .map_err(|_| nexus_mesh::MeshError::Io(format!("no NATS server answered at {servers}")))?
        .map_err(|e| {
            nexus_mesh::MeshError::Io(format!(
                "no NATS server answered at {servers} ({e}); is nats-server running (with -js)?"
            ))
        })?;
    let mut heard = client
        .subscribe(PRESENCE_SUBJECT)
        .await
        .map_err(|e| bad(&e))?;
    let info = client.server_info();
    let mut out = Status {
        server: info.server_name.clone(),
        version: info.version.clone(),
        cluster: info.cluster.clone(),
        servers: info.connect_urls.clone(),
        jetstream: info.jetstream,
        leader: None,
        replicas: Vec::new(),
        brokers: Vec::new(),
    };
    if info.jetstream {
        // The raw answer, read as JSON: async-nats 0.51's typed account and
        // stream infos do not all parse from a 2.9 server.
        let reply = tokio::time::timeout(
            Duration::from_secs(3),
            client.request("$JS.API.STREAM.INFO.NEXUS_Q", "".into()),
        )
        .await;
        if let Ok(Ok(m)) = reply {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.payload) {
                let c = &v["cluster"];
                out.leader = c["leader"].as_str().map(str::to_string);
                if out.leader.is_none() && v["config"].is_object() {
                    // A lone server leads its own streams.
                    out.leader = Some(info.server_name.clone());
                }
                out.replicas = c["replicas"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .map(|x| {
                                (
                                    x["name"].as_str().unwrap_or("?").to_string(),
                                    x["current"].as_bool().unwrap_or(false),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
        }
    }
    let deadline = tokio::time::Instant::now() + HEARTBEAT + HEARTBEAT / 2;
    let mut nodes = std::collections::BTreeMap::new();
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, heard.next()).await {
        if let Ok(h) = serde_json::from_slice::<Heartbeat>(&m.payload) {
            nodes.insert(h.node, h.online.len());
        }
    }
    out.brokers = nodes.into_iter().collect();
    Ok(out)
}

/// [`Status`] for a terminal.
pub fn describe_status(s: &Status) -> String {
    let mut out = format!(
        "NATS server {} ({}){}; JetStream {}\n",
        s.server,
        s.version,
        s.cluster
            .as_ref()
            .map(|c| format!(" in cluster {c}"))
            .unwrap_or_default(),
        if s.jetstream {
            "on"
        } else {
            "OFF: start nats-server with -js"
        }
    );
    if let Some(l) = &s.leader {
        let r: Vec<String> = s
            .replicas
            .iter()
            .map(|(n, cur)| format!("{n}{}", if *cur { "" } else { " (behind)" }))
            .collect();
        out.push_str(&format!(
            "  leader {l}; replicas: {}\n",
            if r.is_empty() {
                "none".into()
            } else {
                r.join(", ")
            }
        ));
    } else if s.jetstream {
        out.push_str("  no Nexus streams yet (no broker node has started on it)\n");
    }
    if s.brokers.is_empty() {
        out.push_str("  no broker node heard\n");
    }
    for (node, online) in &s.brokers {
        out.push_str(&format!(
            "  broker node {node}: {online} peer connection(s)\n"
        ));
    }
    out.trim_end().to_string()
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
