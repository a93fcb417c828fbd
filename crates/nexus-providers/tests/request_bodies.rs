//! Snapshots of the exact request each dialect sends: URL, header names and
//! JSON body, for a request that uses every feature.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_core::{
    ChatRequest, ContentPart, ImageSource, Message, ResponseFormat, Role, Secret, Tool, ToolCall,
};
use nexus_providers::anthropic::Anthropic;
use nexus_providers::dialect::{Dialect, HttpRequest};
use nexus_providers::gemini::Gemini;
use nexus_providers::openai::{Flavor, OpenAi};
use nexus_providers::Credential;
use serde_json::{json, Value};

fn rich_request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        system: Some("You are terse.".into()),
        messages: vec![
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::text("What is in this image, and what's the weather in Paris?"),
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentPart::text("Let me check."),
                    ContentPart::ToolCall(ToolCall {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        arguments: json!({"city": "Paris"}),
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![ContentPart::ToolResult {
                    call_id: "call_1".into(),
                    content: "18°C, cloudy".into(),
                    is_error: false,
                }],
            },
        ],
        max_tokens: Some(512),
        temperature: Some(0.2),
        tools: vec![Tool {
            name: "get_weather".into(),
            description: "Current weather for a city".into(),
            input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }],
        response_format: ResponseFormat::Text,
        stop: vec!["\n\nHuman:".into()],
    }
}

fn view(r: &HttpRequest) -> Value {
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|(k, v)| {
            // Credentials are shown masked: the snapshot checks where they go.
            let shown = if v.contains("sk-snap") {
                v.replace("sk-snap", "<KEY>")
            } else {
                v.clone()
            };
            json!([k, shown])
        })
        .collect();
    json!({
        "url": r.url,
        "headers": headers,
        "body": serde_json::from_slice::<Value>(r.body.as_deref().unwrap_or(b"null")).unwrap(),
    })
}

fn key() -> Credential {
    Credential::ApiKey(Secret::new("sk-snap"))
}

#[test]
fn anthropic_request() {
    let d = Anthropic::new("anthropic", "https://api.anthropic.com", key());
    insta::assert_json_snapshot!(view(
        &d.chat_request(&rich_request("claude-sonnet-4-5"), true)
            .unwrap()
    ));
}

#[test]
fn openai_request() {
    let d = OpenAi::new("openai", "https://api.openai.com/v1", key(), Flavor::OpenAi);
    insta::assert_json_snapshot!(view(
        &d.chat_request(&rich_request("gpt-4o"), true).unwrap()
    ));
}

#[test]
fn openrouter_request() {
    let d = OpenAi::new(
        "openrouter",
        "https://openrouter.ai/api/v1",
        key(),
        Flavor::OpenRouter,
    );
    insta::assert_json_snapshot!(view(
        &d.chat_request(&ChatRequest::new("auto:free", "hi"), false)
            .unwrap()
    ));
}

#[test]
fn gemini_request() {
    let d = Gemini::new("gemini", "https://generativelanguage.googleapis.com", key());
    insta::assert_json_snapshot!(view(
        &d.chat_request(&rich_request("gemini-2.5-flash"), true)
            .unwrap()
    ));
}

#[test]
fn json_modes() {
    let mut r = ChatRequest::new("m", "give json");
    r.response_format = ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: json!({"type": "object", "properties": {"ok": {"type": "boolean"}}}),
    };
    let o = OpenAi::new("openai", "http://x", Credential::None, Flavor::Compatible);
    let g = Gemini::new("gemini", "http://x", Credential::None);
    let a = Anthropic::new("anthropic", "http://x", Credential::None);
    insta::assert_json_snapshot!(json!({
        "openai": view(&o.chat_request(&r, false).unwrap())["body"],
        "gemini": view(&g.chat_request(&r, false).unwrap())["body"],
        "anthropic": view(&a.chat_request(&r, false).unwrap())["body"],
    }));
}

#[test]
fn debug_of_a_request_shows_no_credential() {
    let d = Anthropic::new("anthropic", "http://x", key());
    let r = d.chat_request(&ChatRequest::new("m", "x"), false).unwrap();
    assert!(!format!("{r:?}").contains("sk-snap"));
}
