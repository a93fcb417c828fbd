//! `nexus-broker`: runs the mesh broker library on a WebSocket listener
//! with its SQLite store. Thin: everything is in `nexus_mesh`.

// glibc's allocator contends on its arena locks across the broker's
// threads; mimalloc took mesh throughput up by a fifth (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nexus_broker::ServeArgs;
use nexus_mesh::broker::Limits;

/// The Nexus mesh broker.
#[derive(Debug, Parser)]
#[command(
    name = "nexus-broker",
    version,
    about = "The Nexus mesh broker: relays end-to-end encrypted messages; never holds keys or plaintext"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve WebSocket clients.
    Serve {
        #[command(flatten)]
        serve: ServeArgs,
        /// The SQLite database (created if missing, mode 0600; WAL mode).
        #[arg(long, default_value = "broker.db", conflicts_with = "nats")]
        db: PathBuf,
        /// Store on a NATS JetStream cluster instead: its servers,
        /// `nats://h1:4222,nats://h2:4222` (several broker nodes share it).
        #[arg(long, env = "NEXUS_BROKER_NATS")]
        nats: Option<String>,
        /// Copies JetStream keeps of each stream (3 on a three-node cluster).
        #[arg(long, default_value_t = 1, requires = "nats", value_parser = clap::value_parser!(u8).range(1..=5))]
        replicas: u8,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli {
        command:
            Command::Serve {
                serve,
                db,
                nats,
                replicas,
            },
    } = Cli::parse();
    let store_name = match &nats {
        Some(n) => format!("JetStream {n}, {replicas} replica(s)"),
        None => format!("database {}", db.display()),
    };
    let started = async {
        let limits = serve.limits(Limits::default())?;
        let options = serve.options(None)?;
        let line = nexus_broker::describe(&limits, &options);
        let (url, task) = match &nats {
            Some(servers) => {
                let store = nexus_broker::jetstream::JetStreamStore::connect(
                    servers,
                    usize::from(replicas),
                )?;
                nexus_mesh::server::start_with(
                    &serve.listen,
                    std::sync::Arc::new(store),
                    limits,
                    options,
                )
                .await?
            }
            None => nexus_mesh::server::start(&serve.listen, &db, limits, options).await?,
        };
        Ok::<_, nexus_mesh::MeshError>((url, task, line))
    };
    let stop = nexus_broker::shutdown_signal();
    match started.await {
        Ok((url, task, line)) => {
            println!("nexus-broker listening on {url} ({store_name})\n{line}");
            tokio::select! {
                _ = task => {}
                why = stop => println!("stopping ({why})"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
