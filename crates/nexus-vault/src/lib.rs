//! Vault implementations for Nexus.
//!
//! Today: the in-memory vault and the naming scheme. The OS keyring and the
//! encrypted file vault arrive with the vault issue; both will run
//! `nexus_core::vault_conformance_tests!`.

pub use nexus_core::{MemoryVault, Secret, Vault, VaultError};

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
