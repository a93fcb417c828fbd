//! `nexusd`, the resident Nexus: one process per user (`NEXUS_HOME`) that
//! holds a connection to every mesh the user is in, keeps what arrives in
//! the local inbox (stored before it is acknowledged), hands the mesh key
//! to newcomers within seconds, and answers a control API.
//!
//! Files under `NEXUS_HOME` (all 0600 in a 0700 directory):
//! - `nexusd.lock`: held (exclusive `flock`) while a daemon runs: one per home;
//! - `nexusd.pid`: its process id;
//! - `nexusd.sock`: the control socket. One JSON-RPC 2.0 message per line:
//!   - `status`, `stop`;
//!   - `mesh` `{mesh?, op}`: runs a [`nexus_mesh::peer::Op`] on the
//!     connection the daemon holds to that mesh (ops of one mesh run one at
//!     a time; each caller gets its own answer); an error carries the
//!     [`nexus_mesh::MeshError`] in `data`;
//!   - `mesh.wait` `{mesh?, seen, timeout_ms}`: returns `{stored}` once the
//!     mesh's stored-message counter differs from `seen` (or at the
//!     timeout): how `inbox --follow` streams without polling;
//!   - `services.*`, `heartbeat.now`, `cron.run`;
//!   - `ext.*`: the extension host ([`extensions`]).
//!
//!   A connection that does not start with `{` speaks HTTP/1.1 instead:
//!   the plugin store API ([`http`]).
//!
//!   Every answer names the daemon's version, and a client of another
//!   version is told so rather than misread.
//!
//! A stale socket (left by a daemon that was killed) is replaced; a live
//! one, or the lock held, means a daemon runs already and nothing changes.

mod control;
pub mod cron;
mod extensions;
mod gateway;
pub mod heartbeat;
mod http;
pub mod install;
pub mod logs;
pub mod shell_env;
pub mod supervise;

pub use nexus_sdk::daemon::{call, call_with, DaemonError, Paths, VERSION};

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::{NexusHome, Vault};
use nexus_mesh::peer::{Job, Keeper, Op};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};

/// The longest control request read, bytes.
const MAX_LINE: u64 = 64 * 1024;

fn io(what: &str, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Io(format!("{what}: {e}"))
}

/// What `status` says, and where each mesh's keeper takes jobs.
#[derive(Debug, Default)]
struct State {
    started_ms: u64,
    meshes: std::collections::BTreeMap<String, MeshState>,
    keepers: std::collections::BTreeMap<String, Handle>,
}

/// A mesh keeper's inputs.
#[derive(Debug, Clone)]
struct Handle {
    jobs: mpsc::Sender<Job>,
    stored: watch::Receiver<u64>,
}

/// Ops queued for one mesh, at most; more are refused as busy.
const QUEUED_OPS: usize = 256;

#[derive(Debug, Clone, Default)]
struct MeshState {
    connected: bool,
    last: String,
    /// Verbs run for clients.
    ops: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The daemon's JSON-lines log (`logs/nexusd.jsonl`), once it runs.
static DAEMON_LOG: std::sync::OnceLock<logs::Writer> = std::sync::OnceLock::new();

fn log(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{} {line}", now_ms());
    if let Some(w) = DAEMON_LOG.get() {
        w.write("info", line);
    }
}

/// Runs the daemon for `home` until `stop` resolves or a client sends
/// `stop`. Fails at once if a daemon already runs for `home`.
pub async fn run(
    home: NexusHome,
    vault: Arc<dyn Vault>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    run_with(home, vault, stop, Options::default()).await
}

/// How to run the daemon beyond config.toml.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The heartbeat interval (`1h`, `off`), over `[heartbeat] interval`.
    pub heartbeat: Option<String>,
}

