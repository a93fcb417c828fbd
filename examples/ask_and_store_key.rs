//! Store a key in the vault, then ask through the model hierarchy.
//!
//! ```sh
//! OPENAI_API_KEY=sk-... cargo run -p nexus-examples --example ask_and_store_key -- "Summarise RFC 9110 in one line"
//! ```
//!
//! With no key in the environment it uses the one already in the vault.
//! The same program in Python, Node and Swift sits beside this one.

use nexus_sdk::{AskOptions, Client, ErrorCode};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let prompt = if prompt.is_empty() {
        "Write a haiku about type systems".to_string()
    } else {
        prompt
    };
    match run(&prompt).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            for a in e.attempts() {
                eprintln!(
                    "tier {} {}: {} {}",
                    a.tier,
                    a.model,
                    a.outcome,
                    a.reason.as_deref().unwrap_or("")
                );
            }
            eprintln!("{}: {e}", e.code());
            std::process::ExitCode::from(match e.code() {
                ErrorCode::BudgetExceeded => 21,
                ErrorCode::NoAcceptableAnswer => 22,
                _ => 1,
            })
        }
    }
}

async fn run(prompt: &str) -> nexus_sdk::Result<()> {
    let mut client = Client::new()?;
    if let Ok(key) = std::env::var("OPENAI_API_KEY") {
        // Kept encrypted in the vault; never in config.toml.
        client.vault()?.set_key("openai", &key)?;
        std::env::remove_var("OPENAI_API_KEY");
        client = Client::new()?; // picks the key up from the vault
    }
    let answer = client.ask(prompt, &AskOptions::default()).await?;
    for a in &answer.attempts {
        eprintln!(
            "[{}] tier {} {}: {}",
            answer.category, a.tier, a.model, a.outcome
        );
    }
    println!("{}", answer.reply.text);
    eprintln!(
        "{} across {} attempt(s)",
        answer.total_cost,
        answer.attempts.len()
    );
    Ok(())
}
