//! The extension host with real extensions in Python and Node (fixtures):
//! calls both ways, the store and its isolation and quota, garbage on
//! stdout, a SIGSEGV with restarts and backoff, a flood, a process that
//! ignores SIGTERM and forks a grandchild, permissions with approvals, and
//! nothing left running after a stop (checked in /proc).

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::NexusHome;
use nexus_ext::host::{self, Approver, DenyAll, Paths, Shared, State};
use nexus_ext::permissions::Answer;
use nexus_ext::rpc::code;
use nexus_ext::supervisor::Supervisor;
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of a fixture, with its id (and more) rewritten.
fn variant(name: &str, id: &str, extra: &str, dir: &Path) -> PathBuf {
    let to = dir.join(id);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    let m = to.join("nexus-extension.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    let text = text.replacen(&format!("id = \"{name}\""), &format!("id = \"{id}\""), 1);
    std::fs::write(&m, format!("{}{extra}", text)).unwrap();
    to
}

struct Setup {
    _home: tempfile::TempDir,
    paths: Paths,
}

fn setup() -> Setup {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::new(NexusHome::at(home.path()));
    Setup { _home: home, paths }
}

fn alive(pid: u32) -> bool {
    // A zombie is gone for our purposes; anything else in /proc runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            let after = stat.rsplit(')').next().unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            // state, ppid, pgrp
            if fields.get(2).and_then(|p| p.parse::<u32>().ok()) == Some(pgid)
                && fields.first() != Some(&"Z")
            {
                out.push(pid);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_extension_calls_back_into_the_host_and_stores_are_isolated() {
    let s = setup();
    let tmp = tempfile::tempdir().unwrap();
    let e = host::install(&s.paths, &fixture("notes"), &[], false).unwrap_err();
    assert!(e.to_string().contains("not signed"), "{e}");
    host::install(&s.paths, &fixture("notes"), &[], true).unwrap();
    host::install(
        &s.paths,
        &variant("notes", "notes2", "", tmp.path()),
        &[],
        true,
    )
    .unwrap();
    let shared = Shared::new(
        s.paths.clone(),
        Arc::new(DenyAll),
        Duration::from_secs(1),
        200,
    );
    let a = host::start(&shared, "notes").await.unwrap();
    let b = host::start(&shared, "notes2").await.unwrap();
    assert_eq!(a.info["protocol_version"], "1");
    assert_eq!(
        a.call("echo", json!({"x": [1, 2]})).await.unwrap(),
        json!({"x": [1, 2]})
    );
    a.call("note.add", json!({"key": "todo", "text": "buy milk"}))
        .await
        .unwrap();
    assert_eq!(
        a.call("note.get", json!({"key": "todo"})).await.unwrap(),
        "buy milk"
    );
    assert_eq!(
        b.call("note.get", json!({"key": "todo"})).await.unwrap(),
        Value::Null,
        "one extension reads another's keys"
    );
    // The quota (200 bytes here), enforced with a typed error.
    let e = a
        .call("note.add", json!({"key": "big", "text": "x".repeat(300)}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("quota"), "{e}");
    // Garbage on stdout is counted, and the extension goes on.
    assert_eq!(
        a.call("garbage", json!({})).await.unwrap(),
        "after the noise"
    );
    assert_eq!(
        a.peer
            .stats()
            .garbage
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        a.call("echo", json!("still fine")).await.unwrap(),
        "still fine"
    );
    // An unknown method is an error answer, not a hang.
    assert!(a.call("nope", json!({})).await.is_err());
    let (mut a, mut b) = (a, b);
    let pids = [a.pid().unwrap(), b.pid().unwrap()];
    a.stop().await;
    b.stop().await;
    for p in pids {
        assert!(!alive(p), "{p} survived its stop");
    }
    // Uninstall: notes keeps no data (persistent_data = false); a variant
    // that asks to keep it, keeps it.
    assert!(!host::uninstall(&s.paths, "notes").unwrap());
    assert!(!s.paths.data("notes").exists());
    host::install(
        &s.paths,
        &variant("notes", "keeper", "", tmp.path()),
        &[],
        true,
    )
    .unwrap();
    let m = s.paths.dir("keeper").join("nexus-extension.toml");
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("persistent_data = false", "persistent_data = true");
    std::fs::write(&m, text).unwrap();
    let mut k = host::start(&shared, "keeper").await.unwrap();
    k.call("note.add", json!({"key": "kept", "text": "yes"}))
        .await
        .unwrap();
    k.stop().await;
    assert!(host::uninstall(&s.paths, "keeper").unwrap());
    assert!(s.paths.data("keeper").join("store.db").exists());
}

/// Answers every approval with a fixed answer, after a delay.
struct Fixed(Answer, Duration);

#[async_trait::async_trait]
impl Approver for Fixed {
    async fn ask(&self, _: &str, _: &str, _: &str, timeout: Duration) -> Answer {
        if self.1 > timeout {
            tokio::time::sleep(timeout).await;
            return Answer::TimedOut;
        }
        tokio::time::sleep(self.1).await;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sensitive_requests_ask_and_decisions_are_remembered_and_audited() {
    let s = setup();
    host::install(&s.paths, &fixture("notes"), &[], true).unwrap();
    for (answer, delay, ok) in [
        (Answer::Deny, Duration::ZERO, false),
        (Answer::Allow, Duration::ZERO, true),
        (Answer::Allow, Duration::from_secs(5), false), // nobody answers within 300 ms
    ] {
        let shared = Shared::new(
            s.paths.clone(),
            Arc::new(Fixed(answer, delay)),
            Duration::from_millis(300),
            1 << 20,
        );
        let mut x = host::start(&shared, "notes").await.unwrap();
        let r = x.call("clipboard", json!({})).await;
        assert_eq!(r.is_ok(), ok, "{answer:?} after {delay:?}: {r:?}");
        x.stop().await;
    }
    // Remembered: allowed always, then no one is asked (a denier would refuse).
    let shared = Shared::new(
        s.paths.clone(),
        Arc::new(Fixed(Answer::AllowAlways, Duration::ZERO)),
        Duration::from_secs(1),
        1 << 20,
    );
    let mut x = host::start(&shared, "notes").await.unwrap();
    x.call("clipboard", json!({})).await.unwrap();
    x.stop().await;
    let shared = Shared::new(
        s.paths.clone(),
        Arc::new(DenyAll),
        Duration::from_secs(1),
        1 << 20,
    );
    let mut x = host::start(&shared, "notes").await.unwrap();
    x.call("clipboard", json!({})).await.unwrap();
    assert_eq!(shared.revoke("notes", None).unwrap(), 1);
    let e = x.call("clipboard", json!({})).await.unwrap_err();
    assert!(e.to_string().contains("denied"), "{e}");
    x.stop().await;
    let audit = std::fs::read_to_string(s.paths.audit()).unwrap();
    let decisions: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["decision"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        decisions,
        [
            "deny",
            "allow",
            "timed_out",
            "allow_always",
            "allow",
            "deny"
        ]
    );
    let _ = code::PERMISSION_DENIED;
}

#[tokio::test(flavor = "multi_thread")]
async fn crashes_restart_with_backoff_and_never_touch_the_others() {
    let s = setup();
    host::install(&s.paths, &fixture("notes"), &[], true).unwrap();
    host::install(&s.paths, &fixture("stubborn"), &[], true).unwrap();
    let shared = Shared::with_defaults(s.paths.clone(), Arc::new(DenyAll));
    let sup = Supervisor::start(shared, &["notes".into(), "stubborn".into()]);
    let first = sup.call("notes", "pid", json!({})).await.unwrap();
    // A flood from one side does not stall the host or the other extension.
    assert_eq!(
        sup.call("stubborn", "flood", json!({"n": 20000}))
            .await
            .unwrap(),
        20000
    );
    let mut gaps = Vec::new();
    let mut last = Instant::now();
    for i in 0..5 {
        let _ = sup.call("notes", "crash", json!({})).await; // SIGSEGV: no answer
        assert_eq!(
            sup.call("stubborn", "echo", json!(i)).await.unwrap(),
            json!(i),
            "the other extension stopped"
        );
        let pid = sup.call("notes", "pid", json!({})).await.unwrap();
        assert_ne!(pid, first);
        gaps.push(last.elapsed());
        last = Instant::now();
    }
    let st = sup.status("notes").unwrap();
    assert_eq!(st.restarts, 5);
    let last = st.last_exit.unwrap();
    assert!(last.contains("SIGSEGV"), "{last}");
    // Backoff: 0.5, 1, 2, 4, 8 s between restarts, growing.
    assert!(
        gaps[4] > gaps[1] && gaps[4] >= Duration::from_secs(7),
        "{gaps:?}"
    );
    // The sixth crash in ten minutes disables it, and says why.
    let _ = sup.call("notes", "crash", json!({})).await;
    // Noticing the exit takes a moment; on a loaded machine, a few.
    for _ in 0..400 {
        if sup.status("notes").unwrap().disabled.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let why = sup.status("notes").unwrap().disabled.expect("disabled");
    assert!(why.contains("crashed"), "{why}");
    let state = State::load(&s.paths);
    assert!(!state.0["notes"].enabled);
    assert!(state.0["notes"].disabled_because.is_some());
    assert_eq!(
        sup.call("stubborn", "echo", json!("alive")).await.unwrap(),
        "alive"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_that_ignores_sigterm_and_forks_leaves_nothing_behind() {
    let s = setup();
    host::install(&s.paths, &fixture("stubborn"), &[], true).unwrap();
    let shared = Shared::with_defaults(s.paths.clone(), Arc::new(DenyAll));
    let sup = Supervisor::start(shared, &["stubborn".into()]);
    let pid = sup
        .call("stubborn", "pid", json!({}))
        .await
        .unwrap()
        .as_u64()
        .unwrap() as u32;
    let grandchild = sup
        .call("stubborn", "fork", json!({}))
        .await
        .unwrap()
        .as_u64()
        .unwrap() as u32;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alive(pid) && alive(grandchild));
    assert!(group_members(pid).contains(&grandchild));
    let started = Instant::now();
    sup.shutdown().await;
    // shutdown, stdin closed (2 s), SIGTERM (2 s), SIGKILL.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!alive(pid), "the extension survived");
    assert!(!alive(grandchild), "its grandchild survived");
    assert!(group_members(pid).is_empty(), "{:?}", group_members(pid));
}
