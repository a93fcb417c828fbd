//! The host: installs extensions (verifying signatures), runs each in a
//! process group of its own speaking JSON-RPC on its stdio, answers their
//! calls into the host (the store, permission requests, logs) under the
//! permission policy, restarts crashed ones with backoff, and stops them so
//! that no descendant survives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::{Clock, NexusHome, SystemClock};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::clipboard::{Clipboard, SystemClipboard};
use crate::manifest::Manifest;
use crate::permissions::{self, Answer, AuditEntry, Decision, Decisions, Permission};
use crate::rpc::{code, Handler, Peer, RpcError};
use crate::sign::SignError;
use crate::store::{Store, StoreError, QUOTA};

pub use crate::install::{install, set_enabled, uninstall};

/// The protocol version the host speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// How long `initialize` may take.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most clipboard text an extension may write, bytes.
pub const MAX_CLIPBOARD: usize = 512 * 1024;

pub use crate::process::STOP_GRACE;

/// Where the host keeps things under `NEXUS_HOME`.
#[derive(Debug, Clone)]
pub struct Paths {
    home: NexusHome,
}

impl Paths {
    /// The paths of `home`.
    pub fn new(home: NexusHome) -> Paths {
        Paths { home }
    }
    /// Installed extensions, one directory each.
    pub fn extensions(&self) -> PathBuf {
        self.home.join("extensions")
    }
    /// Extension `id`'s installed copy.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.extensions().join(id)
    }
    /// Which are installed and enabled.
    pub fn state(&self) -> PathBuf {
        self.extensions().join("state.json")
    }
    /// Remembered permission decisions.
    pub fn decisions(&self) -> PathBuf {
        self.extensions().join("decisions.json")
    }
    /// Every permission decision, as JSON lines.
    pub fn audit(&self) -> PathBuf {
        self.home.join("logs").join("ext-audit.jsonl")
    }
    /// Extension `id`'s data (its store).
    pub fn data(&self, id: &str) -> PathBuf {
        self.home.join("plugin-data").join(id)
    }
    /// Extension `id`'s log (its stderr and `nexus/log` calls).
    pub fn log(&self, id: &str) -> PathBuf {
        self.home.join("logs").join(format!("ext-{id}.log"))
    }
}

/// One installed extension, as `state.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    /// The version installed.
    pub version: String,
    /// Whether it runs.
    pub enabled: bool,
    /// The key that signed it, or `None` when installed unsigned.
    pub signed_by: Option<String>,
    /// Why it was disabled, when the host did it (too many crashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_because: Option<String>,
}

/// `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State(pub BTreeMap<String, Installed>);

impl State {
    /// Reads `state.json` (missing means nothing installed).
    pub fn load(paths: &Paths) -> State {
        std::fs::read(paths.state())
            .ok()
            .filter(|b| b.len() < 4 << 20)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes `state.json` atomically.
    pub fn save(&self, paths: &Paths) -> Result<(), ExtError> {
        nexus_core::private_dir(&paths.extensions()).map_err(|e| ExtError::Io(e.to_string()))?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| ExtError::Io(e.to_string()))?;
        nexus_core::atomic_write(&paths.state(), &bytes, nexus_core::FileMode::Secret)
            .map_err(|e| ExtError::Io(e.to_string()))
    }
}

