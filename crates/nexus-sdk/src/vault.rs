//! [`VaultHandle`]: the vault, by name.

use std::sync::Arc;

use nexus_core::{Secret, Vault};

use crate::Result;

/// Named secrets (`provider/openai/api_key`, `oauth/google`, ...), in
/// whichever vault the client uses.
#[derive(Clone)]
pub struct VaultHandle {
    vault: Arc<dyn Vault>,
}

impl std::fmt::Debug for VaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultHandle")
            .field("backend", &self.vault.backend())
            .finish()
    }
}

impl VaultHandle {
    pub(crate) fn new(vault: Arc<dyn Vault>) -> Self {
        VaultHandle { vault }
    }

    pub(crate) fn inner(&self) -> Arc<dyn Vault> {
        self.vault.clone()
    }

    /// The backend's name: `keyring`, `file`, `memory`, or a host vault's.
    pub fn backend(&self) -> String {
        self.vault.backend().to_string()
    }

    /// Reads a secret.
    pub fn get(&self, name: &str) -> Result<Option<Secret>> {
        Ok(self.vault.get(name)?)
    }

    /// Writes a secret, replacing any old value.
    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        Ok(self.vault.set(name, &Secret::new(value))?)
    }

    /// Removes a secret; says whether there was one.
    pub fn delete(&self, name: &str) -> Result<bool> {
        Ok(self.vault.delete(name)?)
    }

    /// The names (never the values) that start with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.vault.list(prefix)?)
    }

    /// Stores `provider`'s API key where the registry looks for it.
    pub fn set_key(&self, provider: &str, key: &str) -> Result<()> {
        self.set(&nexus_vault::provider_key_name(provider), key)
    }
}