/// [`run`] with `options`.
pub async fn run_with(
    home: NexusHome,
    vault: Arc<dyn Vault>,
    stop: impl std::future::Future<Output = ()>,
    options: Options,
) -> Result<(), DaemonError> {
    home.ensure().map_err(|e| io("NEXUS_HOME", e))?;
    // A service manager does not read the shell profile: load it if asked.
    let shell = if shell_env::wanted() {
        match shell_env::load().await {
            Ok(env) => env,
            Err(e) => {
                eprintln!("{} {e}", now_ms());
                Default::default()
            }
        }
    } else {
        Default::default()
    };
    let mut redact = logs::Redactor::from_env();
    for (k, v) in &shell {
        if logs::secret_name(k) {
            redact.add(v);
        }
    }
    let _ = DAEMON_LOG.set(logs::Writer::new(&home.join("logs"), "nexusd", redact));
    // The libraries log through `tracing`: into the daemon's log.
    if let Some(w) = DAEMON_LOG.get() {
        logs::TracingToLog::install(w);
    }
    if !shell.is_empty() {
        log(&format!(
            "loaded {} variables from the login shell (NEXUS_LOAD_SHELL_ENV); credentials among them: {}",
            shell.len(),
            shell
                .keys()
                .filter(|k| logs::secret_name(k))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let beats = heartbeat::settings(&home, options.heartbeat.as_deref())
        .map_err(|e| DaemonError::Io(format!("heartbeat: {e}")))?;
    let paths = Paths::of(&home);
    let home_text = home.root().display().to_string();
    // One daemon per home: the lock is held for as long as this runs.
    nexus_core::private_db_file(&paths.lock).map_err(|e| io("the lock file", e))?;
    let lock_file = std::fs::OpenOptions::new()
        .write(true)
        .open(&paths.lock)
        .map_err(|e| io("the lock file", e))?;
    if lock_file.try_lock().is_err() {
        return Err(DaemonError::AlreadyRunning {
            home: home_text,
            pid: std::fs::read_to_string(&paths.pid)
                .unwrap_or_default()
                .trim()
                .to_string(),
        });
    }
    // Under the lock, a socket file left behind is stale.
    if paths.socket.exists() {
        std::fs::remove_file(&paths.socket).map_err(|e| io("the stale socket", e))?;
    }
    let listener = UnixListener::bind(&paths.socket).map_err(|e| io("the control socket", e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("the control socket", e))?;
    }
    nexus_core::atomic_write(
        &paths.pid,
        std::process::id().to_string().as_bytes(),
        nexus_core::FileMode::Secret,
    )
    .map_err(|e| io("the pid file", e))?;
    log(&format!(
        "nexusd {VERSION} started for {home_text} (pid {})",
        std::process::id()
    ));

    let state = Arc::new(Mutex::new(State {
        started_ms: now_ms(),
        ..State::default()
    }));
    // The services of config.toml, the enabled ones started now.
    let services = supervise::Services::default();
    for left in supervise::reap_leftovers(&home).await {
        log(&format!(
            "ended a service a previous nexusd left running: {left}"
        ));
    }
    let services_error = match supervise::specs(&home) {
        Ok(mut specs) => {
            // What the login shell exports, under what the service sets.
            for spec in &mut specs {
                for (k, v) in &shell {
                    spec.env.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            services.start_all(&home, specs);
            None
        }
        Err(e) => {
            log(&format!("services not started: {e}"));
            Some(e)
        }
    };
    let client = nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
        home: Some(home.root().to_path_buf()),
        vault: Some(vault.clone()),
        // Keys the login shell exports count as the environment's.
        env: shell.clone().into_iter().collect(),
        ..Default::default()
    })
    .map_err(|e| DaemonError::Io(format!("the SDK client: {e}")))?;
    let pulse = Arc::new(Pulse {
        schedule: Mutex::new(heartbeat::Schedule {
            interval: beats.interval,
            active: beats.active,
            utc_offset_secs: i64::from(chrono::Local::now().offset().local_minus_utc()),
            last_ms: None,
            since_ms: now_ms(),
        }),
        ctx: heartbeat::Context {
            home: home.clone(),
            workspaces: beats.workspaces.clone(),
            client,
        },
        tasks: beats.tasks.clone(),
        last: Mutex::new(None),
        running: tokio::sync::Mutex::new(()),
    });
    let beating = tokio::spawn(heartbeat_loop(pulse.clone()));
    let ticking = tokio::spawn(cron_loop(home.clone(), pulse.ctx.client.clone()));
    let ext = Arc::new(extensions::Extensions::start(&home, vault.clone()));
    let (gateway, gateway_error) =
        match gateway::start(&home, pulse.ctx.client.clone(), ext.clone(), vault.clone()).await {
            Ok(g) => (g, None),
            Err(e) => {
                log(&format!("gateway not started: {e}"));
                (None, Some(e))
            }
        };
    let client_for_socket = pulse.ctx.client.clone();
    let daemon = Arc::new(Daemon {
        home: home.clone(),
        vault,
        state: state.clone(),
        services: services.clone(),
        services_error,
        pulse,
        router: socket_router(&home, client_for_socket, ext.clone()),
        ext: ext.clone(),
        gateway: json!({
            "listen": gateway.as_ref().map(|g| g.addr.to_string()),
            "error": gateway_error,
        }),
    });
    let watchers = tokio::spawn(watch_meshes(daemon.clone()));
    // Under systemd (Type=notify): ready now, and alive on its watchdog.
    install::sd_notify(&format!("READY=1\nSTATUS=nexusd {VERSION} for {home_text}"));
    let watchdog = install::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            loop {
                install::sd_notify("WATCHDOG=1");
                tokio::time::sleep(every).await;
            }
        })
    });
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::channel::<()>(1);
    let serving = async {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            tokio::spawn(answer(sock, daemon.clone(), stop_tx.clone()));
        }
    };
    tokio::select! {
        () = serving => {}
        () = stop => log("stopping (signal)"),
        _ = stop_rx.recv() => log("stopping (asked)"),
    }
    install::sd_notify("STOPPING=1");
    beating.abort();
    ticking.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    watchers.abort();
    // Every service's and extension's process group is gone before the
    // daemon is.
    let gateway_stop = async {
        if let Some(g) = gateway {
            g.stop(&home).await;
        }
    };
    tokio::join!(services.stop_all(), ext.shutdown(), gateway_stop);
    // Closing the job channels ends each keeper between two frames.
    lock(&state).keepers.clear();
    let _ = std::fs::remove_file(&paths.socket);
    let _ = std::fs::remove_file(&paths.pid);
    drop(lock_file);
    Ok(())
}

