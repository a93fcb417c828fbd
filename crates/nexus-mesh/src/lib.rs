//! The Nexus agent mesh.
//!
//! This crate holds the mesh's cryptography and wire format today:
//! [`identity`] (Ed25519 via ring, peer ids, X25519 for messages), [`dm`]
//! (libsodium `crypto_box`-compatible direct messages), [`topic`] (HKDF
//! topic keys with epochs, XChaCha20-Poly1305), [`safety`] (Signal's
//! numeric fingerprint), [`backup`] (Argon2id + XChaCha20-Poly1305, readable
//! with libsodium) and [`frame`] (versioned, typed frames). The broker,
//! client and storage build on these.

pub mod auth;
pub mod backup;
pub mod bridge;
pub mod broker;
pub mod client;
pub mod dm;
pub mod frame;
pub mod identity;
pub mod inbox;
pub mod peer;
pub mod policy;
pub mod presence;
pub mod safety;
pub mod server;
pub mod session;
pub mod store;
pub mod tls;
pub mod topic;
mod ws;
pub mod xchacha;

pub use identity::{Identity, PeerId, PublicIdentity};

/// The wire protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = frame::VERSION as u16;

/// Mesh errors. Never carry key material.
///
/// It crosses the daemon's control socket as JSON (`{"kind": "refused",
/// "detail": {...}}`), so a verb's error reads the same either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum MeshError {
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// A cryptographic operation failed (authentication, derivation).
    #[error("{0}")]
    Crypto(String),
    /// A signature did not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// A frame could not be decoded.
    #[error("{0}")]
    Frame(String),
    /// The broker's storage failed.
    #[error("broker storage: {0}")]
    Storage(String),
    /// A network failure.
    #[error("{0}")]
    Io(String),
    /// The broker refused a request with an error frame.
    #[error("the broker refused: {code}: {message}")]
    Refused {
        /// The error code.
        code: String,
        /// Its message.
        message: String,
    },
}

impl MeshError {
    /// The broker's refusal, typed, when this is one.
    pub fn refusal(&self) -> Option<frame::Refusal> {
        match self {
            MeshError::Refused { code, .. } => Some(frame::Refusal::parse(code)),
            _ => None,
        }
    }
}
