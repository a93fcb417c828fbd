#![doc = include_str!("../README.md")]

pub mod audit;
pub mod backoff;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod error;
pub mod escalation;
pub mod home;
pub mod model_ref;
pub mod money;
pub mod policy;
pub mod provider;
pub mod schema;
pub mod transport;
pub mod types;
pub mod vault;

pub use backoff::Backoff;
pub use catalog::{Catalog, CatalogError, CatalogFile, ModelInfo, ModelStatus, Pricing, Resolved};
pub use clock::{Clock, ManualClock, RandomSource, SeededRandom, SystemClock};
pub use config::{Config, ConfigEditor, HttpConfig, ProviderConfig};
pub use error::{Error, ErrorKind, ProviderError};
pub use escalation::{
    Admission, AttemptOutcome, AttemptReport, Decision, EscalationPolicy, PolicyConfig,
};
pub use home::{atomic_write, private_db_file, private_dir, FileMode, NexusHome};
pub use model_ref::ModelRef;
pub use money::{PricePerMillion, Usd};
pub use provider::{EventStream, MemoryProvider, Provider, RemoteModel, Scripted};
pub use transport::{MemoryTransport, Transport, TransportError};
pub use types::{
    ChatRequest, ChatResponse, ContentPart, ImageSource, Message, ResponseFormat, Role, StopReason,
    StreamAccumulator, StreamEvent, Tool, ToolCall, Usage,
};
pub use vault::{MemoryVault, Secret, Vault, VaultError};

/// Re-exported so implementors of the async traits need no extra dependency.
pub use async_trait::async_trait;
