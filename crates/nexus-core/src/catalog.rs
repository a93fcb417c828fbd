//! The model capabilities catalog: what each model costs and can do.
//!
//! The catalog is data (JSON); this module holds its schema, validation,
//! lookup and exact cost arithmetic. The embedded copy ships in
//! `nexus-providers`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::money::{PricePerMillion, Usd};
use crate::types::Usage;
use crate::ModelRef;

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pricing {
    /// Uncached prompt tokens.
    pub input: PricePerMillion,
    /// Answer tokens (reasoning included).
    pub output: PricePerMillion,
    /// Prompt tokens read from cache.
    #[serde(default)]
    pub cache_read: PricePerMillion,
    /// Prompt tokens written to cache.
    #[serde(default)]
    pub cache_write: PricePerMillion,
}

impl Pricing {
    /// The exact cost of `usage`.
    pub fn cost(&self, usage: &Usage) -> Usd {
        Usd::for_tokens(usage.input_tokens, self.input)
            + Usd::for_tokens(usage.output_tokens, self.output)
            + Usd::for_tokens(usage.cache_read_tokens, self.cache_read)
            + Usd::for_tokens(usage.cache_write_tokens, self.cache_write)
    }

    /// Whether every price is zero.
    pub fn is_free(&self) -> bool {
        *self == Pricing::default()
    }
}

/// One model's entry in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The id the provider's API takes (`claude-sonnet-4-5`).
    pub id: String,
    /// The provider that serves it (`anthropic`).
    pub provider: String,
    /// A name for people.
    pub display_name: String,
    /// Other names that resolve to this model.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// 1–10, higher is faster.
    pub speed_score: u8,
    /// 1–10, higher reasons better.
    pub reasoning_score: u8,
    /// 1–10, higher codes better.
    pub coding_score: u8,
    /// List prices.
    pub pricing: Pricing,
    /// Context window in tokens.
    pub context_window: u32,
    /// The most output tokens per call.
    pub max_output_tokens: u32,
    /// Streams.
    #[serde(default = "yes")]
    pub supports_streaming: bool,
    /// Calls tools.
    #[serde(default)]
    pub supports_tools: bool,
    /// Takes images.
    #[serde(default)]
    pub supports_vision: bool,
    /// Has a reasoning mode.
    #[serde(default)]
    pub supports_reasoning: bool,
    /// `YYYY-MM-DD`.
    pub release_date: String,
    /// Stable, preview (experimental, may change or vanish) or deprecated
    /// (being retired): presets pick stable models only unless asked.
    #[serde(default)]
    pub status: ModelStatus,
    /// Where the price comes from (the provider's pricing page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_source: Option<String>,
}

/// Whether a model is meant for production use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Generally available.
    #[default]
    Stable,
    /// Preview or experimental: may change, be rate-limited or vanish.
    Preview,
    /// Being retired by its provider.
    Deprecated,
}

impl ModelStatus {
    /// The name in the catalog and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Stable => "stable",
            ModelStatus::Preview => "preview",
            ModelStatus::Deprecated => "deprecated",
        }
    }
}

fn yes() -> bool {
    true
}

impl ModelInfo {
    /// `provider/id`.
    pub fn qualified_id(&self) -> String {
        format!("{}/{}", self.provider, self.id)
    }

    /// The exact cost of `usage` at list price.
    pub fn cost(&self, usage: &Usage) -> Usd {
        self.pricing.cost(usage)
    }
}

/// Why a catalog was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Not valid JSON, or not the schema.
    #[error("catalog is not valid: {0}")]
    Schema(String),
    /// Two entries share an id or alias.
    #[error("catalog has a duplicate id or alias `{0}`")]
    Duplicate(String),
    /// A field is out of range.
    #[error("catalog entry `{id}`: {message}")]
    Invalid {
        /// The entry.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// Far fewer models than expected: likely truncated or wrong.
    #[error(
        "catalog has only {got} models, fewer than the {min} required; keeping the current catalog"
    )]
    TooSmall {
        /// Models in the candidate.
        got: usize,
        /// The floor.
        min: usize,
    },
}

/// The serialized form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogFile {
    /// Schema version; this code reads version 1.
    pub schema_version: u32,
    /// When the data was last revised (`YYYY-MM-DD`).
    pub updated: String,
    /// The models.
    pub models: Vec<ModelInfo>,
}

/// A validated catalog with fast lookup by id and alias.
#[derive(Debug, Clone)]
pub struct Catalog {
    file: CatalogFile,
    by_name: HashMap<String, usize>,
}

/// A model reference resolved against the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<'a> {
    /// The provider to call.
    pub provider: String,
    /// The model id to send.
    pub model: String,
    /// The catalog entry, if the model is in the catalog.
    pub info: Option<&'a ModelInfo>,
}

