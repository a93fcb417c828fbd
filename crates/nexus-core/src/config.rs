//! `config.toml`: typed reading, and comment-preserving edits by dotted key.
//!
//! ```toml
//! default_model = "anthropic/claude-sonnet-4-5"
//!
//! [providers.openai]
//! base_url = "https://api.openai.com/v1"
//!
//! [providers.ollama]            # any OpenAI-compatible server
//! kind = "openai-compatible"
//! base_url = "http://localhost:11434/v1"
//!
//! [http]
//! connect_timeout_secs = 10
//! request_timeout_secs = 600
//! stream_idle_timeout_secs = 90
//! max_retries = 2
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::home::{atomic_write, FileMode, NexusHome};
use crate::Error;

/// Settings for one provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The API dialect for a provider that is not built in:
    /// `openai-compatible`, `anthropic` or `gemini`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Overrides the API base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The environment variable holding the key (for custom providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// A plaintext API key. Discouraged: `nexus vault migrate` moves it into
    /// the vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The model used when a request names only this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
}

/// HTTP behaviour shared by all providers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds to establish a connection.
    pub connect_timeout_secs: u64,
    /// Seconds for a whole non-streamed request.
    pub request_timeout_secs: u64,
    /// Seconds a stream may go without a byte before it is abandoned.
    pub stream_idle_timeout_secs: u64,
    /// Retries after the first attempt, for retryable failures.
    pub max_retries: u32,
    /// Bytes a whole (non-streamed) response may have; error bodies are
    /// read up to 1 MiB of it.
    pub max_response_bytes: u64,
    /// Bytes one streamed reply may have in all.
    pub max_stream_bytes: u64,
    /// Seconds one streamed reply may take in all, however steadily it
    /// trickles.
    pub stream_total_timeout_secs: u64,
    /// Seconds of waiting between retries, in all, for one request: a
    /// server that asks for longer (`retry-after: 45` twice) gets the error
    /// back at once, saying when to try again.
    pub max_retry_wait_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout_secs: 10,
            request_timeout_secs: 600,
            stream_idle_timeout_secs: 90,
            max_retries: 2,
            max_response_bytes: 32 << 20,
            max_stream_bytes: 64 << 20,
            stream_total_timeout_secs: 1800,
            max_retry_wait_secs: 30,
        }
    }
}

/// The whole of `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The model `nexus chat` uses without `-m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// Per-provider settings, by provider name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// HTTP settings.
    #[serde(default)]
    pub http: HttpConfig,
    /// Sections owned by other crates (`hierarchy`, `policy`, ...), kept as-is.
    #[serde(flatten)]
    pub other: toml::Table,
}

impl Config {
    /// Parses TOML text.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_string(),
            message: e.message().to_string(),
        })
    }

    /// Reads `config.toml` from `home`; a missing file is the default config.
    pub fn load(home: &NexusHome) -> Result<Self, Error> {
        let path = home.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Typed access to a section owned by another crate.
    pub fn section<T: for<'de> Deserialize<'de> + Default>(&self, name: &str) -> Result<T, Error> {
        match self.other.get(name) {
            None => Ok(T::default()),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| Error::ConfigKey {
                    key: name.to_string(),
                    message: e.message().to_string(),
                }),
        }
    }
}

/// Keys `nexus config set` accepts, as patterns (`*` is one segment).
/// Sections owned by later crates register their keys here too.
pub const SETTABLE_KEYS: &[&str] = &[
    "default_model",
    "providers.*.kind",
    "providers.*.base_url",
    "providers.*.api_key_env",
    "providers.*.default_model",
    "http.connect_timeout_secs",
    "http.request_timeout_secs",
    "http.stream_idle_timeout_secs",
    "http.max_retries",
    "http.max_response_bytes",
    "http.max_stream_bytes",
    "http.stream_total_timeout_secs",
    "http.max_retry_wait_secs",
    "history.log",
    "aliases.*",
    "broker.rate_per_sec",
    "broker.burst",
    "broker.max_connections",
    "broker.max_connections_per_ip",
    "broker.max_unauthenticated",
    "broker.handshake_timeout_ms",
    "broker.max_queued_bytes",
    "broker.max_frame",
    "broker.history_page_bytes",
    "broker.durability",
    "catalog.url",
    "vault.backend",
    "oauth.*.client_id",
    "oauth.*.auth_url",
    "oauth.*.token_url",
    "oauth.*.device_url",
    "oauth.*.revoke_url",
    "oauth.*.scopes",
    "heartbeat.interval",
    "heartbeat.active_hours",
];

fn key_allowed(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    SETTABLE_KEYS.iter().any(|pat| {
        let p: Vec<&str> = pat.split('.').collect();
        p.len() == parts.len()
            && p.iter().zip(&parts).all(|(a, b)| {
                !b.is_empty()
                    && (*a == "*"
                        && b.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        || a == b)
            })
    })
}

