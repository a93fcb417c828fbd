//! [`Extensions`]: installing, switching and calling extensions from any
//! frontend, with the resident daemon kept in step. When nexusd runs it
//! supervises the enabled extensions, so a call goes to the process it
//! keeps, an install or enable starts one, and an uninstall stops the
//! process group before the files go. With no daemon, a call starts the
//! extension for that call only.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::NexusHome;
use nexus_ext::host::{self, Approver, ExtError, Paths, Shared};
use nexus_ext::manifest::Manifest;
use nexus_ext::sign::PublicKey;
use serde_json::{json, Value};

use crate::daemon::{call_with, DaemonError};

pub use nexus_ext::pending::Question;
pub use nexus_ext::permissions::Answer;

/// An extension operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionsError {
    /// The host refused or failed.
    #[error(transparent)]
    Ext(#[from] ExtError),
    /// The daemon failed (it runs, but answered an error).
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// How long the daemon may take over a call: the extension may be
/// restarting and may ask the user (60 s) on the way.
const CALL_WAIT: Duration = Duration::from_secs(150);
/// How long stopping one extension may take (2 s + 2 s + the kill).
const STOP_WAIT: Duration = Duration::from_secs(20);

/// The extensions of one home.
#[derive(Debug, Clone)]
pub struct Extensions {
    home: NexusHome,
    paths: Paths,
}

impl Extensions {
    /// The extensions of `home`.
    pub fn new(home: NexusHome) -> Extensions {
        Extensions {
            paths: Paths::new(home.clone()),
            home,
        }
    }

    /// Where they live.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// `method` on the daemon, or `None` when no daemon runs.
    async fn daemon(
        &self,
        method: &str,
        params: Value,
        wait: Duration,
    ) -> Result<Option<Value>, DaemonError> {
        match call_with(&self.home, method, params, wait).await {
            Ok(v) => Ok(Some(v)),
            Err(DaemonError::NotRunning(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every installed extension: id, version, enabled (or why not), the
    /// key that signed it, its name and permissions, and its pid and
    /// restarts when the daemon runs it.
    pub async fn list(&self) -> Vec<Value> {
        let state = host::State::load(&self.paths);
        let running = self.running().await.ok().flatten();
        let live = |id: &str| -> Value {
            running
                .as_ref()
                .and_then(|r| r["extensions"].as_array())
                .and_then(|a| a.iter().find(|e| e["id"] == id))
                .cloned()
                .unwrap_or(Value::Null)
        };
        state
            .0
            .iter()
            .map(|(id, i)| {
                let m = Manifest::load(&self.paths.dir(id)).ok();
                json!({
                    "id": id,
                    "version": i.version,
                    "enabled": i.enabled,
                    "signed_by": i.signed_by,
                    "disabled_because": i.disabled_because,
                    "name": m.as_ref().map(|m| m.name.clone()),
                    "permissions": m.as_ref().map(|m| m.permissions.clone()).unwrap_or_default(),
                    "persistent_data": m.as_ref().is_some_and(|m| m.persistent_data),
                    "pid": live(id)["pid"],
                    "restarts": live(id)["restarts"],
                })
            })
            .collect()
    }

    /// Has the daemon start what is enabled and stop the rest.
    async fn reload(&self) -> Result<(), ExtensionsError> {
        self.daemon("ext.reload", Value::Null, STOP_WAIT).await?;
        Ok(())
    }

    /// Stops `id` in the daemon, if it runs there.
    async fn stop(&self, id: &str) -> Result<(), ExtensionsError> {
        self.daemon("ext.stop", json!({ "id": id }), STOP_WAIT)
            .await?;
        Ok(())
    }

    /// Installs the extension in `src` (a directory or a `.tar.gz`),
    /// verified against `trusted` unless `allow_unsigned` (and refused
    /// unless its id is `expect`, when given); a running daemon starts it
    /// (an upgrade restarts it).
    pub async fn install(
        &self,
        src: &Path,
        trusted: &[PublicKey],
        allow_unsigned: bool,
        expect: Option<&str>,
    ) -> Result<(Manifest, Option<String>), ExtensionsError> {
        let id = Manifest::load(src).ok().map(|m| m.id);
        if let Some(id) = &id {
            // An upgrade: the old version stops before its files change.
            if self.paths.dir(id).exists() {
                self.stop(id).await?;
            }
        }
        let done = nexus_ext::install::install_expecting(
            &self.paths,
            src,
            trusted,
            allow_unsigned,
            expect,
        );
        if let Ok((m, _)) = &done {
            if id.is_none() && self.paths.dir(&m.id).exists() {
                self.stop(&m.id).await?;
            }
        }
        self.reload().await?;
        Ok(done?)
    }

    /// Removes `id` after stopping it; whether its data was kept.
    pub async fn uninstall(&self, id: &str) -> Result<bool, ExtensionsError> {
        self.stop(id).await?;
        let kept = host::uninstall(&self.paths, id);
        self.reload().await?;
        Ok(kept?)
    }

    /// Turns `id` on or off (a running daemon starts or stops it).
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), ExtensionsError> {
        host::set_enabled(&self.paths, id, enabled, None)?;
        if !enabled {
            self.stop(id).await?;
        }
        self.reload().await
    }

    /// Deletes `id`'s data (its store), stopping it meanwhile.
    pub async fn clear_data(&self, id: &str) -> Result<bool, ExtensionsError> {
        let dir = self.paths.data(id);
        if !dir.exists() {
            return Ok(false);
        }
        self.stop(id).await?;
        let removed = std::fs::remove_dir_all(&dir).map_err(|e| ExtError::Io(e.to_string()));
        self.reload().await?;
        removed?;
        Ok(true)
    }

    /// Calls `method` on extension `id`: on the process the daemon keeps,
    /// or (no daemon) on one started for this call, asking `approver`.
    pub async fn call(
        &self,
        id: &str,
        method: &str,
        params: Value,
        approver: Arc<dyn Approver>,
    ) -> Result<Value, ExtensionsError> {
        let through = self
            .daemon(
                "ext.call",
                json!({"id": id, "method": method, "params": params}),
                CALL_WAIT,
            )
            .await?;
        if let Some(v) = through {
            return Ok(v);
        }
        let shared = Shared::with_defaults(self.paths.clone(), approver);
        let mut running = host::start(&shared, id).await?;
        let result = running.call(method, params).await;
        running.stop().await;
        Ok(result?)
    }

    /// What the daemon's host says of the running extensions (`None`: no
    /// daemon).
    pub async fn running(&self) -> Result<Option<Value>, ExtensionsError> {
        Ok(self
            .daemon("ext.status", Value::Null, Duration::from_secs(10))
            .await?)
    }

    /// The permission questions the daemon waits on.
    pub async fn approvals(&self) -> Result<Vec<Question>, ExtensionsError> {
        let Some(v) = self
            .daemon("ext.approvals", Value::Null, Duration::from_secs(10))
            .await?
        else {
            return Err(DaemonError::NotRunning(self.home.root().display().to_string()).into());
        };
        serde_json::from_value(v["approvals"].clone())
            .map_err(|e| DaemonError::Protocol(e.to_string()).into())
    }

    /// Answers question `n`.
    pub async fn answer(&self, n: u64, answer: Answer) -> Result<(), ExtensionsError> {
        match self
            .daemon(
                "ext.answer",
                json!({"n": n, "answer": answer}),
                Duration::from_secs(10),
            )
            .await?
        {
            Some(_) => Ok(()),
            None => Err(DaemonError::NotRunning(self.home.root().display().to_string()).into()),
        }
    }
}
