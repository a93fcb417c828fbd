//! `nexus.Mesh`: the agent mesh, blocking (the GIL is released while a
//! call waits). Values come back as plain Python data: dicts and lists in
//! the shapes `nexus mesh ... --json` prints.

use std::sync::Arc;
use std::time::Duration;

use nexus_sdk as sdk;
use pyo3::prelude::*;

use crate::convert::json_to_py;
use crate::{blocking, Shared};

/// Parses a route name.
pub(crate) fn route(name: &str) -> PyResult<sdk::MeshRoute> {
    match name {
        "auto" => Ok(sdk::MeshRoute::Auto),
        "in_process" => Ok(sdk::MeshRoute::InProcess),
        "daemon" => Ok(sdk::MeshRoute::Daemon),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "route is \"auto\", \"in_process\" or \"daemon\", not {other:?}"
        ))),
    }
}

/// The agent mesh. `mesh=None` means the current mesh (the last created
/// or joined).
#[pyclass(module = "nexus", frozen)]
pub(crate) struct Mesh {
    pub(crate) inner: sdk::Mesh,
    pub(crate) shared: Arc<Shared>,
}

impl Mesh {
    fn call<'py, T: serde::Serialize + Send>(
        &self,
        py: Python<'py>,
        f: impl std::future::Future<Output = sdk::Result<T>> + Send,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = blocking(py, f).map_err(|e| self.shared.err(py, e))?;
        json_to_py(py, &v)
    }
}

#[pymethods]
impl Mesh {
    /// `(name, peer_id)` of this peer (made on first use).
    fn identity(&self, py: Python<'_>) -> PyResult<(String, String)> {
        blocking(py, self.inner.identity()).map_err(|e| self.shared.err(py, e))
    }

    /// The mesh verbs act on by default.
    fn current(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.current().map_err(|e| self.shared.err(py, e))
    }

    /// Whether a daemon runs for this home.
    fn daemon_running(&self, py: Python<'_>) -> bool {
        blocking(py, self.inner.daemon_running())
    }

    /// Creates mesh `name` on `broker` (`ws://host:port`), owned by you.
    #[pyo3(signature = (name, broker, *, as_name=None))]
    fn create(
        &self,
        py: Python<'_>,
        name: &str,
        broker: &str,
        as_name: Option<&str>,
    ) -> PyResult<()> {
        blocking(py, self.inner.create(name, broker, as_name)).map_err(|e| self.shared.err(py, e))
    }

    /// Joins with an invite link (or a short code and `broker`); returns
    /// the mesh's name.
    #[pyo3(signature = (link, *, broker=None, as_name=None))]
    fn join(
        &self,
        py: Python<'_>,
        link: &str,
        broker: Option<&str>,
        as_name: Option<&str>,
    ) -> PyResult<String> {
        blocking(py, self.inner.join(link, broker, as_name)).map_err(|e| self.shared.err(py, e))
    }

    /// Whether you hold the mesh key yet.
    #[pyo3(signature = (*, mesh=None))]
    fn has_key(&self, py: Python<'_>, mesh: Option<&str>) -> PyResult<bool> {
        blocking(py, self.inner.has_key(mesh)).map_err(|e| self.shared.err(py, e))
    }

