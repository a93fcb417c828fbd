//! The mesh broker's serving options, shared by `nexus-broker serve` and
//! `nexus up`: where to listen, TLS, and every limit as a flag (over the
//! `[broker]` table of config.toml for `nexus up`, over the defaults in
//! [`Limits`]). Also the shutdown both use: Ctrl-C or SIGTERM (what
//! systemd sends), whichever comes first.

pub mod cluster;
pub mod jetstream;

use std::path::PathBuf;

use nexus_mesh::broker::Limits;
use nexus_mesh::server::ServeOptions;
use nexus_mesh::store::Durability;
use nexus_mesh::MeshError;

/// How to serve the broker.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7447")]
    pub listen: String,
    /// Serve wss:// with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Sustained frames per second per connection [default: 2000].
    #[arg(long)]
    pub rate: Option<u32>,
    /// Frames a connection may send in a burst [default: 4000].
    #[arg(long)]
    pub burst: Option<u32>,
    /// Open connections in all [default: 10000].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Open connections from one IP address [default: 2000].
    #[arg(long)]
    pub max_connections_per_ip: Option<usize>,
    /// Connections not yet authenticated, in all [default: 256].
    #[arg(long)]
    pub max_unauthenticated: Option<usize>,
    /// Largest frame a peer may send, bytes [default: 258048].
    #[arg(long)]
    pub max_frame: Option<usize>,
    /// Bytes queued for a peer that does not read before it is
    /// disconnected [default: 16 MiB].
    #[arg(long)]
    pub max_queued_bytes: Option<usize>,
    /// When a message is acknowledged: `normal` once it is in the database
    /// (survives the broker crashing; the last 500 ms may be lost on power
    /// loss), `full` once it would survive a power loss (an fsync per group
    /// commit; slower) [default: normal].
    #[arg(long, value_parser = ["full", "normal"])]
    pub durability: Option<String>,
    /// Store on a NATS JetStream cluster instead of SQLite, as one node of
    /// a broker cluster: its servers, `nats://h1:4222,nats://h2:4222`
    /// (tried in turn, and on reconnects).
    #[arg(long, env = "NEXUS_BROKER_NATS")]
    pub nats: Option<String>,
    /// Copies JetStream keeps of each stream (3 on a three-node cluster)
    /// [default: 1].
    #[arg(long, requires = "nats", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: Option<u8>,
}

/// A started broker: its URL, the serving task, and what it stores in.
pub struct Started {
    /// `ws://` or `wss://`.
    pub url: String,
    /// Serves until aborted.
    pub task: tokio::task::JoinHandle<()>,
    /// "database PATH" or "JetStream URLS (node ID, N replicas)".
    pub store: String,
}

/// Starts the broker on SQLite at `db`, or as a cluster node on JetStream
/// when `nats` names servers (`replicas` copies of each stream).
pub async fn start(
    listen: &str,
    db: &std::path::Path,
    nats: Option<&str>,
    replicas: u8,
    limits: Limits,
    options: ServeOptions,
) -> Result<Started, MeshError> {
    let Some(servers) = nats else {
        let (url, task) = nexus_mesh::server::start(listen, db, limits, options).await?;
        return Ok(Started {
            url,
            task,
            store: format!("database {}", db.display()),
        });
    };
    let store = jetstream::JetStreamStore::connect(servers, usize::from(replicas))?;
    let presence = cluster::presence();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let store_line = format!(
        "JetStream {servers} (node {}, {replicas} replica(s))",
        store.node()
    );
    let store = std::sync::Arc::new(store);
    let (url, task, broker) = nexus_mesh::server::start_node(
        listen,
        store.clone(),
        limits,
        options,
        Some(nexus_mesh::server::Node {
            presence: presence.clone(),
            feed: rx,
        }),
    )
    .await?;
    cluster::spawn(&store, broker, presence, tx);
    Ok(Started {
        url,
        task,
        store: store_line,
    })
}

impl ServeArgs {
    /// `base` with the limits given as flags put over it, checked.
    pub fn limits(&self, base: Limits) -> Result<Limits, MeshError> {
        let mut l = base;
        if let Some(v) = self.rate {
            l.rate_per_sec = v;
        }
        if let Some(v) = self.burst {
            l.burst = v;
        }
        if let Some(v) = self.max_connections {
            l.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_ip {
            l.max_connections_per_ip = v;
        }
        if let Some(v) = self.max_unauthenticated {
            l.max_unauthenticated = v;
        }
        if let Some(v) = self.max_frame {
            l.max_frame = v;
        }
        if let Some(v) = self.max_queued_bytes {
            l.max_queued_bytes = v;
        }
        l.validate()?;
        Ok(l)
    }

    /// TLS when asked for, and the durability (the flag, else `base`,
    /// else normal).
    pub fn options(&self, base: Option<&str>) -> Result<ServeOptions, MeshError> {
        let durability = match self.durability.as_deref().or(base) {
            Some(d) => Durability::parse(d)?,
            None => Durability::default(),
        };
        Ok(ServeOptions {
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(c), Some(k)) => Some(nexus_mesh::tls::acceptor(c, k)?),
                _ => None,
            },
            durability,
        })
    }
}

/// One line saying which limits a broker runs with.
pub fn describe(l: &Limits, o: &ServeOptions) -> String {
    format!(
        "durability: {:?}; limits: {} frames/s (burst {}) per connection, {} connections ({} per IP, {} unauthenticated), frames up to {} bytes, {} bytes queued per reader",
        o.durability,
        l.rate_per_sec,
        l.burst,
        l.max_connections,
        l.max_connections_per_ip,
        l.max_unauthenticated,
        l.max_frame,
        l.max_queued_bytes
    )
}

pub use nexus_mesh::server::shutdown_signal;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ServeArgs,
    }

    #[test]
    fn flags_go_over_the_base_and_are_checked() {
        let t = T::parse_from(["t", "--rate", "50000", "--burst", "90000"]);
        let base = Limits {
            max_connections: 7,
            ..Limits::default()
        };
        let l = t.a.limits(base).unwrap();
        assert_eq!(
            (l.rate_per_sec, l.burst, l.max_connections),
            (50_000, 90_000, 7)
        );
        let bad = T::parse_from(["t", "--max-frame", "10"]);
        assert!(bad
            .a
            .limits(Limits::default())
            .unwrap_err()
            .to_string()
            .contains("max_frame"));
        assert!(
            T::try_parse_from(["t", "--tls-cert", "c.pem"]).is_err(),
            "needs the key"
        );
    }
}
