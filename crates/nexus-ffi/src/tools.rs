//! Tools across the FFI: definitions, conversations with tool calls as
//! JSON, and the tool loop with a Swift/Kotlin handler.

use std::sync::Arc;

use nexus_sdk as sdk;

use crate::types::{self, ChatOptions, Reply, ToolCall};
use crate::{Client, NexusError, Result};

/// A tool the model may call.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    #[uniffi(default = "")]
    pub description: String,
    /// JSON Schema of its arguments, as JSON text.
    pub input_schema_json: String,
}

/// What a tool handler returns.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ToolOutput {
    /// The result the model reads.
    pub content: String,
    /// Whether the tool failed (the model is told so).
    #[uniffi(default = false)]
    pub is_error: bool,
}

/// Runs tools for [`Client::run_tools`], in Swift or Kotlin.
#[uniffi::export(with_foreign)]
pub trait ToolHandler: Send + Sync {
    /// Runs the tool `name` with its arguments (JSON text).
    fn call(&self, name: String, arguments_json: String) -> ToolOutput;
}

/// What [`Client::run_tools`] gives back.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ToolRun {
    /// The final answer.
    pub reply: Reply,
    /// The whole conversation as JSON: send it back (with a new user
    /// message) through `chat_conversation` to go on.
    pub messages_json: String,
    /// Every tool call, in order.
    pub calls: Vec<ToolCall>,
    /// Model calls made.
    pub rounds: u32,
    /// Dollars in all, when every price was known.
    pub cost: Option<f64>,
}

#[uniffi::export(async_runtime = "tokio")]
impl Client {
    /// One call to `model` with a conversation as JSON: a list of
    /// `{"role": "user" | "assistant", "content": TEXT | [PART]}` where a
    /// part is `{"type": "text" | "tool_call" | "tool_result", ...}`.
    pub async fn chat_conversation(
        &self,
        model: String,
        conversation_json: String,
        options: ChatOptions,
    ) -> Result<Reply> {
        let value: serde_json::Value =
            serde_json::from_str(&conversation_json).map_err(|e| NexusError::InvalidRequest {
                message: format!("conversation_json is not JSON: {e}"),
            })?;
        let input = sdk::Input::from_json(&value)?;
        let r = self
            .inner
            .chat(&model, input, &types::chat_options(options)?)
            .await?;
        Ok(types::reply(r))
    }

    /// Runs a tool loop: each call the model makes goes to `handler`, its
    /// output goes back, until an answer has no tool calls (at most
    /// `max_rounds` rounds of calls).
    pub async fn run_tools(
        &self,
        model: String,
        prompt: String,
        options: ChatOptions,
        handler: Arc<dyn ToolHandler>,
        max_rounds: u32,
    ) -> Result<ToolRun> {
        let opts = types::chat_options(options)?;
        let run = self
            .inner
            .run_tools(&model, prompt, &opts, max_rounds, |call| {
                let h = handler.clone();
                async move {
                    let out = h.call(call.name, call.arguments.to_string());
                    if out.is_error {
                        Err(out.content)
                    } else {
                        Ok(out.content)
                    }
                }
            })
            .await?;
        Ok(ToolRun {
            messages_json: serde_json::to_string(&run.messages).unwrap_or_default(),
            calls: run.calls.into_iter().map(types::tool_call).collect(),
            rounds: run.rounds,
            cost: run.cost.map(|c| c.dollars()),
            reply: types::reply(run.reply),
        })
    }
}
