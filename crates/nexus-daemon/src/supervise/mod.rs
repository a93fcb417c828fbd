//! Services the daemon keeps running: user commands from `config.toml`
//! (`[services.NAME]`) and the built-in mesh broker. Each runs as a child
//! in its own process group, its output appended to
//! `NEXUS_HOME/logs/NAME.log`; the decisions (restart when, degraded when)
//! are [`policy`]'s, sans-IO; this module carries them out.
//!
//! ```toml
//! [services.worker]
//! command = ["python3", "worker.py"]   # or a string, run by /bin/sh -c
//! restart = "always"                    # always | on-failure | never
//! enabled = true                        # started with the daemon (`nexus up`)
//! health = "tcp:127.0.0.1:8080"         # or "http://127.0.0.1:8080/health", or "process"
//! env = { WORKER_MODE = "fast" }
//! grace_secs = 5                        # SIGTERM, then SIGKILL after this
//! ```

pub mod policy;
mod process;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::{Clock, NexusHome, SeededRandom, SystemClock};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use policy::{Exit, Restart, State, Supervision};

/// How a service is known to be healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "at")]
pub enum Probe {
    /// Its process is alive.
    Process,
    /// A TCP port accepts connections.
    Tcp(String),
    /// An HTTP URL answers 2xx or 3xx.
    Http(String),
}

impl Probe {
    fn parse(s: &str) -> Result<Probe, String> {
        if s == "process" {
            Ok(Probe::Process)
        } else if let Some(addr) = s.strip_prefix("tcp:") {
            Ok(Probe::Tcp(addr.to_string()))
        } else if s.starts_with("http://") {
            Ok(Probe::Http(s.to_string()))
        } else {
            Err(format!(
                "health is `{s}`; use process, tcp:HOST:PORT or http://HOST:PORT/PATH"
            ))
        }
    }
}

/// A service as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Its name.
    pub name: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// When to restart it.
    pub restart: Restart,
    /// Started with the daemon.
    pub enabled: bool,
    /// How it is known to be healthy.
    pub health: Probe,
    /// Variables added to its environment.
    pub env: BTreeMap<String, String>,
    /// SIGTERM, then SIGKILL after this.
    pub grace: Duration,
}

/// The services `config.toml` names, and the built-in broker when its
/// table asks for it (`[services.broker] enabled = true`, no command:
/// `nexus-broker serve` on `broker.listen`, default 127.0.0.1:7400, with
/// `NEXUS_HOME/broker.db`); a table with `bridge = "FILE"` and no command
/// runs `nexus mesh bridge run FILE`.
pub fn specs(home: &NexusHome) -> Result<Vec<Spec>, String> {
    let config = nexus_core::Config::load(home).map_err(|e| e.to_string())?;
    let table: toml::Table = config.section("services").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, v) in table {
        let t = v
            .as_table()
            .ok_or_else(|| format!("[services.{name}] must be a table"))?;
        let argv = match t.get("command") {
            Some(toml::Value::String(s)) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        format!("services.{name}.command: every argument is a string")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None if name == "broker" => broker_argv(home, &config),
            None => match t.get("bridge") {
                Some(toml::Value::String(file)) => bridge_argv(home, file),
                _ => {
                    return Err(format!(
                    "[services.{name}] needs a command (or `bridge = \"FILE\"` for a mesh bridge)"
                ))
                }
            },
            Some(_) => return Err(format!("services.{name}.command is a string or a list")),
        };
        if argv.is_empty() {
            return Err(format!("services.{name}.command is empty"));
        }
        let text = |k: &str| t.get(k).and_then(toml::Value::as_str);
        let restart = text("restart")
            .map(str::parse)
            .transpose()
            .map_err(|e| format!("services.{name}: {e}"))?
            .unwrap_or_default();
        let health = match text("health") {
            Some(h) => Probe::parse(h).map_err(|e| format!("services.{name}: {e}"))?,
            None if name == "broker" && t.get("command").is_none() => {
                Probe::Tcp(broker_listen(&config))
            }
            None => Probe::Process,
        };
        let env = t
            .get("env")
            .and_then(toml::Value::as_table)
            .map(|e| {
                e.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let grace = t
            .get("grace_secs")
            .and_then(toml::Value::as_integer)
            .map_or(Duration::from_secs(5), |s| {
                Duration::from_secs(s.clamp(0, 300) as u64)
            });
        out.push(Spec {
            name: name.clone(),
            argv,
            restart,
            enabled: t
                .get("enabled")
                .and_then(toml::Value::as_bool)
                .unwrap_or(true),
            health,
            env,
            grace,
        });
    }
    Ok(out)
}

fn broker_listen(config: &nexus_core::Config) -> String {
    config
        .other
        .get("broker")
        .and_then(|b| b.get("listen"))
        .and_then(toml::Value::as_str)
        .unwrap_or("127.0.0.1:7400")
        .to_string()
}

fn broker_argv(home: &NexusHome, config: &nexus_core::Config) -> Vec<String> {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("nexus-broker")))
        .filter(|p| p.exists())
        .map_or_else(|| "nexus-broker".to_string(), |p| p.display().to_string());
    vec![
        exe,
        "serve".into(),
        "--listen".into(),
        broker_listen(config),
        "--db".into(),
        home.join("broker.db").display().to_string(),
    ]
}

