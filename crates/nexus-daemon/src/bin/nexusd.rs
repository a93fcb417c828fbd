//! `nexusd`: the resident Nexus in the foreground, for a service manager
//! (`nexus daemon start` runs the same thing in the background). It opens
//! the vault without a prompt (`NEXUS_VAULT_PASSPHRASE`, or a keyring), and
//! stops on SIGTERM or Ctrl-C.

use std::process::ExitCode;

use nexus_core::{Config, NexusHome};
use nexus_vault::select::{open, Options};

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).is_some_and(|a| a == "--version") {
        println!("nexusd {}", nexus_daemon::VERSION);
        return ExitCode::SUCCESS;
    }
    let run = async {
        let home = NexusHome::from_env().map_err(|e| e.to_string())?;
        let config = Config::load(&home).map_err(|e| e.to_string())?;
        let configured = nexus_vault::configured_backend(&config);
        let (vault, _) = open(&Options {
            home: &home,
            configured,
            env: &env,
            prompt: None,
            tell: None,
        })
        .map_err(|e| e.to_string())?;
        let stop = nexus_mesh::server::shutdown_signal();
        nexus_daemon::run(home, vault, async move {
            stop.await;
        })
        .await
        .map_err(|e| e.to_string())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