/// What the control API works on.
struct Daemon {
    home: NexusHome,
    vault: Arc<dyn Vault>,
    state: Arc<Mutex<State>>,
    services: supervise::Services,
    /// Why `[services]` could not be read, if it could not.
    services_error: Option<String>,
    pulse: Arc<Pulse>,
    ext: Arc<extensions::Extensions>,
    /// The HTTP API on the control socket.
    router: axum::Router,
    /// Where the gateway listens, or why it does not.
    gateway: Value,
}

/// The heartbeat's state.
struct Pulse {
    schedule: Mutex<heartbeat::Schedule>,
    ctx: heartbeat::Context,
    tasks: Vec<String>,
    last: Mutex<Option<Vec<heartbeat::Outcome>>>,
    /// One beat at a time.
    running: tokio::sync::Mutex<()>,
}

impl Pulse {
    async fn beat(&self) -> Vec<heartbeat::Outcome> {
        let _one = self.running.lock().await;
        lock(&self.schedule).last_ms = Some(now_ms());
        let out = heartbeat::beat(&self.ctx, &self.tasks).await;
        let reports = out.iter().filter(|o| o.status == "report").count();
        log(&format!(
            "heartbeat: {} task(s), {reports} with something to report",
            out.len()
        ));
        *lock(&self.last) = Some(out.clone());
        out
    }

    fn status(&self) -> Value {
        let s = lock(&self.schedule).clone();
        json!({
            "interval_secs": s.interval.map(|d| d.as_secs()),
            "active_hours": s.active.map(|a| format!("{}-{}", a.start, a.end)),
            "next_ms": s.next_ms(now_ms()),
            "last_ms": s.last_ms,
            "last": *lock(&self.last),
        })
    }
}

