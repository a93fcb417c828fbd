//! The escalation engine against scripted fake providers: every escalation
//! path, budgets, caps, cooldowns, and a property test of its guarantees.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use nexus_core::{
    ErrorKind, ManualClock, MemoryProvider, ModelInfo, PolicyConfig, PricePerMillion, Pricing,
    Scripted, SeededRandom, StopReason, Usage, Usd,
};
use nexus_hierarchy::ledger::{day_of, Ledger, MemoryLedger};
use nexus_hierarchy::validate::{Format, SyntaxValidator};
use nexus_hierarchy::{
    AskError, AskRequest, Category, CooldownConfig, EscalationEngine, HierarchyConfig, Outcome,
    Router, RuleClassifier, StaticSource,
};
use proptest::prelude::*;

const T0: u64 = 1_795_219_200_000; // 2026-11-21T00:00:00Z

fn info(id: &str, input: f64, output: f64) -> ModelInfo {
    ModelInfo {
        id: id.into(),
        provider: "mem".into(),
        display_name: id.into(),
        aliases: vec![],
        speed_score: 5,
        reasoning_score: 5,
        coding_score: 5,
        pricing: Pricing {
            input: PricePerMillion::from_dollars(input),
            output: PricePerMillion::from_dollars(output),
            ..Default::default()
        },
        context_window: 100_000,
        max_output_tokens: 1000,
        supports_streaming: true,
        supports_tools: true,
        supports_vision: false,
        supports_reasoning: false,
        release_date: "2026-01-01".into(),
        status: Default::default(),
        price_source: None,
    }
}

struct Setup {
    providers: Vec<MemoryProvider>,
    ledger: Arc<MemoryLedger>,
    clock: ManualClock,
    engine: EscalationEngine<StaticSource<MemoryProvider>>,
}

fn setup(prices: &[(f64, f64)], policy: PolicyConfig, cooldown: CooldownConfig) -> Setup {
    let mut source = StaticSource::new();
    let mut h = HierarchyConfig::default();
    let mut providers = Vec::new();
    let mut edits = Vec::new();
    for (i, (inp, out)) in prices.iter().enumerate() {
        let model = format!("tier{}-model", i + 1);
        let p = MemoryProvider::new(format!("p{}", i + 1));
        source = source.with(&model, p.clone(), Some(info(&model, *inp, *out)));
        providers.push(p);
        edits.push(format!("tier{}={model}", i + 1));
    }
    let ok = |m: &str| Ok(m.to_string());
    h.apply_edits(Category::Daily, &edits, &ok).unwrap();
    let infos: Vec<ModelInfo> = prices
        .iter()
        .enumerate()
        .map(|(i, (a, b))| info(&format!("tier{}-model", i + 1), *a, *b))
        .collect();
    let lookup = move |m: &str| infos.iter().find(|i| i.id == m).cloned();
    let router = Router::new(Arc::new(RuleClassifier), &h, &lookup, Arc::new(policy));
    let ledger = Arc::new(MemoryLedger::default());
    let clock = ManualClock::new(T0 + 3_600_000);
    let engine = EscalationEngine::new(
        source,
        router,
        ledger.clone(),
        cooldown,
        Arc::new(clock.clone()),
        Arc::new(SeededRandom::new(7)),
    );
    Setup {
        providers,
        ledger,
        clock,
        engine,
    }
}

fn ask(prompt: &str) -> AskRequest {
    AskRequest {
        prompt: prompt.into(),
        category: Some(Category::Daily),
        ..Default::default()
    }
}

fn cheap3() -> [(f64, f64); 3] {
    [(0.1, 0.4), (1.0, 4.0), (5.0, 25.0)]
}

#[tokio::test]
async fn a_server_error_escalates_to_the_next_tier() {
    let s = setup(
        &cheap3(),
        PolicyConfig::default(),
        CooldownConfig::default(),
    );
    s.providers[0].push(Scripted::fail(ErrorKind::Server, "boom"));
    let out = s.engine.ask(ask("hello")).await.unwrap();
    assert_eq!(out.tier, 2);
    assert_eq!(out.response.text, "echo: hello");
    assert_eq!(out.escalations, 1);
    assert!(matches!(
        out.attempts[0].outcome,
        Outcome::Error {
            kind: ErrorKind::Server,
            ..
        }
    ));
    assert!(out.attempts[0]
        .escalation
        .as_deref()
        .unwrap()
        .contains("provider error: server"));
    assert_eq!(s.providers[2].requests().len(), 0);
}

