//! Every way a provider fails, over real HTTP against the stand-ins: error
//! bodies, Retry-After in each form, errors in the middle of streams,
//! truncated and dropped streams, malformed JSON, slow drips and hangs.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nexus_core::{
    ChatRequest, ErrorKind, ProviderError, StopReason, StreamAccumulator, StreamEvent,
};
use nexus_testkit::{Api, Script, StandIn};

use common::*;

async fn collect(
    p: &dyn nexus_core::Provider,
    req: &ChatRequest,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut s = match p.stream(req).await {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut evs = Vec::new();
    while let Some(x) = s.next().await {
        match x {
            Ok(e) => evs.push(e),
            Err(e) => return (evs, Some(e)),
        }
    }
    (evs, None)
}

fn req(api: Api, prompt: &str) -> ChatRequest {
    ChatRequest::new(api.sample_model(), prompt)
}

#[tokio::test]
async fn rate_limit_is_retried_after_retry_after_seconds() {
    let s = StandIn::start().await;
    s.script(
        Api::OpenAi,
        [Script::StatusWithHeaders(
            429,
            vec![("retry-after".into(), "1".into())],
        )],
    );
    let p = provider(&s, Api::OpenAi).await;
    let t = Instant::now();
    let r = p.chat(&req(Api::OpenAi, "hi")).await.unwrap();
    assert_eq!(r.text, "echo: hi");
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(s.requests_for(Api::OpenAi).len(), 2);
}

#[tokio::test]
async fn retry_after_http_date_and_ms_are_honoured() {
    let s = StandIn::start().await;
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    s.script(
        Api::Anthropic,
        [
            Script::StatusWithHeaders(529, vec![("retry-after".into(), date)]),
            Script::StatusWithHeaders(
                429,
                vec![
                    ("retry-after-ms".into(), "300".into()),
                    ("retry-after".into(), "30".into()),
                ],
            ),
        ],
    );
    let p = provider(&s, Api::Anthropic).await;
    let t = Instant::now();
    let r = p.chat(&req(Api::Anthropic, "hi")).await.unwrap();
    assert_eq!(r.text, "echo: hi");
    // At least ~1s for the date (second resolution) plus 300 ms, and the
    // 30 s `retry-after` was overridden by `retry-after-ms`.
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(1250) && e < Duration::from_secs(10),
        "{e:?}"
    );
    assert_eq!(s.requests_for(Api::Anthropic).len(), 3);
}