/// Runs the cron jobs when due. It looks at least every 30 s against the
/// wall clock, so a job whose time passed while the machine slept runs
/// (once, or not: the job says) soon after it wakes.
async fn cron_loop(home: NexusHome, client: nexus_sdk::Client) {
    let mut last = chrono::Local::now();
    loop {
        let jobs = cron::load(&home).unwrap_or_default();
        let now = chrono::Local::now();
        let soonest = jobs
            .iter()
            .filter_map(|j| cron::next_times(&j.schedule, &now, 1).ok()?.pop())
            .min()
            .map_or(Duration::from_secs(30), |t| {
                (t - now).to_std().unwrap_or_default() + Duration::from_millis(50)
            });
        tokio::time::sleep(soonest.min(Duration::from_secs(30))).await;
        let now = chrono::Local::now();
        for job in cron::load(&home).unwrap_or_default() {
            match cron::decide(&job, &last, &now) {
                cron::Decision::Wait => {}
                cron::Decision::Skip { missed } => {
                    log(&format!(
                        "cron {}: skipped {missed} time(s) missed while asleep",
                        job.id
                    ));
                    cron::record(
                        &home,
                        &cron::Run {
                            id: job.id.clone(),
                            at_ms: now_ms(),
                            took_ms: 0,
                            status: "skipped".into(),
                            output: format!("{missed} time(s) passed while nothing looked"),
                            missed,
                        },
                    );
                }
                cron::Decision::Run { missed } => {
                    let (home, client) = (home.clone(), client.clone());
                    tokio::spawn(async move {
                        let r = cron::run(&home, &client, &job, missed).await;
                        log(&format!("cron {}: {} in {} ms", r.id, r.status, r.took_ms));
                    });
                }
            }
        }
        last = now;
    }
}

/// Beats when due; never sleeps more than 30 s, so a machine that slept
/// beats soon after it wakes.
async fn heartbeat_loop(pulse: Arc<Pulse>) {
    loop {
        let next = lock(&pulse.schedule).next_ms(now_ms());
        match next {
            Some(due) if now_ms() >= due => {
                pulse.beat().await;
            }
            Some(due) => {
                let wait = Duration::from_millis(due.saturating_sub(now_ms()));
                tokio::time::sleep(wait.min(Duration::from_secs(30))).await;
            }
            None => tokio::time::sleep(Duration::from_secs(30)).await,
        }
    }
}

impl Daemon {
    /// The keeper of `mesh`, started if it is not running yet.
    fn keeper(&self, mesh: &str) -> Handle {
        let mut s = lock(&self.state);
        if let Some(h) = s.keepers.get(mesh) {
            return h.clone();
        }
        let (jobs, rx) = mpsc::channel(QUEUED_OPS);
        let (stored, seen) = watch::channel(0);
        let h = Handle { jobs, stored: seen };
        s.keepers.insert(mesh.to_string(), h.clone());
        let keeper = Keeper { jobs: rx, stored };
        tokio::spawn(keep(
            self.home.clone(),
            self.vault.clone(),
            mesh.to_string(),
            self.state.clone(),
            keeper,
        ));
        h
    }
}

