//! The tool loop: send, run the tools the model calls, send their results
//! back, until the model answers without calling one.

use std::future::Future;

use nexus_core::{ContentPart, Message, Role, ToolCall, Usd};

use crate::{ChatOptions, Client, Error, ErrorCode, Input, Reply, Result};

/// What a tool run gives back.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRun {
    /// The final answer (no tool calls in it).
    pub reply: Reply,
    /// The whole conversation: the input, each assistant turn with its tool
    /// calls, and each batch of tool results. Send it back with a new user
    /// message to go on.
    pub messages: Vec<Message>,
    /// Tool calls made, in order.
    pub calls: Vec<ToolCall>,
    /// Model calls made.
    pub rounds: u32,
    /// Their cost in all, when every price was known.
    pub cost: Option<Usd>,
}

/// The tool results for `calls`, as one user message (Anthropic wants them
/// together; the other dialects split them as their APIs need).
pub fn tool_results(results: Vec<(String, String, bool)>) -> Message {
    Message {
        role: Role::User,
        content: results
            .into_iter()
            .map(|(call_id, content, is_error)| ContentPart::ToolResult {
                call_id,
                content,
                is_error,
            })
            .collect(),
    }
}

impl Client {
    /// Runs a tool loop on `model`: each round sends the conversation, and
    /// when the model calls tools, `run` is called once per call (its
    /// `Err` goes back to the model as a failed result) and the results are
    /// sent back. Stops when an answer has no tool calls; more than
    /// `max_rounds` rounds of calls is an error.
    pub async fn run_tools<F, Fut>(
        &self,
        model: &str,
        input: impl Into<Input>,
        options: &ChatOptions,
        max_rounds: u32,
        mut run: F,
    ) -> Result<ToolRun>
    where
        F: FnMut(ToolCall) -> Fut,
        Fut: Future<Output = std::result::Result<String, String>>,
    {
        let (mut messages, system) = input.into().into_messages()?;
        let mut options = options.clone();
        if let Some(s) = system {
            options.system = Some(match options.system.take() {
                Some(a) => format!("{a}\n\n{s}"),
                None => s,
            });
        }
        let mut calls = Vec::new();
        let mut cost = Some(Usd::ZERO);
        for round in 1..=max_rounds.saturating_add(1) {
            let reply = self
                .chat(model, Input::Conversation(messages.clone()), &options)
                .await?;
            cost = cost.zip(reply.cost).map(|(a, b)| a + b);
            messages.push(reply.assistant_message());
            if reply.tool_calls.is_empty() {
                return Ok(ToolRun {
                    reply,
                    messages,
                    calls,
                    rounds: round,
                    cost,
                });
            }
            if round > max_rounds {
                return Err(Error::new(
                    ErrorCode::NoAcceptableAnswer,
                    format!(
                        "the model still called tools after {max_rounds} round(s); raise the limit or check the tools' answers"
                    ),
                ));
            }
            let mut results = Vec::with_capacity(reply.tool_calls.len());
            for call in reply.tool_calls {
                let id = call.id.clone();
                calls.push(call.clone());
                let (content, is_error) = match run(call).await {
                    Ok(out) => (out, false),
                    Err(why) => (why, true),
                };
                results.push((id, content, is_error));
            }
            messages.push(tool_results(results));
        }
        unreachable!("the loop returns by round max_rounds + 1")
    }
}
