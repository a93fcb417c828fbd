//! Model references: `provider/model`, or a bare catalog id or alias.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A reference to a model as a user writes it.
///
/// `anthropic/claude-sonnet-4-5` names the provider explicitly; a bare
/// `claude-sonnet-4-5` (or an alias such as `sonnet`) is looked up in the
/// [`Catalog`](crate::Catalog). Model ids may themselves contain `/`
/// (`openrouter/meta-llama/llama-3.3-70b-instruct`): only the first segment is
/// ever taken as the provider, and only when it names one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelRef {
    /// The provider, if the reference named one.
    pub provider: Option<String>,
    /// The model id as the provider knows it (or the bare id to look up).
    pub model: String,
}

impl ModelRef {
    /// Parses `s`, treating the part before the first `/` as a provider when
    /// `is_provider` says it is one.
    ///
    /// ```
    /// use nexus_core::ModelRef;
    /// let known = |p: &str| p == "openrouter" || p == "openai";
    /// let r = ModelRef::parse("openrouter/meta-llama/llama-3", known).unwrap();
    /// assert_eq!(r.provider.as_deref(), Some("openrouter"));
    /// assert_eq!(r.model, "meta-llama/llama-3");
    /// let bare = ModelRef::parse("gpt-4o", known).unwrap();
    /// assert_eq!(bare.provider, None);
    /// ```
    pub fn parse(s: &str, is_provider: impl Fn(&str) -> bool) -> Result<Self, crate::Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(crate::Error::ModelRef(
                "empty model reference; use `provider/model` or a catalog id (see `nexus models list`)"
                    .into(),
            ));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(crate::Error::ModelRef(format!(
                "model reference `{s}` contains whitespace; use `provider/model`"
            )));
        }
        if let Some((p, rest)) = s.split_once('/') {
            if is_provider(p) {
                if rest.is_empty() {
                    return Err(crate::Error::ModelRef(format!(
                        "`{s}` names provider `{p}` but no model; use `{p}/MODEL`"
                    )));
                }
                return Ok(ModelRef {
                    provider: Some(p.to_string()),
                    model: rest.to_string(),
                });
            }
        }
        Ok(ModelRef {
            provider: None,
            model: s.to_string(),
        })
    }

    /// An explicit `provider/model` reference.
    pub fn qualified(provider: impl Into<String>, model: impl Into<String>) -> Self {
        ModelRef {
            provider: Some(provider.into()),
            model: model.into(),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provider {
            Some(p) => write!(f, "{p}/{}", self.model),
            None => f.write_str(&self.model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(p: &str) -> bool {
        matches!(p, "openai" | "anthropic" | "openrouter")
    }

    #[test]
    fn unknown_prefix_stays_part_of_a_bare_id() {
        let r = ModelRef::parse("meta-llama/llama-3.3-70b", known).unwrap();
        assert_eq!(r.provider, None);
        assert_eq!(r.model, "meta-llama/llama-3.3-70b");
    }

    #[test]
    fn rejects_empty_and_dangling() {
        assert!(ModelRef::parse("", known).is_err());
        assert!(ModelRef::parse("openai/", known).is_err());
        assert!(ModelRef::parse("gpt 4", known).is_err());
    }

    #[test]
    fn round_trips_through_display() {
        let r = ModelRef::parse("openrouter/auto:free", known).unwrap();
        assert_eq!(r.to_string(), "openrouter/auto:free");
    }
}