/// An extension host failure.
#[derive(Debug, thiserror::Error)]
pub enum ExtError {
    /// The manifest is wrong.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// The signature is refused.
    #[error(transparent)]
    Signature(#[from] SignError),
    /// No such extension.
    #[error("no extension `{0}` is installed; see `nexus ext list`")]
    NotInstalled(String),
    /// It is disabled.
    #[error("extension `{0}` is disabled; `nexus ext enable {0}` turns it on")]
    Disabled(String),
    /// It could not be started or did not initialize.
    #[error("extension `{id}` did not start: {why}")]
    Start {
        /// The extension.
        id: String,
        /// Why.
        why: String,
    },
    /// A call failed.
    #[error("extension `{id}`: {error}")]
    Call {
        /// The extension.
        id: String,
        /// The JSON-RPC error.
        error: RpcError,
    },
    /// An archive was refused.
    #[error(transparent)]
    Archive(crate::archive::ArchiveError),
    /// A file operation failed.
    #[error("{0}")]
    Io(String),
}

/// Asks the user about a sensitive request. An implementation must give
/// up (return [`Answer::TimedOut`]) after `timeout`.
#[async_trait::async_trait]
pub trait Approver: Send + Sync {
    /// Extension `id` wants `capability` (`detail` says what for).
    async fn ask(&self, id: &str, capability: &str, detail: &str, timeout: Duration) -> Answer;
}

/// Says no to everything (no one to ask).
#[derive(Debug, Default)]
pub struct DenyAll;

#[async_trait::async_trait]
impl Approver for DenyAll {
    async fn ask(&self, _: &str, _: &str, _: &str, _: Duration) -> Answer {
        Answer::Deny
    }
}

/// What the host shares with each running extension's handler.
pub struct Shared {
    paths: Paths,
    approver: Arc<dyn Approver>,
    approval_timeout: Duration,
    decisions: Mutex<Decisions>,
    quota: u64,
    /// Open stores, one per extension: the extension's calls and the HTTP
    /// API share one connection, so writes queue instead of colliding.
    stores: Mutex<BTreeMap<String, Arc<Store>>>,
    clipboard: Arc<dyn Clipboard>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The host's shared parts: where things live, who approves, how long
    /// an approval may wait (60 s unless a test shortens it), the quota.
    pub fn new(
        paths: Paths,
        approver: Arc<dyn Approver>,
        approval_timeout: Duration,
        quota: u64,
    ) -> Arc<Shared> {
        Shared::with_clipboard(
            paths,
            approver,
            approval_timeout,
            quota,
            Arc::new(SystemClipboard::default()),
        )
    }

    /// [`Shared::new`] with another clipboard than the system's.
    pub fn with_clipboard(
        paths: Paths,
        approver: Arc<dyn Approver>,
        approval_timeout: Duration,
        quota: u64,
        clipboard: Arc<dyn Clipboard>,
    ) -> Arc<Shared> {
        let decisions = Decisions::load(&paths.decisions());
        Arc::new(Shared {
            paths,
            approver,
            approval_timeout,
            decisions: Mutex::new(decisions),
            quota,
            stores: Mutex::new(BTreeMap::new()),
            clipboard,
        })
    }

    /// Extension (or plugin) `id`'s store, opened on first use.
    pub fn store(&self, id: &str) -> Result<Arc<Store>, StoreError> {
        if !crate::manifest::valid_id(id) {
            return Err(StoreError::Key(format!("`{id}` is not an extension id")));
        }
        let mut open = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = open.get(id) {
            return Ok(s.clone());
        }
        let s = Arc::new(Store::open(&self.paths.data(id), self.quota)?);
        open.insert(id.to_string(), s.clone());
        Ok(s)
    }

    /// Closes `id`'s store (before its data is deleted).
    pub fn close_store(&self, id: &str) {
        self.stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    /// With the defaults: 60 s approvals, the 10 MB quota.
    pub fn with_defaults(paths: Paths, approver: Arc<dyn Approver>) -> Arc<Shared> {
        Shared::new(paths, approver, Duration::from_secs(60), QUOTA)
    }

    /// The paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    fn audit(&self, id: &str, capability: &str, decision: &str, by: &str) {
        let e = AuditEntry {
            at_ms: SystemClock.now_millis(),
            extension: id.to_string(),
            capability: capability.to_string(),
            decision: decision.to_string(),
            by: by.to_string(),
        };
        if let Err(err) = permissions::audit(&self.paths.audit(), &e) {
            tracing::warn!("cannot write the extension audit log: {err}");
        }
    }

    /// Checks `wanted` for extension `id`, asking the user when the policy
    /// says so, remembering the answer when asked to, auditing every time.
    pub async fn check(
        &self,
        id: &str,
        declared: &[Permission],
        wanted: &Permission,
        detail: &str,
    ) -> Result<(), RpcError> {
        let decision = {
            let d = self
                .decisions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            permissions::decide(id, declared, &d, wanted)
        };
        let cap = wanted.to_string();
        match decision {
            Decision::Allow => {
                if wanted.sensitive() {
                    self.audit(id, &cap, "allow", "remembered");
                }
                Ok(())
            }
            Decision::Deny(why) => {
                self.audit(id, &cap, "deny", "policy");
                Err(RpcError::new(code::PERMISSION_DENIED, why))
            }
            Decision::Ask => {
                let answer = self
                    .approver
                    .ask(id, &cap, detail, self.approval_timeout)
                    .await;
                let grant = declared
                    .iter()
                    .find(|d| d.covers(wanted))
                    .map(ToString::to_string)
                    .unwrap_or(cap.clone());
                {
                    let mut d = self
                        .decisions
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let before = d.clone();
                    d.remember(id, &grant, answer);
                    if *d != before {
                        if let Err(e) = d.save(&self.paths.decisions()) {
                            tracing::warn!("cannot save remembered decisions: {e}");
                        }
                    }
                }
                let label = serde_json::to_value(answer)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.audit(id, &cap, &label, "user");
                if answer.allows() {
                    Ok(())
                } else if answer == Answer::TimedOut {
                    Err(RpcError::new(
                        code::PERMISSION_DENIED,
                        format!(
                            "`{cap}` was not approved within {} s",
                            self.approval_timeout.as_secs()
                        ),
                    ))
                } else {
                    Err(RpcError::new(
                        code::PERMISSION_DENIED,
                        format!("the user denied `{cap}`"),
                    ))
                }
            }
        }
    }

