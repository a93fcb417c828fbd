//! The `nexus` binary as a user runs it: a clean environment, a temporary
//! NEXUS_HOME, and providers pointed at the local stand-ins over real HTTP.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_testkit::{Api, Script, StandIn};

mod common;

use common::{stderr, stdout, Run};

#[tokio::test(flavor = "multi_thread")]
async fn version_and_help() {
    let r = Run::new();
    let o = r.run(&["--version"]).await;
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("nexus {}", env!("CARGO_PKG_VERSION"))
    );
    let help = stdout(&r.run(&["--help"]).await);
    assert!(
        help.contains("Exit codes:") && help.contains("missing API key"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn models_list_works_offline() {
    let r = Run::new();
    let o = r.run(&["models", "list", "--provider", "anthropic"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
    let o = r.run(&["models", "list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.as_array().unwrap().len() >= 40);
    assert!(v[0]["pricing"]["input"].is_number());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_key_names_the_variable_with_its_own_exit_code() {
    let r = Run::new();
    let o = r.run(&["chat", "-m", "openai/gpt-4o", "hi"]).await;
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("set OPENAI_API_KEY"), "{}", stderr(&o));
    let o = r.run(&["chat", "hi"]).await;
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("ANTHROPIC_API_KEY"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_models_and_providers_are_config_errors_with_suggestions() {
    let r = Run::new();
    let o = r.run(&["chat", "-m", "claude-sonet-4-5", "hi"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("claude-sonnet-4-5"), "{}", stderr(&o));
    let o = r
        .run(&["models", "list", "--provider", "nope", "--json"])
        .await;
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["error"]["class"], "config");
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_streams_with_every_provider() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    for api in Api::ALL {
        let model = format!("{}/{}", api.provider(), api.sample_model());
        let o = r.run(&["chat", "-m", &model, "hello from the cli"]).await;
        assert!(o.status.success(), "{api:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "echo: hello from the cli\n", "{api:?}");
        let body = s.requests_for(api).last().unwrap().body.clone();
        assert!(
            body.get("stream") == Some(&serde_json::Value::Bool(true)) || api == Api::Gemini,
            "{api:?} did not stream"
        );
    }
    let gemini = s.requests_for(Api::Gemini);
    assert!(gemini
        .last()
        .unwrap()
        .path
        .contains(":streamGenerateContent?alt=sse"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_json_reports_usage_model_and_cost() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let o = r
        .run(&[
            "chat",
            "-m",
            "sonnet",
            "--json",
            "--system",
            "be brief",
            "two words",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["text"], "echo: two words");
    assert_eq!(v["provider"], "anthropic");
    assert_eq!(v["request_id"], "req_011CStandIn");
    // 4 input words at $3/M + 3 output words at $15/M = $0.000057, exactly.
    assert_eq!(v["usage"]["input_tokens"], 4);
    assert_eq!(v["usage"]["output_tokens"], 3);
    assert_eq!(v["cost_usd"], 0.000057);
    let sent = &s.requests_for(Api::Anthropic)[0].body;
    assert_eq!(sent["system"], "be brief");

    let o = r
        .run(&[
            "chat",
            "-m",
            "openrouter/auto:free",
            "--no-stream",
            "--json",
            "x",
        ])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["model"], "meta-llama/llama-3.3-70b-instruct:free");
    assert!(
        v["cost_usd"].as_f64().unwrap() > 0.0,
        "provider-reported cost wins"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_from_stdin() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let o = r
        .run_stdin(&["chat", "-m", "openai/gpt-4o", "-"], Some("piped prompt"))
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "echo: piped prompt\n");
    let o = r
        .run_stdin(&["chat", "-m", "openai/gpt-4o", "-"], Some("  "))
        .await;
    assert_eq!(o.status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_errors_map_to_distinct_exit_codes() {
    let cases: &[(Script, i32)] = &[
        (Script::Status(401), 10),
        (
            Script::StatusWithHeaders(429, vec![("retry-after".into(), "600".into())]),
            11,
        ),
        (Script::InsufficientQuota, 12),
        (Script::Status(400), 15),
        (Script::Malformed, 20),
    ];
    for (script, code) in cases {
        let s = StandIn::start().await;
        s.script(Api::OpenAi, [script.clone()]);
        let r = Run::with_standin(&s);
        let o = r
            .run(&["chat", "-m", "openai/gpt-4o", "--no-stream", "--json", "x"])
            .await;
        assert_eq!(o.status.code(), Some(*code), "{script:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["exit_code"], *code);
        assert!(!stdout(&o).contains("sk-cli-test-key") && !stderr(&o).contains("sk-cli-test-key"));
    }
    let s = StandIn::start().await;
    s.script(Api::Anthropic, [Script::MidStreamError(3)]);
    let r = Run::with_standin(&s);
    let o = r.run(&["chat", "-m", "sonnet", "a b c d e f g h"]).await;
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("echo"),
        "partial text was shown: {}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_path_set_show_unset() {
    let r = Run::new();
    let o = r.run(&["config", "path"]).await;
    assert!(stdout(&o).trim().ends_with("nexus/config.toml"));
    let o = r
        .run(&[
            "config",
            "set",
            "providers.openai.base_url",
            "http://localhost:9/v1",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    r.run(&["config", "set", "http.max_retries", "4"]).await;
    let o = r.run(&["config", "show", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["providers"]["openai"]["base_url"],
        "http://localhost:9/v1"
    );
    assert_eq!(v["http"]["max_retries"], 4);
    let o = r.run(&["providers", "list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let openai = v
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap();
    assert_eq!(openai["base_url"], "http://localhost:9/v1");
    let o = r.run(&["config", "set", "bogus.key", "1"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("settable keys"));
    let o = r.run(&["config", "set", "http.max_retries", "lots"]).await;
    assert_eq!(o.status.code(), Some(3));
    let o = r.run(&["config", "unset", "http.max_retries"]).await;
    assert!(o.status.success());
    let path = r.home.path().join("nexus/config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("max_retries"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_openai_compatible_provider_from_config() {
    let s = StandIn::start().await;
    let r = Run::new();
    let base = s.base_url(Api::Compatible);
    r.run(&["config", "set", "providers.lab.kind", "openai-compatible"])
        .await;
    r.run(&["config", "set", "providers.lab.base_url", &base])
        .await;
    let o = r.run(&["chat", "-m", "lab/qwen2.5-coder", "hi lab"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "echo: hi lab\n");
    assert_eq!(
        s.requests_for(Api::Compatible)[0].body["model"],
        "qwen2.5-coder"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_for_each_shell() {
    let r = Run::new();
    for (shell, marker) in [
        ("bash", "complete"),
        ("zsh", "#compdef"),
        ("fish", "complete -c nexus"),
    ] {
        let o = r.run(&["completions", shell]).await;
        assert!(o.status.success());
        let out = stdout(&o);
        assert!(out.contains(marker) && out.contains("models"), "{shell}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_config_file_is_reported_with_its_path() {
    let r = Run::new();
    std::fs::create_dir_all(r.home.path().join("nexus")).unwrap();
    std::fs::write(r.home.path().join("nexus/config.toml"), "default_model = [").unwrap();
    let o = r.run(&["providers", "list"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("config.toml"), "{}", stderr(&o));
}

/// Issue 14, defect 5: a wait for a rate limit is said on stderr, and a
/// server asking for longer than the cap gets its error back at once,
/// saying how long it asked for.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_waits_are_told_and_capped() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let limited =
        |secs: &str| Script::StatusWithHeaders(429, vec![("retry-after".into(), secs.into())]);
    s.script(Api::OpenAi, [limited("1")]);
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o-mini", "wait for it"])
        .await;
    assert_eq!(stdout(&o), "echo: wait for it\n", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("openai: rate limited, retrying in 1 s (attempt 2 of 3)"),
        "{}",
        stderr(&o)
    );
    s.script(Api::OpenAi, [limited("45")]);
    let started = std::time::Instant::now();
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o-mini", "too long"])
        .await;
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(stderr(&o).contains("asks to wait 45 s"), "{}", stderr(&o));
}

/// Issue 14, defect 11: values that mean nothing are refused before they
/// are written, and suggestions are near what was typed.
#[tokio::test(flavor = "multi_thread")]
async fn config_set_refuses_meaningless_values_and_suggests_well() {
    let r = Run::new();
    for (k, v) in [
        ("providers.lab.kind", "bogus"),
        ("default_model", "nosuchmodel"),
    ] {
        let o = r.run(&["config", "set", k, v]).await;
        assert_eq!(o.status.code(), Some(3), "{k}={v}: {}", stderr(&o));
    }
    let cfg = r.home.path().join("nexus/config.toml");
    let written = std::fs::read_to_string(&cfg).unwrap_or_default();
    assert!(
        !written.contains("bogus") && !written.contains("nosuchmodel"),
        "{written}"
    );
    let o = r.run(&["config", "set", "default_model", "sonnet"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["chat", "-m", "sonet", "hi"]).await;
    assert!(
        stderr(&o).contains("did you mean claude-sonnet-4-5"),
        "{}",
        stderr(&o)
    );
    let o = r.run(&["chat", "-m", "xyzzy-frobnicate", "hi"]).await;
    assert!(!stderr(&o).contains("did you mean"), "{}", stderr(&o));
}

/// Issue 14: `--tool NAME=COMMAND` runs a local command as a tool until the
/// model answers; `--schema` asks for (and checks) JSON; piped input and a
/// prompt are sent together.
#[tokio::test(flavor = "multi_thread")]
async fn tools_schema_and_piped_input_through_the_cli() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    for model in [
        "openai/gpt-4o-mini",
        "anthropic/claude-sonnet-4-5",
        "gemini/gemini-2.5-flash",
    ] {
        let o = r
            .run(&[
                "chat",
                "-m",
                model,
                "--tool",
                "shout=tr a-z A-Z",
                r#"tool shout {"text":"quiet please"}"#,
            ])
            .await;
        assert!(o.status.success(), "{model}: {}", stderr(&o));
        assert_eq!(
            stdout(&o),
            "the tool said: {\"TEXT\":\"QUIET PLEASE\"}\n",
            "{model}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("tool shout("), "{}", stderr(&o));
    }
    // A failing command is told to the model, which goes on.
    let o = r
        .run(&[
            "chat",
            "-m",
            "openai/gpt-4o-mini",
            "--tool",
            "bad=echo nope >&2; exit 3",
            r#"tool bad {}"#,
        ])
        .await;
    assert!(
        stdout(&o).starts_with("the tool said: `echo nope"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("nope"), "{}", stdout(&o));

    let o = r
        .run(&[
            "chat",
            "-m",
            "openai/gpt-4o-mini",
            "--schema",
            r#"{"type":"object","required":["echo"]}"#,
            "--json",
            "shape it",
        ])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["json"]["echo"], "shape it", "{v}");
    let o = r
        .run(&[
            "chat",
            "-m",
            "anthropic/claude-sonnet-4-5",
            "--schema",
            r#"{"type":"object"}"#,
            "shape it",
        ])
        .await;
    assert_eq!(o.status.code(), Some(22), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not in the requested format"),
        "{}",
        stderr(&o)
    );

    let o = r
        .run_stdin(
            &["chat", "-m", "openai/gpt-4o-mini", "summarise"],
            Some("the piped notes\n"),
        )
        .await;
    assert_eq!(
        stdout(&o),
        "echo: summarise\n\nthe piped notes\n\n",
        "{}",
        stderr(&o)
    );
}

/// Issue 14: aliases, templates and `models default`, as `llm` users know them.
#[tokio::test(flavor = "multi_thread")]
async fn aliases_templates_and_the_default_model() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let ok = |o: &std::process::Output| assert!(o.status.success(), "{}", stderr(o));
    ok(&r
        .run(&["aliases", "set", "fast", "openai/gpt-4o-mini"])
        .await);
    let o = r.run(&["aliases", "set", "nope", "nosuchmodel"]).await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "an alias must resolve: {}",
        stderr(&o)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&r.run(&["aliases", "list", "--json"]).await.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"fast": "openai/gpt-4o-mini"}));
    let o = r.run(&["chat", "-m", "fast", "--json", "via alias"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["requested_model"], "gpt-4o-mini");

    ok(&r
        .run(&[
            "templates",
            "set",
            "sum",
            "--system",
            "be brief",
            "--prompt",
            "Summarise: $input",
            "-m",
            "fast",
        ])
        .await);
    let o = r.run(&["chat", "-t", "sum", "the long text"]).await;
    assert_eq!(
        stdout(&o),
        "echo: Summarise: the long text\n",
        "{}",
        stderr(&o)
    );
    let body = s.requests_for(Api::OpenAi).last().unwrap().body.clone();
    assert_eq!(body["messages"][0]["content"], "be brief", "{body}");
    let o = r.run(&["chat", "-t", "missing", "x"]).await;
    assert_eq!(o.status.code(), Some(3));
    let o = r
        .run(&["templates", "set", "../escape", "--prompt", "x"])
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    ok(&r.run(&["templates", "rm", "sum"]).await);

    ok(&r.run(&["models", "default", "fast"]).await);
    let o = r.run(&["models", "default"]).await;
    assert_eq!(stdout(&o), "fast\n");
    let o = r.run(&["chat", "--json", "no -m"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["requested_model"], "gpt-4o-mini", "{v}");
    let o = r.run(&["models", "default", "nosuchmodel"]).await;
    assert_eq!(o.status.code(), Some(3));
}

/// Issue 14: `--jq` on `--json` output (jaq), strings raw as `gh` prints them.
#[tokio::test(flavor = "multi_thread")]
async fn jq_filters_json_output() {
    let r = Run::new();
    let o = r
        .run(&[
            "models",
            "list",
            "--json",
            "--jq",
            r#".[] | select(.id == "claude-sonnet-4-5") | .provider"#,
        ])
        .await;
    assert_eq!(stdout(&o), "anthropic\n", "{}", stderr(&o));
    let o = r
        .run(&[
            "models",
            "list",
            "--json",
            "--jq",
            r#"map(select(.status == "deprecated")) | length > 0"#,
        ])
        .await;
    assert_eq!(stdout(&o), "true\n", "{}", stderr(&o));
    let o = r.run(&["models", "list", "--jq", "."]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = r.run(&["models", "list", "--json", "--jq", ".[["]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not parse"), "{}", stderr(&o));
}

/// Issue 14, defect 12: README command 1 lets cargo show its progress (no
/// `-q`), so a cold checkout does not sit silent for minutes.
#[test]
fn readme_command_one_shows_progress() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.lines().next())
        .unwrap();
    assert!(first.starts_with("cargo run"), "{first}");
    assert!(
        !first
            .split_whitespace()
            .any(|w| w == "-q" || w == "--quiet"),
        "{first}"
    );
}
