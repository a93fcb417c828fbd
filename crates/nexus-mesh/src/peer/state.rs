//! The local state: memberships, joined topics, history marks and the key
//! policy's records, in `NEXUS_HOME/mesh.json` (no secrets). One writer at
//! a time: every change is a read-modify-write under a file lock
//! ([`Peer::update`]), so two commands (or a command and the daemon) never
//! lose each other's changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use nexus_core::{atomic_write, FileMode, NexusHome};

use crate::policy::KeyPolicyState;
use crate::MeshError;

use super::Peer;

/// One membership, as kept on disk (no secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The broker's URL.
    pub broker: String,
    /// Whether this peer created the mesh.
    pub owner: bool,
    /// The newest root-key epoch held.
    pub epoch: Option<u32>,
    /// Topics joined.
    pub topics: Vec<String>,
    /// The newest history sequence number seen, per joined topic: `inbox`
    /// catches up from there, so messages sent while offline are not missed.
    #[serde(default)]
    pub seen: BTreeMap<String, u64>,
    /// What the key policy needs: the owner's key, issued invites, the
    /// last rotation and newcomers waiting for approval.
    #[serde(default)]
    pub keys: KeyPolicyState,
}

/// `mesh.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MeshState {
    /// The mesh commands act on by default.
    pub current: Option<String>,
    /// Memberships by mesh name.
    pub meshes: BTreeMap<String, Membership>,
}

/// The meshes `home` is a member of (from `mesh.json`; no vault needed).
pub fn memberships(home: &NexusHome) -> Result<Vec<String>, MeshError> {
    Ok(read_state(home)?.meshes.into_keys().collect())
}

/// The fingerprint of the mesh `name` that `home` is a member of
/// ([`crate::bridge::mesh_fingerprint`]; from `mesh.json`, no vault).
pub fn mesh_fingerprint(home: &NexusHome, name: &str) -> Result<String, MeshError> {
    let state = read_state(home)?;
    let m = state.meshes.get(name).ok_or_else(|| {
        MeshError::Invalid(format!(
            "this peer is not a member of `{name}` (see `nexus mesh list`)"
        ))
    })?;
    if m.keys.owner_key.is_empty() {
        return Err(MeshError::Invalid(format!(
            "the owner of `{name}` is not known here yet: run `nexus mesh inbox` once"
        )));
    }
    Ok(crate::bridge::mesh_fingerprint(&m.keys.owner_key, name))
}

/// Changes `mesh.json` with `f`, as one read-modify-write under an
/// exclusive lock (`mesh.json.lock`): the file is read again inside the
/// lock, so two commands at once (`inbox --follow` and `topic join`, say)
/// never lose each other's changes. Returns `f`'s result and the new state.
pub(super) fn update_state<T>(
    home: &NexusHome,
    f: impl FnOnce(&mut MeshState) -> T,
) -> Result<(T, MeshState), MeshError> {
    let lock_path = home.join("mesh.json.lock");
    nexus_core::private_db_file(&lock_path)
        .map_err(|e| MeshError::Io(format!("cannot create {}: {e}", lock_path.display())))?;
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .map_err(|e| MeshError::Io(format!("cannot open {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| MeshError::Io(format!("cannot lock {}: {e}", lock_path.display())))?;
    let mut state = read_state(home)?;
    let out = f(&mut state);
    let json = serde_json::to_vec_pretty(&state).map_err(|e| MeshError::Invalid(e.to_string()))?;
    atomic_write(&home.join("mesh.json"), &json, FileMode::Secret)
        .map_err(|e| MeshError::Io(e.to_string()))?;
    drop(lock);
    Ok((out, state))
}

/// Joins (or leaves) a topic of `mesh` in `home`'s `mesh.json`: no vault,
/// no broker (its messages are kept from then on). Returns the new state.
pub fn join_topic(
    home: &NexusHome,
    mesh: &str,
    name: &str,
    join: bool,
) -> Result<MeshState, MeshError> {
    let (done, state) = update_state(home, |st| {
        let m = st
            .meshes
            .get_mut(mesh)
            .ok_or_else(|| MeshError::Invalid(format!("not a member of `{mesh}`")))?;
        m.topics.retain(|t| t != name);
        if join {
            m.topics.push(name.to_string());
            m.topics.sort();
        }
        Ok::<(), MeshError>(())
    })?;
    done?;
    Ok(state)
}

fn no_mesh() -> MeshError {
    MeshError::Invalid("not in any mesh yet: run `nexus mesh create` or `nexus mesh join`".into())
}

/// The mesh commands act on by default in `home` (`mesh.json`'s current).
pub fn current_mesh(home: &NexusHome) -> Result<String, MeshError> {
    read_state(home)?.current.ok_or_else(no_mesh)
}

pub(super) fn read_state(home: &NexusHome) -> Result<MeshState, MeshError> {
    match std::fs::read_to_string(home.join("mesh.json")) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| {
            MeshError::Invalid(format!(
                "{} is damaged ({e}); restore it from a backup (`nexus mesh restore`)",
                home.join("mesh.json").display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MeshState::default()),
        Err(e) => Err(MeshError::Io(format!(
            "cannot read {}: {e}",
            home.join("mesh.json").display()
        ))),
    }
}

impl Peer {
    /// Reads `mesh.json` again (another process may have changed it).
    pub fn reload(&mut self) -> Result<(), MeshError> {
        self.state = read_state(&self.home)?;
        Ok(())
    }

    /// Memberships.
    pub fn state(&self) -> &MeshState {
        &self.state
    }

    /// Changes `mesh.json` with `f` ([`update_state`]) and keeps the result.
    pub(super) fn update<T>(
        &mut self,
        f: impl FnOnce(&mut MeshState) -> T,
    ) -> Result<T, MeshError> {
        let (out, state) = update_state(&self.home, f)?;
        self.state = state;
        Ok(out)
    }

    /// The mesh to act on: `mesh`, else the current one.
    pub fn mesh_name(&self, mesh: Option<&str>) -> Result<String, MeshError> {
        mesh.map(str::to_string)
            .or_else(|| self.state.current.clone())
            .ok_or_else(no_mesh)
    }

    pub(super) fn membership(&self, mesh: &str) -> Result<&Membership, MeshError> {
        self.state.meshes.get(mesh).ok_or_else(|| {
            MeshError::Invalid(format!("not a member of `{mesh}`; see `nexus mesh join`"))
        })
    }

    /// Records topic membership (topics are names; the key derives from the root).
    pub fn topic(&mut self, mesh: &str, name: &str, join: bool) -> Result<(), MeshError> {
        self.state = join_topic(&self.home, mesh, name, join)?;
        Ok(())
    }
}
