//! Ask one model one question and print the answer, its usage and its cost.
//!
//! ```text
//! export ANTHROPIC_API_KEY=...            # or any provider's key
//! cargo run -p nexus-examples --example chat -- "Why is the sky blue?" [MODEL]
//! ```
//!
//! With no key set, it answers from the in-memory provider, so it runs offline.

use std::sync::Arc;

use nexus_core::{ChatRequest, Config, MemoryProvider, NexusHome, Provider};
use nexus_providers::{catalog, process_env, Registry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let prompt = args.next().unwrap_or_else(|| "Why is the sky blue?".into());
    let home = NexusHome::from_env()?;
    let registry = Registry::new(Config::load(&home)?, process_env());
    let catalog = catalog::embedded();

    let (provider, model): (Arc<dyn Provider>, String) =
        match args.next().map_or_else(|| registry.default_model(), Ok) {
            Ok(reference) => {
                let target = registry.resolve(catalog, &reference)?;
                (registry.provider(&target.provider)?, target.model)
            }
            Err(e) => {
                eprintln!("({e}; answering offline with the in-memory provider)");
                (Arc::new(MemoryProvider::new("memory")), "echo".into())
            }
        };

    let answer = provider.chat(&ChatRequest::new(model, prompt)).await?;
    println!("{}", answer.text);
    let cost = catalog::response_cost(catalog, provider.name(), &answer);
    eprintln!(
        "model {} · {} in / {} out · {}",
        answer.model,
        answer.usage.input_tokens,
        answer.usage.output_tokens,
        cost.map_or_else(|| "cost unknown".into(), |c| c.to_string())
    );
    Ok(())
}