/// `nexus mesh bridge run FILE` (a relative file is under `NEXUS_HOME`),
/// with the `nexus` next to this program when there is one.
fn bridge_argv(home: &NexusHome, file: &str) -> Vec<String> {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("nexus")))
        .filter(|p| p.exists())
        .map_or_else(|| "nexus".to_string(), |p| p.display().to_string());
    let path = std::path::Path::new(file);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        home.join(file)
    };
    vec![
        exe,
        "mesh".into(),
        "bridge".into(),
        "run".into(),
        path.display().to_string(),
    ]
}

/// What `services.status` says of one service.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The name.
    pub name: String,
    /// Its state, with when it starts again or why it is degraded.
    #[serde(flatten)]
    pub state: State,
    /// Its process id while it runs.
    pub pid: Option<u32>,
    /// Milliseconds running, while it runs.
    pub uptime_ms: Option<u64>,
    /// Restarts after an exit.
    pub restarts: u32,
    /// How it last ended.
    pub last_exit: Option<Exit>,
    /// Whether its probe passes now.
    pub healthy: bool,
    /// The probe.
    pub health: Probe,
    /// The command.
    pub command: Vec<String>,
    /// Its log.
    pub log: PathBuf,
    /// Credential variables it can see (names, never values): `*_API_KEY`,
    /// `*_TOKEN` and the like, from its environment.
    pub credentials: Vec<String>,
    /// Enabled (started with the daemon).
    pub enabled: bool,
    /// Why its log cannot be written now (a full disk), if so; the service
    /// runs on regardless.
    pub log_error: Option<String>,
}