/// Keeps every mesh of `home`, and any joined later (checked every 2 s,
/// and at once when a verb names it).
async fn watch_meshes(daemon: Arc<Daemon>) {
    loop {
        match nexus_mesh::peer::memberships(&daemon.home) {
            Ok(meshes) => {
                for mesh in meshes {
                    daemon.keeper(&mesh);
                }
            }
            Err(e) => log(&format!("cannot read the memberships: {e}")),
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn keep(
    home: NexusHome,
    vault: Arc<dyn Vault>,
    mesh: String,
    state: Arc<Mutex<State>>,
    mut keeper: Keeper,
) {
    let set = |connected: bool, last: &str| {
        let mut s = lock(&state);
        let m = s.meshes.entry(mesh.clone()).or_default();
        m.connected = connected;
        m.last = last.to_string();
    };
    loop {
        let mut peer = match nexus_mesh::peer::Peer::load(home.clone(), vault.clone(), None) {
            Ok(p) => p,
            Err(e) => {
                set(false, &e.to_string());
                refuse_jobs(&mut keeper, &e, std::time::Duration::from_secs(5)).await;
                continue;
            }
        };
        let label = mesh.clone();
        let mut tell = |i: &nexus_mesh::peer::Incoming| {
            if let nexus_mesh::peer::Incoming::Notice { text } = i {
                log(&format!("[{label}] {text}"));
                let connected = !text.starts_with("lost the broker");
                set(connected, text);
            }
            Ok(())
        };
        match peer.keep(&mesh, &mut tell, &mut keeper).await {
            Ok(()) => return,
            Err(e) => {
                // Refused for good (blocked, removed): say so, try again later.
                log(&format!("[{mesh}] {e}"));
                set(false, &e.to_string());
                refuse_jobs(&mut keeper, &e, std::time::Duration::from_secs(30)).await;
            }
        }
    }
}

/// Answers jobs with `why` for `pause`.
async fn refuse_jobs(keeper: &mut Keeper, why: &nexus_mesh::MeshError, pause: std::time::Duration) {
    let until = tokio::time::Instant::now() + pause;
    while let Ok(Some(j)) = tokio::time::timeout_at(until, keeper.jobs.recv()).await {
        let _ = j.reply.send(Err(why.clone()));
    }
}

/// HTTP on the control socket: the extension store, and the gateway's API
/// and UI for SSH tunnels (`nexus desktop --ssh`), guarded as on TCP.
fn socket_router(
    home: &NexusHome,
    client: nexus_sdk::Client,
    ext: Arc<extensions::Extensions>,
) -> axum::Router {
    let config = nexus_gateway::Config::load(home).unwrap_or_default();
    let config = nexus_gateway::Config {
        any_loopback_port: true,
        capabilities: nexus_gateway::Capabilities {
            extensions: false,
            ..config.capabilities
        },
        ..config
    };
    let gateway = nexus_gateway::router(nexus_gateway::Shared::new(client, home, config), None);
    http::store_routes(ext).merge(gateway)
}

/// Answers one control connection: a request per line.
async fn answer(mut sock: UnixStream, daemon: Arc<Daemon>, stop: tokio::sync::mpsc::Sender<()>) {
    // JSON-RPC starts with `{`; anything else is HTTP.
    let mut first = [0u8; 1];
    match tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read(&mut sock, &mut first),
    )
    .await
    {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if !matches!(first[0], b'{' | b' ' | b'\n' | b'\r' | b'\t') {
        let router = daemon.router.clone();
        return http::serve(http::Rewound::new(first.to_vec(), sock), router).await;
    }
    let (read, mut write) = sock.into_split();
    let read = http::Rewound::new(first.to_vec(), read);
    let mut lines = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_LINE * 16));
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(n) if n as u64 > MAX_LINE => return,
            Ok(_) => {}
        }
        let req: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let _ = reply(
                    &mut write,
                    Value::Null,
                    Err((-32700, format!("not JSON: {e}"), None)),
                )
                .await;
                return;
            }
        };
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let result = match req.get("method").and_then(Value::as_str) {
            Some("status") => {
                let mut v = status(&daemon.state);
                v["heartbeat"] = daemon.pulse.status();
                v["extensions"] = daemon.ext.status();
                v["gateway"] = daemon.gateway.clone();
                Ok(v)
            }
            Some(m) if m.starts_with("ext.") => daemon.ext.control(m, req.get("params")).await,
            Some("heartbeat.now") => Ok(json!({ "results": daemon.pulse.beat().await })),
            Some("heartbeat.get") => Ok(control::heartbeat_get(&daemon.home, &daemon.pulse)),
            Some("heartbeat.set") => {
                control::heartbeat_set(&daemon.home, &daemon.pulse, req.get("params"))
            }
            Some("logs.read") => control::logs_read(&daemon.home, req.get("params")),
            Some("logs.clear") => control::logs_clear(&daemon.home),
            Some("cron.run") => cron_run(&daemon, req.get("params")).await,
            Some("stop") => {
                let _ = stop.try_send(());
                Ok(json!({"stopping": true}))
            }
            Some("mesh") => mesh_op(&daemon, req.get("params")).await,
            Some("mesh.wait") => mesh_wait(&daemon, req.get("params")).await,
            Some("services.status") => Ok(json!({
                "services": daemon.services.status(),
                "error": daemon.services_error,
            })),
            Some(m @ ("services.start" | "services.stop" | "services.restart")) => {
                let name = req
                    .get("params")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str);
                let verb = m.trim_start_matches("services.");
                daemon
                    .services
                    .control(verb, name)
                    .await
                    .map_err(|e| (-32001, e, None))
            }
            Some(m) => Err((-32601, format!("no method `{m}`"), None)),
            None => Err((-32600, "a request needs a method".to_string(), None)),
        };
        if reply(&mut write, id, result).await.is_err() {
            return;
        }
    }
}

