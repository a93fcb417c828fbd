//! The hierarchy through the CLI, against the local provider stand-ins:
//! escalation, budgets, presets, policy, stats, usage and catalog updates.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_testkit::{Api, Script, StandIn};
use serde_json::Value;

mod common;

use common::{stderr, stdout, Run};

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

async fn with_two_tiers(s: &StandIn) -> Run {
    let r = Run::with_standin(s);
    let o = r.run(&["config", "set", "http.max_retries", "1"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r
        .run(&[
            "hierarchy",
            "set",
            "coding",
            "tier1=anthropic/claude-haiku-4-5",
            "tier2=gpt-4o-mini",
            "tier3=disabled",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn tier_one_returns_500_and_tier_two_answers() {
    let s = StandIn::start().await;
    // Both the first try and the HTTP retry of tier 1 fail.
    s.script(Api::Anthropic, [Script::Status(500), Script::Status(500)]);
    let r = with_two_tiers(&s).await;
    let o = r
        .run(&["ask", "--category", "coding", "--json", "write a parser"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["tier"], 2);
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    assert_eq!(v["answered_by"], "gpt-4o-mini");
    assert_eq!(v["text"], "echo: write a parser");
    assert_eq!(v["escalations"], 1);
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["outcome"], "error");
    assert_eq!(attempts[0]["kind"], "server");
    assert_eq!(attempts[0]["escalation"], "provider error: server");
    assert_eq!(attempts[1]["outcome"], "success");
    assert!(attempts[1]["cost"].as_f64().unwrap() > 0.0);
    assert_eq!(s.requests_for(Api::Anthropic).len(), 2);

    // Without --json: the answer on stdout, the trail on stderr.
    s.script(Api::Anthropic, [Script::Status(500), Script::Status(500)]);
    let o = r.run(&["ask", "--category", "coding", "again"]).await;
    assert_eq!(stdout(&o), "echo: again\n");
    let err = stderr(&o);
    assert!(
        err.contains("tier 1 anthropic/claude-haiku-4-5: failed: server → escalating"),
        "{err}"
    );
    assert!(err.contains("tier 2 openai/gpt-4o-mini: answered"), "{err}");

    // The ledger saw it all.
    let v = json(&r.run(&["hierarchy", "stats", "--json"]).await);
    assert_eq!(v["categories"][0]["category"], "coding");
    assert_eq!(v["categories"][0]["escalated"], 2);
    assert_eq!(v["tiers"][0]["successes"], 0);
    assert_eq!(v["tiers"][1]["successes"], 2);
    let v = json(&r.run(&["usage", "--json"]).await);
    assert!(v["today"].as_f64().unwrap() > 0.0);
    assert_eq!(v["by_model"][0]["key"], "openai/gpt-4o-mini");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_or_spent_budget_sends_nothing() {
    let s = StandIn::start().await;
    let r = with_two_tiers(&s).await;
    let o = r
        .run(&["hierarchy", "policy", "set", "daily-budget=0"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["ask", "--category", "coding", "x"]).await;
    assert_eq!(o.status.code(), Some(21), "{}", stderr(&o));
    assert!(stderr(&o).contains("budget"), "{}", stderr(&o));
    assert!(
        s.requests().iter().all(|q| q.method != "POST"),
        "a request was sent"
    );

    // Tier 1's estimate ($0.02 for 4,096 output tokens) breaks a $0.004
    // budget, so it is skipped and tier 2 ($0.0025) answers.
    r.run(&["hierarchy", "policy", "set", "daily-budget=0.004"])
        .await;
    let o = r
        .run(&["ask", "--category", "coding", "--json", "first"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["tier"], 2);
    assert!(
        v["attempts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("daily budget"),
        "{v}"
    );
    // With less left than any tier's estimate, nothing is sent at all.
    r.run(&["hierarchy", "policy", "set", "daily-budget=0.001"])
        .await;
    let sent = s.requests().len();
    let o = r
        .run(&["ask", "--category", "coding", "--json", "second"])
        .await;
    assert_eq!(o.status.code(), Some(21), "{}", stderr(&o));
    assert_eq!(json(&o)["error"]["class"], "budget");
    assert_eq!(s.requests().len(), sent, "nothing sent past the budget");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_output_escalates_with_validators() {
    let s = StandIn::start().await;
    let r = with_two_tiers(&s).await;
    s.script(Api::OpenAi, [Script::Reply("{\"ok\": true}".into())]);
    let o = r
        .run(&[
            "ask",
            "--category",
            "coding",
            "--validate",
            "json",
            "--json",
            "give me json",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["tier"], 2);
    assert_eq!(v["attempts"][0]["outcome"], "invalid_output");
    assert!(v["attempts"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("json: not valid JSON"));

    // A test command that fails on every tier: exit 22 and the reason.
    let o = r
        .run(&["ask", "--category", "coding", "--test-cmd", "exit 1", "x"])
        .await;
    assert_eq!(o.status.code(), Some(22), "{}", stderr(&o));
    assert!(stderr(&o).contains("test failure"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn set_refuses_unknown_models_naming_the_closest() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let o = r
        .run(&["hierarchy", "set", "coding", "tier1=claude-sonet-4-5"])
        .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("claude-sonnet-4-5"), "{}", stderr(&o));
    let o = r
        .run(&["hierarchy", "set", "coding", "tier1=openai/gpt-9-turbo"])
        .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not in the catalog"), "{}", stderr(&o));
    let o = r
        .run(&["hierarchy", "set", "cooking", "tier1=gpt-4o"])
        .await;
    assert_eq!(o.status.code(), Some(3));
    // Local servers have no list prices: any model may be used.
    let o = r
        .run(&["hierarchy", "set", "daily", "tier1=ollama/llama3.2"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn presets_follow_credentials_and_edits_make_it_custom() {
    let r = Run::new();
    let o = r.run(&["hierarchy", "preset", "balanced"]).await;
    assert_eq!(o.status.code(), Some(4), "no keys at all: {}", stderr(&o));
    let mut r = Run::new();
    r.env.push(("OPENAI_API_KEY".into(), "k".into()));
    let o = r.run(&["hierarchy", "preset", "claude-only"]).await;
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("ANTHROPIC_API_KEY"), "{}", stderr(&o));
    let o = r.run(&["hierarchy", "preset", "budget"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&r.run(&["hierarchy", "get", "--json"]).await);
    assert_eq!(v["preset"], "budget");
    assert_eq!(v["saved"], true);
    for c in ["heartbeat", "daily", "planning", "coding", "review"] {
        let tiers = v["categories"][c].as_array().unwrap();
        assert!(!tiers.is_empty());
        assert!(
            tiers
                .iter()
                .all(|t| t["model"].as_str().unwrap().starts_with("openai/")),
            "{c}"
        );
    }
    // Disabling tier 2 removes that tier only; the ones above move down.
    let models = |v: &Value| -> Vec<String> {
        v["categories"]["review"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["model"].as_str().unwrap().to_string())
            .collect()
    };
    let mut before = models(&v);
    assert!(before.len() >= 2, "{before:?}");
    let o = r
        .run(&["hierarchy", "set", "review", "tier2=disabled"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&r.run(&["hierarchy", "get", "--json"]).await);
    assert_eq!(v["preset"], "custom");
    before.remove(1);
    assert_eq!(models(&v), before);
    // The last tier is not disabled: that would empty the category.
    for _ in 1..before.len() {
        let o = r
            .run(&["hierarchy", "set", "review", "tier1=disabled"])
            .await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = r
        .run(&["hierarchy", "set", "review", "tier1=disabled"])
        .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("no tier"), "{}", stderr(&o));
    let v = json(&r.run(&["hierarchy", "get", "--json"]).await);
    assert_eq!(models(&v).len(), 1);
    let v = json(&r.run(&["models", "list-available", "--json"]).await);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["provider"] == "openai"));
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_get_set_enable_disable() {
    let r = Run::new();
    let o = r
        .run(&[
            "hierarchy",
            "policy",
            "set",
            "max-escalations=3",
            "daily-budget=20.00",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    r.run(&["hierarchy", "policy", "disable", "auto-escalation"])
        .await;
    let v = json(&r.run(&["hierarchy", "policy", "get", "--json"]).await);
    assert_eq!(v["max_escalations"], 3);
    assert_eq!(v["daily_budget"], 20.0);
    assert_eq!(v["enabled"], false);
    let o = r
        .run(&["hierarchy", "policy", "enable", "auto-escalation"])
        .await;
    assert!(stdout(&o).contains("auto-escalation=true"));
    assert!(stdout(&o).contains("daily-budget=$20.00"));
    let o = r.run(&["hierarchy", "policy", "set", "nonsense=1"]).await;
    assert_eq!(o.status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn update_rankings_from_a_local_server() {
    let s = StandIn::start().await;
    let mut file: Value = serde_json::from_str(nexus_providers::catalog::EMBEDDED_JSON).unwrap();
    file["updated"] = "2099-12-31".into();
    s.serve_static("/catalog.json", 200, file.to_string());
    file["models"].as_array_mut().unwrap().truncate(2);
    s.serve_static("/tiny.json", 200, file.to_string());
    let r = Run::new();
    let base = format!("http://{}", s.addr());
    r.run(&[
        "config",
        "set",
        "catalog.url",
        &format!("{base}/catalog.json"),
    ])
    .await;
    let o = r.run(&["models", "update-rankings"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("revised 2099-12-31"), "{}", stdout(&o));
    let o = r
        .run(&[
            "models",
            "update-rankings",
            "--url",
            &format!("{base}/tiny.json"),
        ])
        .await;
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("stays in use"), "{}", stderr(&o));
    assert!(r.home.path().join("nexus/catalog.json").exists());
}

/// Issue 14, defect 3: `nexus chat` spend is recorded (streamed or not, and
/// failed calls too), and a spent daily budget stops `chat` before anything
/// is sent.
#[tokio::test(flavor = "multi_thread")]
async fn chat_spend_is_recorded_and_the_budget_stops_chat() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let model = "anthropic/claude-sonnet-4-5";
    for extra in [&[][..], &["--no-stream"]] {
        let mut args = vec!["chat", "-m", model];
        args.extend_from_slice(extra);
        args.push("count this please");
        let o = r.run(&args).await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    s.script(Api::Anthropic, [Script::Status(400)]);
    let o = r.run(&["chat", "-m", model, "bad"]).await;
    assert!(!o.status.success());
    let v = json(&r.run(&["usage", "--json"]).await);
    assert!(v["today"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["by_category"][0]["key"], "chat", "{v}");
    assert_eq!(v["by_category"][0]["attempts"], 3, "{v}");
    let o = r.run(&["usage"]).await;
    assert!(!stdout(&o).contains("no spend recorded"), "{}", stdout(&o));

    let o = r
        .run(&["hierarchy", "policy", "set", "daily-budget=0.00001"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let posts = |s: &StandIn| s.requests().iter().filter(|q| q.method == "POST").count();
    let before = posts(&s);
    for extra in [&[][..], &["--no-stream"]] {
        let mut args = vec!["chat", "-m", model];
        args.extend_from_slice(extra);
        args.push("over budget");
        let o = r.run(&args).await;
        assert_eq!(o.status.code(), Some(21), "{}", stderr(&o));
        assert!(stderr(&o).contains("daily budget"), "{}", stderr(&o));
    }
    assert_eq!(posts(&s), before, "a request was sent over budget");
}