    /// The remembered decisions (for `nexus ext permissions`).
    pub fn remembered(&self) -> Decisions {
        self.decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forgets remembered decisions of `id`.
    pub fn revoke(&self, id: &str, capability: Option<&str>) -> Result<usize, ExtError> {
        let mut d = self
            .decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = d.revoke(id, capability);
        d.save(&self.paths.decisions())
            .map_err(|e| ExtError::Io(e.to_string()))?;
        Ok(n)
    }
}

/// Answers one extension's calls into the host.
struct HostHandler {
    id: String,
    declared: Vec<Permission>,
    shared: Arc<Shared>,
    log: Arc<Mutex<Option<std::fs::File>>>,
}

fn param<'a>(p: &'a Value, k: &str) -> Result<&'a str, RpcError> {
    p.get(k).and_then(Value::as_str).ok_or_else(|| {
        RpcError::new(
            code::INVALID_PARAMS,
            format!("`{k}` (a string) is required"),
        )
    })
}

fn store_err(e: StoreError) -> RpcError {
    match e {
        StoreError::Quota { .. } => RpcError::new(code::QUOTA_EXCEEDED, e.to_string()),
        StoreError::Key(_) => RpcError::new(code::INVALID_PARAMS, e.to_string()),
        StoreError::Db(_) => RpcError::new(code::INTERNAL, e.to_string()),
    }
}

impl HostHandler {
    fn store(&self) -> Result<Arc<Store>, RpcError> {
        self.shared.store(&self.id).map_err(store_err)
    }

    fn write_log(&self, level: &str, message: &str) {
        use std::io::Write;
        let mut slot = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = slot.as_mut() {
            let line = json!({"at_ms": SystemClock.now_millis(), "level": level, "message": message.chars().take(8192).collect::<String>()});
            let _ = writeln!(f, "{line}");
        }
    }
}

#[async_trait::async_trait]
impl Handler for HostHandler {
    async fn request(&self, method: &str, p: Value) -> Result<Value, RpcError> {
        let check = |perm: Permission, detail: String| {
            let shared = self.shared.clone();
            let declared = self.declared.clone();
            let id = self.id.clone();
            async move { shared.check(&id, &declared, &perm, &detail).await }
        };
        match method {
            "nexus/store.get" => {
                check(Permission::StoreRead, String::new()).await?;
                let v = self.store()?.get(param(&p, "key")?).map_err(store_err)?;
                Ok(v.map_or(Value::Null, |b| {
                    Value::String(String::from_utf8_lossy(&b).into_owned())
                }))
            }
            "nexus/store.put" => {
                check(Permission::StoreWrite, String::new()).await?;
                self.store()?
                    .put(param(&p, "key")?, param(&p, "value")?.as_bytes())
                    .map_err(store_err)?;
                Ok(json!(true))
            }
            "nexus/store.delete" => {
                check(Permission::StoreWrite, String::new()).await?;
                Ok(json!(self
                    .store()?
                    .delete(param(&p, "key")?)
                    .map_err(store_err)?))
            }
            "nexus/store.list" => {
                check(Permission::StoreRead, String::new()).await?;
                let prefix = p.get("prefix").and_then(Value::as_str).unwrap_or("");
                Ok(json!(self
                    .store()?
                    .list(prefix, 10_000)
                    .map_err(store_err)?))
            }
            "nexus/clipboard.read" => {
                check(Permission::ClipboardRead, String::new()).await?;
                let clip = self.shared.clipboard.clone();
                let text = tokio::task::spawn_blocking(move || clip.read())
                    .await
                    .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))?
                    .map_err(|e| RpcError::new(code::INTERNAL, e))?;
                Ok(json!({ "text": text }))
            }
            "nexus/clipboard.write" => {
                check(Permission::ClipboardWrite, String::new()).await?;
                let text = param(&p, "text")?.to_string();
                if text.len() > MAX_CLIPBOARD {
                    return Err(RpcError::new(
                        code::INVALID_PARAMS,
                        format!("clipboard text is limited to {MAX_CLIPBOARD} bytes"),
                    ));
                }
                let clip = self.shared.clipboard.clone();
                tokio::task::spawn_blocking(move || clip.write(&text))
                    .await
                    .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))?
                    .map_err(|e| RpcError::new(code::INTERNAL, e))?;
                Ok(json!(true))
            }
            "nexus/permission.request" => {
                let wanted: Permission = param(&p, "permission")?
                    .parse()
                    .map_err(|e: String| RpcError::new(code::INVALID_PARAMS, e))?;
                let reason = p
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(500)
                    .collect();
                check(wanted, reason).await?;
                Ok(json!({"granted": true}))
            }
            _ => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!("the host has no method `{method}`"),
            )),
        }
    }

    async fn notify(&self, method: &str, p: Value) {
        if method == "nexus/log" {
            let level = p.get("level").and_then(Value::as_str).unwrap_or("info");
            let msg = p.get("message").and_then(Value::as_str).unwrap_or("");
            self.write_log(level, msg);
        }
    }
}

