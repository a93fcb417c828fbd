//! Stream an answer token by token, then show what the stream added up to.
//!
//! ```text
//! export OPENAI_API_KEY=...
//! cargo run -p nexus-examples --example stream -- "Write a haiku about Rust" openai/gpt-4o-mini
//! ```
//!
//! With no key set, it streams from the in-memory provider, so it runs offline.

use std::io::Write;
use std::sync::Arc;

use futures_util::StreamExt;
use nexus_core::{ChatRequest, Config, MemoryProvider, Provider, StreamAccumulator, StreamEvent};
use nexus_providers::{catalog, process_env, Registry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let prompt = args
        .next()
        .unwrap_or_else(|| "Write a haiku about Rust".into());
    let registry = Registry::new(Config::default(), process_env());
    let (provider, model): (Arc<dyn Provider>, String) =
        match args.next().map_or_else(|| registry.default_model(), Ok) {
            Ok(reference) => {
                let target = registry.resolve(catalog::embedded(), &reference)?;
                (registry.provider(&target.provider)?, target.model)
            }
            Err(e) => {
                eprintln!("({e}; streaming offline from the in-memory provider)");
                (Arc::new(MemoryProvider::new("memory")), "echo".into())
            }
        };

    let request = ChatRequest::new(model.clone(), prompt);
    let mut stream = provider.stream(&request).await?;
    let mut acc = StreamAccumulator::new(model);
    let mut out = std::io::stdout();
    while let Some(event) = stream.next().await {
        let event = event?;
        if let StreamEvent::TextDelta { text } = &event {
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        acc.push(&event);
    }
    let answer = acc.finish()?;
    println!();
    eprintln!(
        "{} · stop: {:?} · {} output tokens",
        answer.model, answer.stop_reason, answer.usage.output_tokens
    );
    Ok(())
}
