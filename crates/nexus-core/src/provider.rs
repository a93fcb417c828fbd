//! The `Provider` trait and its in-memory implementation.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_core::Stream;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, ProviderError};
use crate::types::{ChatRequest, ChatResponse, Role, StopReason, StreamEvent, ToolCall, Usage};
use crate::ContentPart;

/// A stream of events from one streamed call.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// A model a provider says it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteModel {
    /// The id to send.
    pub id: String,
    /// A name for people, when the provider gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A model provider: one typed client per API.
///
/// Implementations translate [`ChatRequest`] to their wire format and back.
/// `chat` and `stream` must agree: folding `stream`'s events with a
/// [`StreamAccumulator`](crate::StreamAccumulator) gives what `chat` returns.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider's name (`anthropic`, `openai`, ...).
    fn name(&self) -> &str;

    /// Sends a request and waits for the whole answer.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Sends a request and streams the answer. Errors before the first event
    /// come back here; later ones arrive in the stream.
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError>;

    /// The models the provider serves right now.
    async fn list_models(&self) -> Result<Vec<RemoteModel>, ProviderError>;
}

#[async_trait]
impl<P: Provider + ?Sized> Provider for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        (**self).chat(request).await
    }
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        (**self).stream(request).await
    }
    async fn list_models(&self) -> Result<Vec<RemoteModel>, ProviderError> {
        (**self).list_models().await
    }
}

/// What a [`MemoryProvider`] does with the next request.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Answer with this text.
    Reply {
        /// The answer.
        text: String,
        /// Why it stops.
        stop: StopReason,
        /// The usage to report.
        usage: Usage,
    },
    /// Fail with this error.
    Fail(ProviderError),
}

impl Scripted {
    /// A normal text answer with usage counted in words.
    pub fn reply(text: impl Into<String>) -> Self {
        let text = text.into();
        let words = text.split_whitespace().count() as u64;
        Scripted::Reply {
            text,
            stop: StopReason::EndTurn,
            usage: Usage {
                input_tokens: 10,
                output_tokens: words.max(1),
                ..Default::default()
            },
        }
    }

    /// A failure of `kind`.
    pub fn fail(kind: ErrorKind, message: impl Into<String>) -> Self {
        Scripted::Fail(ProviderError::new(kind, "memory", message))
    }
}

/// An in-memory provider for tests and offline use.
///
/// It answers from a script queue, and when the queue is empty it follows the
/// [echo protocol](crate::conformance): `echo: PROMPT`, tool calls on
/// `tool NAME JSON`, provider errors on `fail STATUS`. It records every
/// request it receives.
#[derive(Debug, Clone, Default)]
pub struct MemoryProvider {
    name: String,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    seen: Arc<Mutex<Vec<ChatRequest>>>,
}

impl MemoryProvider {
    /// A provider called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryProvider {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Queues the outcome of a future request.
    pub fn push(&self, s: Scripted) -> &Self {
        lock(&self.script).push_back(s);
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.seen).clone()
    }

    fn next(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        lock(&self.seen).push(request.clone());
        let scripted = lock(&self.script).pop_front();
        let (text, stop, usage, tool_calls) = match scripted {
            Some(Scripted::Fail(mut e)) => {
                e.provider.clone_from(&self.name);
                return Err(e);
            }
            Some(Scripted::Reply { text, stop, usage }) => (text, stop, usage, Vec::new()),
            None => match crate::conformance::echo_answer(request) {
                crate::conformance::EchoAnswer::Text(t) => {
                    let usage = crate::conformance::echo_usage(request, &t);
                    (t, StopReason::EndTurn, usage, Vec::new())
                }
                crate::conformance::EchoAnswer::Tool(call) => {
                    let usage = crate::conformance::echo_usage(request, "");
                    (String::new(), StopReason::ToolUse, usage, vec![call])
                }
                crate::conformance::EchoAnswer::Fail(status) => {
                    return Err(ProviderError::new(
                        crate::conformance::kind_for_status(status),
                        self.name.clone(),
                        format!("scripted failure {status}"),
                    )
                    .with_status(status));
                }
            },
        };
        Ok(ChatResponse {
            text,
            reasoning: String::new(),
            tool_calls,
            stop_reason: stop,
            model: request.model.clone(),
            request_id: Some(format!("mem-{}", lock(&self.seen).len())),
            usage,
            provider_cost: None,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Turns a complete response into the events a stream would have produced.
pub fn response_to_events(r: &ChatResponse) -> Vec<StreamEvent> {
    let mut ev = vec![StreamEvent::Start {
        model: r.model.clone(),
        request_id: r.request_id.clone(),
    }];
    let mut rest = r.text.as_str();
    while !rest.is_empty() {
        let cut = rest.char_indices().nth(8).map_or(rest.len(), |(i, _)| i);
        ev.push(StreamEvent::TextDelta {
            text: rest[..cut].to_string(),
        });
        rest = &rest[cut..];
    }
    for (i, c) in r.tool_calls.iter().enumerate() {
        ev.push(StreamEvent::ToolCallDelta {
            index: i as u32,
            id: Some(c.id.clone()),
            name: Some(c.name.clone()),
            arguments: c.arguments.to_string(),
        });
    }
    ev.push(StreamEvent::Usage {
        usage: r.usage,
        cost: r.provider_cost,
    });
    ev.push(StreamEvent::Stop {
        reason: r.stop_reason.clone(),
    });
    ev
}

#[async_trait]
impl Provider for MemoryProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.next(request)
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let r = self.next(request)?;
        let events: Vec<Result<StreamEvent, ProviderError>> =
            response_to_events(&r).into_iter().map(Ok).collect();
        Ok(Box::pin(futures_util::stream::iter(events)))
    }

    async fn list_models(&self) -> Result<Vec<RemoteModel>, ProviderError> {
        Ok(vec![RemoteModel {
            id: "echo".into(),
            display_name: Some("Echo".into()),
        }])
    }
}

/// The last user message's text, used by the echo protocol.
pub(crate) fn last_user_text(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| {
            m.content
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default()
}

pub(crate) fn parse_tool_prompt(prompt: &str) -> Option<ToolCall> {
    let rest = prompt.strip_prefix("tool ")?;
    let (name, json) = rest.split_once(' ')?;
    let arguments = serde_json::from_str(json).ok()?;
    Some(ToolCall {
        id: "call_echo_1".into(),
        name: name.to_string(),
        arguments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::provider_conformance_tests!(async {
        (MemoryProvider::new("memory"), "echo".to_string())
    });

    #[tokio::test]
    async fn script_runs_before_echo_and_records_requests() {
        let p = MemoryProvider::new("m");
        p.push(Scripted::fail(ErrorKind::Server, "boom"))
            .push(Scripted::reply("scripted"));
        let req = ChatRequest::new("x", "hi");
        assert_eq!(p.chat(&req).await.unwrap_err().kind, ErrorKind::Server);
        assert_eq!(p.chat(&req).await.unwrap().text, "scripted");
        assert_eq!(p.chat(&req).await.unwrap().text, "echo: hi");
        assert_eq!(p.requests().len(), 3);
    }
}