/// A running extension.
pub struct Running {
    /// Its id.
    pub id: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// The JSON-RPC peer on its stdio.
    pub peer: Peer,
    /// What it said to `initialize`.
    pub info: Value,
    child: Child,
    /// When it started, ms since the epoch.
    pub started_ms: u64,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("id", &self.id)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// Starts installed extension `id` and initializes it.
pub async fn start(shared: &Arc<Shared>, id: &str) -> Result<Running, ExtError> {
    let paths = &shared.paths;
    let state = State::load(paths);
    let installed = state
        .0
        .get(id)
        .ok_or_else(|| ExtError::NotInstalled(id.to_string()))?;
    if !installed.enabled {
        return Err(ExtError::Disabled(id.to_string()));
    }
    let dir = paths.dir(id);
    let manifest = Manifest::load(&dir)?;
    let fail = |why: String| ExtError::Start {
        id: id.to_string(),
        why,
    };
    if let Some(parent) = paths.log(id).parent() {
        nexus_core::private_dir(parent).map_err(|e| fail(e.to_string()))?;
    }
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.log(id))
        .map_err(|e| fail(e.to_string()))?;
    let mut cmd = Command::new(&manifest.command[0]);
    cmd.args(&manifest.command[1..])
        .current_dir(&dir)
        .env("NEXUS_EXTENSION_ID", id)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log_file.try_clone().map_err(|e| fail(e.to_string()))?)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("`{}`: {e}", manifest.command[0])))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(fail("no pipes".into()));
    };
    let handler = Arc::new(HostHandler {
        id: id.to_string(),
        declared: manifest.permissions(),
        shared: shared.clone(),
        log: Arc::new(Mutex::new(Some(log_file))),
    });
    let peer = Peer::start(stdout, stdin, handler, id.to_string());
    let started_ms = SystemClock.now_millis();
    let init = tokio::time::timeout(
        INIT_TIMEOUT,
        peer.call(
            "initialize",
            json!({
                "protocol_version": PROTOCOL_VERSION,
                "host": {"name": "nexus", "version": env!("CARGO_PKG_VERSION")},
                "extension": {"id": id, "version": manifest.version},
                "permissions": manifest.permissions,
            }),
        ),
    )
    .await;
    let mut running = Running {
        id: id.to_string(),
        manifest,
        peer,
        info: Value::Null,
        child,
        started_ms,
    };
    running.info = match init {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            running.stop().await;
            return Err(fail(format!("initialize failed: {e}")));
        }
        Err(_) => {
            running.stop().await;
            return Err(fail(format!(
                "no answer to initialize within {} s",
                INIT_TIMEOUT.as_secs()
            )));
        }
    };
    Ok(running)
}

impl Running {
    /// Calls `method` on the extension.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ExtError> {
        self.peer
            .call(method, params)
            .await
            .map_err(|error| ExtError::Call {
                id: self.id.clone(),
                error,
            })
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for it to exit on its own; how it ended.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        loop {
            match self.child.wait().await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Stops it: `shutdown`, close its stdin and wait, SIGTERM to its
    /// process group and wait, then SIGKILL; every descendant in the group
    /// goes too.
    pub async fn stop(&mut self) {
        let _ = tokio::time::timeout(STOP_GRACE, self.peer.call("shutdown", Value::Null)).await;
        self.peer.close().await;
        crate::process::stop_group(&mut self.child).await;
    }
}
