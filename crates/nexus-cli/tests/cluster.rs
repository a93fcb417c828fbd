//! Two broker nodes (`nexus up --nats`) on a three-server JetStream
//! cluster, streams with three replicas: peers connected to different
//! nodes exchange direct and topic messages live, see each other online
//! within two heartbeats, and a grant or block made on one node holds on
//! the other.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::mesh::{connected, daemon, peer, Up};
use common::{ok, stderr, stdout, Run};
use serde_json::Value;

/// A three-server JetStream cluster on loopback; its URLs, comma-separated.
fn nats() -> Option<(nexus_testkit::nats::Nats, tempfile::TempDir, String)> {
    let dir = tempfile::tempdir().unwrap();
    let n = nexus_testkit::nats::start(3, dir.path())?;
    let servers = n.servers();
    Some((n, dir, servers))
}

/// `nexus up` as a node on `nats`; its URL.
fn node(r: &Run, nats: &str) -> (Up, String) {
    let mut child = r
        .cmd(&[
            "up",
            "--no-daemon",
            "--listen",
            "127.0.0.1:0",
            "--nats",
            nats,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (Up(child), url)
}

async fn until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !check().await {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn peers_on_two_nodes_talk_see_each_other_and_a_block_holds_everywhere() {
    let Some((_nats, _dir, url)) = nats() else {
        return;
    };
    let infra = peer();
    let (_a, a_url) = node(&infra, &url);
    let (_b, b_url) = node(&peer(), &url);
    assert_ne!(a_url, b_url);

    let owner = peer();
    ok(
        &owner,
        &[
            "mesh", "create", "team", "--broker", &a_url, "--name", "owner",
        ],
    )
    .await;
    ok(&owner, &["mesh", "topic", "join", "news"]).await;
    let _od = daemon(&owner).await;
    let v: Value = serde_json::from_str(&ok(&owner, &["mesh", "invite", "--json"]).await).unwrap();
    let alice = peer();
    // She joins through node B with the short code the owner registered
    // on node A: the mesh and the code are there too.
    ok(
        &alice,
        &[
            "mesh",
            "join",
            v["short_code"].as_str().unwrap(),
            "--broker",
            &b_url,
            "--name",
            "alice",
        ],
    )
    .await;
    let state = std::fs::read_to_string(alice.home.path().join("nexus/mesh.json")).unwrap();
    assert!(state.contains(&b_url), "alice is on node B: {state}");
    ok(&alice, &["mesh", "topic", "join", "news"]).await;
    until("alice's key", 15, async || {
        alice
            .run(&["mesh", "topic", "send", "news", "hello from b"])
            .await
            .status
            .success()
    })
    .await;
    let _ad = daemon(&alice).await;
    connected(&alice).await;
    connected(&owner).await;

    // Presence: each sees the other online, across nodes.
    let online = async |r: &Run, name: &str| {
        let o = r.run(&["mesh", "peers", "--json"]).await;
        let peers: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap_or_default();
        peers
            .iter()
            .any(|p| p["name"] == name && p["online"] == true)
    };
    // Presence converges within two heartbeats (1 s apart), plus a second
    // for the asking.
    until("alice online for the owner", 3, async || {
        online(&owner, "alice").await
    })
    .await;
    until("the owner online for alice", 5, async || {
        online(&alice, "owner").await
    })
    .await;

    // Direct and topic messages, live both ways.
    let inbox_has =
        async |r: &Run, text: &str| stdout(&r.run(&["mesh", "inbox"]).await).contains(text);
    ok(&owner, &["mesh", "send", "alice", "dm from node a"]).await;
    until("a DM from A to B", 5, async || {
        inbox_has(&alice, "dm from node a").await
    })
    .await;
    ok(&alice, &["mesh", "send", "owner", "dm from node b"]).await;
    until("a DM from B to A", 5, async || {
        inbox_has(&owner, "dm from node b").await
    })
    .await;
    ok(&owner, &["mesh", "topic", "send", "news", "topic from a"]).await;
    until("a topic message from A to B", 5, async || {
        inbox_has(&alice, "topic from a").await
    })
    .await;
    ok(&alice, &["mesh", "topic", "send", "news", "topic from b"]).await;
    until("a topic message from B to A", 5, async || {
        inbox_has(&owner, "topic from b").await
    })
    .await;
    // History is one history, whichever node answers.
    let h = ok(&alice, &["mesh", "topic", "history", "news"]).await;
    for t in ["hello from b", "topic from a", "topic from b"] {
        assert_eq!(h.matches(t).count(), 1, "{t} in {h}");
    }

    // A grant taken away on node A holds on node B at once, and given back.
    ok(&owner, &["mesh", "revoke", "alice", "broadcast"]).await;
    until("the revoke on node B", 5, async || {
        !alice
            .run(&["mesh", "topic", "send", "news", "may I?"])
            .await
            .status
            .success()
    })
    .await;
    ok(&owner, &["mesh", "grant", "alice", "broadcast"]).await;
    until("the grant on node B", 5, async || {
        alice
            .run(&["mesh", "topic", "send", "news", "again"])
            .await
            .status
            .success()
    })
    .await;

    // A block on node A closes her connection on node B and keeps her out.
    ok(&owner, &["mesh", "block", "alice"]).await;
    until("the block on node B", 10, async || {
        !alice
            .run(&["mesh", "send", "owner", "still here?"])
            .await
            .status
            .success()
    })
    .await;
    let o = alice.run(&["mesh", "send", "owner", "still here?"]).await;
    assert!(!o.status.success(), "{}", stdout(&o));
    let _ = stderr(&o);
    until("alice offline for the owner", 3, async || {
        !online(&owner, "alice").await
    })
    .await;
}
