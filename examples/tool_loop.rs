//! A tool loop: the model may call `get_weather`; this program runs it and
//! sends the result back until the model answers.
//!
//!     ANTHROPIC_API_KEY=sk-... cargo run -p nexus-examples --example tool_loop -- \
//!         anthropic/claude-haiku-4-5 "Should I take an umbrella in Paris today?"

use nexus_sdk::{ChatOptions, Client, Tool};
use serde_json::json;

/// The tool itself: a real program would call a weather service here.
fn get_weather(city: &str) -> String {
    format!("22C and sunny in {city}")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_default();
    let prompt: String = args.collect::<Vec<_>>().join(" ");
    let prompt = if prompt.is_empty() {
        "Should I take an umbrella in Paris today?".to_string()
    } else {
        prompt
    };
    let options = ChatOptions {
        tools: vec![Tool {
            name: "get_weather".into(),
            description: "Today's weather in a city".into(),
            input_schema: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }),
        }],
        ..Default::default()
    };
    let result = async {
        let client = Client::new()?;
        client
            .run_tools(&model, prompt, &options, 8, |call| async move {
                match (call.name.as_str(), call.arguments["city"].as_str()) {
                    ("get_weather", Some(city)) => Ok(get_weather(city)),
                    _ => Err(format!("unknown tool or arguments: {}", call.name)),
                }
            })
            .await
    }
    .await;
    match result {
        Ok(run) => {
            for c in &run.calls {
                eprintln!("called {}({})", c.name, c.arguments);
            }
            println!("{}", run.reply.text);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
