//! `nexus chat`.

use std::io::{IsTerminal, Read, Write};

use futures_util::StreamExt;
use nexus_core::{ChatRequest, ChatResponse, StreamAccumulator, StreamEvent};
use nexus_providers::catalog::response_cost;
use serde_json::json;

use super::Context;
use crate::cli::ChatArgs;
use crate::exit::CliError;
use crate::output;

pub(crate) async fn run(args: ChatArgs) -> Result<(), CliError> {
    let ctx = Context::load()?;
    let prompt = read_prompt(&args.prompt)?;
    let reference = match &args.model {
        Some(m) => m.clone(),
        None => ctx.registry.default_model()?,
    };
    let target = ctx.registry.resolve(&ctx.catalog, &reference)?;
    let provider = ctx.registry.provider(&target.provider)?;
    let mut req = ChatRequest::new(target.model.clone(), prompt);
    req.system = args.system.clone();
    req.max_tokens = args.max_tokens;
    req.temperature = args.temperature;

    let response = if args.no_stream {
        provider.chat(&req).await?
    } else {
        stream_to_terminal(&*provider, &req, !args.json, args.show_reasoning).await?
    };
    let cost = response_cost(&ctx.catalog, &target.provider, &response)
        .or_else(|| target.info.as_ref().map(|i| i.cost(&response.usage)));
    if args.json {
        return output::json(&json!({
            "provider": target.provider,
            "requested_model": target.model,
            "model": response.model,
            "text": response.text,
            "reasoning": (!response.reasoning.is_empty()).then_some(&response.reasoning),
            "tool_calls": response.tool_calls,
            "stop_reason": response.stop_reason,
            "request_id": response.request_id,
            "usage": response.usage,
            "cost_usd": cost.map(|c| c.dollars()),
        }));
    }
    if args.no_stream {
        output::print_str(&format!("{}\n", response.text))?;
    }
    if std::io::stderr().is_terminal() {
        let cost = cost.map_or_else(|| "cost unknown".to_string(), |c| c.to_string());
        eprintln!(
            "[{}/{} · {} in · {} out · {}]",
            target.provider,
            response.model,
            response.usage.input_tokens,
            response.usage.output_tokens,
            cost
        );
    }
    Ok(())
}

fn read_prompt(arg: &str) -> Result<String, CliError> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| CliError::config(format!("cannot read the prompt from stdin: {e}")))?;
    if s.trim().is_empty() {
        return Err(CliError::config("the prompt read from stdin is empty"));
    }
    Ok(s)
}

/// Streams text to stdout as it arrives (when `echo`), and returns the
/// folded response.
async fn stream_to_terminal(
    provider: &dyn nexus_core::Provider,
    req: &ChatRequest,
    echo: bool,
    show_reasoning: bool,
) -> Result<ChatResponse, CliError> {
    let mut stream = provider.stream(req).await?;
    let mut acc = StreamAccumulator::new(req.model.clone());
    let mut out = std::io::stdout().lock();
    let mut wrote_any = false;
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                if wrote_any {
                    let _ = writeln!(out);
                }
                return Err(e.into());
            }
        };
        if echo {
            match &ev {
                StreamEvent::TextDelta { text } => {
                    // A closed pipe is not an error worth a non-zero exit.
                    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                    wrote_any = true;
                }
                StreamEvent::ReasoningDelta { text } if show_reasoning => {
                    eprint!("{text}");
                }
                _ => {}
            }
        }
        acc.push(&ev);
    }
    if echo {
        let _ = writeln!(out);
    }
    acc.finish().map_err(|e| {
        CliError::new(
            crate::exit::Class::Protocol,
            format!("{}: {e}", provider.name()),
        )
    })
}