#[tokio::test]
async fn refusals_escalate_by_stop_reason_and_by_pattern() {
    let s = setup(
        &cheap3(),
        PolicyConfig::default(),
        CooldownConfig::default(),
    );
    s.providers[0].push(Scripted::Reply {
        text: "".into(),
        stop: StopReason::Refusal,
        usage: Usage::default(),
    });
    s.providers[1].push(Scripted::reply(
        "I'm sorry, but I can't help with that request.",
    ));
    let out = s.engine.ask(ask("x")).await.unwrap();
    assert_eq!(out.tier, 3);
    assert_eq!(out.attempts[0].outcome, Outcome::Refusal);
    assert_eq!(out.attempts[1].outcome, Outcome::Refusal);
}

#[tokio::test]
async fn invalid_output_escalates() {
    let s = setup(
        &cheap3(),
        PolicyConfig::default(),
        CooldownConfig::default(),
    );
    let engine = s
        .engine
        .with_validator(Arc::new(SyntaxValidator(Format::Json)));
    s.providers[0].push(Scripted::reply("{not json"));
    s.providers[1].push(Scripted::reply("{\"ok\": true}"));
    let out = engine.ask(ask("give json")).await.unwrap();
    assert_eq!(out.tier, 2);
    match &out.attempts[0].outcome {
        Outcome::InvalidOutput { reason } => assert!(reason.starts_with("json: not valid JSON")),
        o => panic!("{o:?}"),
    }
}

#[tokio::test]
async fn auth_errors_stop_instead_of_escalating() {
    let s = setup(
        &cheap3(),
        PolicyConfig::default(),
        CooldownConfig::default(),
    );
    s.providers[0].push(Scripted::fail(ErrorKind::Auth, "bad key"));
    let e = s.engine.ask(ask("x")).await.unwrap_err();
    assert!(matches!(e, AskError::Stopped { .. }), "{e}");
    assert_eq!(e.last_error().unwrap().kind, ErrorKind::Auth);
    assert_eq!(s.providers[1].requests().len(), 0);
}

#[tokio::test]
async fn max_escalations_and_disabled_policy_stop() {
    let policy = PolicyConfig {
        max_escalations: 1,
        ..Default::default()
    };
    let s = setup(&cheap3(), policy, CooldownConfig::default());
    s.providers[0].push(Scripted::fail(ErrorKind::Server, "a"));
    s.providers[1].push(Scripted::fail(ErrorKind::Overloaded, "b"));
    let e = s.engine.ask(ask("x")).await.unwrap_err();
    assert!(e.to_string().contains("already escalated 1 time"), "{e}");
    assert_eq!(s.providers[2].requests().len(), 0);

    let off = PolicyConfig {
        enabled: false,
        ..Default::default()
    };
    let s = setup(&cheap3(), off, CooldownConfig::default());
    s.providers[0].push(Scripted::fail(ErrorKind::Server, "a"));
    let e = s.engine.ask(ask("x")).await.unwrap_err();
    assert!(e.to_string().contains("disabled"), "{e}");
    assert_eq!(s.providers[1].requests().len(), 0);
}

#[tokio::test]
async fn a_zero_or_spent_budget_sends_nothing() {
    for budget in [0.0, 0.001] {
        let policy = PolicyConfig {
            daily_budget: Some(Usd::from_dollars(budget)),
            ..Default::default()
        };
        let s = setup(&cheap3(), policy, CooldownConfig::default());
        if budget > 0.0 {
            // Spend it earlier today.
            s.ledger
                .settle(
                    None,
                    &nexus_hierarchy::ledger::AttemptRecord {
                        request_id: "before".into(),
                        at_ms: T0,
                        category: Some(Category::Daily),
                        tier: 0,
                        provider: "x".into(),
                        model: "x".into(),
                        outcome: "success".into(),
                        ok: true,
                        reason: None,
                        usage: Usage::default(),
                        cost: Usd::from_dollars(budget),
                        latency_ms: 0,
                    },
                )
                .unwrap();
        }
        let e = s.engine.ask(ask("x")).await.unwrap_err();
        assert!(matches!(e, AskError::Budget { .. }), "{e}");
        assert!(e.to_string().contains("budget"), "{e}");
        assert!(
            s.providers.iter().all(|p| p.requests().is_empty()),
            "a request was sent"
        );
    }
}

