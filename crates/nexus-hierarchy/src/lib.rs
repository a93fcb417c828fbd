#![doc = include_str!("../README.md")]

pub mod classify;
pub mod config;
pub mod cooldown;
pub mod engine;
pub mod ledger;
pub mod presets;
pub mod router;
pub mod source;
pub mod store;
pub mod validate;

pub use classify::{Basis, Classification, RuleClassifier, TaskClassifier, TaskContext};
pub use config::{Category, CooldownConfig, HierarchyConfig, Tier};
pub use engine::{
    AskError, AskOutcome, AskRequest, Attempt, EscalationEngine, Outcome, ProviderSource,
};
pub use ledger::{Ledger, MemoryLedger, SqliteLedger};
pub use presets::Preset;
pub use router::Router;
pub use source::{RegistrySource, StaticSource};

/// Errors from the hierarchy's configuration and setup.
#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    /// Bad input: a category, preset, tier edit or model.
    #[error("{0}")]
    Usage(String),
    /// No provider has credentials for what was asked.
    #[error("{0}")]
    NoCredentials(String),
    /// Provider registry errors (unknown model, missing key).
    #[error(transparent)]
    Providers(#[from] nexus_providers::Error),
    /// Config file errors.
    #[error(transparent)]
    Config(#[from] nexus_core::Error),
    /// Ledger errors.
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
}