    /// A signed invite (owner only): `{link, code, short_code, broker, expires_ms}`.
    #[pyo3(signature = (*, mesh=None, expires_secs=86_400, uses=1, role="member"))]
    fn invite<'py>(
        &self,
        py: Python<'py>,
        mesh: Option<&str>,
        expires_secs: u64,
        uses: u32,
        role: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = self
            .inner
            .invite(mesh, Duration::from_secs(expires_secs), uses, role);
        self.call(py, f)
    }

    /// The members: dicts with `peer`, `name`, `online`, `status`, `summary`, `caps`, `blocked`.
    #[pyo3(signature = (*, mesh=None))]
    fn peers<'py>(&self, py: Python<'py>, mesh: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, self.inner.peers(mesh))
    }

    /// A direct message; returns its id once the broker stored it.
    #[pyo3(signature = (to, text, *, mesh=None))]
    fn send(&self, py: Python<'_>, to: &str, text: &str, mesh: Option<&str>) -> PyResult<String> {
        blocking(py, self.inner.send(mesh, to, text)).map_err(|e| self.shared.err(py, e))
    }

    /// A topic message; returns its id once stored.
    #[pyo3(signature = (topic, text, *, mesh=None))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: &str,
        text: &str,
        mesh: Option<&str>,
    ) -> PyResult<String> {
        blocking(py, self.inner.publish(mesh, topic, text)).map_err(|e| self.shared.err(py, e))
    }

    /// A page of a topic's history, newest first: `[{seq, message}]`.
    #[pyo3(signature = (topic, *, mesh=None, before=None, limit=50))]
    fn history<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        mesh: Option<&str>,
        before: Option<u64>,
        limit: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, self.inner.history(mesh, topic, before, limit))
    }

    /// Unread items: `[{seq, message: {type: "dm"|"topic"|"notice", ...}}]`.
    /// Mark them read with `mark_read([seq, ...])` once shown.
    #[pyo3(signature = (*, mesh=None))]
    fn inbox<'py>(&self, py: Python<'py>, mesh: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, self.inner.inbox(mesh))
    }

    /// Marks inbox items read.
    #[pyo3(signature = (seqs, *, mesh=None))]
    fn mark_read(&self, py: Python<'_>, seqs: Vec<i64>, mesh: Option<&str>) -> PyResult<()> {
        blocking(py, self.inner.mark_read(mesh, &seqs)).map_err(|e| self.shared.err(py, e))
    }

    /// Unread counts: `{"direct": n, "#topic": n}`.
    #[pyo3(signature = (*, mesh=None))]
    fn unread(
        &self,
        py: Python<'_>,
        mesh: Option<&str>,
    ) -> PyResult<std::collections::BTreeMap<String, u64>> {
        blocking(py, self.inner.unread(mesh))
            .map(|c| c.into_iter().collect())
            .map_err(|e| self.shared.err(py, e))
    }

    /// Sets your status (sealed under the mesh key).
    #[pyo3(signature = (text, *, mesh=None))]
    fn set_status(&self, py: Python<'_>, text: &str, mesh: Option<&str>) -> PyResult<()> {
        blocking(py, self.inner.set_status(mesh, text)).map_err(|e| self.shared.err(py, e))
    }

    /// Sets your summary (sealed under the mesh key).
    #[pyo3(signature = (text, *, mesh=None))]
    fn set_summary(&self, py: Python<'_>, text: &str, mesh: Option<&str>) -> PyResult<()> {
        blocking(py, self.inner.set_summary(mesh, text)).map_err(|e| self.shared.err(py, e))
    }

    /// Grants capabilities (`read`, `dm`, `broadcast`, `admin`); admins only.
    #[pyo3(signature = (who, caps, *, mesh=None))]
    fn grant(
        &self,
        py: Python<'_>,
        who: &str,
        caps: Vec<String>,
        mesh: Option<&str>,
    ) -> PyResult<()> {
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        blocking(py, self.inner.grant(mesh, who, &caps)).map_err(|e| self.shared.err(py, e))
    }

    /// Takes capabilities away; admins only.
    #[pyo3(signature = (who, caps, *, mesh=None))]
    fn revoke(
        &self,
        py: Python<'_>,
        who: &str,
        caps: Vec<String>,
        mesh: Option<&str>,
    ) -> PyResult<()> {
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        blocking(py, self.inner.revoke(mesh, who, &caps)).map_err(|e| self.shared.err(py, e))
    }

    /// Blocks a member and rotates the mesh key; returns the new epoch.
    #[pyo3(signature = (who, *, mesh=None))]
    fn block(&self, py: Python<'_>, who: &str, mesh: Option<&str>) -> PyResult<u32> {
        blocking(py, self.inner.block(mesh, who)).map_err(|e| self.shared.err(py, e))
    }

    /// Sends the mesh key to a newcomer waiting for approval; their name.
    #[pyo3(signature = (who, *, mesh=None))]
    fn approve(&self, py: Python<'_>, who: &str, mesh: Option<&str>) -> PyResult<String> {
        blocking(py, self.inner.approve(mesh, who)).map_err(|e| self.shared.err(py, e))
    }

    /// Newcomers waiting for the key: `[{peer, name, invite}]`.
    #[pyo3(signature = (*, mesh=None))]
    fn pending<'py>(&self, py: Python<'py>, mesh: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
        let f = async {
            let list = self.inner.pending(mesh).await?;
            Ok(list
                .into_iter()
                .map(|(peer, j)| serde_json::json!({"peer": peer, "name": j.name, "invite": j.invite}))
                .collect::<Vec<_>>())
        };
        self.call(py, f)
    }

    /// Asks the owner and admins for the mesh key; how many were asked.
    #[pyo3(signature = (*, mesh=None))]
    fn request_key(&self, py: Python<'_>, mesh: Option<&str>) -> PyResult<usize> {
        blocking(py, self.inner.request_key(mesh)).map_err(|e| self.shared.err(py, e))
    }

    /// `(member, safety_number)`: compare the number out of band.
    #[pyo3(signature = (who, *, mesh=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        who: &str,
        mesh: Option<&str>,
    ) -> PyResult<(Bound<'py, PyAny>, String)> {
        let (p, n) =
            blocking(py, self.inner.verify(mesh, who)).map_err(|e| self.shared.err(py, e))?;
        Ok((json_to_py(py, &p)?, n))
    }

    /// Topics joined.
    #[pyo3(signature = (*, mesh=None))]
    fn topics(&self, py: Python<'_>, mesh: Option<&str>) -> PyResult<Vec<String>> {
        blocking(py, self.inner.topics(mesh)).map_err(|e| self.shared.err(py, e))
    }

    /// Joins a topic: its messages are kept in the inbox from then on.
    #[pyo3(signature = (topic, *, mesh=None))]
    fn join_topic(&self, py: Python<'_>, topic: &str, mesh: Option<&str>) -> PyResult<()> {
        blocking(py, self.inner.topic(mesh, topic, true)).map_err(|e| self.shared.err(py, e))
    }

    /// Leaves a topic.
    #[pyo3(signature = (topic, *, mesh=None))]
    fn leave_topic(&self, py: Python<'_>, topic: &str, mesh: Option<&str>) -> PyResult<()> {
        blocking(py, self.inner.topic(mesh, topic, false)).map_err(|e| self.shared.err(py, e))
    }

    /// Writes an encrypted backup of your identity and mesh keys.
    fn backup(&self, py: Python<'_>, path: std::path::PathBuf, passphrase: &str) -> PyResult<()> {
        blocking(py, self.inner.backup(&path, passphrase)).map_err(|e| self.shared.err(py, e))
    }

    /// Restores from a backup's bytes; `force` replaces an identity in use
    /// (kept aside). Returns `(name, peer_id)`.
    #[pyo3(signature = (backup, passphrase, *, force=false))]
    fn restore(
        &self,
        py: Python<'_>,
        backup: Vec<u8>,
        passphrase: &str,
        force: bool,
    ) -> PyResult<(String, String)> {
        blocking(py, self.inner.restore(&backup, passphrase, force))
            .map_err(|e| self.shared.err(py, e))
    }

    /// Follows the inbox: iterate for items as they arrive. An item is
    /// marked read when the next is asked for (or on `commit()`).
    #[pyo3(signature = (*, mesh=None))]
    fn follow(&self, py: Python<'_>, mesh: Option<&str>) -> PyResult<MeshFollow> {
        let f = blocking(py, self.inner.follow(mesh)).map_err(|e| self.shared.err(py, e))?;
        Ok(MeshFollow {
            inner: tokio::sync::Mutex::new(f),
            shared: self.shared.clone(),
        })
    }

    fn __repr__(&self) -> String {
        format!("<nexus.Mesh {:?}>", self.inner)
    }
}

/// A followed inbox.
#[pyclass(module = "nexus", frozen)]
pub(crate) struct MeshFollow {
    inner: tokio::sync::Mutex<sdk::mesh::MeshFollow>,
    shared: Arc<Shared>,
}

#[pymethods]
impl MeshFollow {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next item (waits for one, the GIL released).
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let item = blocking(py, async { self.inner.lock().await.next().await })
            .map_err(|e| self.shared.err(py, e))?;
        json_to_py(py, &item)
    }

    /// Marks the item handed out last read.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        blocking(py, async { self.inner.lock().await.commit().await })
            .map_err(|e| self.shared.err(py, e))
    }

    /// Whether this follows through the daemon.
    #[getter]
    fn through_daemon(&self, py: Python<'_>) -> bool {
        blocking(py, async { self.inner.lock().await.through_daemon() })
    }
}
