//! Provider sources: the registry (real providers) and a static map (tests).

use std::collections::HashMap;
use std::sync::Arc;

use nexus_core::{Catalog, ModelInfo, Provider};
use nexus_providers::{CredentialSource, Registry};

use crate::engine::ProviderSource;
use crate::HierarchyError;

/// Providers from the registry, models from the catalog.
#[derive(Debug)]
pub struct RegistrySource {
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
}

impl RegistrySource {
    /// A source over `registry` and `catalog`.
    pub fn new(registry: Arc<Registry>, catalog: Arc<Catalog>) -> Self {
        RegistrySource { registry, catalog }
    }
}

impl ProviderSource for RegistrySource {
    type Provider = Arc<dyn Provider>;

    fn info(&self, model: &str) -> Option<ModelInfo> {
        self.registry
            .resolve(&self.catalog, model)
            .ok()
            .and_then(|t| t.info)
    }

    fn provider(&self, model: &str) -> Result<(String, Arc<dyn Provider>, String), HierarchyError> {
        let t = self.registry.resolve(&self.catalog, model)?;
        let p = self.registry.provider(&t.provider)?;
        Ok((t.provider, p, t.model))
    }
}

/// Checks a model for a tier and returns its canonical `provider/id`.
///
/// A catalog id or alias is accepted. A `provider/model` outside the catalog
/// is accepted only for providers whose prices are not list prices (local
/// and custom servers); anything else is refused, naming the closest ids.
pub fn check_model(
    registry: &Registry,
    catalog: &Catalog,
    model: &str,
) -> Result<String, HierarchyError> {
    let t = registry.resolve(catalog, model)?;
    if let Some(info) = &t.info {
        return Ok(info.qualified_id());
    }
    let local = registry
        .status()
        .iter()
        .any(|s| s.name == t.provider && s.credential == CredentialSource::NotNeeded)
        || registry.config().providers.contains_key(&t.provider)
            && !nexus_providers::BUILTIN
                .iter()
                .any(|b| b.name == t.provider);
    if local {
        return Ok(format!("{}/{}", t.provider, t.model));
    }
    let near = catalog.closest(&t.model, 3);
    Err(HierarchyError::Usage(format!(
        "model `{model}` is not in the catalog, so its cost cannot be tracked{}; run `nexus models list --provider {}`",
        if near.is_empty() { String::new() } else { format!("; did you mean {}?", near.join(", ")) },
        t.provider
    )))
}

/// A fixed map of models to providers, for tests and embedders.
#[derive(Debug, Clone, Default)]
pub struct StaticSource<P> {
    entries: HashMap<String, (String, P, String, Option<ModelInfo>)>,
}

impl<P: Provider + Clone> StaticSource<P> {
    /// An empty source.
    pub fn new() -> Self {
        StaticSource {
            entries: HashMap::new(),
        }
    }

    /// Serves `model` from `provider`, priced as `info`.
    pub fn with(mut self, model: &str, provider: P, info: Option<ModelInfo>) -> Self {
        let name = provider.name().to_string();
        self.entries
            .insert(model.to_string(), (name, provider, model.to_string(), info));
        self
    }
}

impl<P: Provider + Clone> ProviderSource for StaticSource<P> {
    type Provider = P;

    fn info(&self, model: &str) -> Option<ModelInfo> {
        self.entries.get(model).and_then(|e| e.3.clone())
    }

    fn provider(&self, model: &str) -> Result<(String, P, String), HierarchyError> {
        self.entries
            .get(model)
            .map(|(n, p, w, _)| (n.clone(), p.clone(), w.clone()))
            .ok_or_else(|| HierarchyError::Usage(format!("no provider serves `{model}`")))
    }
}
