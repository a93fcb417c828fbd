//! The key store: this peer's identity and the mesh root keys it holds,
//! in the vault (one encoding of an identity, [`IdentitySecrets`], shared
//! with backups), and backing them up and restoring them.

use std::sync::Arc;

use nexus_core::{atomic_write, FileMode, NexusHome, Secret, Vault};

use crate::identity::{hex, unhex, Identity, IdentitySecrets};
use crate::MeshError;

use super::state::read_state;
use super::{now_ms, vault_err, Membership, Peer};

const IDENTITY: &str = "mesh/identity";

/// Reads the identity from the vault.
pub fn load_identity(vault: &dyn Vault) -> Result<Option<Identity>, MeshError> {
    let Some(s) = vault.get(IDENTITY).map_err(vault_err)? else {
        return Ok(None);
    };
    let st: IdentitySecrets = serde_json::from_str(s.expose())
        .map_err(|_| MeshError::Invalid("the stored mesh identity is damaged".into()))?;
    st.identity("the stored mesh identity").map(Some)
}

/// Stores the identity in the vault.
pub fn store_identity(vault: &dyn Vault, id: &Identity) -> Result<(), MeshError> {
    let json = serde_json::to_string(&IdentitySecrets::of(id))
        .map_err(|e| MeshError::Invalid(e.to_string()))?;
    vault.set(IDENTITY, &Secret::new(json)).map_err(vault_err)
}

fn root_name(mesh: &str, epoch: u32) -> String {
    format!("mesh/{mesh}/root/{epoch}")
}

fn names_name(mesh: &str) -> String {
    format!("mesh/{mesh}/names")
}

impl Peer {
    /// The naming key of `mesh` (topic ids derive from it), if held.
    pub(super) fn names_key(&self, mesh: &str) -> Result<Option<[u8; 32]>, MeshError> {
        match self.vault.get(&names_name(mesh)).map_err(vault_err)? {
            None => Ok(None),
            Some(s) => {
                Ok(Some(unhex(s.expose())?.try_into().map_err(|_| {
                    MeshError::Invalid("bad naming key".into())
                })?))
            }
        }
    }

    pub(super) fn set_names_key(&mut self, mesh: &str, key: &[u8; 32]) -> Result<(), MeshError> {
        self.vault
            .set(&names_name(mesh), &Secret::new(hex(key)))
            .map_err(vault_err)
    }

    /// The name `topic` goes by on the wire: its keyed id
    /// ([`crate::topic::topic_id`]), or the name itself in a mesh made
    /// before topic names were sealed (no naming key).
    pub(super) fn wire_topic(&self, mesh: &str, topic: &str) -> Result<String, MeshError> {
        match self.names_key(mesh)? {
            Some(k) => crate::topic::topic_id(&k, topic),
            None => Ok(topic.to_string()),
        }
    }

    /// The name of a topic that goes by `wire` on the wire, among the
    /// topics this peer joined (and `also`, a name the caller asked for).
    pub(super) fn topic_name(
        &self,
        mesh: &str,
        wire: &str,
        also: Option<&str>,
    ) -> Result<Option<String>, MeshError> {
        let Some(k) = self.names_key(mesh)? else {
            return Ok(Some(wire.to_string()));
        };
        let joined = self.membership(mesh)?.topics.clone();
        for name in joined.iter().map(String::as_str).chain(also) {
            if crate::topic::topic_id(&k, name)? == wire {
                return Ok(Some(name.to_string()));
            }
        }
        Ok(None)
    }

    /// The root key of `mesh` at its newest epoch.
    pub fn root(&self, mesh: &str) -> Result<Option<(u32, [u8; 32])>, MeshError> {
        let Some(epoch) = self.membership(mesh)?.epoch else {
            return Ok(None);
        };
        self.root_at(mesh, epoch).map(|k| k.map(|k| (epoch, k)))
    }

    pub(super) fn root_at(&self, mesh: &str, epoch: u32) -> Result<Option<[u8; 32]>, MeshError> {
        match self.vault.get(&root_name(mesh, epoch)).map_err(vault_err)? {
            None => Ok(None),
            Some(s) => Ok(Some(
                unhex(s.expose())?
                    .try_into()
                    .map_err(|_| MeshError::Invalid("bad root key".into()))?,
            )),
        }
    }

    pub(super) fn set_root(
        &mut self,
        mesh: &str,
        epoch: u32,
        key: &[u8; 32],
    ) -> Result<(), MeshError> {
        self.vault
            .set(&root_name(mesh, epoch), &Secret::new(hex(key)))
            .map_err(vault_err)?;
        self.update(|st| {
            if let Some(m) = st.meshes.get_mut(mesh) {
                if m.epoch.is_none_or(|e| epoch >= e) {
                    m.epoch = Some(epoch);
                }
            }
        })
    }

