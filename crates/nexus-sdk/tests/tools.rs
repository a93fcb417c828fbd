//! Tool calling and structured output end to end against the stand-ins for
//! Anthropic, OpenAI and Gemini, over real HTTP.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use nexus_sdk::{
    ChatOptions, Client, ClientOptions, ErrorCode, MemoryVault, ResponseFormat, StreamEvent, Tool,
    Vault,
};
use nexus_testkit::StandIn;
use serde_json::json;

fn client(s: &StandIn, home: &std::path::Path) -> Client {
    let vault: Arc<dyn Vault> = Arc::new(MemoryVault::new());
    Client::with_options(ClientOptions {
        home: Some(home.to_path_buf()),
        env: s.env("sk-sdk-test").into_iter().collect(),
        vault: Some(vault),
        ..Default::default()
    })
    .unwrap()
}

const MODELS: [&str; 3] = [
    "anthropic/claude-sonnet-4-5",
    "openai/gpt-4o-mini",
    "gemini/gemini-2.5-flash",
];

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: "The weather in a city".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_loop_runs_on_every_dialect() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    let c = client(&s, home.path());
    let opts = ChatOptions {
        tools: vec![weather_tool()],
        ..Default::default()
    };
    for model in MODELS {
        let run = c
            .run_tools(
                model,
                r#"tool get_weather {"city":"Paris"}"#,
                &opts,
                4,
                |call| async move {
                    assert_eq!(call.name, "get_weather");
                    let city = call.arguments["city"].as_str().unwrap_or("?").to_string();
                    Ok(format!("22C and sunny in {city}"))
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(
            run.reply.text, "the tool said: 22C and sunny in Paris",
            "{model}"
        );
        assert_eq!(run.calls.len(), 1, "{model}");
        assert_eq!(run.rounds, 2, "{model}");
        // user, assistant (tool call), tool results, assistant (answer).
        assert_eq!(run.messages.len(), 4, "{model}");
        assert!(run.cost.is_some(), "{model}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_tool_goes_back_as_an_error_and_rounds_are_bounded() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    let c = client(&s, home.path());
    let opts = ChatOptions {
        tools: vec![weather_tool()],
        ..Default::default()
    };
    let run = c
        .run_tools(
            MODELS[0],
            r#"tool get_weather {"city":"Atlantis"}"#,
            &opts,
            4,
            |_| async { Err("no such city".to_string()) },
        )
        .await
        .unwrap();
    assert_eq!(run.reply.text, "the tool said: no such city");
    let e = c
        .run_tools(
            MODELS[1],
            r#"tool get_weather {"city":"Paris"}"#,
            &opts,
            0,
            |_| async { Ok(String::new()) },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoAcceptableAnswer);
    assert!(e.message().contains("still called tools"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_tool_calls_arrive_whole() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    let c = client(&s, home.path());
    let opts = ChatOptions {
        tools: vec![weather_tool()],
        ..Default::default()
    };
    for model in MODELS {
        let mut st = c
            .stream(model, r#"tool get_weather {"city":"Oslo"}"#, &opts)
            .await
            .unwrap();
        let mut deltas = 0;
        while let Some(ev) = st.next().await {
            if matches!(ev.unwrap(), StreamEvent::ToolCallDelta { .. }) {
                deltas += 1;
            }
        }
        assert!(deltas >= 1, "{model}");
        let r = st.reply().unwrap();
        assert_eq!(r.tool_calls.len(), 1, "{model}");
        assert_eq!(
            r.tool_calls[0].arguments,
            json!({"city": "Oslo"}),
            "{model}"
        );
        assert_eq!(r.stop_reason, "tool_use", "{model}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn structured_output_is_native_where_it_can_be_and_always_checked() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    let c = client(&s, home.path());
    let schema = json!({
        "type": "object",
        "properties": {"echo": {"type": "string"}},
        "required": ["echo"],
        "additionalProperties": false
    });
    let opts = ChatOptions {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "echo".into(),
            schema,
        }),
        ..Default::default()
    };
    // OpenAI and Gemini take the schema natively (the stand-in answers JSON).
    for model in &MODELS[1..] {
        let r = c.chat(model, "structured please", &opts).await.unwrap();
        assert_eq!(
            r.json.as_ref().unwrap()["echo"],
            "structured please",
            "{model}"
        );
        let streamed = c
            .stream(model, "streamed too", &opts)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(streamed.json.unwrap()["echo"], "streamed too", "{model}");
    }
    // Anthropic has no native schema: the prompt asks, the answer is checked,
    // and plain text is a clear error.
    let e = c
        .chat(MODELS[0], "structured please", &opts)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoAcceptableAnswer);
    assert!(e.message().contains("not in the requested format"), "{e}");
    // JSON that breaks the schema names the place.
    let strict = ChatOptions {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type": "object", "required": ["answer"]}),
        }),
        ..Default::default()
    };
    let e = c.chat(MODELS[1], "x", &strict).await.unwrap_err();
    assert!(e.message().contains("`answer` is required"), "{e}");
}
