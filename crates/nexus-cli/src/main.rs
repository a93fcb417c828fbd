//! `nexus`: the reference CLI. Thin: it parses input, calls the Nexus
//! libraries and renders their output.

mod cli;
mod commands;
mod exit;
mod jq;
mod output;
mod progress;

// glibc's allocator contends on its arena locks across the broker's
// threads; mimalloc took mesh throughput up by a fifth (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli_wants_json(&cli.command);
    if let Some(expr) = &cli.jq {
        if !json {
            return report(
                &CliError::config("--jq filters JSON output: add --json to a command that has it"),
                false,
            );
        }
        output::set_jq(expr.clone());
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                &CliError::internal(format!("cannot start the runtime: {e}")),
                json,
            )
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, json),
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    if let Some(m) = &cli.approval_mode {
        commands::set_approval_mode(m)?;
    }
    match cli.command {
        Command::Chat(args) => commands::chat::run(args).await,
        Command::Ask(args) => commands::ask::run(args).await,
        Command::History(c) => commands::history::run(c),
        Command::Ext(c) => commands::ext::run(c).await,
        Command::Mcp(c) => commands::mcp::run(c).await,
        Command::Apikey(c) => commands::apikey::run(c),
        Command::ActionPolicy(c) => commands::apikey::policy(c),
        Command::Audit(c) => commands::apikey::audit(c),
        Command::Open { url, alias, yes } => commands::ext::open(&url, alias, yes).await,
        Command::Aliases(c) => commands::names::aliases(c),
        Command::Templates(c) => commands::names::templates(c),
        Command::Hierarchy(c) => commands::hierarchy::run(c),
        Command::Usage { days, json } => commands::hierarchy::usage(days, json),
        Command::Models(c) => commands::models::run(c).await,
        Command::Providers(c) => commands::providers::run(c),
        Command::Config(c) => commands::config::run(c).await,
        Command::Auth(c) => commands::auth::run(c).await,
        Command::Up { serve, no_daemon } => commands::mesh::up(&serve, !no_daemon).await,
        Command::Mesh(m) => commands::mesh::run(m).await,
        Command::Daemon(c) => commands::daemon::run(c).await,
        Command::Services(c) => commands::services::run(c).await,
        Command::Cron(c) => commands::cron::run(c).await,
        Command::Logs(a) => commands::logs::run(a).await,
        Command::Desktop(a) => commands::desktop::run(a).await,
        Command::Vault(c) => commands::vault::run(c),
        Command::Completions { shell } => {
            commands::completions(shell);
            Ok(())
        }
    }
}

fn cli_wants_json(c: &Command) -> bool {
    use crate::cli::{
        ConfigCommand, HierarchyCommand, ModelsCommand, PolicyCommand, ProvidersCommand,
        VaultCommand,
    };
    match c {
        Command::Chat(a) => a.json,
        Command::Ask(a) => a.json,
        Command::Ext(
            crate::cli::ExtCommand::List { json }
            | crate::cli::ExtCommand::Permissions { json, .. }
            | crate::cli::ExtCommand::Trust(crate::cli::TrustCommand::List { json }),
        ) => *json,
        Command::Apikey(
            crate::cli::ApikeyCommand::Create { json, .. }
            | crate::cli::ApikeyCommand::List { json },
        ) => *json,
        Command::Mcp(
            crate::cli::McpCommand::List { json }
            | crate::cli::McpCommand::Test { json, .. }
            | crate::cli::McpCommand::Tools { json, .. },
        ) => *json,
        Command::Aliases(crate::cli::AliasesCommand::List { json })
        | Command::Templates(crate::cli::TemplatesCommand::List { json }) => *json,
        Command::History(
            crate::cli::HistoryCommand::List { json, .. }
            | crate::cli::HistoryCommand::Show { json, .. }
            | crate::cli::HistoryCommand::Search { json, .. },
        ) => *json,
        Command::Usage { json, .. } => *json,
        Command::Desktop(a) => a.json,
        Command::Auth(crate::cli::AuthCommand::Status { json }) => *json,
        Command::Hierarchy(
            HierarchyCommand::Get { json }
            | HierarchyCommand::Stats { json, .. }
            | HierarchyCommand::Policy(PolicyCommand::Get { json }),
        ) => *json,
        Command::Models(ModelsCommand::ListAvailable { json }) => *json,
        Command::Mesh(m) => matches!(
            m.command,
            crate::cli::MeshCommand::Peers { json: true }
                | crate::cli::MeshCommand::Invite { json: true, .. }
                | crate::cli::MeshCommand::Inbox { json: true, .. }
        ),
        Command::Models(ModelsCommand::List { json, .. }) => *json,
        Command::Providers(ProvidersCommand::List { json }) => *json,
        Command::Config(ConfigCommand::Show { json } | ConfigCommand::OauthStatus { json, .. }) => {
            *json
        }
        Command::Vault(
            VaultCommand::Status { json }
            | VaultCommand::List { json, .. }
            | VaultCommand::Migrate { json, .. },
        ) => *json,
        _ => false,
    }
}

/// Prints the error (human form on stderr; also JSON on stdout under
/// `--json`) and turns it into the exit code of its class.
fn report(e: &CliError, json: bool) -> ExitCode {
    if json {
        let v = serde_json::json!({ "error": e, "exit_code": e.class.code() });
        let _ = writeln!(std::io::stdout(), "{v}");
    }
    let _ = writeln!(std::io::stderr(), "error: {}", e.message);
    // The CLI's errors go to the logs too (redacted, like every line).
    if let Ok(home) = nexus_core::NexusHome::from_env() {
        if home.root().exists() {
            nexus_daemon::logs::Writer::new(
                &home.join("logs"),
                "cli",
                nexus_daemon::logs::Redactor::from_env(),
            )
            .write("error", &format!("exit {}: {}", e.class.code(), e.message));
        }
    }
    ExitCode::from(e.class.code())
}
