//! The SQLite ledger shared by two processes at once: budget holds are
//! atomic, nothing is lost, and everything survives a reopen.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use nexus_core::{Usage, Usd};
use nexus_hierarchy::ledger::{AttemptRecord, Ledger, SqliteLedger};
use nexus_hierarchy::Category;

const DAY_MS: u64 = 1_795_219_200_000;
const DAY: &str = "2026-11-21";
const TEST: &str = "two_processes_share_one_ledger_within_budget";

fn child(path: &str, id: &str, start_at_ms: u64) {
    let l = SqliteLedger::open(std::path::Path::new(path)).unwrap();
    // Start together, so the two processes really contend.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    std::thread::sleep(std::time::Duration::from_millis(
        start_at_ms.saturating_sub(now),
    ));
    let budget = Some(Usd::from_dollars(1.0));
    let mut won = 0;
    for i in 0..150 {
        if let Some(hold) = l.reserve(DAY, Usd::from_dollars(0.01), budget, 0).unwrap() {
            // The provider call happens here, between the hold and the settle.
            std::thread::sleep(std::time::Duration::from_millis(1));
            l.settle(
                Some(hold),
                &AttemptRecord {
                    request_id: format!("{id}-{i}"),
                    at_ms: DAY_MS + i,
                    category: Some(Category::Daily),
                    tier: 0,
                    provider: "p".into(),
                    model: format!("p/m{id}"),
                    outcome: "success".into(),
                    ok: true,
                    reason: None,
                    usage: Usage::default(),
                    cost: Usd::from_dollars(0.01),
                    latency_ms: 1,
                },
            )
            .unwrap();
            won += 1;
        }
    }
    println!("WON {won}");
}

#[test]
fn two_processes_share_one_ledger_within_budget() {
    if let (Ok(path), Ok(id), Ok(start)) = (
        std::env::var("NEXUS_LEDGER_CHILD"),
        std::env::var("NEXUS_CHILD_ID"),
        std::env::var("NEXUS_CHILD_START"),
    ) {
        child(&path, &id, start.parse().unwrap());
        return;
    }
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 500;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    // Create the schema first so both children race only on writes.
    drop(SqliteLedger::open(&db).unwrap());
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|i| {
            Command::new(&exe)
                .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env("NEXUS_LEDGER_CHILD", &db)
                .env("NEXUS_CHILD_ID", i.to_string())
                .env("NEXUS_CHILD_START", start.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0u64;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let won: u64 = text
            .lines()
            .find_map(|l| l.split_once("WON ").map(|(_, n)| n))
            .unwrap_or_else(|| panic!("child printed: {text}"))
            .trim()
            .parse()
            .unwrap();
        eprintln!("child won {won} holds");
        assert!(won > 0, "both processes got part of the budget");
        total += won;
    }
    // Exactly the budget: 100 holds of $0.01 fit in $1.00, and no more.
    assert_eq!(total, 100);
    let l = SqliteLedger::open(&db).unwrap();
    assert_eq!(l.spent_on(DAY).unwrap(), Usd::from_dollars(1.0));
    let u = l.usage(DAY, DAY).unwrap();
    assert_eq!(u.by_model.iter().map(|m| m.attempts).sum::<u64>(), 100);
}