/// Edits `config.toml` in place, keeping comments and layout.
#[derive(Debug)]
pub struct ConfigEditor {
    doc: toml_edit::DocumentMut,
}

impl ConfigEditor {
    /// Opens the text of a config file.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let doc = text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|e| Error::Config {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        Ok(ConfigEditor { doc })
    }

    /// Sets a dotted key. Values that parse as TOML (numbers, booleans,
    /// quoted strings, arrays) are stored typed, anything else as a string.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        if !key_allowed(key) {
            return Err(Error::ConfigKey {
                key: key.to_string(),
                message: format!(
                    "not a settable key; settable keys: {}",
                    SETTABLE_KEYS.join(", ")
                ),
            });
        }
        let parsed: toml_edit::Value = value
            .parse::<toml_edit::Value>()
            .unwrap_or_else(|_| toml_edit::Value::from(value));
        let parts: Vec<&str> = key.split('.').collect();
        let (last, tables) = parts.split_last().ok_or_else(|| Error::ConfigKey {
            key: key.into(),
            message: "empty key".into(),
        })?;
        let mut table = self.doc.as_table_mut();
        for t in tables {
            let entry = table
                .entry(t)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| Error::ConfigKey {
                key: key.into(),
                message: format!("`{t}` is not a table in config.toml"),
            })?;
        }
        table.insert(last, toml_edit::value(parsed));
        self.validate()
    }

    /// Replaces the whole top-level section `name` with `value` serialized
    /// as TOML (used for structured sections such as `[hierarchy]`). Other
    /// sections and their comments are kept.
    pub fn set_section<T: Serialize>(&mut self, name: &str, value: &T) -> Result<(), Error> {
        let bad = |message: String| Error::ConfigKey {
            key: name.to_string(),
            message,
        };
        let text = toml::to_string(value).map_err(|e| bad(e.to_string()))?;
        let doc = text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|e| bad(e.to_string()))?;
        let mut table = doc.as_table().clone();
        table.set_implicit(true);
        self.doc.insert(name, toml_edit::Item::Table(table));
        self.validate()
    }

    /// Removes a dotted key; says whether it was there.
    pub fn unset(&mut self, key: &str) -> Result<bool, Error> {
        let parts: Vec<&str> = key.split('.').collect();
        let Some((last, tables)) = parts.split_last() else {
            return Ok(false);
        };
        let mut table = self.doc.as_table_mut();
        for t in tables {
            match table.get_mut(t).and_then(toml_edit::Item::as_table_mut) {
                Some(next) => table = next,
                None => return Ok(false),
            }
        }
        Ok(table.remove(last).is_some())
    }

    /// The edited config must still parse as a [`Config`].
    fn validate(&self) -> Result<(), Error> {
        Config::from_toml(&self.doc.to_string(), "config.toml").map(|_| ())
    }

    /// The edited text.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Loads the editor for `home`'s config (empty if missing).
    pub fn load(home: &NexusHome) -> Result<Self, Error> {
        let path = home.config_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Self::parse(&text, &path.display().to_string())
    }

    /// Writes atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        self.validate()?;
        atomic_write(path, self.text().as_bytes(), FileMode::Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_comments_and_types_values() {
        let mut ed = ConfigEditor::parse("# mine\ndefault_model = \"x\"\n", "t").unwrap();
        ed.set("http.max_retries", "5").unwrap();
        ed.set("providers.ollama.base_url", "http://localhost:11434/v1")
            .unwrap();
        let text = ed.text();
        assert!(text.contains("# mine"), "{text}");
        let c = Config::from_toml(&text, "t").unwrap();
        assert_eq!(c.http.max_retries, 5);
        assert_eq!(
            c.providers["ollama"].base_url.as_deref(),
            Some("http://localhost:11434/v1")
        );
    }

    #[test]
    fn set_refuses_unknown_keys_and_bad_types() {
        let mut ed = ConfigEditor::parse("", "t").unwrap();
        let e = ed.set("nonsense", "1").unwrap_err().to_string();
        assert!(e.contains("settable keys"), "{e}");
        assert!(ed.set("http.max_retries", "many").is_err());
    }

    #[test]
    fn unknown_sections_are_kept_for_other_crates() {
        let c = Config::from_toml("[hierarchy]\npreset = \"budget\"\n", "t").unwrap();
        assert!(c.other.contains_key("hierarchy"));
    }

    #[test]
    fn bad_toml_names_the_file() {
        let e = Config::from_toml("default_model = ", "/x/config.toml").unwrap_err();
        assert!(e.to_string().contains("/x/config.toml"));
    }
}
