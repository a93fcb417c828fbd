//! `nexus chat`: one call to a model, through `nexus_sdk::Client`.

use std::io::{IsTerminal, Read, Write};

use nexus_sdk::{ChatOptions, Client, Reply, StreamEvent};
use serde_json::json;

use super::Context;
use crate::cli::ChatArgs;
use crate::exit::CliError;
use crate::output;

pub(crate) async fn run(args: ChatArgs) -> Result<(), CliError> {
    let ctx = Context::load()?;
    let client = ctx.client()?;
    let prompt = read_prompt(&args.prompt)?;
    // Empty: the configured default model.
    let model = args.model.clone().unwrap_or_default();
    let opts = ChatOptions {
        system: args.system.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        tools: super::tools::definitions(&args.tools)?,
        response_format: args
            .schema
            .as_deref()
            .map(super::tools::schema)
            .transpose()?,
    };
    let reply = if !args.tools.is_empty() {
        let commands = super::tools::commands(&args.tools)?;
        let run = client
            .run_tools(
                &model,
                prompt.as_str(),
                &opts,
                args.max_tool_rounds,
                |call| super::tools::run(&commands, call),
            )
            .await?;
        if !args.json {
            output::print_str(&format!("{}\n", run.reply.text))?;
        }
        run.reply
    } else if args.no_stream || opts.response_format.is_some() {
        client.chat(&model, prompt.as_str(), &opts).await?
    } else {
        stream_to_terminal(
            &client,
            &model,
            &prompt,
            &opts,
            !args.json,
            args.show_reasoning,
        )
        .await?
    };
    if args.json {
        return output::json(&json!({
            "provider": reply.provider,
            "requested_model": reply.requested_model,
            "model": reply.model,
            "text": reply.text,
            "reasoning": (!reply.reasoning.is_empty()).then_some(&reply.reasoning),
            "tool_calls": reply.tool_calls,
            "json": reply.json,
            "stop_reason": reply.stop_reason,
            "request_id": reply.request_id,
            "usage": reply.usage,
            "cost_usd": reply.cost.map(|c| c.dollars()),
        }));
    }
    if args.tools.is_empty() && (args.no_stream || opts.response_format.is_some()) {
        output::print_str(&format!("{}\n", reply.text))?;
    }
    if std::io::stderr().is_terminal() {
        let cost = reply
            .cost
            .map_or_else(|| "cost unknown".to_string(), |c| c.to_string());
        eprintln!(
            "[{}/{} · {} in · {} out · {}]",
            reply.provider, reply.model, reply.usage.input_tokens, reply.usage.output_tokens, cost
        );
    }
    Ok(())
}

/// The prompt: the argument, and piped input after it (as `llm` does:
/// `cat notes.txt | nexus chat "summarise"`), or only stdin for `-`.
fn read_prompt(arg: &str) -> Result<String, CliError> {
    if arg != "-" {
        if std::io::stdin().is_terminal() {
            return Ok(arg.to_string());
        }
        let mut piped = String::new();
        // Unreadable or empty input (a closed or absent pipe) adds nothing.
        let _ = std::io::stdin().read_to_string(&mut piped);
        if piped.trim().is_empty() {
            return Ok(arg.to_string());
        }
        return Ok(format!("{arg}\n\n{piped}"));
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
/// whole reply.
async fn stream_to_terminal(
    client: &Client,
    model: &str,
    prompt: &str,
    opts: &ChatOptions,
    echo: bool,
    show_reasoning: bool,
) -> Result<Reply, CliError> {
    let mut stream = client.stream(model, prompt, opts).await?;
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
    }
    if echo {
        let _ = writeln!(out);
    }
    stream.reply().cloned().ok_or_else(|| {
        CliError::new(
            crate::exit::Class::Protocol,
            "the stream ended without an answer",
        )
    })
}
