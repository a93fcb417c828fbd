//! The hierarchy's hot paths: the routing decision (classify, choose a
//! tier, check the budget) in ns, and cost-ledger writes per second beside
//! raw rusqlite inserts of the same rows with the same pragmas.
//!
//! `cargo bench -p nexus-benches --bench hierarchy`

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use nexus_core::{PolicyConfig, Usage, Usd};
use nexus_hierarchy::ledger::{AttemptRecord, Ledger, SqliteLedger};
use nexus_hierarchy::presets::{compute, Preset};
use nexus_hierarchy::{Category, HierarchyConfig, Router, RuleClassifier, TaskContext};

fn router() -> Router {
    let catalog = nexus_providers::catalog::embedded();
    let tiers = compute(Preset::Balanced, catalog, &|_| true).unwrap();
    let h = HierarchyConfig {
        preset: "balanced".into(),
        tiers,
        cooldown: Default::default(),
    };
    let policy = PolicyConfig {
        daily_budget: Some(Usd::from_dollars(20.0)),
        max_cost_per_request: Some(Usd::from_dollars(0.5)),
        ..Default::default()
    };
    Router::new(
        Arc::new(RuleClassifier),
        &h,
        &|m: &str| catalog.get(m).cloned(),
        Arc::new(policy),
    )
}

fn attempt(i: u64) -> AttemptRecord {
    AttemptRecord {
        request_id: format!("ask_{i:016x}"),
        at_ms: 1_795_219_200_000 + i,
        category: Some(Category::Coding),
        tier: (i % 3) as u32,
        provider: "anthropic".into(),
        model: "anthropic/claude-sonnet-4-5".into(),
        outcome: "success".into(),
        ok: true,
        reason: None,
        usage: Usage {
            input_tokens: 1200,
            output_tokens: 350,
            ..Default::default()
        },
        cost: Usd::from_dollars(0.00885),
        latency_ms: 900,
    }
}

fn bench_route(c: &mut Criterion) {
    let r = router();
    let spent = Usd::from_dollars(3.25);
    let mut g = c.benchmark_group("route_decision");
    for (name, prompt) in [
        (
            "tagged",
            "[plan] Outline the migration to the new storage engine",
        ),
        (
            "keywords",
            "Please fix the bug in this Rust function that parses dates from user input",
        ),
        (
            "default",
            "What would be a good name for a golden retriever puppy?",
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                r.decide(
                    std::hint::black_box(prompt),
                    TaskContext::default(),
                    None,
                    spent,
                )
            });
        });
    }
    g.finish();
}

fn bench_ledger(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("ledger_writes");
    g.throughput(Throughput::Elements(1));

    let ledger = SqliteLedger::open(&dir.path().join("ledger.db")).unwrap();
    let mut i = 0u64;
    g.bench_function("nexus_settle", |b| {
        b.iter_batched(
            || {
                i += 1;
                attempt(i)
            },
            |a| ledger.settle(None, &a).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("nexus_reserve_then_settle", |b| {
        b.iter_batched(
            || {
                i += 1;
                attempt(i)
            },
            |a| {
                let h = ledger
                    .reserve(
                        "2026-11-21",
                        Usd::from_dollars(0.01),
                        Some(Usd::from_dollars(1e9)),
                        0,
                    )
                    .unwrap();
                ledger.settle(h, &a).unwrap();
            },
            BatchSize::SmallInput,
        );
    });

    // The peer: a bare rusqlite INSERT of the same row, same pragmas.
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.pragma_update(None, "journal_mode", "WAL").unwrap();
    raw.pragma_update(None, "synchronous", "NORMAL").unwrap();
    raw.execute_batch(
        "CREATE TABLE attempts (id INTEGER PRIMARY KEY, request_id TEXT, at_ms INTEGER, day TEXT,
            category TEXT, tier INTEGER, provider TEXT, model TEXT, outcome TEXT, ok INTEGER, reason TEXT,
            input_tokens INTEGER, output_tokens INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER,
            reasoning_tokens INTEGER, cost INTEGER, latency_ms INTEGER)",
    )
    .unwrap();
    g.bench_function("raw_rusqlite_insert", |b| {
        b.iter_batched(
            || {
                i += 1;
                attempt(i)
            },
            |a| {
                raw.execute(
                    "INSERT INTO attempts (request_id, at_ms, day, category, tier, provider, model, outcome, ok,
                        reason, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                        reasoning_tokens, cost, latency_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                    rusqlite::params![
                        a.request_id, a.at_ms as i64, "2026-11-21", "coding", a.tier, a.provider, a.model,
                        a.outcome, a.ok, a.reason, 1200, 350, 0, 0, 0, a.cost.picos() as i64, 900
                    ],
                )
                .unwrap();
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, bench_route, bench_ledger);
criterion_main!(benches);
