//! Logs in one place: services and nexusd write JSON lines under
//! NEXUS_HOME/logs; `nexus logs` filters, exports and clears them; the
//! CLI's errors are there too; no secret reaches any log; and a service
//! whose log disk is full keeps running and says so.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::mesh::{daemon, peer};
use common::{stderr, stdout};
use serde_json::Value;

const SECRETS: [(&str, &str); 4] = [
    ("OPENAI_API_KEY", "sk-openai-never-in-a-log-0123456789"),
    ("ANTHROPIC_API_KEY", "sk-ant-never-in-a-log-9876543210"),
    ("GITHUB_TOKEN", "ghp_never_in_a_log_abcdefghijkl"),
    ("NEXUS_VAULT_PASSPHRASE", "a passphrase never logged"),
];

#[tokio::test(flavor = "multi_thread")]
async fn logs_gather_filter_export_clear_and_never_hold_a_secret() {
    let mut r = peer();
    r.env.retain(|(k, _)| k != "NEXUS_VAULT_PASSPHRASE");
    for (k, v) in SECRETS {
        r.env.push((k.into(), v.into()));
    }
    // Providers that refuse at once: errors name them, never the key.
    for k in ["OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"] {
        r.env.push((k.into(), "http://127.0.0.1:9".into()));
    }
    let home = r.home.path().join("nexus");
    std::fs::create_dir_all(home.join("logs")).unwrap();
    std::fs::write(
        home.join("config.toml"),
        r#"
[http]
max_retries = 1

[services.echoer]
command = "echo key=$OPENAI_API_KEY; echo token=$GITHUB_TOKEN >&2; echo extra=$SERVICE_SECRET; sleep 300"
env = { SERVICE_SECRET = "svc-secret-never-logged-42" }

[services.full]
command = "while true; do echo tick; sleep 0.1; done"
"#,
    )
    .unwrap();
    // A checklist, so the heartbeat asks the (unreachable) providers.
    std::fs::write(home.join("HEARTBEAT.md"), "- anything on fire?\n").unwrap();
    // This service's log disk is full.
    std::os::unix::fs::symlink("/dev/full", home.join("logs/full.jsonl")).unwrap();
    let _d = daemon(&r).await;

    // Every kind of verb, several of them failing.
    for args in [
        &["chat", "-m", "openai/gpt-4o-mini", "hi"][..],
        &["ask", "hello"],
        &["mesh", "peers"],
        &["cron", "add", "61 * * * *", "--", "true"],
        &["services", "status"],
        &["services", "restart", "nope"],
        &["daemon", "heartbeat-now"],
        &["vault", "status"],
        &["providers", "list"],
    ] {
        let _ = r.run(args).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let echo = loop {
        let o = r.run(&["logs", "--service", "echoer", "--json"]).await;
        let lines: Vec<Value> = stdout(&o)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines
            .iter()
            .any(|l| l["msg"].as_str().unwrap_or("").starts_with("extra="))
        {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "the service's lines never arrived: {} / {} / {:?}",
            stdout(&o),
            stderr(&o),
            std::fs::read_to_string(home.join("logs/nexusd.log"))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let msg = |p: &str| {
        echo.iter()
            .find(|l| l["msg"].as_str().unwrap_or("").starts_with(p))
            .cloned()
            .unwrap()
    };
    assert_eq!(msg("key=")["msg"], "key=[redacted]");
    assert_eq!(msg("token=")["level"], "warn");
    assert_eq!(msg("extra=")["msg"], "extra=[redacted]");

    // No secret anywhere under the logs (nor in any file the daemon wrote there).
    let mut everything = String::new();
    for e in std::fs::read_dir(home.join("logs")).unwrap().flatten() {
        if e.file_name() != "full.jsonl" {
            everything.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    for (_, v) in SECRETS.iter().chain([&("", "svc-secret-never-logged-42")]) {
        assert!(!everything.contains(v), "a secret reached the logs");
    }
    // The libraries log through tracing into the daemon's log: the
    // heartbeat's ask retried a provider.
    let o = r
        .run(&["logs", "--service", "nexusd", "--grep", "retrying after"])
        .await;
    assert!(stdout(&o).contains("nexus_providers"), "{}", stdout(&o));
    // The CLI's own errors are there.
    let o = r
        .run(&["logs", "--service", "cli", "--level", "error"])
        .await;
    assert!(stdout(&o).contains("no service `nope`"), "{}", stdout(&o));

    // Filters and export.
    let o = r.run(&["logs", "--grep", "token=", "--since", "1h"]).await;
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    let o = r
        .run(&["logs", "--level", "warn", "--service", "echoer"])
        .await;
    assert!(stdout(&o).contains("token=") && !stdout(&o).contains("key="));
    let export = r.home.path().join("export.jsonl");
    let o = r
        .run(&[
            "logs",
            "--service",
            "echoer",
            "--export",
            export.to_str().unwrap(),
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&export).unwrap().lines().count() >= 3);
    let o = r.run(&["logs", "--since", "soon"]).await;
    assert_eq!(o.status.code(), Some(3));

    // A full log disk: the service runs on, and status says why its log is not written.
    let o = r.run(&["services", "status", "--json"]).await;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let full = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "full")
        .unwrap()
        .clone();
    assert_eq!(full["state"], "running", "{full}");
    assert!(
        full["log_error"]
            .as_str()
            .unwrap_or("")
            .contains("No space left"),
        "{full}"
    );

    // Cleared.
    let o = r.run(&["daemon", "stop"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["logs", "clear"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["logs"]).await;
    assert!(stderr(&o).contains("no log lines match"), "{}", stderr(&o));
}
