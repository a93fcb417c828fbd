//! `nexus-broker`: runs the mesh broker library on a WebSocket listener
//! with its SQLite store. Thin: everything is in `nexus_mesh`.

// glibc's allocator contends on its arena locks across the broker's
// threads; mimalloc took mesh throughput up by a fifth (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7447")]
        listen: String,
        /// The SQLite database (created if missing; WAL mode).
        #[arg(long, default_value = "broker.db")]
        db: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli {
        command: Command::Serve { listen, db },
    } = Cli::parse();
    match nexus_mesh::server::start(&listen, &db).await {
        Ok((url, task)) => {
            println!(
                "nexus-broker listening on {url} (database {})",
                db.display()
            );
            tokio::select! {
                _ = task => {}
                _ = tokio::signal::ctrl_c() => println!("stopping"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
