//! The SDK end to end against the local provider stand-ins over real HTTP.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use nexus_sdk::{
    AskOptions, ChatOptions, Client, ClientOptions, ErrorCode, Input, MemoryVault, StreamEvent,
    Vault,
};
use nexus_testkit::{Api, Script, StandIn};

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

#[tokio::test(flavor = "multi_thread")]
async fn chat_returns_text_usage_model_and_cost() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    let c = client(&s, home.path());
    let r = c
        .chat("openai/gpt-4o-mini", "hello there", &ChatOptions::default())
        .await
        .unwrap();
    assert_eq!(r.text, "echo: hello there");
    assert_eq!(r.provider, "openai");
    assert_eq!(r.model, "gpt-4o-mini");
    assert!(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    assert!(r.cost.unwrap().dollars() > 0.0);
    assert_eq!(r.stop_reason, "end_turn");

    // A conversation with a system turn.
    let convo = Input::Messages(vec![
        ("system".into(), "be brief".into()),
        ("user".into(), "one".into()),
        ("assistant".into(), "two".into()),
        ("user".into(), "three".into()),
    ]);
    let r = c
        .chat("anthropic/claude-haiku-4-5", convo, &ChatOptions::default())
        .await
        .unwrap();
    assert_eq!(r.text, "echo: three");
    let sent = &s.requests_for(Api::Anthropic)[0].body;
    assert_eq!(sent["system"], "be brief");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3);

    let bad = Input::Messages(vec![("robot".into(), "x".into())]);
    let e = c
        .chat("openai/gpt-4o-mini", bad, &ChatOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_yields_events_then_the_whole_reply() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    let c = client(&s, home.path());
    for model in [
        "anthropic/claude-haiku-4-5",
        "openai/gpt-4o-mini",
        "gemini/gemini-2.5-flash",
    ] {
        let mut st = c
            .stream(model, "stream me please", &ChatOptions::default())
            .await
            .unwrap();
        let mut text = String::new();
        while let Some(ev) = st.next().await {
            if let StreamEvent::TextDelta { text: t } = ev.unwrap() {
                text.push_str(&t);
            }
        }
        assert_eq!(text, "echo: stream me please", "{model}");
        let r = st.reply().unwrap();
        assert_eq!(r.text, text);
        assert!(r.cost.is_some(), "{model}");
    }

    // An error in the middle of the stream ends it with a typed error.
    s.script(Api::OpenAi, [Script::MidStreamError(2)]);
    let mut st = c
        .stream("openai/gpt-4o-mini", "x y z", &ChatOptions::default())
        .await
        .unwrap();
    let mut err = None;
    while let Some(ev) = st.next().await {
        if let Err(e) = ev {
            err = Some(e);
        }
    }
    assert!(err.is_some());
    assert!(st.reply().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_carry_their_class_and_retry_after() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[http]\nmax_retries = 0\n").unwrap();
    let c = client(&s, home.path());
    s.script(
        Api::OpenAi,
        [Script::StatusWithHeaders(
            429,
            vec![("retry-after".into(), "7".into())],
        )],
    );
    let e = c
        .chat("openai/gpt-4o-mini", "hi", &ChatOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
    assert_eq!(e.provider(), Some("openai"));
    assert_eq!(e.status(), Some(429));
    assert!(e.provider_error().is_some());

    s.script(Api::Anthropic, [Script::Status(401)]);
    let e = c
        .chat("anthropic/claude-haiku-4-5", "hi", &ChatOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Auth);
    assert!(!e.message().contains("sk-sdk-test"));

    let e = c
        .chat("nosuch/model", "hi", &ChatOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Config, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_escalates_and_records_stats() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[http]\nmax_retries = 0\n").unwrap();
    let c = client(&s, home.path());
    let h = c
        .set_tiers(
            "coding",
            &[
                "tier1=anthropic/claude-haiku-4-5".into(),
                "tier2=gpt-4o-mini".into(),
                "tier3=disabled".into(),
            ],
        )
        .unwrap();
    assert_eq!(h.preset, "custom");
    assert_eq!(h.categories["coding"].len(), 2);

    let route = c.route("write a parser", Some("coding")).unwrap();
    assert_eq!(route.tier, Some(1));
    assert_eq!(route.model.as_deref(), Some("anthropic/claude-haiku-4-5"));
    assert_eq!(
        c.classify("[review] look at this").unwrap(),
        ("review".to_string(), "tag".to_string())
    );

    s.script(Api::Anthropic, [Script::Status(500)]);
    let opts = AskOptions {
        category: Some("coding".into()),
        ..Default::default()
    };
    let a = c.ask("write a parser", &opts).await.unwrap();
    assert_eq!(a.tier, 2);
    assert_eq!(a.escalations, 1);
    assert_eq!(a.reply.text, "echo: write a parser");
    assert_eq!(a.attempts.len(), 2);
    assert_eq!(a.attempts[0].outcome, "error");
    assert_eq!(a.attempts[0].error_kind.as_deref(), Some("server"));
    assert!(a.total_cost.dollars() > 0.0);

    // Both tiers fail: no acceptable answer, with the attempts and the cause.
    s.script(Api::Anthropic, [Script::Status(500)]);
    s.script(
        Api::OpenAi,
        [Script::StatusWithHeaders(
            429,
            vec![("retry-after".into(), "3".into())],
        )],
    );
    let e = c.ask("write a parser", &opts).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoAcceptableAnswer, "{e}");
    assert_eq!(e.attempts().len(), 2);
    assert_eq!(e.provider_error().unwrap().status, Some(429));

    let st = c.stats(1).unwrap();
    assert_eq!(st.categories[0].category, "coding");
    assert_eq!(st.categories[0].requests, 2);
    assert!(c.spent_today().unwrap().dollars() > 0.0);

    // A zero budget sends nothing.
    std::fs::write(
        home.path().join("config.toml"),
        "[http]\nmax_retries = 0\n[policy]\ndaily_budget = 0.0\n",
    )
    .unwrap();
    let c = client(&s, home.path());
    let before = s.requests().len();
    let e = c
        .ask(
            "write a parser",
            &AskOptions {
                category: Some("coding".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BudgetExceeded, "{e}");
    assert_eq!(s.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn presets_and_the_vault() {
    let s = StandIn::start().await;
    let home = tempfile::tempdir().unwrap();
    let c = client(&s, home.path());
    let names: Vec<String> = c.presets().into_iter().map(|p| p.name).collect();
    assert!(names.contains(&"balanced".to_string()));
    let h = c.use_preset("budget").unwrap();
    assert_eq!(h.preset, "budget");
    assert!(h.saved);
    assert!(!h.categories["daily"].is_empty());
    assert!(c.use_preset("nope").is_err());
    // Saved: a new client sees it.
    assert_eq!(
        client(&s, home.path()).hierarchy().unwrap().preset,
        "budget"
    );

    let v = c.vault().unwrap();
    assert_eq!(v.backend(), "memory");
    v.set("app/token", "t0k3n").unwrap();
    v.set_key("openai", "sk-stored").unwrap();
    assert_eq!(v.get("app/token").unwrap().unwrap().expose(), "t0k3n");
    assert_eq!(
        v.list("").unwrap(),
        vec![
            "app/token".to_string(),
            "provider/openai/api_key".to_string()
        ]
    );
    assert!(v.delete("app/token").unwrap());
    assert!(v.get("app/token").unwrap().is_none());
    let e = v.set("no-namespace", "x").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Config);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_in_the_given_vault_is_used() {
    let s = StandIn::start().await;
    s.require_key("sk-from-vault");
    let home = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemoryVault::new());
    let env = s
        .env("unused")
        .into_iter()
        .filter(|(k, _)| !k.ends_with("_API_KEY"))
        .collect();
    let c = Client::with_options(ClientOptions {
        home: Some(home.path().to_path_buf()),
        env,
        vault: Some(vault.clone()),
        ..Default::default()
    })
    .unwrap();
    c.vault()
        .unwrap()
        .set_key("openai", "sk-from-vault")
        .unwrap();
    let r = c
        .chat("openai/gpt-4o-mini", "hi", &ChatOptions::default())
        .await
        .unwrap();
    assert_eq!(r.text, "echo: hi");
}

#[test]
fn flat_events_and_class_names_are_what_the_bindings_show() {
    use nexus_sdk::FlatEvent;
    let f = FlatEvent::from(StreamEvent::Stop {
        reason: nexus_core::StopReason::MaxTokens,
    });
    assert_eq!(
        (f.kind, f.stop_reason.as_deref()),
        ("stop", Some("max_tokens"))
    );
    let f = FlatEvent::from(StreamEvent::TextDelta { text: "hi".into() });
    assert_eq!((f.kind, f.text.as_deref()), ("text", Some("hi")));
    let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.class_name()).collect();
    assert_eq!(names.len(), 13);
    assert!(names.iter().all(|n| n.ends_with("Error")
        || n.starts_with("BudgetExceeded")
        || *n == "NoAcceptableAnswer"));
    // Python's nexus.errors defines every one of them.
    let errors = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../bindings/python/python/nexus/errors.py"),
    )
    .unwrap();
    for n in names {
        assert!(
            errors.contains(&format!("class {n}(")),
            "nexus.errors lacks {n}"
        );
    }
}
