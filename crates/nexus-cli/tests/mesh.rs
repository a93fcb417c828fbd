//! The mesh through the CLI: `nexus up` runs the broker; three peers in
//! three homes create, invite, join, exchange direct and topic messages,
//! verify safety numbers, block (the key rotates), back up and restore.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

mod common;

use common::{stderr, stdout, Run};

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn peer() -> Run {
    let mut r = Run::new();
    r.env.push((
        "NEXUS_VAULT_PASSPHRASE".into(),
        "mesh test passphrase".into(),
    ));
    r
}

/// Starts `nexus up` on an ephemeral port; returns its URL.
fn up(r: &Run) -> (Up, String) {
    let mut c = r.cmd(&["up", "--listen", "127.0.0.1:0"]);
    let mut child = c
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
        .unwrap()
        .to_string();
    (Up(child), url)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_peers_through_the_cli() {
    let owner = peer();
    let (_broker, url) = up(&owner);
    assert!(owner.home.path().join("nexus/broker.db").exists());
    let o = owner
        .run(&[
            "mesh", "create", "team", "--broker", &url, "--name", "owner",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = owner
        .run(&["mesh", "invite", "--uses", "2", "--expires", "1h", "--json"])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let link = v["link"].as_str().unwrap().to_string();
    assert!(link.starts_with("nexus://join/"));

    let (alice, bob) = (peer(), peer());
    for (r, name) in [(&alice, "alice"), (&bob, "bob")] {
        let o = r.run(&["mesh", "join", &link, "--name", name]).await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // A third join on a two-use invite is refused.
    let carol = peer();
    let o = carol.run(&["mesh", "join", &link, "--name", "carol"]).await;
    assert_eq!(o.status.code(), Some(25), "{}", stderr(&o));
    assert!(stderr(&o).contains("invite_spent"));
    // A short code, registered at the broker, works with --broker.
    let o = owner.run(&["mesh", "invite", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let short = v["short_code"].as_str().unwrap().to_string();
    assert_eq!(short.len(), 19, "{short}");
    let o = carol
        .run(&[
            "mesh",
            "join",
            "0000-0000-0000-0000",
            "--broker",
            &url,
            "--name",
            "carol",
        ])
        .await;
    assert_eq!(o.status.code(), Some(25));
    assert!(stderr(&o).contains("unknown_invite"), "{}", stderr(&o));
    let o = carol
        .run(&["mesh", "join", &short.to_lowercase(), "--name", "carol"])
        .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "a short code needs --broker: {}",
        stderr(&o)
    );
    let o = carol
        .run(&["mesh", "join", &short, "--broker", &url, "--name", "carol"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));

    // The owner comes online and seals the mesh key to the newcomers.
    let o = owner.run(&["mesh", "inbox"]).await;
    assert!(
        stdout(&o).contains("alice joined; sent them the mesh key"),
        "{}",
        stdout(&o)
    );
    for r in [&alice, &bob] {
        let o = r.run(&["mesh", "inbox"]).await;
        assert!(
            stdout(&o).contains("received the team key (epoch 0)"),
            "{}",
            stdout(&o)
        );
    }

    // Direct messages, end to end.
    let o = alice.run(&["mesh", "send", "bob", "hello bob"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bob.run(&["mesh", "inbox", "--json"]).await;
    let line = stdout(&o)
        .lines()
        .find(|l| l.contains("\"dm\""))
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["from_name"].as_str(), v["text"].as_str()),
        (Some("alice"), Some("hello bob"))
    );

    // Topics and their history.
    alice.run(&["mesh", "topic", "join", "builds"]).await;
    bob.run(&["mesh", "topic", "create", "builds"]).await;
    let o = bob
        .run(&["mesh", "topic", "send", "builds", "build 99 green"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    // Alice was offline when bob published: her inbox catches up, once.
    let o = alice.run(&["mesh", "inbox"]).await;
    assert!(
        stdout(&o).contains("[#builds] bob: build 99 green"),
        "{}",
        stdout(&o)
    );
    let o = alice.run(&["mesh", "inbox"]).await;
    assert!(
        !stdout(&o).contains("build 99 green"),
        "shown twice: {}",
        stdout(&o)
    );
    let o = owner
        .run(&["mesh", "topic", "history", "builds", "--json"])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["message"]["text"], "build 99 green");
    let o = bob.run(&["mesh", "topic", "list"]).await;
    assert_eq!(stdout(&o).trim(), "#builds");

    // Presence.
    alice.run(&["mesh", "status", "set", "busy"]).await;
    alice
        .run(&["mesh", "summary", "set", "reviewing PR 7"])
        .await;
    let o = owner.run(&["mesh", "peers", "--json"]).await;
    let peers: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "alice")
        .unwrap();
    assert_eq!(
        (a["status"].as_str(), a["summary"].as_str()),
        (Some("busy"), Some("reviewing PR 7"))
    );

    // Safety numbers agree from both sides.
    let digits = |s: String| {
        s.lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ab = digits(stdout(&alice.run(&["mesh", "verify", "bob"]).await));
    let ba = digits(stdout(&bob.run(&["mesh", "verify", "alice"]).await));
    assert_eq!(ab.split_whitespace().count(), 12);
    assert_eq!(ab, ba);

    // Grants are enforced by the broker.
    owner.run(&["mesh", "revoke", "alice", "dm"]).await;
    let o = alice.run(&["mesh", "send", "bob", "again"]).await;
    assert_eq!(o.status.code(), Some(25));
    assert!(stderr(&o).contains("forbidden"), "{}", stderr(&o));
    owner.run(&["mesh", "grant", "alice", "dm"]).await;
    assert!(alice
        .run(&["mesh", "send", "bob", "again"])
        .await
        .status
        .success());

    // Blocking bob rotates the key; alice gets epoch 1, bob is out.
    let o = owner.run(&["mesh", "block", "bob"]).await;
    assert!(stderr(&o).contains("epoch 1"), "{}", stderr(&o));
    let o = alice.run(&["mesh", "inbox"]).await;
    assert!(stdout(&o).contains("epoch 1"), "{}", stdout(&o));
    let o = bob.run(&["mesh", "inbox"]).await;
    assert_ne!(o.status.code(), Some(0));

    // Back up alice and restore her into a fresh home.
    let file = alice.home.path().join("alice.backup");
    let mut a2 = alice.env.clone();
    a2.push((
        "NEXUS_BACKUP_PASSPHRASE".into(),
        "backup passphrase 123".into(),
    ));
    let alice_b = Run {
        home: tempfile::tempdir().unwrap(),
        env: a2.clone(),
    };
    let alice_a = Run {
        home: tempfile::tempdir().unwrap(),
        env: a2,
    };
    std::fs::create_dir_all(alice_a.home.path().join("nexus")).unwrap();
    // Copy alice's home so the backup runs against her real state.
    for f in ["vault.enc", "mesh.json"] {
        std::fs::copy(
            alice.home.path().join("nexus").join(f),
            alice_a.home.path().join("nexus").join(f),
        )
        .unwrap();
    }
    let o = alice_a
        .run(&["mesh", "backup", file.to_str().unwrap()])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = alice_b
        .run(&["mesh", "restore", file.to_str().unwrap()])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = alice_b.run(&["mesh", "topic", "history", "builds"]).await;
    assert!(
        stdout(&o).contains("build 99 green"),
        "the restored peer reads with the restored keys: {}",
        stdout(&o)
    );
}
