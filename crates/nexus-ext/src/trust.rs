//! Which signing keys the user trusts, and the user's own signing key: both
//! in the vault. Trusted keys are `ext/trusted/<KEY ID>`, plus any the vault
//! migration moved from an old `trusted_keys.json` (`signing/trusted_keys`).

use nexus_core::{Secret, Vault, VaultError};
use serde_json::Value;

use crate::sign::{PublicKey, SecretKey, SignError};

/// Trusted keys, by key id.
pub const TRUSTED: &str = "ext/trusted/";
/// The user's signing key.
pub const SIGNING_KEY: &str = "ext/signing-key";
/// Where the vault migration put an old `trusted_keys.json`, whole.
pub const MIGRATED: &str = "signing/trusted_keys";

/// Every trusted key.
pub fn trusted(vault: &dyn Vault) -> Result<Vec<PublicKey>, VaultError> {
    let mut out = Vec::new();
    for name in vault.list(TRUSTED)? {
        if let Some(s) = vault.get(&name)? {
            if let Ok(k) = PublicKey::parse(s.expose()) {
                out.push(k);
            }
        }
    }
    if let Some(old) = vault.get(MIGRATED)? {
        out.extend(migrated_keys(old.expose()));
    }
    Ok(out)
}

/// Trusts the key in `text` (a `.pub` file's text or the bare base64).
pub fn add(vault: &dyn Vault, text: &str) -> Result<PublicKey, TrustError> {
    let pk = PublicKey::parse(text)?;
    vault.set(
        &format!("{TRUSTED}{}", pk.id()),
        &Secret::new(pk.to_base64()),
    )?;
    Ok(pk)
}

/// Stops trusting key `key_id`; whether it was trusted.
pub fn remove(vault: &dyn Vault, key_id: &str) -> Result<bool, VaultError> {
    vault.delete(&format!("{TRUSTED}{}", key_id.to_ascii_uppercase()))
}

/// The user's signing key, made (and kept in the vault) on first use; and
/// whether it was made now.
pub fn signing_key(vault: &dyn Vault) -> Result<(SecretKey, bool), TrustError> {
    if let Some(s) = vault.get(SIGNING_KEY)? {
        return Ok((SecretKey::from_text(s.expose())?, false));
    }
    let k = SecretKey::generate()?;
    vault.set(SIGNING_KEY, &Secret::new(k.to_text()))?;
    Ok((k, true))
}

/// A trust operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The key is not a minisign key.
    #[error(transparent)]
    Key(#[from] SignError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// The minisign keys in a migrated `trusted_keys.json`: a list of keys, a
/// map of names to keys, or objects with a `public_key`/`key` field.
pub fn migrated_keys(text: &str) -> Vec<PublicKey> {
    fn walk(v: &Value, out: &mut Vec<PublicKey>, depth: usize) {
        if depth > 8 {
            return;
        }
        match v {
            Value::String(s) => out.extend(PublicKey::parse(s).ok()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out, depth + 1)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out, depth + 1)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        walk(&v, &mut out, 0);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn keys_from_a_migrated_trusted_keys_file() {
        let k = crate::sign::SecretKey::generate()
            .unwrap()
            .public()
            .to_base64();
        for text in [
            format!(r#"["{k}"]"#),
            format!(r#"{{"alice": "{k}"}}"#),
            format!(r#"{{"keys": [{{"name": "a", "public_key": "{k}"}}]}}"#),
        ] {
            assert_eq!(super::migrated_keys(&text).len(), 1, "{text}");
        }
        assert!(super::migrated_keys("not json").is_empty());
    }

    #[test]
    fn trust_add_list_remove_and_the_signing_key_is_made_once() {
        let v = nexus_core::MemoryVault::default();
        let pk = crate::sign::SecretKey::generate().unwrap().public();
        assert!(super::trusted(&v).unwrap().is_empty());
        super::add(&v, &pk.to_file()).unwrap();
        assert_eq!(super::trusted(&v).unwrap(), std::slice::from_ref(&pk));
        assert!(super::add(&v, "not a key").is_err());
        assert!(super::remove(&v, &pk.id().to_lowercase()).unwrap());
        assert!(super::trusted(&v).unwrap().is_empty());
        let (a, made) = super::signing_key(&v).unwrap();
        let (b, again) = super::signing_key(&v).unwrap();
        assert!(made && !again && a.public() == b.public());
    }
}