    /// Writes a backup of this identity, its memberships and every mesh key
    /// it holds to `file` (atomically, 0600), sealed with `passphrase`
    /// (Argon2id + XChaCha20-Poly1305; format in docs/MESH.md).
    pub fn backup_to(&self, file: &std::path::Path, passphrase: &str) -> Result<(), MeshError> {
        let bytes = crate::backup::create(
            &self.identity,
            self.keys_for_backup()?,
            passphrase,
            crate::backup::BackupKdf::DEFAULT,
        )?;
        atomic_write(file, &bytes, FileMode::Secret).map_err(|e| MeshError::Io(e.to_string()))
    }

    /// Every root key this peer holds, for backups.
    pub fn keys_for_backup(&self) -> Result<serde_json::Value, MeshError> {
        let mut out = Vec::new();
        for (mesh, m) in &self.state.meshes {
            let mut roots = Vec::new();
            for epoch in 0..=m.epoch.unwrap_or(0) {
                if let Some(k) = self.root_at(mesh, epoch)? {
                    roots.push(serde_json::json!({"epoch": epoch, "key": hex(&k)}));
                }
            }
            let names = self.names_key(mesh)?.map(|k| hex(&k)).unwrap_or_default();
            out.push(
                serde_json::json!({"mesh": mesh, "membership": m, "roots": roots, "names": names}),
            );
        }
        Ok(serde_json::Value::Array(out))
    }

    /// Restores an identity and its mesh keys from a backup. An existing,
    /// different identity that is a member of any mesh is replaced only
    /// with `force`; a replaced identity is always kept: in
    /// the vault as `mesh/identity.replaced-<ms>`, with `mesh.json` copied
    /// to `mesh.json.replaced-<ms>`.
    pub fn restore(
        home: NexusHome,
        vault: Arc<dyn Vault>,
        bytes: &[u8],
        passphrase: &str,
        force: bool,
    ) -> Result<Peer, MeshError> {
        let (id, meshes) = crate::backup::restore(bytes, passphrase)?;
        if let Some(current) = load_identity(&*vault)? {
            if current.peer_id() != id.peer_id() {
                // An identity made on first use that never joined a mesh
                // holds nothing to lose (it is still kept aside).
                let in_use = !read_state(&home)?.meshes.is_empty();
                if in_use && !force {
                    return Err(MeshError::Invalid(format!(
                        "this home already has the identity {} ({}); the backup holds {} ({}). Restoring replaces it: run again with --force (the current one is kept aside)",
                        current.name(),
                        current.peer_id(),
                        id.name(),
                        id.peer_id()
                    )));
                }
                let stamp = now_ms();
                let kept = vault
                    .get(IDENTITY)
                    .map_err(vault_err)?
                    .ok_or_else(|| MeshError::Invalid("the identity vanished".into()))?;
                vault
                    .set(&format!("{IDENTITY}.replaced-{stamp}"), &kept)
                    .map_err(vault_err)?;
                let state = home.join("mesh.json");
                if state.exists() {
                    let aside = home.join(format!("mesh.json.replaced-{stamp}"));
                    let bytes = std::fs::read(&state).map_err(|e| MeshError::Io(e.to_string()))?;
                    atomic_write(&aside, &bytes, FileMode::Secret)
                        .map_err(|e| MeshError::Io(e.to_string()))?;
                    std::fs::remove_file(&state).map_err(|e| MeshError::Io(e.to_string()))?;
                }
            }
        }
        store_identity(&*vault, &id)?;
        let mut peer = Peer::load(home, vault, None)?;
        for m in meshes.as_array().cloned().unwrap_or_default() {
            let name = m["mesh"].as_str().unwrap_or_default().to_string();
            let membership: Membership =
                serde_json::from_value(m["membership"].clone()).unwrap_or_default();
            peer.update(|st| {
                st.meshes.insert(name.clone(), membership);
                st.current.get_or_insert(name.clone());
            })?;
            if let Some(k) = m["names"].as_str().filter(|k| !k.is_empty()) {
                let k: [u8; 32] = unhex(k)?
                    .try_into()
                    .map_err(|_| MeshError::Invalid("bad naming key in backup".into()))?;
                peer.set_names_key(&name, &k)?;
            }
            for r in m["roots"].as_array().cloned().unwrap_or_default() {
                let epoch = r["epoch"].as_u64().unwrap_or(0) as u32;
                let k: [u8; 32] = unhex(r["key"].as_str().unwrap_or_default())?
                    .try_into()
                    .map_err(|_| MeshError::Invalid("bad key in backup".into()))?;
                peer.set_root(&name, epoch, &k)?;
            }
        }
        Ok(peer)
    }
}