#[tokio::test]
async fn anthropic_529_overloaded_is_typed_and_retried_until_the_limit() {
    let s = StandIn::start().await;
    s.script(
        Api::Anthropic,
        [
            Script::Status(529),
            Script::Status(529),
            Script::Status(529),
        ],
    );
    let p = provider(&s, Api::Anthropic).await;
    let e = p.chat(&req(Api::Anthropic, "hi")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert_eq!(e.status, Some(529));
    assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    assert_eq!(e.request_id.as_deref(), Some("req_011CStandIn"));
    assert_eq!(s.requests_for(Api::Anthropic).len(), 3, "1 try + 2 retries");
}

#[tokio::test]
async fn server_errors_retry_then_succeed_for_every_family() {
    for api in Api::ALL {
        let s = StandIn::start().await;
        s.script(api, [Script::Status(500), Script::Status(503)]);
        let p = provider(&s, api).await;
        let r = p.chat(&req(api, "after two failures")).await.unwrap();
        assert_eq!(r.text, "echo: after two failures", "{api:?}");
        assert_eq!(s.requests_for(api).len(), 3, "{api:?}");
    }
}

#[tokio::test]
async fn insufficient_quota_auth_and_4xx_are_never_retried() {
    let s = StandIn::start().await;
    s.script(Api::OpenAi, [Script::InsufficientQuota]);
    let p = provider(&s, Api::OpenAi).await;
    let e = p.chat(&req(Api::OpenAi, "hi")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::QuotaExceeded);
    assert_eq!(e.status, Some(429));
    assert_eq!(s.requests_for(Api::OpenAi).len(), 1);

    for (status, kind) in [
        (401, ErrorKind::Auth),
        (403, ErrorKind::Auth),
        (400, ErrorKind::InvalidRequest),
        (404, ErrorKind::InvalidRequest),
    ] {
        for api in [Api::Anthropic, Api::OpenAi, Api::Gemini, Api::OpenRouter] {
            let s = StandIn::start().await;
            s.script(api, [Script::Status(status)]);
            let p = provider(&s, api).await;
            let e = p.chat(&req(api, "hi")).await.unwrap_err();
            assert_eq!((e.kind, e.status), (kind, Some(status)), "{api:?} {status}");
            assert_eq!(s.requests_for(api).len(), 1, "{api:?} {status} retried");
        }
    }
}

#[tokio::test]
async fn x_should_retry_false_stops_retries() {
    let s = StandIn::start().await;
    s.script(
        Api::Anthropic,
        [Script::StatusWithHeaders(
            500,
            vec![("x-should-retry".into(), "false".into())],
        )],
    );
    let p = provider(&s, Api::Anthropic).await;
    assert_eq!(
        p.chat(&req(Api::Anthropic, "x")).await.unwrap_err().kind,
        ErrorKind::Server
    );
    assert_eq!(s.requests_for(Api::Anthropic).len(), 1);
}

#[tokio::test]
async fn context_window_errors_are_recognised() {
    let s = StandIn::start().await;
    s.script(
        Api::Anthropic,
        [Script::Raw(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215000 tokens > 200000 maximum"}}"#.into(),
        )],
    );
    s.script(
        Api::OpenAi,
        [Script::Raw(
            400,
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#.into(),
        )],
    );
    for api in [Api::Anthropic, Api::OpenAi] {
        let e = provider(&s, api)
            .await
            .chat(&req(api, "x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ContextWindowExceeded, "{api:?}");
    }
}

#[tokio::test]
async fn anthropic_error_event_mid_stream_is_delivered_and_not_retried() {
    let s = StandIn::start().await;
    s.script(Api::Anthropic, [Script::MidStreamError(4)]);
    let p = provider(&s, Api::Anthropic).await;
    let (evs, err) = collect(&*p, &req(Api::Anthropic, "a fairly long prompt to stream")).await;
    let err = err.expect("the error event must surface");
    assert_eq!(err.kind, ErrorKind::Overloaded);
    assert_eq!(err.code.as_deref(), Some("overloaded_error"));
    assert!(evs
        .iter()
        .any(|e| matches!(e, StreamEvent::TextDelta { .. })));
    assert_eq!(
        s.requests_for(Api::Anthropic).len(),
        1,
        "no retry after a delta"
    );
}

#[tokio::test]
async fn mid_stream_errors_in_every_family() {
    for api in Api::ALL {
        let s = StandIn::start().await;
        s.script(api, [Script::MidStreamError(3)]);
        let p = provider(&s, api).await;
        let (_evs, err) = collect(&*p, &req(api, "one two three four five six")).await;
        let err = err.unwrap_or_else(|| panic!("{api:?}: no error"));
        assert!(
            matches!(err.kind, ErrorKind::Overloaded | ErrorKind::Server),
            "{api:?}: {err}"
        );
        assert_eq!(s.requests_for(api).len(), 1, "{api:?}");
    }
}

#[tokio::test]
async fn an_error_before_any_delta_is_retried() {
    let s = StandIn::start().await;
    // message_start, then the error event: nothing of the answer was sent.
    s.script(Api::Anthropic, [Script::MidStreamError(0)]);
    let p = provider(&s, Api::Anthropic).await;
    let (evs, err) = collect(&*p, &req(Api::Anthropic, "retry me")).await;
    assert!(err.is_none(), "{err:?}");
    let mut acc = StreamAccumulator::new("m");
    evs.iter().for_each(|e| acc.push(e));
    assert_eq!(acc.finish().unwrap().text, "echo: retry me");
    assert_eq!(s.requests_for(Api::Anthropic).len(), 2);
}

#[tokio::test]
async fn truncated_streams_are_errors_in_every_family() {
    for api in Api::ALL {
        let s = StandIn::start().await;
        s.script(api, [Script::Truncate(3)]);
        let p = provider(&s, api).await;
        let (evs, err) = collect(&*p, &req(api, "one two three four five six seven")).await;
        let err = err.unwrap_or_else(|| panic!("{api:?}: truncation went unnoticed"));
        assert_eq!(err.kind, ErrorKind::Network, "{api:?}: {err}");
        assert!(
            !evs.iter().any(|e| matches!(e, StreamEvent::Stop { .. })),
            "{api:?}"
        );
    }
}

#[tokio::test]
async fn a_dropped_connection_mid_stream_is_a_network_error() {
    let s = StandIn::start().await;
    s.script(Api::OpenAi, [Script::Drop(2)]);
    let p = provider(&s, Api::OpenAi).await;
    let (_evs, err) = collect(&*p, &req(Api::OpenAi, "one two three four five")).await;
    assert_eq!(err.unwrap().kind, ErrorKind::Network);
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error() {
    for api in [Api::Anthropic, Api::OpenAi, Api::Gemini] {
        let s = StandIn::start().await;
        s.script(api, [Script::Malformed, Script::Malformed]);
        let p = provider(&s, api).await;
        let e = p.chat(&req(api, "x")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol, "{api:?}: {e}");
        let (_evs, err) = collect(&*p, &req(api, "x")).await;
        assert_eq!(err.unwrap().kind, ErrorKind::Protocol, "{api:?} stream");
    }
}

#[tokio::test]
async fn a_malformed_error_body_still_gives_a_typed_error() {
    let s = StandIn::start().await;
    s.script(
        Api::Gemini,
        [Script::Raw(403, "<html>Forbidden</html>".into())],
    );
    let e = provider(&s, Api::Gemini)
        .await
        .chat(&req(Api::Gemini, "x"))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Auth, Some(403)));
    assert!(e.message.contains("Forbidden"));
}

#[tokio::test]
async fn a_slow_drip_under_the_idle_timeout_completes() {
    let s = StandIn::start().await;
    s.script(Api::Gemini, [Script::Drip(Duration::from_millis(30))]);
    let p = provider(&s, Api::Gemini).await;
    let (evs, err) = collect(&*p, &req(Api::Gemini, "slowly now")).await;
    assert!(err.is_none(), "{err:?}");
    assert!(matches!(evs.last(), Some(StreamEvent::Stop { .. })));
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let s = StandIn::start().await;
    s.script(Api::OpenAi, [Script::Drip(Duration::from_millis(800))]);
    let mut opts = fast_opts();
    opts.stream_idle_timeout = Duration::from_millis(300);
    opts.retry.max_retries = 0;
    let p = provider_with(&s, Api::OpenAi, opts).await;
    let (_evs, err) = collect(&*p, &req(Api::OpenAi, "x")).await;
    let err = err.unwrap();
    assert_eq!(err.kind, ErrorKind::Timeout);
}

#[tokio::test]
async fn a_hung_server_hits_the_request_timeout() {
    let s = StandIn::start().await;
    s.script(Api::Anthropic, [Script::Hang, Script::Hang]);
    let mut opts = fast_opts();
    opts.request_timeout = Duration::from_millis(300);
    opts.retry.max_retries = 0;
    let p = provider_with(&s, Api::Anthropic, opts.clone()).await;
    let e = p.chat(&req(Api::Anthropic, "x")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    let (_evs, err) = collect(&*p, &req(Api::Anthropic, "x")).await;
    assert_eq!(err.unwrap().kind, ErrorKind::Timeout);
}

#[tokio::test]
async fn connection_refused_is_a_network_error_and_is_retried() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = env_of(vec![
        (
            "OPENAI_BASE_URL".into(),
            format!("http://127.0.0.1:{port}/v1"),
        ),
        ("OPENAI_API_KEY".into(), KEY.into()),
    ]);
    let reg = nexus_providers::Registry::new(nexus_core::Config::default(), env)
        .with_http_options(fast_opts());
    let e = reg
        .provider("openai")
        .unwrap()
        .chat(&req(Api::OpenAi, "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
}

#[tokio::test]
async fn openrouter_auto_reports_the_model_used_and_its_cost() {
    let s = StandIn::start().await;
    let p = provider(&s, Api::OpenRouter).await;
    for model in ["openrouter/auto", "auto", "auto:free"] {
        let r = p
            .chat(&ChatRequest::new(model, "pick for me"))
            .await
            .unwrap();
        assert_ne!(r.model, model, "reports the model actually used");
        assert!(r.provider_cost.is_some());
        let (evs, err) = collect(&*p, &ChatRequest::new(model, "pick for me")).await;
        assert!(err.is_none());
        let mut acc = StreamAccumulator::new(model);
        evs.iter().for_each(|e| acc.push(e));
        let streamed = acc.finish().unwrap();
        assert_eq!(streamed.model, r.model);
        assert_eq!(streamed.provider_cost, r.provider_cost);
    }
    let sent: Vec<String> = s
        .requests_for(Api::OpenRouter)
        .iter()
        .map(|r| r.body["model"].as_str().unwrap().to_string())
        .collect();
    assert!(
        sent.iter().all(|m| m.starts_with("openrouter/auto")),
        "{sent:?}"
    );
}

#[tokio::test]
async fn streams_ask_for_usage_and_report_it() {
    let s = StandIn::start().await;
    for api in [Api::OpenAi, Api::Xai, Api::DeepSeek, Api::Compatible] {
        let p = provider(&s, api).await;
        let (evs, err) = collect(&*p, &req(api, "count these words")).await;
        assert!(err.is_none());
        let usage = evs.iter().find_map(|e| match e {
            StreamEvent::Usage { usage, .. } => Some(*usage),
            _ => None,
        });
        assert!(usage.unwrap().output_tokens > 0, "{api:?}");
        let recorded = s.requests_for(api);
        let body = &recorded.last().unwrap().body;
        assert_eq!(body["stream_options"]["include_usage"], true, "{api:?}");
        assert!(matches!(
            evs.last(),
            Some(StreamEvent::Stop {
                reason: StopReason::EndTurn
            })
        ));
    }
}

#[tokio::test]
async fn the_key_never_appears_in_errors_or_debug_output() {
    let s = StandIn::start().await;
    let echoed = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {KEY}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
    );
    s.script(Api::OpenAi, [Script::Raw(401, echoed)]);
    let p = provider(&s, Api::OpenAi).await;
    let e = p.chat(&req(Api::OpenAi, "x")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    let all = format!("{e} {e:?} {p:?} {}", serde_json::to_string(&e).unwrap());
    assert!(!all.contains(KEY), "{all}");
    assert!(all.contains("[REDACTED]"));
}

#[tokio::test]
async fn list_models_for_each_family() {
    let s = StandIn::start().await;
    s.require_key(KEY);
    for api in Api::ALL {
        let m = provider(&s, api).await.list_models().await.unwrap();
        assert!(!m.is_empty(), "{api:?}");
    }
    let anthropic = provider(&s, Api::Anthropic)
        .await
        .list_models()
        .await
        .unwrap();
    assert_eq!(anthropic[0].id, "claude-sonnet-4-5");
    let gemini = provider(&s, Api::Gemini).await.list_models().await.unwrap();
    assert_eq!(gemini[0].id, "gemini-2.5-flash");
}

#[tokio::test]
async fn catalog_update_validates_caches_and_falls_back() {
    use nexus_core::NexusHome;
    use nexus_providers::catalog;
    let s = StandIn::start().await;
    let dir = tempfile_dir();
    let home = NexusHome::at(&dir);
    let client = nexus_providers::client::build_client(&fast_opts()).unwrap();
    let base = format!("http://{}", s.addr());

    // A newer, valid catalog is cached and then used.
    let mut file = catalog::embedded().file().clone();
    file.updated = "2099-01-01".into();
    s.serve_static("/good.json", 200, serde_json::to_string(&file).unwrap());
    let r = catalog::update(&client, &format!("{base}/good.json"), &home)
        .await
        .unwrap();
    assert_eq!(r.updated, "2099-01-01");
    let (c, src, warn) = catalog::load(&home);
    assert!(matches!(src, catalog::CatalogSource::Cached(_)) && warn.is_none());
    assert_eq!(c.file().updated, "2099-01-01");

    // Bad ones are refused and change nothing.
    let mut tiny = file.clone();
    tiny.models.truncate(3);
    s.serve_static("/tiny.json", 200, serde_json::to_string(&tiny).unwrap());
    s.serve_static("/broken.json", 200, "{\"schema_version\": 1, \"models\": [");
    s.serve_static("/gone.json", 404, "not here");
    for (path, why) in [
        ("tiny", "fewer than"),
        ("broken", "not valid"),
        ("gone", "HTTP 404"),
    ] {
        let e = catalog::update(&client, &format!("{base}/{path}.json"), &home)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(why) && e.contains("stays in use"), "{path}: {e}");
        assert_eq!(
            catalog::load(&home).0.file().updated,
            "2099-01-01",
            "{path} changed the cache"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "nexus-cat-update-{}-{}",
        std::process::id(),
        line!()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