enum Cmd {
    Start(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
}

/// A running supervisor of one service.
#[derive(Clone)]
struct Handle {
    cmds: mpsc::Sender<Cmd>,
    status: Arc<Mutex<Status>>,
    writer: Arc<crate::logs::Writer>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The daemon's services.
#[derive(Clone, Default)]
pub struct Services {
    all: Arc<Mutex<BTreeMap<String, Handle>>>,
}

fn credential_names(env: &BTreeMap<String, String>) -> Vec<String> {
    let looks_secret = |k: &str| {
        ["_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "PASSPHRASE"]
            .iter()
            .any(|s| k.ends_with(s))
    };
    let mut names: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .chain(env.keys().cloned())
        .filter(|k| looks_secret(k))
        .collect();
    names.sort();
    names.dedup();
    names
}

impl Services {
    /// Starts supervising `specs` (the enabled ones started at once).
    pub fn start_all(&self, home: &NexusHome, specs: Vec<Spec>) {
        for spec in specs {
            let mut redact = crate::logs::Redactor::from_env();
            for (k, v) in &spec.env {
                if crate::logs::secret_name(k) {
                    redact.add(v);
                }
            }
            let writer = Arc::new(crate::logs::Writer::new(
                &home.join("logs"),
                &spec.name,
                redact,
            ));
            let log = writer.path().to_path_buf();
            let status = Arc::new(Mutex::new(Status {
                name: spec.name.clone(),
                state: State::Stopped,
                pid: None,
                uptime_ms: None,
                restarts: 0,
                last_exit: None,
                healthy: false,
                health: spec.health.clone(),
                command: spec.argv.clone(),
                log: log.clone(),
                credentials: credential_names(&spec.env),
                enabled: spec.enabled,
                log_error: None,
            }));
            let (tx, rx) = mpsc::channel(16);
            let enabled = spec.enabled;
            let name = spec.name.clone();
            let pid_file = home.join("run").join(format!("{}.pid", spec.name));
            tokio::spawn(supervise(
                spec,
                writer.clone(),
                pid_file,
                rx,
                status.clone(),
            ));
            let h = Handle {
                cmds: tx,
                status,
                writer,
            };
            if enabled {
                let (done, _) = oneshot::channel();
                let _ = h.cmds.try_send(Cmd::Start(done));
            }
            lock(&self.all).insert(name, h);
        }
    }

    /// Every service's status.
    pub fn status(&self) -> Vec<Status> {
        let all = lock(&self.all).clone();
        all.values()
            .map(|h| {
                let mut s = refresh(&h.status);
                s.log_error = h.writer.error();
                s
            })
            .collect()
    }

    fn pick(&self, name: Option<&str>) -> Result<Vec<Handle>, String> {
        let all = lock(&self.all).clone();
        match name {
            None => Ok(all.into_values().collect()),
            Some(n) => all.get(n).cloned().map(|h| vec![h]).ok_or_else(|| {
                let known: Vec<&String> = all.keys().collect();
                if known.is_empty() {
                    format!("no service `{n}`: none is configured ([services.NAME] in config.toml)")
                } else {
                    format!(
                        "no service `{n}`; the services are: {}",
                        known
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            }),
        }
    }

    /// Starts, stops or restarts one service (or all), and waits until it
    /// is done: a stop returns once the process group is gone.
    pub async fn control(&self, what: &str, name: Option<&str>) -> Result<Value, String> {
        let mut done = Vec::new();
        for h in self.pick(name)? {
            let (tx, rx) = oneshot::channel();
            let cmd = match what {
                "start" => Cmd::Start(tx),
                "stop" => Cmd::Stop(tx),
                "restart" => Cmd::Restart(tx),
                other => return Err(format!("no service verb `{other}`")),
            };
            if h.cmds.send(cmd).await.is_err() {
                return Err("the supervisor stopped".into());
            }
            let _ = rx.await;
            done.push(refresh(&h.status));
        }
        serde_json::to_value(done).map_err(|e| e.to_string())
    }

    /// Stops every service (the daemon is stopping).
    pub async fn stop_all(&self) {
        let _ = self.control("stop", None).await;
    }
}

fn refresh(status: &Mutex<Status>) -> Status {
    let mut s = lock(status);
    s.uptime_ms = match s.state {
        State::Running { since_ms } => Some(SystemClock.now_millis().saturating_sub(since_ms)),
        _ => None,
    };
    s.clone()
}

/// The wait between wall-clock checks: a machine that slept resumes
/// restarts within this.
const TICK: Duration = Duration::from_secs(30);

async fn supervise(
    spec: Spec,
    log: Arc<crate::logs::Writer>,
    pid_file: PathBuf,
    mut cmds: mpsc::Receiver<Cmd>,
    status: Arc<Mutex<Status>>,
) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut policy = Supervision::new(
        clock.clone(),
        Arc::new(SeededRandom::from_entropy()),
        spec.restart,
    );
    let set = |p: &Supervision, pid: Option<u32>, healthy: bool| {
        // Recorded, so a daemon that was killed can end the group next time.
        process::record(&pid_file, pid, &spec.argv[0]);
        let mut s = lock(&status);
        s.state = p.state().clone();
        s.pid = pid;
        s.restarts = p.restarts();
        s.last_exit = p.last_exit().cloned();
        s.healthy = healthy;
    };
    // Waiting to be started (stopped), or for a restart to be due.
    let mut pending_reply: Option<oneshot::Sender<()>> = None;
    // Set by a restart: start again at once.
    let mut start_now = false;
    loop {
        // Not running: wait for a command, or for a restart to be due.
        let start = if std::mem::take(&mut start_now) {
            true
        } else if matches!(policy.state(), State::Stopped) {
            match cmds.recv().await {
                None => return,
                Some(Cmd::Stop(r)) => {
                    let _ = r.send(());
                    false
                }
                Some(Cmd::Start(r) | Cmd::Restart(r)) => {
                    pending_reply = Some(r);
                    true
                }
            }
        } else if policy.due() {
            true
        } else {
            let wait = match policy.state() {
                State::Backoff { until_ms } | State::Degraded { until_ms, .. } => {
                    Duration::from_millis(until_ms.saturating_sub(clock.now_millis()))
                }
                _ => Duration::ZERO,
            };
            tokio::select! {
                () = tokio::time::sleep(wait.min(TICK)) => false,
                c = cmds.recv() => match c {
                    None => return,
                    Some(Cmd::Stop(r)) => {
                        policy.stopped();
                        set(&policy, None, false);
                        let _ = r.send(());
                        false
                    }
                    Some(Cmd::Start(r) | Cmd::Restart(r)) => {
                        pending_reply = Some(r);
                        true
                    }
                },
            }
        };
        if !start {
            continue;
        }
        policy.starting();
        set(&policy, None, false);
        let mut child = match process::spawn(&spec, &log) {
            Ok(c) => c,
            Err(e) => {
                log.write("info", &format!("could not start {}: {e}", spec.argv[0]));
                policy.exited(Exit::Spawn { error: e });
                set(&policy, None, false);
                if let Some(r) = pending_reply.take() {
                    let _ = r.send(());
                }
                continue;
            }
        };
        let pid = child.id();
        log.write("info", &format!("started (pid {})", pid.unwrap_or(0)));
        let healthy = process::probe(&spec.health).await;
        if healthy || spec.health == Probe::Process {
            policy.running();
        }
        set(&policy, pid, healthy);
        if let Some(r) = pending_reply.take() {
            // Answered once it runs (or its probe had its chance).
            let _ = r.send(());
        }
        // Running: until it exits or is told otherwise; the probe is
        // checked often until it first passes, then every 2 s.
        let mut fast = !healthy;
        // Fast probing ends once it passes, or after 30 s of failing.
        let fast_until = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut probe_tick = tokio::time::interval(if fast {
            Duration::from_millis(50)
        } else {
            Duration::from_secs(2)
        });
        let ended: Option<Exit> = loop {
            tokio::select! {
                st = child.wait() => break Some(process::exit_of(st)),
                _ = probe_tick.tick() => {
                    let ok = process::probe(&spec.health).await;
                    if ok && matches!(policy.state(), State::Starting) {
                        policy.running();
                    }
                    if fast && (ok || tokio::time::Instant::now() >= fast_until) {
                        fast = false;
                        probe_tick = tokio::time::interval(Duration::from_secs(2));
                        probe_tick.tick().await;
                    }
                    set(&policy, pid, ok);
                }
                c = cmds.recv() => match c {
                    None => {
                        process::stop(&mut child, spec.grace).await;
                        return;
                    }
                    Some(Cmd::Start(r)) => {
                        let _ = r.send(());
                    }
                    Some(Cmd::Stop(r)) => {
                        process::stop(&mut child, spec.grace).await;
                        log.write("info", "stopped");
                        policy.stopped();
                        set(&policy, None, false);
                        let _ = r.send(());
                        break None;
                    }
                    Some(Cmd::Restart(r)) => {
                        // The old process group is gone before the new one
                        // starts: a port is never bound twice.
                        process::stop(&mut child, spec.grace).await;
                        log.write("info", "restarting");
                        policy.stopped();
                        pending_reply = Some(r);
                        start_now = true;
                        break None;
                    }
                },
            }
        };
        if let Some(how) = ended {
            log.write("info", &format!("exited: {how}"));
            policy.exited(how);
            set(&policy, None, false);
        }
    }
}

/// Ends the process groups of services a previous daemon left running
/// (it was killed before it could stop them): their pids are recorded
/// under `NEXUS_HOME/run/`. Returns what it ended.
pub async fn reap_leftovers(home: &NexusHome) -> Vec<String> {
    let mut ended = Vec::new();
    let Ok(dir) = std::fs::read_dir(home.join("run")) else {
        return ended;
    };
    for e in dir.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "pid") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut lines = text.lines();
        let pid = lines.next().and_then(|p| p.trim().parse::<u32>().ok());
        let program = lines.next().unwrap_or("");
        if let Some(pid) = pid {
            if process::end_group(pid, program).await {
                ended.push(format!(
                    "{} (pid {pid})",
                    path.file_stem().unwrap_or_default().to_string_lossy()
                ));
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    ended
}

/// The log of `name` under `home`.
pub fn log_path(home: &NexusHome, name: &str) -> PathBuf {
    home.join("logs").join(format!("{name}.jsonl"))
}
