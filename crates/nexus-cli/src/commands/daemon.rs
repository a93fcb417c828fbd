//! `nexus daemon start|status|stop`: the resident Nexus (`nexus_daemon`).
//! `start` runs it in the background (this same binary, `start
//! --foreground`, in its own process group, logging to
//! `NEXUS_HOME/logs/nexusd.log`) and waits until it answers.

use std::time::{Duration, Instant};

use nexus_core::{Config, NexusHome};
use nexus_daemon::{call, DaemonError, Paths};

use crate::cli::DaemonCommand;
use crate::exit::{Class, CliError};
use crate::output;

fn err(e: DaemonError) -> CliError {
    match e {
        DaemonError::Mesh(m) => m.into(),
        e @ (DaemonError::AlreadyRunning { .. } | DaemonError::OtherVersion { .. }) => {
            CliError::new(Class::Config, e.to_string())
        }
        e => CliError::internal(e.to_string()),
    }
}

pub(crate) async fn run(c: DaemonCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    home.ensure()?;
    match c {
        DaemonCommand::Start {
            foreground: true,
            heartbeat,
        } => {
            check_heartbeat(&home, heartbeat.as_deref())?;
            let config = Config::load(&home)?;
            let (vault, _) = super::vault::open(&home, &config)?;
            let stop = nexus_broker::shutdown_signal();
            nexus_daemon::run_with(
                home,
                vault,
                async move {
                    stop.await;
                },
                nexus_daemon::Options { heartbeat },
            )
            .await
            .map_err(err)
        }
        DaemonCommand::Start {
            foreground: false,
            heartbeat,
        } => {
            check_heartbeat(&home, heartbeat.as_deref())?;
            start(&home, heartbeat.as_deref()).await
        }
        DaemonCommand::HeartbeatNow { json } => {
            let v = nexus_daemon::call_with(
                &home,
                "heartbeat.now",
                serde_json::Value::Null,
                Duration::from_secs(300),
            )
            .await
            .map_err(err)?;
            if json {
                return output::json(&v);
            }
            let mut text = String::new();
            for r in v["results"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "{:<14} {:<8} {}\n",
                    r["task"].as_str().unwrap_or("?"),
                    r["status"].as_str().unwrap_or("?"),
                    r["summary"].as_str().unwrap_or("")
                ));
            }
            output::print_str(&text)
        }
        DaemonCommand::Status { json } => match call(&home, "status").await {
            Ok(s) => {
                if json {
                    let mut s = s;
                    s["running"] = true.into();
                    return output::json(&s);
                }
                let mut text = format!(
                    "nexusd {} running (pid {}, up {}s)\n",
                    nexus_daemon::VERSION,
                    s["pid"],
                    s["uptime_ms"].as_u64().unwrap_or(0) / 1000
                );
                let hb = &s["heartbeat"];
                text.push_str(
                    &match (hb["interval_secs"].as_u64(), hb["next_ms"].as_u64()) {
                        (Some(every), Some(next)) => {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as u64);
                            format!(
                                "  heartbeat: every {}m, next in {}m{}\n",
                                every / 60,
                                next.saturating_sub(now) / 60_000,
                                hb["active_hours"]
                                    .as_str()
                                    .map_or_else(String::new, |a| format!(" (active {a})"))
                            )
                        }
                        _ => "  heartbeat: off (`nexus daemon start --heartbeat 1h`)\n".to_string(),
                    },
                );
                match (
                    s["gateway"]["listen"].as_str(),
                    s["gateway"]["error"].as_str(),
                ) {
                    (Some(a), _) => text.push_str(&format!("  gateway: http://{a}/api/v1\n")),
                    (None, Some(e)) => text.push_str(&format!("  gateway: not running ({e})\n")),
                    _ => text.push_str("  gateway: off ([gateway] enabled = false)\n"),
                }
                let exts: Vec<String> = s["extensions"]["extensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| match (e["pid"].as_u64(), e["disabled"].as_str()) {
                        (Some(pid), _) => {
                            format!("{} (pid {pid})", e["id"].as_str().unwrap_or("?"))
                        }
                        (None, Some(_)) => {
                            format!("{} (disabled)", e["id"].as_str().unwrap_or("?"))
                        }
                        _ => format!("{} (restarting)", e["id"].as_str().unwrap_or("?")),
                    })
                    .collect();
                if !exts.is_empty() {
                    text.push_str(&format!("  extensions: {}\n", exts.join(", ")));
                }
                let questions = s["extensions"]["approvals"].as_array().map_or(0, Vec::len);
                if questions > 0 {
                    text.push_str(&format!(
                        "  {questions} permission question(s) waiting: `nexus ext approvals`\n"
                    ));
                }
                for m in s["meshes"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "  {}: {} ({}; {} verbs served)\n",
                        m["mesh"].as_str().unwrap_or("?"),
                        if m["connected"].as_bool() == Some(true) {
                            "connected"
                        } else {
                            "not connected"
                        },
                        m["last"].as_str().unwrap_or(""),
                        m["ops"].as_u64().unwrap_or(0)
                    ));
                }
                output::print_str(&text)
            }
            Err(DaemonError::NotRunning(_)) if json => {
                output::json(&serde_json::json!({"running": false}))
            }
            Err(DaemonError::NotRunning(_)) => output::print_str("nexusd is not running\n"),
            Err(e) => Err(err(e)),
        },
        DaemonCommand::Stop => {
            call(&home, "stop").await.map_err(err)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Paths::of(&home).socket.exists() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            eprintln!("nexusd stopped");
            Ok(())
        }
    }
}

/// A bad interval or `[heartbeat]` table is refused here, before anything
/// starts.
fn check_heartbeat(home: &NexusHome, interval: Option<&str>) -> Result<(), CliError> {
    nexus_daemon::heartbeat::settings(home, interval)
        .map(|_| ())
        .map_err(|e| CliError::config(format!("heartbeat: {e}")))
}

/// Starts the daemon unless it already runs.
pub(crate) async fn ensure_running(home: &NexusHome) -> Result<(), CliError> {
    if call(home, "status").await.is_ok() {
        return Ok(());
    }
    start(home, None).await
}

async fn start(home: &NexusHome, heartbeat: Option<&str>) -> Result<(), CliError> {
    if let Ok(s) = call(home, "status").await {
        return Err(CliError::new(
            Class::Config,
            format!(
                "nexusd is already running (pid {}); `nexus daemon stop` stops it",
                s["pid"]
            ),
        ));
    }
    let paths = Paths::of(home);
    let log_dir = paths
        .log
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| home.root().to_path_buf());
    nexus_core::private_dir(&log_dir)
        .map_err(|e| CliError::internal(format!("cannot create {}: {e}", log_dir.display())))?;
    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&paths.log)
            .map_err(|e| CliError::internal(format!("cannot open {}: {e}", paths.log.display())))?
    };
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find this program: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["daemon", "start", "--foreground"]);
    if let Some(h) = heartbeat {
        cmd.args(["--heartbeat", h]);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| CliError::internal(e.to_string()))?,
        )
        .stderr(log);
    {
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::internal(format!("cannot start nexusd: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(s) = call(home, "status").await {
            eprintln!(
                "nexusd {} started (pid {}); log: {}",
                nexus_daemon::VERSION,
                s["pid"],
                paths.log.display()
            );
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&paths.log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(CliError::internal(format!(
                "nexusd exited at start ({status}); the end of {}:\n{}",
                paths.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        if Instant::now() > deadline {
            return Err(CliError::internal(format!(
                "nexusd did not answer within 15 s; see {}",
                paths.log.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
