//! The Nexus SDK: one [`Client`] for chat and streaming across providers,
//! the model hierarchy (`ask` with escalation, presets, stats) and the
//! vault.
//!
//! This is the API the bindings mirror method for method: Python
//! (`bindings/python`), Node (`bindings/node`) and Swift/Kotlin
//! (`crates/nexus-ffi`). `CONTRIBUTING.md` lists the parity rules; a test
//! fails when a public method here has no counterpart in a binding.
//!
//! ```no_run
//! # async fn f() -> nexus_sdk::Result<()> {
//! use nexus_sdk::{AskOptions, Client};
//! let client = Client::new()?;
//! client.vault()?.set_key("openai", "sk-...")?;
//! let answer = client.ask("Summarise this design doc", &AskOptions::default()).await?;
//! println!("tier {} answered: {}", answer.tier, answer.reply.text);
//! # Ok(()) }
//! ```

pub mod bridge;
mod client;
pub mod daemon;
mod error;
pub mod extensions;
pub mod history;
pub mod mesh;
pub mod policy;
pub mod settings;
mod spend;
pub mod templates;
mod tools;
mod types;
mod vault;

pub use client::{AttemptHook, Client, ClientOptions, ReadAhead, ReplyStream, VaultLoader};
pub use error::{Error, ErrorCode, Result};
pub use mesh::{Mesh, MeshRoute};
pub use tools::{tool_results, ToolRun};
pub use types::{stop_reason_str, tool_result};
pub use types::{
    AskOptions, AskReply, AttemptInfo, CategoryStats, ChatOptions, FlatEvent, HierarchyInfo, Input,
    PresetInfo, Reply, Route, Stats, TierInfo, TierStats,
};
pub use vault::VaultHandle;

pub use nexus_core::vault::validate_name;
pub use nexus_core::{
    ContentPart, MemoryVault, Message, ResponseFormat, Role, Secret, StreamEvent, Tool, ToolCall,
    Usage, Usd, Vault, VaultError,
};