async fn cron_run(daemon: &Daemon, params: Option<&Value>) -> Result<Value, Failure> {
    let id = params
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let job = cron::load(&daemon.home)
        .map_err(|e| (-32001, e, None))?
        .into_iter()
        .find(|j| j.id == id)
        .ok_or_else(|| {
            (
                -32001,
                format!("no cron job `{id}`; see `nexus cron list`"),
                None,
            )
        })?;
    let r = cron::run(&daemon.home, &daemon.pulse.ctx.client, &job, 0).await;
    serde_json::to_value(r).map_err(|e| (-32603, e.to_string(), None))
}

/// A failed request: a JSON-RPC code, a message, and data.
type Failure = (i64, String, Option<Value>);

/// The mesh a request names, else the current one.
fn mesh_of(home: &NexusHome, params: Option<&Value>) -> Result<String, Failure> {
    if let Some(m) = params.and_then(|p| p.get("mesh")).and_then(Value::as_str) {
        return Ok(m.to_string());
    }
    nexus_mesh::peer::current_mesh(home).map_err(|e| mesh_failure(&e))
}

fn mesh_failure(e: &nexus_mesh::MeshError) -> Failure {
    (-32000, e.to_string(), serde_json::to_value(e).ok())
}

fn handle(daemon: &Daemon, mesh: &str) -> Result<Handle, Failure> {
    let member = nexus_mesh::peer::memberships(&daemon.home)
        .map_err(|e| mesh_failure(&e))?
        .iter()
        .any(|m| m == mesh);
    if !member {
        return Err(mesh_failure(&nexus_mesh::MeshError::Invalid(format!(
            "not a member of `{mesh}`; see `nexus mesh join`"
        ))));
    }
    Ok(daemon.keeper(mesh))
}

async fn mesh_op(daemon: &Daemon, params: Option<&Value>) -> Result<Value, Failure> {
    let mesh = mesh_of(&daemon.home, params)?;
    let op: Op = serde_json::from_value(
        params
            .and_then(|p| p.get("op"))
            .cloned()
            .unwrap_or(Value::Null),
    )
    .map_err(|e| (-32602, format!("not a mesh op: {e}"), None))?;
    let h = handle(daemon, &mesh)?;
    lock(&daemon.state)
        .meshes
        .entry(mesh.clone())
        .or_default()
        .ops += 1;
    let (reply, answer) = oneshot::channel();
    h.jobs.try_send(Job { op, reply }).map_err(|_| {
        mesh_failure(&nexus_mesh::MeshError::Io(format!(
            "nexusd has {QUEUED_OPS} ops for {mesh} queued; try again"
        )))
    })?;
    match answer.await {
        Ok(Ok(a)) => serde_json::to_value(a).map_err(|e| (-32603, e.to_string(), None)),
        Ok(Err(e)) => Err(mesh_failure(&e)),
        Err(_) => Err(mesh_failure(&nexus_mesh::MeshError::Io(
            "nexusd stopped before answering".into(),
        ))),
    }
}

