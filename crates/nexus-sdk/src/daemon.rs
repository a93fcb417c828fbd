//! The client side of nexusd's control socket: where a home's daemon
//! keeps its files, and calling it. Every frontend (the CLI, the bindings,
//! the daemon's own tests) calls the daemon through this; the daemon
//! (`nexus-daemon`) serves it.

use std::path::PathBuf;

use nexus_core::NexusHome;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The version every answer carries.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest answer a client reads, bytes (an inbox or history page).
const MAX_ANSWER: u64 = 64 << 20;

/// Daemon errors.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A daemon already runs for this home.
    #[error("nexusd is already running for {home} (pid {pid}); `nexus daemon stop` stops it")]
    AlreadyRunning {
        /// The home.
        home: String,
        /// Its pid, as its pid file says.
        pid: String,
    },
    /// None runs.
    #[error("nexusd is not running for {0}; `nexus daemon start` starts it")]
    NotRunning(String),
    /// One of another version runs.
    #[error("nexusd {theirs} is running, and this is nexus {VERSION}: run `nexus daemon stop`, then `nexus daemon start`")]
    OtherVersion {
        /// Its version.
        theirs: String,
    },
    /// The control socket said something else than expected.
    #[error("nexusd answered something unexpected: {0}")]
    Protocol(String),
    /// The daemon refused the request, and says why.
    #[error("{0}")]
    Refused(String),
    /// A file or socket failed.
    #[error("{0}")]
    Io(String),
    /// The mesh library failed.
    #[error(transparent)]
    Mesh(#[from] nexus_mesh::MeshError),
}

/// Where a home's daemon keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The control socket.
    pub socket: PathBuf,
    /// The pid file.
    pub pid: PathBuf,
    /// The single-instance lock.
    pub lock: PathBuf,
    /// The log the background daemon writes.
    pub log: PathBuf,
}

impl Paths {
    /// The files of `home`'s daemon.
    pub fn of(home: &NexusHome) -> Paths {
        Paths {
            socket: home.join("nexusd.sock"),
            pid: home.join("nexusd.pid"),
            lock: home.join("nexusd.lock"),
            log: home.join("logs").join("nexusd.log"),
        }
    }
}

/// Calls `method` on `home`'s daemon: its result, or why not (not running,
/// another version, an error it answered).
pub async fn call(home: &NexusHome, method: &str) -> Result<Value, DaemonError> {
    call_with(
        home,
        method,
        Value::Null,
        std::time::Duration::from_secs(10),
    )
    .await
}

/// Calls `method` with `params`, waiting at most `wait` for the answer. A
/// mesh error comes back as [`DaemonError::Mesh`], as it was raised.
pub async fn call_with(
    home: &NexusHome,
    method: &str,
    params: Value,
    wait: std::time::Duration,
) -> Result<Value, DaemonError> {
    let paths = Paths::of(home);
    let not_running = || DaemonError::NotRunning(home.root().display().to_string());
    let sock = match UnixStream::connect(&paths.socket).await {
        Ok(s) => s,
        Err(_) => return Err(not_running()),
    };
    let (read, mut write) = sock.into_split();
    let mut req =
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .map_err(|e| DaemonError::Protocol(e.to_string()))?;
    req.push(b'\n');
    write.write_all(&req).await.map_err(|_| not_running())?;
    let mut line = String::new();
    let read = tokio::time::timeout(
        wait,
        BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_ANSWER)).read_line(&mut line),
    )
    .await
    .map_err(|_| DaemonError::Protocol(format!("no answer within {} s", wait.as_secs())))?;
    if read.map_err(|e| DaemonError::Protocol(e.to_string()))? == 0 {
        return Err(not_running());
    }
    let v: Value = serde_json::from_str(&line).map_err(|e| DaemonError::Protocol(e.to_string()))?;
    let theirs = v.get("version").and_then(Value::as_str).unwrap_or("?");
    if theirs != VERSION {
        return Err(DaemonError::OtherVersion {
            theirs: theirs.to_string(),
        });
    }
    if let Some(e) = v.get("error") {
        if let Some(m) = e
            .get("data")
            .and_then(|d| serde_json::from_value::<nexus_mesh::MeshError>(d.clone()).ok())
        {
            return Err(DaemonError::Mesh(m));
        }
        return Err(DaemonError::Refused(
            e.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_string),
        ));
    }
    v.get("result")
        .cloned()
        .ok_or_else(|| DaemonError::Protocol(line.trim().to_string()))
}
