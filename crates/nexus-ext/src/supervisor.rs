//! Keeps enabled extensions running: one task per extension, so a crash
//! (or a flood, or garbage) in one never touches another; a crashed one
//! restarts after the [`CrashPolicy`] backoff, and past 5 crashes in 10
//! minutes it is disabled and the user told (its log, `nexus ext list`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nexus_core::{Clock, SystemClock};
use serde_json::Value;
use tokio::sync::watch;

use crate::crash::{CrashPolicy, Verdict};
use crate::host::{self, ExtError, Shared};
use crate::rpc::Peer;

/// How long a call waits for an extension that is (re)starting.
pub const CALL_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What the supervisor knows of one extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Its process, while it runs.
    pub pid: Option<u32>,
    /// Restarts after crashes.
    pub restarts: u32,
    /// Set when it was disabled for crashing.
    pub disabled: Option<String>,
    /// The last crash, as the OS told it.
    pub last_exit: Option<String>,
}

struct Slot {
    peer: watch::Sender<Option<Peer>>,
    status: Mutex<Status>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Runs a set of extensions.
pub struct Supervisor {
    shared: Arc<Shared>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Supervisor {
    /// Starts supervising `ids` (the enabled, installed ones to run).
    pub fn start(shared: Arc<Shared>, ids: &[String]) -> Arc<Supervisor> {
        let sup = Arc::new(Supervisor {
            shared,
            slots: Mutex::new(HashMap::new()),
        });
        for id in ids {
            sup.add(id);
        }
        sup
    }

    /// The host's shared parts.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts supervising `id` (nothing if it is supervised already).
    pub fn add(&self, id: &str) {
        let mut slots = lock(&self.slots);
        if slots.contains_key(id) {
            return;
        }
        let slot = Arc::new(Slot {
            peer: watch::channel(None).0,
            status: Mutex::new(Status::default()),
            stop: watch::channel(false).0,
            task: Mutex::new(None),
        });
        slots.insert(id.to_string(), slot.clone());
        let task = tokio::spawn(keep(
            self.shared.clone(),
            id.to_string(),
            slot.clone(),
            slot.stop.subscribe(),
        ));
        *lock(&slot.task) = Some(task);
    }

    /// Stops `id` (and all its descendants) and forgets it; whether it was
    /// supervised.
    pub async fn remove(&self, id: &str) -> bool {
        let Some(slot) = lock(&self.slots).remove(id) else {
            return false;
        };
        Self::stop_slot(&slot).await;
        self.shared.close_store(id);
        true
    }

    async fn stop_slot(slot: &Slot) {
        let _ = slot.stop.send(true);
        let task = lock(&slot.task).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// Makes the supervised set `ids`: starts the new ones, stops the rest.
    /// One that was disabled for crashing and is wanted again starts anew.
    pub async fn sync(&self, ids: &[String]) {
        let current: Vec<(String, bool)> = lock(&self.slots)
            .iter()
            .map(|(id, s)| (id.clone(), lock(&s.status).disabled.is_some()))
            .collect();
        for (id, disabled) in current {
            if !ids.contains(&id) || disabled {
                self.remove(&id).await;
            }
        }
        for id in ids {
            self.add(id);
        }
    }

    /// The supervised extensions and what is known of each.
    pub fn statuses(&self) -> Vec<(String, Status)> {
        let mut v: Vec<(String, Status)> = lock(&self.slots)
            .iter()
            .map(|(id, s)| (id.clone(), lock(&s.status).clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn slot(&self, id: &str) -> Result<Arc<Slot>, ExtError> {
        lock(&self.slots)
            .get(id)
            .cloned()
            .ok_or_else(|| ExtError::NotInstalled(id.to_string()))
    }

    /// Calls `method` on extension `id`. While it is restarting (or its
    /// old pipe has just closed) the call waits for the new process, up to
    /// [`CALL_WAIT`]; a call the crash cut off is not repeated.
    pub async fn call(&self, id: &str, method: &str, params: Value) -> Result<Value, ExtError> {
        let slot = self.slot(id)?;
        let mut rx = slot.peer.subscribe();
        let deadline = tokio::time::Instant::now() + CALL_WAIT;
        let peer = loop {
            let current = rx.borrow_and_update().clone();
            match current {
                Some(p) if !p.is_closed() => break p,
                _ => {
                    if tokio::time::timeout_at(deadline, rx.changed())
                        .await
                        .map_or(true, |r| r.is_err())
                    {
                        let st = lock(&slot.status);
                        return Err(ExtError::Start {
                            id: id.to_string(),
                            why: st.disabled.clone().unwrap_or_else(|| match &st.last_exit {
                                Some(e) => format!("it is not running (last: {e})"),
                                None => {
                                    format!("it did not start within {} s", CALL_WAIT.as_secs())
                                }
                            }),
                        });
                    }
                }
            }
        };
        peer.call(method, params)
            .await
            .map_err(|error| ExtError::Call {
                id: id.to_string(),
                error,
            })
    }

    /// What is known of extension `id`.
    pub fn status(&self, id: &str) -> Option<Status> {
        lock(&self.slots).get(id).map(|s| lock(&s.status).clone())
    }

    /// Stops every extension (and every descendant of theirs) and waits.
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).drain().map(|(_, s)| s).collect();
        for s in &slots {
            let _ = s.stop.send(true);
        }
        for s in &slots {
            Self::stop_slot(s).await;
        }
    }
}

async fn keep(shared: Arc<Shared>, id: String, slot: Arc<Slot>, mut stop: watch::Receiver<bool>) {
    let mut policy = CrashPolicy::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let started = SystemClock.now_millis();
        let verdict = match host::start(&shared, &id).await {
            Ok(mut running) => {
                lock(&slot.status).pid = running.pid();
                let _ = slot.peer.send_replace(Some(running.peer.clone()));
                let exit = tokio::select! {
                    status = running.wait() => Some(status),
                    _ = stop.wait_for(|s| *s) => None,
                };
                slot.peer.send_replace(None);
                lock(&slot.status).pid = None;
                let Some(status) = exit else {
                    running.stop().await;
                    return;
                };
                // It exited: kill what it left in its group, then decide.
                running.stop().await;
                lock(&slot.status).last_exit = Some(status.to_string());
                tracing::warn!(extension = %id, "exited: {status}");
                policy.crashed(started, SystemClock.now_millis())
            }
            Err(ExtError::Disabled(_) | ExtError::NotInstalled(_)) => return,
            Err(e) => {
                lock(&slot.status).last_exit = Some(e.to_string());
                tracing::warn!(extension = %id, "did not start: {e}");
                policy.crashed(started, SystemClock.now_millis())
            }
        };
        match verdict {
            Verdict::Restart(delay) => {
                lock(&slot.status).restarts += 1;
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            Verdict::Disable(why) => {
                let _ = host::set_enabled(shared.paths(), &id, false, Some(why.clone()));
                lock(&slot.status).disabled = Some(why.clone());
                tracing::error!(extension = %id, "disabled: {why}");
                return;
            }
        }
    }
}
