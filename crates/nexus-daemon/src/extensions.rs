//! The extension host as a daemon service: nexusd keeps every enabled
//! extension running under a [`Supervisor`] (restarts with backoff,
//! disabling past 5 crashes in 10 minutes), answers `ext.*` control
//! requests, holds the open permission questions, and stops every
//! extension's process group before it exits.
//!
//! Control methods:
//! - `ext.status`: the supervised extensions (pid, restarts, disabled) and
//!   the open questions;
//! - `ext.reload`: starts what was installed or enabled, stops the rest;
//! - `ext.stop` `{id}`: stops one now (before its files are removed);
//! - `ext.call` `{id, method, params}`: a call on the running extension;
//! - `ext.approvals`; `ext.answer` `{n, answer}`: the open questions.
//!
//! Settings (`config.toml`): `[extensions] approval_timeout_secs` (60).

use std::sync::Arc;
use std::time::Duration;

use nexus_core::{NexusHome, Vault};
use nexus_ext::host::{ExtError, Paths, Shared, State};
use nexus_ext::pending::Pending;
use nexus_ext::permissions::Answer;
use nexus_ext::supervisor::Supervisor;
use serde_json::{json, Value};

use crate::Failure;

/// The daemon's extension host.
pub(crate) struct Extensions {
    sup: Arc<Supervisor>,
    pending: Arc<Pending>,
    pub(crate) vault: Arc<dyn Vault>,
}

/// The installed and enabled extensions.
fn enabled(paths: &Paths) -> Vec<String> {
    State::load(paths)
        .0
        .into_iter()
        .filter(|(_, i)| i.enabled)
        .map(|(id, _)| id)
        .collect()
}

/// `[extensions] approval_timeout_secs`, else 60 s.
fn approval_timeout(home: &NexusHome) -> Duration {
    let secs = nexus_core::Config::load(home)
        .ok()
        .and_then(|c| {
            c.other
                .get("extensions")?
                .get("approval_timeout_secs")?
                .as_integer()
        })
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| (1..=3600).contains(s))
        .unwrap_or(60);
    Duration::from_secs(secs)
}

fn ext_failure(e: &ExtError) -> Failure {
    let code = match e {
        ExtError::NotInstalled(_) | ExtError::Disabled(_) => "not_found",
        ExtError::Call { .. } => "extension",
        _ => "unavailable",
    };
    (
        -32002,
        e.to_string(),
        Some(json!({ "extension_error": code })),
    )
}

fn param<'a>(params: Option<&'a Value>, key: &str) -> Result<&'a Value, Failure> {
    params
        .and_then(|p| p.get(key))
        .ok_or_else(|| (-32602, format!("`{key}` is required"), None))
}

fn str_param<'a>(params: Option<&'a Value>, key: &str) -> Result<&'a str, Failure> {
    param(params, key)?
        .as_str()
        .ok_or_else(|| (-32602, format!("`{key}` must be a string"), None))
}

impl Extensions {
    /// Starts the enabled extensions of `home`.
    pub(crate) fn start(home: &NexusHome, vault: Arc<dyn Vault>) -> Extensions {
        let desktop = nexus_ext::approve::Notifications::default();
        let pending = if desktop.available() {
            Pending::with_desktop(desktop)
        } else {
            Pending::new()
        };
        let paths = Paths::new(home.clone());
        let ids = enabled(&paths);
        let shared = Shared::new(
            paths,
            pending.clone(),
            approval_timeout(home),
            nexus_ext::store::QUOTA,
        );
        if !ids.is_empty() {
            crate::log(&format!("extensions: starting {}", ids.join(", ")));
        }
        Extensions {
            sup: Supervisor::start(shared, &ids),
            pending,
            vault,
        }
    }

    /// The host's shared parts (stores, paths).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        self.sup.shared()
    }

    /// What `status` shows.
    pub(crate) fn status(&self) -> Value {
        let running: Vec<Value> = self
            .sup
            .statuses()
            .into_iter()
            .map(|(id, s)| {
                json!({"id": id, "pid": s.pid, "restarts": s.restarts,
                       "disabled": s.disabled, "last_exit": s.last_exit})
            })
            .collect();
        json!({ "extensions": running, "approvals": self.pending.list() })
    }

    /// Answers an `ext.*` control request.
    pub(crate) async fn control(
        &self,
        method: &str,
        params: Option<&Value>,
    ) -> Result<Value, Failure> {
        match method {
            "ext.status" => Ok(self.status()),
            "ext.reload" => {
                let ids = enabled(self.shared().paths());
                self.sup.sync(&ids).await;
                Ok(self.status())
            }
            "ext.stop" => {
                let id = str_param(params, "id")?;
                Ok(json!({ "stopped": self.sup.remove(id).await }))
            }
            "ext.call" => {
                let id = str_param(params, "id")?;
                let method = str_param(params, "method")?;
                let args = params
                    .and_then(|p| p.get("params"))
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                if self.sup.status(id).is_none() {
                    // Installed or enabled since the daemon looked?
                    self.sup.sync(&enabled(self.shared().paths())).await;
                    if self.sup.status(id).is_none() {
                        let state = State::load(self.shared().paths());
                        return Err(ext_failure(&match state.0.get(id) {
                            Some(_) => ExtError::Disabled(id.to_string()),
                            None => ExtError::NotInstalled(id.to_string()),
                        }));
                    }
                }
                self.sup
                    .call(id, method, args)
                    .await
                    .map_err(|e| ext_failure(&e))
            }
            "ext.approvals" => Ok(json!({ "approvals": self.pending.list() })),
            "ext.answer" => {
                let n = param(params, "n")?
                    .as_u64()
                    .ok_or_else(|| (-32602, "`n` must be a number".to_string(), None))?;
                let answer: Answer = serde_json::from_value(param(params, "answer")?.clone())
                    .map_err(|_| {
                        (
                            -32602,
                            "`answer` is one of allow, allow_always, deny, deny_always".to_string(),
                            None,
                        )
                    })?;
                if self.pending.answer(n, answer) {
                    Ok(json!({ "answered": n }))
                } else {
                    Err((
                        -32002,
                        format!("no open question {n}; `nexus ext approvals` lists them"),
                        Some(json!({ "extension_error": "not_found" })),
                    ))
                }
            }
            m => Err((-32601, format!("no method `{m}`"), None)),
        }
    }

    /// Stops every extension and all their descendants.
    pub(crate) async fn shutdown(&self) {
        self.sup.shutdown().await;
    }
}
