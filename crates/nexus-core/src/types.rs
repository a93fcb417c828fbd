//! Messages, chat requests and responses, usage and stream events.
//!
//! These are the provider-neutral shapes. Each provider translates them to and
//! from its own wire format; nothing here knows about HTTP.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::money::Usd;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person or program driving the conversation.
    User,
    /// The model.
    Assistant,
}

/// Where an image's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline base64 data with its media type (`image/png`, ...).
    Base64 {
        /// The MIME type, for example `image/png`.
        media_type: String,
        /// Base64 of the image bytes.
        data: String,
    },
    /// A URL the provider fetches itself.
    Url {
        /// The image URL.
        url: String,
    },
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
    },
    /// A tool call the assistant made.
    ToolCall(ToolCall),
    /// The result of a tool call, sent back by the user side.
    ToolResult {
        /// The id of the [`ToolCall`] this answers.
        call_id: String,
        /// The tool's output.
        content: String,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text { text: text.into() }
    }
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call; tool results refer to it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as JSON.
    pub arguments: Value,
}

/// One message in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its parts, in order.
    pub content: Vec<ContentPart>,
}

impl Message {
    /// A user message with one text part.
    pub fn user(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: vec![ContentPart::text(text)],
        }
    }

    /// An assistant message with one text part.
    pub fn assistant(text: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: vec![ContentPart::text(text)],
        }
    }

    /// The concatenation of the message's text parts.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text { text } = part {
                out.push_str(text);
            }
        }
        out
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The tool's name.
    pub name: String,
    /// What the tool does, for the model.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
}

/// The shape the answer must take.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text (the default).
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema {
        /// A name for the schema.
        name: String,
        /// The JSON Schema.
        schema: Value,
    },
}

/// A provider-neutral chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The provider's model id (without the `provider/` prefix).
    pub model: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The most tokens the answer may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// The shape of the answer.
    #[serde(default, skip_serializing_if = "is_text_format")]
    pub response_format: ResponseFormat,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

fn is_text_format(f: &ResponseFormat) -> bool {
    *f == ResponseFormat::Text
}

impl ChatRequest {
    /// A request for `model` with one user message.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        ChatRequest {
            model: model.into(),
            system: None,
            messages: vec![Message::user(prompt)],
            max_tokens: None,
            temperature: None,
            tools: Vec::new(),
            response_format: ResponseFormat::Text,
            stop: Vec::new(),
        }
    }

    /// Sets the system prompt.
    pub fn with_system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Sets `max_tokens`.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Every character of prompt text, for rough token estimates.
    pub fn prompt_chars(&self) -> usize {
        let mut n = self.system.as_ref().map_or(0, String::len);
        for m in &self.messages {
            for p in &m.content {
                n += match p {
                    ContentPart::Text { text } => text.len(),
                    ContentPart::ToolResult { content, .. } => content.len(),
                    ContentPart::ToolCall(c) => c.arguments.to_string().len() + c.name.len(),
                    ContentPart::Image { .. } => 4 * 1024,
                };
            }
        }
        n
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    #[default]
    EndTurn,
    /// It hit `max_tokens`.
    MaxTokens,
    /// It hit a stop sequence.
    StopSequence,
    /// It wants tool results.
    ToolUse,
    /// The provider filtered the content.
    ContentFilter,
    /// The model refused.
    Refusal,
    /// Any other reason, as the provider named it.
    Other(String),
}

/// Token counts for one call. Input excludes cached tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens billed at the input rate (cache reads and writes excluded).
    pub input_tokens: u64,
    /// Answer tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Of `output_tokens`, how many were reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Every token billed.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// Replaces each field of `self` with `other`'s where `other` has a
    /// non-zero value. Providers report usage cumulatively; the last report wins.
    pub fn merge_latest(&mut self, other: &Usage) {
        fn take(dst: &mut u64, src: u64) {
            if src != 0 {
                *dst = src;
            }
        }
        take(&mut self.input_tokens, other.input_tokens);
        take(&mut self.output_tokens, other.output_tokens);
        take(&mut self.cache_read_tokens, other.cache_read_tokens);
        take(&mut self.cache_write_tokens, other.cache_write_tokens);
        take(&mut self.reasoning_tokens, other.reasoning_tokens);
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answer's text parts, concatenated.
    pub text: String,
    /// Reasoning text, where the provider returns it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    /// Tool calls the model made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// The model that actually answered (OpenRouter's `auto` picks one).
    pub model: String,
    /// The provider's request id, for support tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Token counts.
    pub usage: Usage,
    /// Cost the provider reported itself (OpenRouter does), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_cost: Option<Usd>,
}

