//! The embedded model catalog, and the cached copy under `NEXUS_HOME`.

use std::sync::OnceLock;

use nexus_core::{Catalog, ChatResponse, NexusHome, Usd};

/// The catalog compiled into this build.
pub const EMBEDDED_JSON: &str = include_str!("../catalog.json");

/// The file under `NEXUS_HOME` that holds a newer, validated catalog.
pub const CACHE_FILE: &str = "catalog.json";

/// The embedded catalog, parsed once.
pub fn embedded() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        #[allow(clippy::expect_used)]
        Catalog::from_json(EMBEDDED_JSON).expect("the embedded catalog is validated by a test")
    })
}

/// Where the catalog in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSource {
    /// Compiled in.
    Embedded,
    /// The cached download at this path.
    Cached(String),
}

/// The cached catalog if it exists and still validates (and is not much
/// smaller than the embedded one), else the embedded one. A broken cache
/// never stops Nexus: the reason comes back so callers can warn.
pub fn load(home: &NexusHome) -> (Catalog, CatalogSource, Option<String>) {
    let path = home.join(CACHE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match Catalog::from_json(&text).and_then(|c| {
            c.check_not_shrunk(embedded())?;
            Ok(c)
        }) {
            Ok(c) => (c, CatalogSource::Cached(path.display().to_string()), None),
            Err(e) => (
                embedded().clone(),
                CatalogSource::Embedded,
                Some(format!(
                    "ignoring cached catalog {}: {e}; using the embedded one",
                    path.display()
                )),
            ),
        },
        Err(_) => (embedded().clone(), CatalogSource::Embedded, None),
    }
}

/// Where `nexus models update-rankings` fetches from unless `catalog.url`
/// in `config.toml` or `NEXUS_CATALOG_URL` says otherwise.
pub const DEFAULT_CATALOG_URL: &str =
    "https://raw.githubusercontent.com/nexus-agents/nexus/main/crates/nexus-providers/catalog.json";

/// The most a downloaded catalog may weigh.
const MAX_CATALOG_BYTES: usize = 8 * 1024 * 1024;

/// The result of a successful update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateReport {
    /// Models in the new catalog.
    pub models: usize,
    /// Models in the catalog it replaced.
    pub previous: usize,
    /// The catalog's own `updated` date.
    pub updated: String,
    /// Where it was cached.
    pub path: String,
}

/// The catalog URL in force: `NEXUS_CATALOG_URL`, then `catalog.url` in
/// config, then the default.
pub fn catalog_url(config: &nexus_core::Config, env: &crate::EnvLookup) -> String {
    env("NEXUS_CATALOG_URL")
        .or_else(|| {
            config
                .other
                .get("catalog")
                .and_then(|c| c.get("url"))
                .and_then(|u| u.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| DEFAULT_CATALOG_URL.to_string())
}

/// Fetches a newer catalog from `url` (`http(s)://` or `file://`),
/// validates it (schema, ranges, duplicates, and not far smaller than the
/// embedded one), and caches it atomically under `home`. On any failure
/// nothing is written and the current catalog stays in use.
pub async fn update(
    client: &reqwest::Client,
    url: &str,
    home: &NexusHome,
) -> Result<UpdateReport, crate::Error> {
    let fail = |why: String| {
        crate::Error::Catalog(format!(
            "catalog update from {url} failed: {why}; the current catalog stays in use"
        ))
    };
    let text = if let Some(path) = url.strip_prefix("file://") {
        std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let resp = client
            .get(url)
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        let bytes = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        if bytes.len() > MAX_CATALOG_BYTES {
            return Err(fail(format!(
                "{} bytes is more than a catalog can be",
                bytes.len()
            )));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| fail("the body is not UTF-8".into()))?
    } else {
        return Err(fail(
            "the URL must start with https://, http:// or file://".into(),
        ));
    };
    let candidate = Catalog::from_json(&text).map_err(|e| fail(e.to_string()))?;
    candidate
        .check_not_shrunk(embedded())
        .map_err(|e| fail(e.to_string()))?;
    let (current, _, _) = load(home);
    let path = home.join(CACHE_FILE);
    home.ensure()?;
    nexus_core::atomic_write(&path, text.as_bytes(), nexus_core::FileMode::Secret)?;
    Ok(UpdateReport {
        models: candidate.len(),
        previous: current.len(),
        updated: candidate.file().updated.clone(),
        path: path.display().to_string(),
    })
}

/// What a response cost: the provider's own figure when it reports one
/// (OpenRouter does), else list price × exact usage. `None` when the model
/// is not in the catalog and the provider reported nothing.
pub fn response_cost(catalog: &Catalog, provider: &str, r: &ChatResponse) -> Option<Usd> {
    if let Some(c) = r.provider_cost {
        return Some(c);
    }
    catalog
        .get_for(provider, &r.model)
        .or_else(|| catalog.get(&r.model))
        .map(|m| m.cost(&r.usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_valid_and_covers_every_provider() {
        let c = embedded();
        for p in [
            "anthropic",
            "openai",
            "gemini",
            "openrouter",
            "xai",
            "deepseek",
        ] {
            assert!(c.by_provider(p).count() >= 2, "{p} has too few models");
        }
        // The seed's models resolve.
        for id in [
            "claude-sonnet-4-5",
            "claude-opus-4-6",
            "claude-haiku-3-5",
            "gpt-4o",
            "gpt-4o-mini",
            "o1",
            "o1-mini",
            "gemini-1.5-pro",
            "gemini-1.5-flash",
            "gemini-2.0-flash-exp",
            "grok-beta",
            "deepseek-chat",
            "openrouter/auto:free",
        ] {
            assert!(c.get(id).is_some(), "{id} missing");
        }
    }

    #[test]
    fn a_broken_cache_falls_back_to_embedded() {
        let dir = std::env::temp_dir().join(format!("nexus-cat-{}", std::process::id()));
        let home = NexusHome::at(&dir);
        home.ensure().unwrap();
        std::fs::write(home.join(CACHE_FILE), "{not json").unwrap();
        let (c, src, warn) = load(&home);
        assert_eq!(src, CatalogSource::Embedded);
        assert_eq!(c.len(), embedded().len());
        assert!(warn.unwrap().contains("ignoring cached catalog"));
        std::fs::remove_dir_all(dir).ok();
    }
}