impl Catalog {
    /// The schema version this code reads.
    pub const SCHEMA_VERSION: u32 = 1;

    /// Parses and validates JSON.
    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile =
            serde_json::from_str(json).map_err(|e| CatalogError::Schema(e.to_string()))?;
        Self::from_file(file)
    }

    /// Validates a parsed file.
    pub fn from_file(file: CatalogFile) -> Result<Self, CatalogError> {
        if file.schema_version != Self::SCHEMA_VERSION {
            return Err(CatalogError::Schema(format!(
                "schema_version {} is not supported (this build reads {})",
                file.schema_version,
                Self::SCHEMA_VERSION
            )));
        }
        let mut by_name = HashMap::new();
        for (i, m) in file.models.iter().enumerate() {
            let bad = |message: &str| CatalogError::Invalid {
                id: m.id.clone(),
                message: message.to_string(),
            };
            if m.id.is_empty() || m.provider.is_empty() {
                return Err(bad("id and provider must not be empty"));
            }
            for s in [m.speed_score, m.reasoning_score, m.coding_score] {
                if !(1..=10).contains(&s) {
                    return Err(bad("scores must be between 1 and 10"));
                }
            }
            if m.context_window == 0 || m.max_output_tokens == 0 {
                return Err(bad("context_window and max_output_tokens must be positive"));
            }
            let mut names = vec![m.id.clone(), m.qualified_id()];
            names.extend(m.aliases.iter().cloned());
            for n in names {
                if by_name.insert(n.clone(), i).is_some() {
                    return Err(CatalogError::Duplicate(n));
                }
            }
        }
        Ok(Catalog { file, by_name })
    }

    /// Refuses a candidate with far fewer models than `reference` (less than
    /// three quarters), the sign of a truncated or wrong download.
    pub fn check_not_shrunk(&self, reference: &Catalog) -> Result<(), CatalogError> {
        let min = reference.len() * 3 / 4;
        if self.len() < min {
            return Err(CatalogError::TooSmall {
                got: self.len(),
                min,
            });
        }
        Ok(())
    }

    /// The serialized form.
    pub fn file(&self) -> &CatalogFile {
        &self.file
    }

    /// Every model, in catalog order.
    pub fn models(&self) -> &[ModelInfo] {
        &self.file.models
    }

    /// How many models.
    pub fn len(&self) -> usize {
        self.file.models.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.file.models.is_empty()
    }

    /// Looks a model up by id, `provider/id` or alias.
    pub fn get(&self, name: &str) -> Option<&ModelInfo> {
        self.by_name.get(name).map(|&i| &self.file.models[i])
    }

    /// Looks a model up by provider and id.
    pub fn get_for(&self, provider: &str, model: &str) -> Option<&ModelInfo> {
        self.get(&format!("{provider}/{model}"))
            .or_else(|| self.get(model).filter(|m| m.provider == provider))
    }

    /// Resolves a reference: an explicit provider is kept (any model may be
    /// sent to it); a bare id or alias must be in the catalog.
    pub fn resolve(&self, r: &ModelRef) -> Result<Resolved<'_>, crate::Error> {
        if let Some(p) = &r.provider {
            let info = self.get_for(p, &r.model);
            return Ok(Resolved {
                provider: p.clone(),
                model: info.map_or_else(|| r.model.clone(), |i| i.id.clone()),
                info,
            });
        }
        match self.get(&r.model) {
            Some(info) => Ok(Resolved {
                provider: info.provider.clone(),
                model: info.id.clone(),
                info: Some(info),
            }),
            None => {
                let near = self.closest(&r.model, 3);
                let hint = if near.is_empty() {
                    "see `nexus models list`".to_string()
                } else {
                    format!("did you mean {}?", near.join(", "))
                };
                Err(crate::Error::ModelRef(format!(
                    "unknown model `{}`: it is not in the catalog and names no provider; {hint} \
                     (or write it as `provider/model`)",
                    r.model
                )))
            }
        }
    }

    /// The `n` ids closest to `name` by edit distance, closest first.
    pub fn closest(&self, name: &str, n: usize) -> Vec<String> {
        let needle = name.to_ascii_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .by_name
            .keys()
            .map(|k| (closeness(&needle, &k.to_ascii_lowercase()), k.as_str()))
            .collect();
        scored.sort();
        // A third of the name may be wrong, no more: beyond that a
        // suggestion is a guess that only confuses.
        let limit = (needle.chars().count() / 3).max(1);
        let mut out: Vec<String> = Vec::new();
        for (d, k) in scored {
            if d > limit || out.len() >= n {
                break;
            }
            let id = self.get(k).map_or(k, |m| m.id.as_str());
            if !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
        out
    }

    /// Models served by `provider`.
    pub fn by_provider<'a>(&'a self, provider: &'a str) -> impl Iterator<Item = &'a ModelInfo> {
        self.file
            .models
            .iter()
            .filter(move |m| m.provider == provider)
    }
}

