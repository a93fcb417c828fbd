//! CLI verbs through a running daemon (`nexusd`): many at once, none of
//! them losing a message, and daemons that ride out a broker restart.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::mesh::{connected, daemon, team, team_at};
use common::{stderr, stdout, Run};

fn dms(o: &std::process::Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "dm")
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect()
}

fn ops(s: &serde_json::Value) -> u64 {
    s["meshes"][0]["ops"].as_u64().unwrap_or(0)
}

async fn status(r: &Run) -> serde_json::Value {
    let o = r.run(&["daemon", "status", "--json"]).await;
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_concurrent_verbs_through_one_daemon_get_their_own_answers() {
    let (_broker, _url, _owner, peers) = team(&["alice", "bob"]).await;
    let (alice, bob) = (&peers[0], &peers[1]);
    let _d = daemon(alice).await;
    connected(alice).await;
    let before = ops(&status(alice).await);
    let verbs: Vec<Vec<String>> = vec![
        vec!["mesh", "send", "bob", "dm-0"],
        vec!["mesh", "send", "bob", "dm-1"],
        vec!["mesh", "send", "bob", "dm-2"],
        vec!["mesh", "send", "bob", "dm-3"],
        vec!["mesh", "peers", "--json"],
        vec!["mesh", "peers", "--json"],
        vec!["mesh", "topic", "send", "general", "post-0"],
        vec!["mesh", "topic", "send", "general", "post-1"],
        vec!["mesh", "status", "set", "busy"],
        vec!["mesh", "unread", "--json"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    let runs = verbs.iter().map(|v| {
        let args: Vec<&str> = v.iter().map(String::as_str).collect();
        async move { alice.run(&args).await }
    });
    let outs = futures_util::future::join_all(runs).await;
    let mut ids = std::collections::BTreeSet::new();
    for (v, o) in verbs.iter().zip(&outs) {
        assert!(o.status.success(), "{v:?}: {}", stderr(o));
        match v[1].as_str() {
            "send" | "topic" => {
                let id = stderr(o)
                    .split('(')
                    .nth(1)
                    .unwrap()
                    .trim_end()
                    .trim_end_matches(')')
                    .to_string();
                assert_eq!(id.len(), 32, "{}", stderr(o));
                assert!(ids.insert(id), "each its own id");
            }
            "peers" => {
                let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                assert_eq!(p.as_array().unwrap().len(), 3, "{p}");
            }
            "unread" => {
                let _: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(ids.len(), 6);
    // All ten went through the daemon.
    assert_eq!(ops(&status(alice).await) - before, 10);
    let mut got = dms(&bob.run(&["mesh", "inbox", "--json"]).await);
    got.sort();
    assert_eq!(got, ["dm-0", "dm-1", "dm-2", "dm-3"]);
    let o = bob.run(&["mesh", "peers", "--json"]).await;
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = p
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "alice")
        .unwrap();
    assert_eq!(a["status"], "busy", "{a}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_daemon_no_verb_loses_a_message() {
    let (_broker, _url, _owner, peers) = team(&["alice", "bob"]).await;
    let (alice, bob) = (&peers[0], &peers[1]);
    let _d = daemon(bob).await;
    connected(bob).await;
    for text in ["one", "two", "three"] {
        let o = alice.run(&["mesh", "send", "bob", text]).await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for args in [
        &["mesh", "peers"][..],
        &["mesh", "send", "alice", "hi"],
        &["mesh", "status", "set", "away"],
        &["mesh", "summary", "set", "testing"],
        &["mesh", "topic", "history", "builds"],
        &["mesh", "verify", "alice"],
        &["mesh", "request-key"],
    ] {
        let o = bob.run(args).await;
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    assert!(ops(&status(bob).await) >= 7);
    // The daemon stored them; the unread counts say so before inbox does.
    let o = bob.run(&["mesh", "unread", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["direct"], 3, "{v}");
    let o = bob.run(&["mesh", "inbox", "--json"]).await;
    assert_eq!(dms(&o), ["one", "two", "three"], "{}", stdout(&o));
    let o = bob.run(&["mesh", "inbox", "--json"]).await;
    assert!(dms(&o).is_empty(), "shown once: {}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn daemons_reconnect_after_a_broker_restart_and_nothing_is_lost() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let (broker, _url, owner, peers) = team_at(&listen, &["alice", "bob"]).await;
    let (alice, bob) = (&peers[0], &peers[1]);
    let _a = daemon(alice).await;
    let _b = daemon(bob).await;
    connected(alice).await;
    connected(bob).await;
    // Bob follows through his daemon.
    let mut follow = bob
        .cmd(&["mesh", "inbox", "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = common::mesh::Lines::of(follow.stdout.take().unwrap());
    let wait_for = |want: &str, secs: u64| {
        lines.wait_for(want, secs);
    };
    let o = alice.run(&["mesh", "send", "bob", "before"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for("before", 10);

    drop(broker);
    // While the broker is down, a verb says why at once.
    let o = alice.run(&["mesh", "send", "bob", "lost?"]).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("broker") || stderr(&o).contains("connection"),
        "{}",
        stderr(&o)
    );
    let _broker = common::mesh::up_on(&owner, &listen);
    // Alice's daemon reconnects by itself; her next send goes through it.
    let t = std::time::Instant::now();
    loop {
        let o = alice.run(&["mesh", "send", "bob", "after"]).await;
        if o.status.success() {
            break;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(40),
            "alice's daemon never reconnected: {}",
            stderr(&o)
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // Bob's daemon reconnects too and the follower shows it.
    wait_for("after", 40);
    connected(alice).await;
    connected(bob).await;
    let _ = follow.kill();
    let _ = follow.wait();
    // Shown once: nothing is unread, and nothing comes back.
    let o = bob.run(&["mesh", "inbox", "--json"]).await;
    assert!(dms(&o).is_empty(), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_inbox_is_moved_aside_with_a_message_and_nothing_is_lost() {
    let (_broker, _url, _owner, peers) = team(&["alice", "bob"]).await;
    let (alice, bob) = (&peers[0], &peers[1]);
    let o = alice
        .run(&["mesh", "send", "bob", "sent before the damage"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    // Bob's inbox database is damaged (a disk error, a bad copy).
    let dir = bob.home.path().join("nexus");
    for f in ["inbox.db-wal", "inbox.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    std::fs::write(dir.join("inbox.db"), vec![0x5a; 64 * 1024]).unwrap();
    let o = bob.run(&["mesh", "inbox"]).await;
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("damaged") && err.contains("moved to"), "{err}");
    let aside: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("inbox.db.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "kept aside, not reset: {aside:?}");
    // The next command starts a new inbox; what was not acknowledged is
    // still at the broker and arrives.
    let o = bob.run(&["mesh", "inbox", "--json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(dms(&o), ["sent before the damage"], "{}", stdout(&o));
}
