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
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli {
        command: Command::Serve { serve, db },
    } = Cli::parse();
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
