#![doc = include_str!("../README.md")]

pub mod file;
pub mod keyring;
#[cfg(target_os = "linux")]
mod keyutils;
pub mod migrate;
pub mod select;

pub use file::{FileVault, KdfParams, KeySource};
pub use keyring::{KeyringBackend, KeyringVault};
pub use nexus_core::{MemoryVault, Secret, Vault, VaultError};
pub use select::{configured_backend, open, open_if_set_up, Options, PassphraseFor, VaultStatus};

/// The vault name of a provider's API key: `provider/<name>/api_key`.
pub fn provider_key_name(provider: &str) -> String {
    format!("provider/{provider}/api_key")
}

#[cfg(test)]
mod tests {
    use super::*;

    nexus_core::vault_conformance_tests!(Box::new(MemoryVault::new()) as Box<dyn Vault>);

    #[test]
    fn provider_key_names_are_valid() {
        nexus_core::vault::validate_name(&provider_key_name("openai")).unwrap();
    }
}