async fn mesh_wait(daemon: &Daemon, params: Option<&Value>) -> Result<Value, Failure> {
    let mesh = mesh_of(&daemon.home, params)?;
    let seen = params
        .and_then(|p| p.get("seen"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let timeout = params
        .and_then(|p| p.get("timeout_ms"))
        .and_then(Value::as_u64)
        .unwrap_or(25_000)
        .min(60_000);
    let mut stored = handle(daemon, &mesh)?.stored;
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(timeout),
        stored.wait_for(|n| *n != seen),
    )
    .await;
    let now = *stored.borrow();
    Ok(json!({ "stored": now }))
}

fn status(state: &Mutex<State>) -> Value {
    let s = lock(state);
    let meshes: Vec<Value> = s
        .meshes
        .iter()
        .map(
            |(m, st)| json!({"mesh": m, "connected": st.connected, "last": st.last, "ops": st.ops}),
        )
        .collect();
    json!({
        "pid": std::process::id(),
        "started_ms": s.started_ms,
        "uptime_ms": now_ms().saturating_sub(s.started_ms),
        "meshes": meshes,
    })
}

async fn reply(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    id: Value,
    result: Result<Value, Failure>,
) -> std::io::Result<()> {
    let msg = match result {
        Ok(r) => json!({"jsonrpc": "2.0", "id": id, "version": VERSION, "result": r}),
        Err((code, message, data)) => json!({"jsonrpc": "2.0", "id": id, "version": VERSION,
            "error": {"code": code, "message": message, "data": data}}),
    };
    let mut bytes = serde_json::to_vec(&msg).unwrap_or_default();
    bytes.push(b'\n');
    w.write_all(&bytes).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_daemon_per_home_a_stale_socket_and_stop() {
        let d = tempfile::tempdir().unwrap();
        let home = NexusHome::at(d.path().join("nexus"));
        home.ensure().unwrap();
        // A socket file left by a killed daemon.
        std::fs::write(Paths::of(&home).socket, b"").unwrap();
        assert!(matches!(
            call(&home, "status").await,
            Err(DaemonError::NotRunning(_))
        ));
        let vault: Arc<dyn Vault> = Arc::new(nexus_core::MemoryVault::default());
        let h = home.clone();
        let v = vault.clone();
        let first = tokio::spawn(async move { run(h, v, std::future::pending()).await });
        let mut up = None;
        for _ in 0..100 {
            if let Ok(s) = call(&home, "status").await {
                up = Some(s);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let s = up.expect("the daemon answers");
        assert_eq!(s["pid"], std::process::id());
        // A second one for the same home is refused and changes nothing.
        let e = run(home.clone(), vault, std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(e, DaemonError::AlreadyRunning { .. }), "{e}");
        assert!(call(&home, "status").await.is_ok());
        assert!(call(&home, "no-such")
            .await
            .unwrap_err()
            .to_string()
            .contains("no method"));
        call(&home, "stop").await.unwrap();
        first.await.unwrap().unwrap();
        assert!(!Paths::of(&home).socket.exists() && !Paths::of(&home).pid.exists());
        assert!(matches!(
            call(&home, "status").await,
            Err(DaemonError::NotRunning(_))
        ));
    }

    #[tokio::test]
    async fn a_daemon_of_another_version_is_named_not_misread() {
        let d = tempfile::tempdir().unwrap();
        let home = NexusHome::at(d.path());
        let listener = UnixListener::bind(Paths::of(&home).socket).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut line = String::new();
            let (r, mut w) = s.split();
            BufReader::new(r).read_line(&mut line).await.unwrap();
            w.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"version\":\"0.0.1\",\"result\":{}}\n")
                .await
                .unwrap();
        });
        let e = call(&home, "status").await.unwrap_err();
        assert!(
            matches!(&e, DaemonError::OtherVersion { theirs } if theirs == "0.0.1"),
            "{e}"
        );
        assert!(e.to_string().contains("nexus daemon stop"));
    }
}
