//! `nexus chat`: a call to a model through `nexus_sdk::Client`, one-shot or
//! turn by turn, continuing logged conversations.

use std::io::{IsTerminal, Read, Write};

use nexus_sdk::history::History;
use nexus_sdk::{ChatOptions, Client, Input, Reply, StreamEvent};
use serde_json::json;

use super::Context;
use crate::cli::ChatArgs;
use crate::exit::CliError;
use crate::output;

/// The conversation a turn belongs to: its id once logged, and the turns
/// so far (sent back to the model).
#[derive(Default)]
struct Thread {
    id: Option<String>,
    prior: Vec<(String, String)>,
}

impl Thread {
    fn input(&self, prompt: &str) -> Input {
        if self.prior.is_empty() {
            return Input::Prompt(prompt.to_string());
        }
        let mut messages = self.prior.clone();
        messages.push(("user".into(), prompt.to_string()));
        Input::Messages(messages)
    }

    fn push(&mut self, prompt: &str, reply: &Reply) {
        self.prior.push(("user".into(), prompt.to_string()));
        self.prior.push(("assistant".into(), reply.text.clone()));
    }
}

/// Whether `history.log` in config.toml allows logging (default yes).
fn logging_on(ctx: &Context) -> bool {
    ctx.registry
        .config()
        .other
        .get("history")
        .and_then(|h| h.get("log"))
        .and_then(toml::Value::as_bool)
        .unwrap_or(true)
}

pub(crate) async fn run(args: ChatArgs) -> Result<(), CliError> {
    let ctx = Context::load()?;
    super::gate(&ctx.home, "models", "chat", None, None)?;
    let progress = crate::progress::Progress::default();
    let client = ctx.client_with(&progress)?;
    let mut thread = Thread::default();
    let mut model = args.model.clone();
    if args.continue_last || args.cid.is_some() {
        let h = client.history()?;
        let conv = match &args.cid {
            Some(id) => h.get(id)?.ok_or_else(|| {
                CliError::config(format!("no conversation `{id}`; see `nexus history list`"))
            })?,
            None => h.last()?.ok_or_else(|| {
                CliError::config(
                    "there is no conversation to continue yet; start one with `nexus chat PROMPT`",
                )
            })?,
        };
        model = model.or_else(|| Some(conv.model.clone()));
        thread.prior = conv.messages();
        thread.id = Some(conv.id);
    }
    let log = (!args.no_log && logging_on(&ctx))
        .then(|| client.history())
        .transpose()?;
    let template = match &args.template {
        Some(name) => Some(
            nexus_sdk::templates::Templates::new(&ctx.home)
                .get(name)?
                .ok_or_else(|| {
                    CliError::config(format!("no template `{name}`; see `nexus templates list`"))
                })?,
        ),
        None => None,
    };
    let model = model.or_else(|| template.as_ref().and_then(|t| t.model.clone()));
    // Empty: the configured default model.
    let model = model.unwrap_or_default();
    let system = args
        .system
        .clone()
        .or_else(|| template.as_ref().and_then(|t| t.system.clone()));
    let opts = ChatOptions {
        system: system.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        tools: super::tools::definitions(&args.tools)?,
        response_format: args
            .schema
            .as_deref()
            .map(super::tools::schema)
            .transpose()?,
    };
    let interactive = args.interactive
        || (args.prompt.is_none() && template.is_none() && std::io::stdin().is_terminal());
    if interactive {
        return interactive_chat(
            &progress,
            &ctx,
            &client,
            &args,
            &model,
            &opts,
            &mut thread,
            log.as_ref(),
        )
        .await;
    }
    let prompt = match &template {
        // A template may need no input at all.
        Some(t) if args.prompt.is_none() && std::io::stdin().is_terminal() => t.render(""),
        Some(t) => t.render(&read_prompt(args.prompt.as_deref().unwrap_or("-"))?),
        None => read_prompt(args.prompt.as_deref().unwrap_or("-"))?,
    };
    let reply = turn(
        &progress, &client, &args, &model, &opts, &thread, &prompt, !args.json,
    )
    .await?;
    if let Some(h) = &log {
        thread.id = Some(h.record(thread.id.as_deref(), system.as_deref(), &prompt, &reply)?);
    }
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
            "conversation_id": thread.id,
        }));
    }
    footer(&reply);
    Ok(())
}

/// One exchange: streamed to stdout (when `echo`) unless tools, a schema or
/// `--no-stream` need the whole answer first.
#[allow(clippy::too_many_arguments)]
async fn turn(
    progress: &crate::progress::Progress,
    client: &Client,
    args: &ChatArgs,
    model: &str,
    opts: &ChatOptions,
    thread: &Thread,
    prompt: &str,
    echo: bool,
) -> Result<Reply, CliError> {
    let input = thread.input(prompt);
    let waiting = if model.is_empty() { "the model" } else { model };
    progress.start(format!("waiting for {waiting}"));
    let reply = turn_inner(progress, client, args, model, opts, input, echo).await;
    progress.stop();
    reply
}