/// Issue 14, defect 10: while another request's hold takes the rest of the
/// budget, an `ask` waits for it to settle instead of failing at once.
#[tokio::test]
async fn a_concurrent_hold_is_waited_for_not_failed_on() {
    let policy = PolicyConfig {
        daily_budget: Some(Usd::from_dollars(0.001)),
        ..Default::default()
    };
    let s = setup(&cheap3(), policy, CooldownConfig::default());
    let day = day_of(T0 + 3_600_000);
    let hold = s
        .ledger
        .reserve(&day, Usd::from_dollars(0.0009), None, T0 + 3_600_000)
        .unwrap()
        .unwrap();
    let ledger = s.ledger.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // The other request finished cheaply.
        ledger
            .settle(
                Some(hold),
                &nexus_hierarchy::ledger::AttemptRecord {
                    request_id: "other".into(),
                    at_ms: T0 + 3_600_000,
                    category: Some(Category::Daily),
                    tier: 0,
                    provider: "x".into(),
                    model: "x".into(),
                    outcome: "success".into(),
                    ok: true,
                    reason: None,
                    usage: Usage::default(),
                    cost: Usd::from_dollars(0.0001),
                    latency_ms: 0,
                },
            )
            .unwrap();
    });
    let started = std::time::Instant::now();
    let out = s.engine.ask(ask("x")).await.expect("waited for the hold");
    assert_eq!(out.tier, 1);
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    release.await.unwrap();
}

#[tokio::test]
async fn tiers_whose_estimate_breaks_a_cap_are_skipped() {
    // Tier 1 is dear, tier 2 cheap: the per-request cap skips tier 1.
    let policy = PolicyConfig {
        max_cost_per_request: Some(Usd::from_dollars(0.01)),
        ..Default::default()
    };
    let s = setup(
        &[(50.0, 100.0), (0.1, 0.1)],
        policy,
        CooldownConfig::default(),
    );
    let out = s.engine.ask(ask("x")).await.unwrap();
    assert_eq!(out.tier, 2);
    assert!(
        matches!(&out.attempts[0].outcome, Outcome::Skipped { reason } if reason.contains("per-request cap"))
    );
    assert!(s.providers[0].requests().is_empty());
    assert_eq!(
        s.providers[1].requests()[0].max_tokens,
        Some(1000),
        "the output cap is sent"
    );
}

#[tokio::test]
async fn models_that_keep_failing_cool_down_then_recover() {
    let cd = CooldownConfig {
        failures: 2,
        window_secs: 60,
        cooldown_secs: 300,
    };
    let s = setup(&cheap3(), PolicyConfig::default(), cd);
    for _ in 0..2 {
        s.providers[0].push(Scripted::fail(ErrorKind::Server, "down"));
        s.engine.ask(ask("x")).await.unwrap();
        s.clock.advance(Duration::from_secs(5));
    }
    assert_eq!(s.providers[0].requests().len(), 2);
    // Cooling: tier 1 is skipped without a request.
    let out = s.engine.ask(ask("x")).await.unwrap();
    assert_eq!(out.tier, 2);
    assert!(
        matches!(&out.attempts[0].outcome, Outcome::Skipped { reason } if reason.contains("cooling down"))
    );
    assert_eq!(s.providers[0].requests().len(), 2);
    // After the cooldown, tier 1 is tried again.
    s.clock.advance(Duration::from_secs(301));
    let out = s.engine.ask(ask("x")).await.unwrap();
    assert_eq!(out.tier, 1);
}

