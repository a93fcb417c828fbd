//! The heartbeat through a real nexusd: a bad interval is refused before
//! anything starts; status shows the next beat; `heartbeat-now` runs the
//! tasks (disk and lock files, a TODO scan, the HEARTBEAT.md checklist sent
//! to the hierarchy's heartbeat category at the provider stand-ins) and
//! records them.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_testkit::StandIn;
use serde_json::Value;

mod common;

use common::mesh::DaemonGuard;
use common::{stderr, Run};

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_are_scheduled_run_now_and_recorded() {
    let s = StandIn::start().await;
    let mut r = Run::with_standin(&s);
    r.env
        .push(("NEXUS_VAULT_PASSPHRASE".into(), "heartbeat test".into()));
    let home = r.home.path().join("nexus");
    std::fs::create_dir_all(&home).unwrap();
    // Out of range: refused, and no daemon starts.
    let o = r.run(&["daemon", "start", "--heartbeat", "25h"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("at most 24h"), "{}", stderr(&o));
    let o = r.run(&["daemon", "status", "--json"]).await;
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["running"], false);

    let ws = r.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("main.rs"), "fn main() {}\n// TODO: handle errors\n").unwrap();
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap_or_default();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "{config}\n[heartbeat]\nworkspaces = [{:?}]\nactive_hours = \"0-24\"\n",
            ws.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("HEARTBEAT.md"),
        "# Heartbeat\n- is the build green?\n",
    )
    .unwrap();

    let o = r.run(&["daemon", "start", "--heartbeat", "1h"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let _g = DaemonGuard(home.clone());
    let o = r.run(&["daemon", "status", "--json"]).await;
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["heartbeat"]["interval_secs"], 3600, "{st}");
    let next = st["heartbeat"]["next_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(next > now + 3_500_000 && next <= now + 3_600_000, "{st}");
    let o = r.run(&["daemon", "status"]).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("heartbeat: every 60m"));

    let o = r.run(&["daemon", "heartbeat-now", "--json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let by = |t: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["task"] == t)
            .cloned()
            .unwrap()
    };
    let health = by("system_health");
    assert!(
        health["details"]["free_bytes"][home.display().to_string()]
            .as_u64()
            .unwrap()
            > 0,
        "{health}"
    );
    let todo = by("todo_scan");
    assert_eq!(todo["status"], "report", "{todo}");
    assert_eq!(todo["summary"], "1 TODO/FIXME in 1 file(s)");
    let cons = by("consolidate");
    assert_eq!(cons["status"], "ok", "{cons}");
    let check = by("checklist");
    assert_eq!(check["status"], "report", "{check}");
    assert!(
        check["summary"]
            .as_str()
            .unwrap()
            .contains("is the build green?"),
        "{check}"
    );
    // Recorded, and the status shows the last beat.
    let log = std::fs::read_to_string(home.join("heartbeat.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);
    let o = r.run(&["daemon", "status", "--json"]).await;
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(st["heartbeat"]["last_ms"].as_u64().is_some(), "{st}");

    // An empty checklist sends nothing.
    std::fs::write(
        home.join("HEARTBEAT.md"),
        "# Heartbeat\n<!-- nothing yet -->\n",
    )
    .unwrap();
    let o = r.run(&["daemon", "heartbeat-now"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("checklist") && out.contains("skipped"),
        "{out}"
    );
}
