//! Bearer tokens for plugins that reach their store over HTTP rather than
//! as child processes: `nxp.<id>.<secret>`. Only the SHA-256 of a token is
//! kept, in the vault under `ext/store-token/<id>`; the token is shown once
//! when it is issued. Checking one reads that hash and compares in constant
//! time, so a wrong token learns nothing about the right one.

use nexus_core::{Secret, Vault, VaultError};
use ring::rand::SecureRandom as _;

/// Every token starts with this.
pub const PREFIX: &str = "nxp.";

/// Where a plugin's token hash lives in the vault.
pub fn vault_name(id: &str) -> String {
    format!("ext/store-token/{id}")
}

fn hash(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues a new token for plugin `id`, replacing (revoking) any earlier one.
pub fn issue(vault: &dyn Vault, id: &str) -> Result<Secret, VaultError> {
    use base64::Engine as _;
    if !crate::manifest::valid_id(id) {
        return Err(VaultError::InvalidName {
            name: id.chars().take(64).collect(),
            why: "is not an extension id (lowercase letters, digits, - _ .)",
        });
    }
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| VaultError::Backend {
            backend: "random".into(),
            why: "no system randomness".into(),
        })?;
    let token = format!(
        "{PREFIX}{id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    vault.set(&vault_name(id), &Secret::new(hash(&token)))?;
    Ok(Secret::new(token))
}

/// Revokes plugin `id`'s token; whether there was one.
pub fn revoke(vault: &dyn Vault, id: &str) -> Result<bool, VaultError> {
    vault.delete(&vault_name(id))
}

/// The plugins that hold a token.
pub fn holders(vault: &dyn Vault) -> Result<Vec<String>, VaultError> {
    let prefix = vault_name("");
    Ok(vault
        .list(&prefix)?
        .into_iter()
        .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
        .collect())
}

/// The plugin `token` was issued to, if it is valid.
pub fn verify(vault: &dyn Vault, token: &str) -> Option<String> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, _) = rest.rsplit_once('.')?;
    if !crate::manifest::valid_id(id) || token.len() > 200 {
        return None;
    }
    let stored = vault.get(&vault_name(id)).ok()??;
    let (a, b) = (stored.expose().as_bytes(), hash(token));
    let b = b.as_bytes();
    if a.len() != b.len() {
        return None;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    (diff == 0).then(|| id.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_plugin_until_revoked_or_reissued() {
        let v = nexus_core::MemoryVault::default();
        let t = issue(&v, "notes.sync").unwrap();
        assert!(t.expose().starts_with("nxp.notes.sync."));
        assert_eq!(verify(&v, t.expose()).as_deref(), Some("notes.sync"));
        // The vault holds a hash, not the token.
        let kept = v.get(&vault_name("notes.sync")).unwrap().unwrap();
        assert!(!t.expose().contains(kept.expose()) && kept.expose().len() == 64);
        // Tampered, another plugin's name, garbage.
        let mut bad = t.expose().to_string();
        // A different last character (a token may end in 'A' already).
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(verify(&v, &bad), None);
        let other = t.expose().replacen("notes.sync", "notes.other", 1);
        assert_eq!(verify(&v, &other), None);
        for g in ["", "nxp.", "nxp..x", "Bearer x", "nxp.../..x"] {
            assert_eq!(verify(&v, g), None, "{g}");
        }
        assert_eq!(holders(&v).unwrap(), ["notes.sync"]);
        // Reissuing revokes the old one.
        let t2 = issue(&v, "notes.sync").unwrap();
        assert_eq!(verify(&v, t.expose()), None);
        assert!(verify(&v, t2.expose()).is_some());
        assert!(revoke(&v, "notes.sync").unwrap());
        assert_eq!(verify(&v, t2.expose()), None);
        assert!(issue(&v, "../x").is_err());
    }
}
