//! `nexus cron` with a real nexusd: a job runs on its schedule and is
//! recorded, runs on demand, is removed; DST is handled (TZ=Europe/Berlin);
//! a bad expression is refused and changes nothing.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::mesh::{daemon, peer};
use common::{stderr, stdout};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_on_schedule_on_demand_and_across_dst() {
    let r = peer();
    // A bad expression: refused, nothing written.
    let o = r.run(&["cron", "add", "61 * * * *", "--", "true"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("not a cron expression"),
        "{}",
        stderr(&o)
    );
    assert!(!r.home.path().join("nexus/cron.json").exists());

    // Spring forward in Berlin: 02:30 does not exist on 29 March 2026.
    let mut c = r.cmd(&[
        "cron",
        "next",
        "30 2 * * *",
        "--from",
        "2026-03-28T12:00:00+01:00",
        "--count",
        "2",
    ]);
    let o = c.env("TZ", "Europe/Berlin").output().unwrap();
    assert_eq!(
        stdout(&o),
        "2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n",
        "{}",
        stderr(&o)
    );
    // Fall back: 02:30 happens twice on 25 October; the job runs once.
    let mut c = r.cmd(&[
        "cron",
        "next",
        "30 2 * * *",
        "--from",
        "2026-10-24T12:00:00+02:00",
        "--count",
        "2",
    ]);
    let o = c.env("TZ", "Europe/Berlin").output().unwrap();
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("2026-10-25T02:30:00"), "{lines:?}");
    assert!(lines[1].starts_with("2026-10-26T02:30:00"), "{lines:?}");

    // Every second (six fields): the daemon runs it, and records each run.
    let marks = r.home.path().join("marks");
    let o = r
        .run(&[
            "cron",
            "add",
            "* * * * * *",
            "--",
            &format!("echo tick >> {}", marks.display()),
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("added j1"), "{}", stderr(&o));
    let _d = daemon(&r).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::fs::read_to_string(&marks)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the job never ran twice");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = r.run(&["cron", "list", "--json"]).await;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["id"], "j1");
    assert_eq!(v[0]["last"]["status"], "ok", "{v}");
    assert!(v[0]["next"].as_str().is_some());

    // On demand, through the daemon; a failing job says so.
    let o = r
        .run(&["cron", "add", "0 0 1 1 *", "--", "echo ran by hand; exit 4"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["cron", "run", "j2"]).await;
    assert!(!o.status.success());
    assert!(stdout(&o).contains("ran by hand"), "{}", stdout(&o));
    assert!(stderr(&o).contains("j2 failed"), "{}", stderr(&o));
    let o = r.run(&["cron", "run", "j9"]).await;
    assert!(stderr(&o).contains("no cron job `j9`"), "{}", stderr(&o));

    // Removed: it stops.
    let o = r.run(&["cron", "rm", "j1"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = std::fs::read_to_string(&marks).unwrap().lines().count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(std::fs::read_to_string(&marks).unwrap().lines().count(), n);
    let runs = std::fs::read_to_string(r.home.path().join("nexus/cron-runs.jsonl")).unwrap();
    assert!(runs.lines().count() >= 3, "{runs}");
}