async fn turn_inner(
    progress: &crate::progress::Progress,
    client: &Client,
    args: &ChatArgs,
    model: &str,
    opts: &ChatOptions,
    input: Input,
    echo: bool,
) -> Result<Reply, CliError> {
    if !args.tools.is_empty() {
        let commands = super::tools::commands(&args.tools)?;
        let run = client
            .run_tools(model, input, opts, args.max_tool_rounds, |call| {
                super::tools::run(&commands, call)
            })
            .await?;
        progress.stop();
        if echo {
            output::print_str(&format!("{}\n", run.reply.text))?;
        }
        return Ok(run.reply);
    }
    if args.no_stream || opts.response_format.is_some() {
        let reply = client.chat(model, input, opts).await?;
        progress.stop();
        if echo {
            output::print_str(&format!("{}\n", reply.text))?;
        }
        return Ok(reply);
    }
    stream_to_terminal(
        progress,
        client,
        model,
        input,
        opts,
        echo,
        args.show_reasoning,
    )
    .await
}

fn footer(reply: &Reply) {
    if std::io::stderr().is_terminal() {
        let cost = reply
            .cost
            .map_or_else(|| "cost unknown".to_string(), |c| c.to_string());
        eprintln!(
            "[{}/{} · {} in · {} out · {}]",
            reply.provider, reply.model, reply.usage.input_tokens, reply.usage.output_tokens, cost
        );
    }
}

/// Turn by turn, with line editing and a history of what was typed:
/// `!multi` ... `!end` sends several lines, Ctrl-D (or `!quit`) ends.
#[allow(clippy::too_many_arguments)]
async fn interactive_chat(
    progress: &crate::progress::Progress,
    ctx: &Context,
    client: &Client,
    args: &ChatArgs,
    model: &str,
    opts: &ChatOptions,
    thread: &mut Thread,
    log: Option<&History>,
) -> Result<(), CliError> {
    use rustyline::error::ReadlineError;
    let mut rl = rustyline::DefaultEditor::new()
        .map_err(|e| CliError::internal(format!("cannot start line editing: {e}")))?;
    let typed = ctx.home.join("chat_history.txt");
    let _ = rl.load_history(&typed);
    let shown = if model.is_empty() {
        "the default model"
    } else {
        model
    };
    eprintln!(
        "Chatting with {shown}{}. `!multi` for several lines (`!end` sends them), Ctrl-D to quit.",
        thread.id.as_ref().map_or(String::new(), |id| format!(
            ", continuing conversation {id}"
        ))
    );
    loop {
        let line = match rl.readline("> ") {
            Ok(l) => l,
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => break,
            Err(e) => return Err(CliError::internal(format!("cannot read a line: {e}"))),
        };
        let mut prompt = line.clone();
        match line.trim() {
            "" => continue,
            "!quit" | "!exit" => break,
            "!multi" => {
                let mut lines = Vec::new();
                loop {
                    match rl.readline("… ") {
                        Ok(l) if l.trim() == "!end" => break,
                        Ok(l) => lines.push(l),
                        Err(ReadlineError::Eof | ReadlineError::Interrupted) => break,
                        Err(e) => {
                            return Err(CliError::internal(format!("cannot read a line: {e}")))
                        }
                    }
                }
                prompt = lines.join("\n");
                if prompt.trim().is_empty() {
                    continue;
                }
            }
            _ => {}
        }
        let _ = rl.add_history_entry(prompt.as_str());
        match turn(progress, client, args, model, opts, thread, &prompt, true).await {
            Ok(reply) => {
                if let Some(h) = log {
                    thread.id = Some(h.record(
                        thread.id.as_deref(),
                        opts.system.as_deref(),
                        &prompt,
                        &reply,
                    )?);
                }
                thread.push(&prompt, &reply);
                footer(&reply);
            }
            // One failed turn does not end the chat.
            Err(e) => eprintln!("error: {}", e.message),
        }
    }
    if std::fs::write(&typed, "").is_ok() {
        let _ = nexus_core::private_db_file(&typed);
        let _ = rl.save_history(&typed);
    }
    if let Some(id) = &thread.id {
        eprintln!("conversation {id}; continue it with `nexus chat --cid {id}`");
    }
    Ok(())
}

/// The prompt: the argument, and piped input after it (as `llm` does:
/// `cat notes.txt | nexus chat "summarise"`), or only stdin for `-`.
pub(crate) fn read_prompt(arg: &str) -> Result<String, CliError> {
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
        return Err(CliError::config(
            "no prompt: give one as an argument, pipe one in, or run `nexus chat` on a terminal to chat",
        ));
    }
    Ok(s)
}

/// Streams text to stdout as it arrives (when `echo`), and returns the
/// whole reply.
async fn stream_to_terminal(
    progress: &crate::progress::Progress,
    client: &Client,
    model: &str,
    input: Input,
    opts: &ChatOptions,
    echo: bool,
    show_reasoning: bool,
) -> Result<Reply, CliError> {
    let mut stream = client.stream(model, input, opts).await?;
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
        if matches!(
            ev,
            StreamEvent::TextDelta { .. } | StreamEvent::ReasoningDelta { .. }
        ) {
            progress.stop();
        }
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
