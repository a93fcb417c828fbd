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
    },
    /// Copy a broker's SQLite state (meshes, members, invites, queued
    /// messages, topic history) into a JetStream cluster.
    Migrate {
        /// `sqlite:PATH` (or a path) of the broker database; stop that
        /// broker first.
        #[arg(long)]
        from: String,
        /// The NATS servers: `nats://h1:4222[,nats://h2:4222...]`.
        #[arg(long)]
        to: String,
        /// Copies JetStream keeps of each stream.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
        replicas: u8,
    },
    /// Which broker nodes and which JetStream cluster the NATS servers
    /// show.
    Status {
        /// The NATS servers.
        #[arg(long, env = "NEXUS_BROKER_NATS")]
        nats: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let (serve, db) = match Cli::parse().command {
        Command::Serve { serve, db } => (serve, db),
        Command::Migrate { from, to, replicas } => return migrate(&from, &to, replicas),
        Command::Status { nats, json } => return status(&nats, json).await,
    };
    let started = async {
        let limits = serve.limits(Limits::default())?;
        let options = serve.options(None)?;
        let line = nexus_broker::describe(&limits, &options);
        let s = nexus_broker::start(
            &serve.listen,
            &db,
            serve.nats.as_deref(),
            serve.replicas.unwrap_or(1),
            limits,
            options,
        )
        .await?;
        Ok::<_, nexus_mesh::MeshError>((s, line))
    };
    let stop = nexus_broker::shutdown_signal();
    match started.await {
        Ok((s, line)) => {
            println!("nexus-broker listening on {} ({})\n{line}", s.url, s.store);
            tokio::select! {
                _ = s.task => {}
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

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

/// `nexus-broker migrate`.
fn migrate(from: &str, to: &str, replicas: u8) -> ExitCode {
    let path = PathBuf::from(from.strip_prefix("sqlite:").unwrap_or(from));
    if !path.exists() {
        return fail(format!("{} does not exist", path.display()));
    }
    let source = match nexus_mesh::store::SqliteStore::open(&path) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let target = match nexus_broker::jetstream::JetStreamStore::connect(to, usize::from(replicas)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let copied = source.migrate_to(&target, |mesh, c| {
        println!(
            "{mesh}: {} members, {} invites, {} queued, {} topic messages",
            c.members, c.invites, c.queued, c.messages
        );
    });
    match copied {
        Ok(c) => {
            println!(
                "copied {} mesh(es), {} topic messages from {} to {to}",
                c.meshes,
                c.messages,
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `nexus-broker status`.
async fn status(nats: &str, json: bool) -> ExitCode {
    match nexus_broker::cluster::status(nats).await {
        Ok(s) if json => {
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(s) => {
            println!("{}", nexus_broker::cluster::describe_status(&s));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
