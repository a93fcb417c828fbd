//! `nexus services ...`: thin calls to nexusd, which supervises them.

use std::time::Duration;

use nexus_core::NexusHome;
use nexus_daemon::{call_with, DaemonError};
use serde_json::{json, Value};

use crate::cli::ServicesCommand;
use crate::exit::CliError;
use crate::output;

fn err(e: DaemonError) -> CliError {
    match e {
        DaemonError::NotRunning(_) => CliError::config(
            "nexusd is not running, so no service is supervised; `nexus daemon start` (or `nexus up`) starts it and the enabled services",
        ),
        other => CliError::config(other.to_string()),
    }
}

pub(crate) async fn run(cmd: ServicesCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    // A stop waits out a grace period per service.
    let wait = Duration::from_secs(330);
    match cmd {
        ServicesCommand::Status { json } => {
            let v = call_with(&home, "services.status", Value::Null, wait)
                .await
                .map_err(err)?;
            if json {
                return output::json(&v);
            }
            if let Some(e) = v["error"].as_str() {
                eprintln!("warning: {e}");
            }
            let list = v["services"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return output::print_str(
                    "no services configured; add [services.NAME] with a command to config.toml\n",
                );
            }
            let rows: Vec<Vec<String>> = list.iter().map(row).collect();
            output::table(
                &[
                    "SERVICE",
                    "STATE",
                    "PID",
                    "UPTIME",
                    "RESTARTS",
                    "LAST EXIT",
                    "HEALTH",
                    "CREDENTIALS",
                ],
                &rows,
            )?;
            for s in &list {
                if let Some(why) = s["why"].as_str() {
                    eprintln!("{} is degraded: {why}", s["name"].as_str().unwrap_or("?"));
                }
            }
            Ok(())
        }
        ServicesCommand::Start { service } => control(&home, "start", service, wait).await,
        ServicesCommand::Stop { service } => control(&home, "stop", service, wait).await,
        ServicesCommand::Restart { service } => control(&home, "restart", service, wait).await,
        ServicesCommand::Logs { service, follow } => logs(&home, &service, follow).await,
        ServicesCommand::Install { launchd, print } => {
            let unit = unit(&home, launchd)?;
            if print {
                return output::print_str(&unit.text);
            }
            if let Some(dir) = unit.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    CliError::config(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            nexus_core::atomic_write(
                &unit.path,
                unit.text.as_bytes(),
                nexus_core::FileMode::Normal,
            )?;
            eprintln!("wrote {}\nthen run: {}", unit.path.display(), unit.next);
            Ok(())
        }
        ServicesCommand::Uninstall { launchd } => {
            let unit = unit(&home, launchd)?;
            match std::fs::remove_file(&unit.path) {
                Ok(()) => {
                    eprintln!("removed {}", unit.path.display());
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!("nothing to remove: {} does not exist", unit.path.display());
                    Ok(())
                }
                Err(e) => Err(CliError::config(format!(
                    "cannot remove {}: {e}",
                    unit.path.display()
                ))),
            }
        }
    }
}

/// Starts, stops or restarts, and says where each service is then.
async fn control(
    home: &NexusHome,
    verb: &str,
    service: Option<String>,
    wait: Duration,
) -> Result<(), CliError> {
    let v = call_with(
        home,
        &format!("services.{verb}"),
        json!({ "name": service }),
        wait,
    )
    .await
    .map_err(err)?;
    for s in v.as_array().into_iter().flatten() {
        let pid = s["pid"]
            .as_u64()
            .map_or_else(String::new, |p| format!(" (pid {p})"));
        eprintln!(
            "{}: {}{pid}",
            s["name"].as_str().unwrap_or("?"),
            s["state"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

fn row(s: &Value) -> Vec<String> {
    let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
    let uptime = s["uptime_ms"]
        .as_u64()
        .map_or_else(|| "-".to_string(), |ms| format!("{}s", ms / 1000));
    let last = match &s["last_exit"] {
        Value::Object(o) => match o.get("how").and_then(Value::as_str) {
            Some("code") => format!("status {}", o["code"]),
            Some("signal") => format!("signal {}", o["signal"]),
            Some("spawn") => "could not start".to_string(),
            _ => "-".to_string(),
        },
        _ => "-".to_string(),
    };
    let health = match s["health"]["kind"].as_str() {
        Some("process") | None => "process".to_string(),
        Some(kind) => format!(
            "{kind} {} ({})",
            s["health"]["at"].as_str().unwrap_or(""),
            if s["healthy"] == true {
                "ok"
            } else {
                "failing"
            }
        ),
    };
    vec![
        text("name"),
        text("state"),
        s["pid"]
            .as_u64()
            .map_or_else(|| "-".into(), |p| p.to_string()),
        uptime,
        s["restarts"].to_string(),
        last,
        health,
        s["credentials"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
    ]
}

async fn logs(home: &NexusHome, service: &str, follow: bool) -> Result<(), CliError> {
    let path = nexus_daemon::supervise::log_path(home, service);
    if !path.exists() {
        return Err(CliError::config(format!(
            "no log for `{service}` at {}; see `nexus services status`",
            path.display()
        )));
    }
    super::logs::run(crate::cli::LogsArgs {
        action: None,
        service: Some(service.to_string()),
        level: None,
        grep: None,
        since: None,
        follow,
        json: false,
        export: None,
    })
    .await
}

/// The unit for this machine (or launchd when asked).
fn unit(home: &NexusHome, launchd: bool) -> Result<nexus_daemon::install::Unit, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find this program: {e}")))?;
    let root = std::path::absolute(home.root())
        .map_err(|e| CliError::config(format!("NEXUS_HOME: {e}")))?;
    let user_home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .ok_or_else(|| CliError::config("HOME is not set"))?;
    if launchd || cfg!(target_os = "macos") {
        return Ok(nexus_daemon::install::launchd_plist(
            &exe, &root, &user_home,
        ));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| user_home.join(".config"));
    Ok(nexus_daemon::install::systemd_unit(&exe, &root, &config))
}