/// One event of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The stream started; names the model and the request id when known.
    Start {
        /// The model that answers.
        model: String,
        /// The provider's request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// More reasoning text.
    ReasoningDelta {
        /// The new text.
        text: String,
    },
    /// Part of a tool call. `id` and `name` come with the first delta of a call.
    ToolCallDelta {
        /// Which call (0-based, in order of appearance).
        index: u32,
        /// The call's id, on its first delta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The tool's name, on its first delta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A fragment of the JSON arguments.
        arguments: String,
    },
    /// Usage so far (cumulative: the last one wins).
    Usage {
        /// The counts.
        usage: Usage,
        /// Cost the provider reported, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Usd>,
    },
    /// The model stopped.
    Stop {
        /// Why.
        reason: StopReason,
    },
}

/// Folds stream events into a [`ChatResponse`].
///
/// ```
/// use nexus_core::{StreamAccumulator, StreamEvent, StopReason};
/// let mut acc = StreamAccumulator::new("m");
/// acc.push(&StreamEvent::TextDelta { text: "Hel".into() });
/// acc.push(&StreamEvent::TextDelta { text: "lo".into() });
/// acc.push(&StreamEvent::Stop { reason: StopReason::EndTurn });
/// assert_eq!(acc.finish().unwrap().text, "Hello");
/// ```
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    text: String,
    reasoning: String,
    calls: Vec<(Option<String>, Option<String>, String)>,
    stop: Option<StopReason>,
    model: String,
    request_id: Option<String>,
    usage: Usage,
    cost: Option<Usd>,
}

impl StreamAccumulator {
    /// Starts with the requested model name (replaced if the stream names another).
    pub fn new(model: impl Into<String>) -> Self {
        StreamAccumulator {
            model: model.into(),
            ..Default::default()
        }
    }

    /// Sets the request id (from a response header, say).
    pub fn set_request_id(&mut self, id: Option<String>) {
        if id.is_some() {
            self.request_id = id;
        }
    }

    /// Folds in one event.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Start { model, request_id } => {
                if !model.is_empty() {
                    self.model.clone_from(model);
                }
                if request_id.is_some() {
                    self.request_id.clone_from(request_id);
                }
            }
            StreamEvent::TextDelta { text } => self.text.push_str(text),
            StreamEvent::ReasoningDelta { text } => self.reasoning.push_str(text),
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let i = *index as usize;
                if self.calls.len() <= i {
                    self.calls.resize(i + 1, (None, None, String::new()));
                }
                let slot = &mut self.calls[i];
                if id.is_some() {
                    slot.0.clone_from(id);
                }
                if name.is_some() {
                    slot.1.clone_from(name);
                }
                slot.2.push_str(arguments);
            }
            StreamEvent::Usage { usage, cost } => {
                self.usage.merge_latest(usage);
                if cost.is_some() {
                    self.cost = *cost;
                }
            }
            StreamEvent::Stop { reason } => self.stop = Some(reason.clone()),
        }
    }

    /// Whether a `Stop` event was seen.
    pub fn is_complete(&self) -> bool {
        self.stop.is_some()
    }

    /// The finished response. Fails if a tool call's arguments are not JSON.
    pub fn finish(self) -> Result<ChatResponse, String> {
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for (i, (id, name, args)) in self.calls.into_iter().enumerate() {
            let arguments = if args.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_str(&args)
                    .map_err(|e| format!("tool call {i} has invalid JSON arguments: {e}"))?
            };
            tool_calls.push(ToolCall {
                id: id.unwrap_or_else(|| format!("call_{i}")),
                name: name.unwrap_or_default(),
                arguments,
            });
        }
        Ok(ChatResponse {
            text: self.text,
            reasoning: self.reasoning,
            tool_calls,
            stop_reason: self.stop.unwrap_or_default(),
            model: self.model,
            request_id: self.request_id,
            usage: self.usage,
            provider_cost: self.cost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_tool_calls_across_deltas() {
        let mut acc = StreamAccumulator::new("m");
        acc.push(&StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("c1".into()),
            name: Some("get_weather".into()),
            arguments: "{\"ci".into(),
        });
        acc.push(&StreamEvent::ToolCallDelta {
            index: 0,
            id: None,
            name: None,
            arguments: "ty\":\"Paris\"}".into(),
        });
        acc.push(&StreamEvent::Stop {
            reason: StopReason::ToolUse,
        });
        let r = acc.finish().expect("valid");
        assert_eq!(r.tool_calls[0].name, "get_weather");
        assert_eq!(r.tool_calls[0].arguments["city"], "Paris");
        assert_eq!(r.stop_reason, StopReason::ToolUse);
    }

    #[test]
    fn usage_last_report_wins_per_field() {
        let mut u = Usage {
            input_tokens: 10,
            output_tokens: 1,
            ..Default::default()
        };
        u.merge_latest(&Usage {
            output_tokens: 7,
            ..Default::default()
        });
        assert_eq!((u.input_tokens, u.output_tokens), (10, 7));
    }

    #[test]
    fn invalid_tool_json_is_reported() {
        let mut acc = StreamAccumulator::new("m");
        acc.push(&StreamEvent::ToolCallDelta {
            index: 0,
            id: None,
            name: Some("t".into()),
            arguments: "{oops".into(),
        });
        assert!(acc.finish().is_err());
    }
}