#[tokio::test]
async fn every_attempt_is_recorded_with_cost_and_tokens() {
    let s = setup(
        &cheap3(),
        PolicyConfig::default(),
        CooldownConfig::default(),
    );
    s.providers[0].push(Scripted::fail(ErrorKind::Timeout, "slow"));
    s.providers[1].push(Scripted::Reply {
        text: "fine".into(),
        stop: StopReason::EndTurn,
        usage: Usage {
            input_tokens: 1000,
            output_tokens: 500,
            ..Default::default()
        },
    });
    let out = s.engine.ask(ask("x")).await.unwrap();
    // 1000 × $1/M + 500 × $4/M = $0.003, exactly.
    assert_eq!(out.total_cost, Usd::from_dollars(0.003));
    let recorded = s.ledger.attempts();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].outcome, "error:timeout");
    assert_eq!(recorded[1].cost, Usd::from_dollars(0.003));
    assert_eq!(recorded[1].usage.output_tokens, 500);
    assert!(recorded[0].reason.is_some());
    let stats = s.ledger.stats(&day_of(T0)).unwrap();
    assert_eq!(stats.categories[0].escalated, 1);
}

#[derive(Debug, Clone)]
enum Step {
    Ok(u64),
    Fail(ErrorKind),
    Refuse,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u64..5000).prop_map(Step::Ok),
        prop_oneof![
            Just(ErrorKind::Server),
            Just(ErrorKind::RateLimited),
            Just(ErrorKind::Auth),
            Just(ErrorKind::Timeout)
        ]
        .prop_map(Step::Fail),
        Just(Step::Refuse),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn never_exceeds_escalations_or_budget_and_records_everything(
        tiers in proptest::collection::vec(((0.0f64..20.0), (0.0f64..80.0)), 1..5),
        script in proptest::collection::vec(proptest::collection::vec(step(), 0..4), 5),
        max_escalations in 0u32..4,
        budget in proptest::option::of(0.0f64..0.2),
        spent_before in 0.0f64..0.1,
        asks in 1usize..4,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let policy = PolicyConfig {
            max_escalations,
            daily_budget: budget.map(Usd::from_dollars),
            ..Default::default()
        };
        let s = setup(&tiers, policy, CooldownConfig { failures: 0, ..Default::default() });
        for (i, p) in s.providers.iter().enumerate() {
            for st in &script[i] {
                p.push(match st {
                    Step::Ok(out) => Scripted::Reply { text: "ok".into(), stop: StopReason::EndTurn,
                        usage: Usage { input_tokens: 6, output_tokens: (*out).min(1000), ..Default::default() } },
                    Step::Fail(k) => Scripted::fail(*k, "scripted"),
                    Step::Refuse => Scripted::Reply { text: String::new(), stop: StopReason::Refusal, usage: Usage::default() },
                });
            }
        }
        let today = day_of(T0);
        s.ledger.settle(None, &nexus_hierarchy::ledger::AttemptRecord {
            request_id: "before".into(), at_ms: T0, category: Some(Category::Daily), tier: 0,
            provider: "x".into(), model: "x".into(), outcome: "success".into(), ok: true, reason: None,
            usage: Usage::default(), cost: Usd::from_dollars(spent_before), latency_ms: 0,
        }).unwrap();
        for _ in 0..asks {
            let before_calls: usize = s.providers.iter().map(|p| p.requests().len()).sum();
            let before_spent = s.ledger.spent_on(&today).unwrap();
            let r = rt.block_on(s.engine.ask(ask("a prompt of some words")));
            let attempts = match &r { Ok(o) => o.attempts.clone(), Err(e) => e.attempts().to_vec() };
            let calls: Vec<_> = attempts.iter().filter(|a| !matches!(a.outcome, Outcome::Skipped { .. })).collect();
            let after_calls: usize = s.providers.iter().map(|p| p.requests().len()).sum();
            // Every call made is an attempt, and is in the ledger.
            prop_assert_eq!(after_calls - before_calls, calls.len());
            // Never more than max_escalations + 1 calls.
            prop_assert!(calls.len() as u32 <= max_escalations + 1);
            // Given its estimates, never past the budget.
            if let Some(b) = budget {
                let mut running = before_spent;
                for a in &calls {
                    prop_assert!(running + a.estimate <= Usd::from_dollars(b),
                        "running {} + estimate {} > budget {}", running, a.estimate, b);
                    prop_assert!(a.cost <= a.estimate, "cost {} above its estimate {}", a.cost, a.estimate);
                    running += a.cost;
                }
            }
        }
        let recorded = s.ledger.attempts().len() - 1;
        let made: usize = s.providers.iter().map(|p| p.requests().len()).sum();
        let skipped = s.ledger.attempts().iter().filter(|a| a.outcome == "skipped").count();
        prop_assert_eq!(recorded, made + skipped);
    }
}
