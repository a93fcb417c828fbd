#![doc = include_str!("../README.md")]

pub mod anthropic;
pub mod auth;
pub mod catalog;
pub mod client;
pub mod dialect;
mod error;
pub mod gemini;
pub mod oauth;
pub mod openai;
pub mod registry;
pub mod retry;
pub mod sse;

pub use auth::Credential;
pub use client::{HttpOptions, HttpProvider, RetryHook, RetryNotice};
pub use error::Error;
pub use registry::{
    process_env, CredentialSource, EnvLookup, Kind, ProviderSpec, ProviderStatus, Registry, Target,
    BUILTIN,
};
pub use retry::RetryPolicy;