/// How far `needle` is from `key`: the edit distance to the whole key, or
/// (one more than) to the closest stretch of it, so `sonet` is near
/// `claude-sonnet-4-5` and `gpt-4-mini` near `gpt-4o-mini`.
fn closeness(needle: &str, key: &str) -> usize {
    let whole = edit_distance(needle, key);
    let n = needle.chars().count();
    if n < 4 {
        return whole;
    }
    let chars: Vec<char> = key.chars().collect();
    let mut best = whole;
    for len in n.saturating_sub(1)..=n + 1 {
        if len == 0 || len > chars.len() {
            continue;
        }
        for start in 0..=chars.len() - len {
            let window: String = chars[start..start + len].iter().collect();
            best = best.min(edit_distance(needle, &window) + 1);
        }
    }
    best
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Catalog {
        Catalog::from_json(
            r#"{"schema_version":1,"updated":"2026-11-01","models":[
            {"id":"claude-sonnet-4-5","provider":"anthropic","display_name":"Claude Sonnet 4.5",
             "aliases":["sonnet"],"speed_score":7,"reasoning_score":9,"coding_score":9,
             "pricing":{"input":3.0,"output":15.0,"cache_read":0.3,"cache_write":3.75},
             "context_window":200000,"max_output_tokens":64000,"supports_tools":true,
             "release_date":"2025-09-29"},
            {"id":"gpt-4o","provider":"openai","display_name":"GPT-4o","speed_score":7,
             "reasoning_score":8,"coding_score":8,"pricing":{"input":2.5,"output":10.0},
             "context_window":128000,"max_output_tokens":16384,"release_date":"2024-05-13"}]}"#,
        )
        .unwrap()
    }

    /// Issue 14, defect 11: suggestions are near the input, or absent.
    #[test]
    fn suggestions_are_related_to_the_input() {
        let c = sample();
        let near = c.closest("sonet", 3);
        assert!(near.iter().any(|m| m == "claude-sonnet-4-5"), "{near:?}");
        assert!(
            c.closest("xyzzy-frobnicate", 3).is_empty(),
            "{:?}",
            c.closest("xyzzy-frobnicate", 3)
        );
        assert!(
            c.closest("llama", 3).is_empty(),
            "{:?}",
            c.closest("llama", 3)
        );
    }

    #[test]
    fn cost_includes_cache_tokens_exactly() {
        let c = sample();
        let m = c.get("sonnet").unwrap();
        let u = Usage {
            input_tokens: 1000,
            output_tokens: 500,
            cache_read_tokens: 10_000,
            cache_write_tokens: 2000,
            reasoning_tokens: 0,
        };
        // 1000*3 + 500*15 + 10000*0.3 + 2000*3.75 = 3000+7500+3000+7500 = 21000 µ$
        assert_eq!(m.cost(&u), Usd::from_picos(21_000 * 1_000_000));
    }

    #[test]
    fn unknown_model_names_closest_ids() {
        let c = sample();
        let err = c
            .resolve(&ModelRef {
                provider: None,
                model: "claude-sonet-4-5".into(),
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("claude-sonnet-4-5"), "{err}");
    }

    #[test]
    fn explicit_provider_passes_through() {
        let c = sample();
        let r = c.resolve(&ModelRef::qualified("openai", "gpt-9")).unwrap();
        assert_eq!((r.provider.as_str(), r.model.as_str()), ("openai", "gpt-9"));
        assert!(r.info.is_none());
    }

    #[test]
    fn rejects_duplicates_bad_scores_and_shrinkage() {
        let dup = r#"{"schema_version":1,"updated":"x","models":[
            {"id":"a","provider":"p","display_name":"A","speed_score":1,"reasoning_score":1,"coding_score":1,
             "pricing":{"input":0,"output":0},"context_window":1,"max_output_tokens":1,"release_date":"x"},
            {"id":"a","provider":"p","display_name":"A","speed_score":1,"reasoning_score":1,"coding_score":1,
             "pricing":{"input":0,"output":0},"context_window":1,"max_output_tokens":1,"release_date":"x"}]}"#;
        assert!(matches!(
            Catalog::from_json(dup),
            Err(CatalogError::Duplicate(_))
        ));
        let bad = dup.replacen("\"speed_score\":1", "\"speed_score\":11", 1);
        assert!(matches!(
            Catalog::from_json(&bad),
            Err(CatalogError::Invalid { .. })
        ));
        let small =
            Catalog::from_json(r#"{"schema_version":1,"updated":"x","models":[]}"#).unwrap();
        assert!(small.check_not_shrunk(&sample()).is_err());
    }
}
