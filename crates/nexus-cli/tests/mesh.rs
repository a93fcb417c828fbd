//! The mesh through the CLI: `nexus up` runs the broker; three peers in
//! three homes create, invite, join, exchange direct and topic messages,
//! verify safety numbers, block (the key rotates), back up and restore.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

mod common;

use common::mesh::{peer, up, up_on, DaemonGuard};
use common::{stderr, stdout, Run};

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

    // The owner comes online. Alice and bob came through a two-use
    // invite: the owner is asked first. Carol's was single-use: she gets
    // the key at once.
    let o = owner.run(&["mesh", "inbox"]).await;
    let said = stdout(&o);
    assert!(
        said.contains("alice (") && said.contains("nexus mesh approve"),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.contains("carol (") && l.contains("sent them the mesh key")),
        "{said}"
    );
    let o = owner.run(&["mesh", "approve", "--json"]).await;
    let waiting: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(waiting.as_array().unwrap().len(), 2, "{waiting}");
    for who in ["alice", "bob"] {
        let o = owner.run(&["mesh", "approve", who]).await;
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("sent the team key to {who}")));
    }
    let o = owner.run(&["mesh", "approve"]).await;
    assert!(stdout(&o).contains("no one is waiting"), "{}", stdout(&o));
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
        stdout(&o).contains("[#builds] bob (") && stdout(&o).contains("): build 99 green"),
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
    // Sealed: the broker's files hold neither.
    let mut files = Vec::new();
    for e in std::fs::read_dir(owner.home.path().join("nexus")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("broker.db")
        {
            files.extend(std::fs::read(p).unwrap());
        }
    }
    assert!(!files.is_empty());
    for needle in [&b"reviewing PR 7"[..], b"busy"] {
        assert!(
            !files.windows(needle.len()).any(|w| w == needle),
            "{} is in the broker's database",
            String::from_utf8_lossy(needle)
        );
    }

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

    // Everything under each NEXUS_HOME is the user's alone.
    for r in [&owner, &alice, &bob, &carol] {
        assert_private(&r.home.path().join("nexus"));
    }
}

/// NEXUS_HOME is 0700 and every file in it 0600 (the broker's database,
/// its WAL and shared memory, mesh.json, the vault and its lock).
fn assert_private(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            assert_private(&p);
        } else {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_stops_cleanly_on_sigterm_and_says_its_limits() {
    let r = peer();
    // config.toml's [broker] table, under the flags.
    for (k, v) in [
        ("broker.burst", "70000"),
        ("broker.max_connections", "321"),
        ("broker.durability", "full"),
    ] {
        let o = r.run(&["config", "set", k, v]).await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let mut c = r.cmd(&[
        "up",
        "--listen",
        "127.0.0.1:0",
        "--rate",
        "50000",
        "--burst",
        "90000",
    ]);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    for _ in 0..4 {
        out.read_line(&mut text).unwrap();
    }
    assert!(text.contains("50000 frames/s (burst 90000)"), "{text}");
    assert!(text.contains("321 connections"), "{text}");
    assert!(text.contains("durability: Full"), "{text}");
    // The resident Nexus runs in the same process, and stops with it.
    assert!(text.contains("runs in this process too"), "{text}");
    let _guard = DaemonGuard(r.home.path().join("nexus"));
    let o = r.run(&["daemon", "status", "--json"]).await;
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["running"], true, "{st}");
    assert_eq!(st["pid"], child.id(), "{st}");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("SIGTERM"), "{err}");
    assert_private(&r.home.path().join("nexus"));
    let o = r.run(&["daemon", "status", "--json"]).await;
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["running"], false, "{st}");
    assert!(!r.home.path().join("nexus/nexusd.sock").exists());
    // Limits that make no sense are refused with the reason.
    let o = r
        .run(&["up", "--listen", "127.0.0.1:0", "--max-frame", "5"])
        .await;
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("max_frame"), "{}", stderr(&o));
}

/// CPU time (user + system, clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_file_descriptors_the_broker_waits_instead_of_spinning() {
    let r = peer();
    let exe = env!("CARGO_BIN_EXE_nexus");
    let mut c = r.cmd(&[]);
    c.arg("-c").arg(format!(
        "ulimit -n 64 && exec {exe} up --listen 127.0.0.1:0"
    ));
    let mut c = {
        // Same environment, run through a shell that lowers the limit.
        let mut sh = std::process::Command::new("bash");
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.args(c.get_args());
        sh
    };
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ws://"))
        .unwrap()
        .to_string();
    // Far more connections than descriptors: accept fails with EMFILE.
    let mut held = Vec::new();
    for _ in 0..150 {
        if let Ok(s) = std::net::TcpStream::connect(&addr) {
            held.push(s);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    // A spinning accept loop burns a whole core: 200 ticks in 2 s.
    assert!(
        used < 40,
        "the broker used {used} ticks of CPU in 2 s while out of descriptors"
    );
    // Once connections close, it serves again.
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let url = format!("ws://{addr}");
    let owner = peer();
    let o = owner
        .run(&[
            "mesh", "create", "team", "--broker", &url, "--name", "owner",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("accept failed") && err.contains("backing off"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_message_is_lost_to_other_verbs_or_a_closed_stdout() {
    let owner = peer();
    let (_broker, url) = up(&owner);
    let o = owner
        .run(&[
            "mesh", "create", "team", "--broker", &url, "--name", "owner",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let (alice, bob) = (peer(), peer());
    for (r, name) in [(&alice, "alice"), (&bob, "bob")] {
        let o = owner.run(&["mesh", "invite", "--json"]).await;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let link = v["link"].as_str().unwrap().to_string();
        let o = r.run(&["mesh", "join", &link, "--name", name]).await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // The owner seals the key; bob runs other verbs before his inbox: the
    // key waits for him at the broker.
    let o = owner.run(&["mesh", "inbox"]).await;
    assert!(
        stdout(&o).contains("sent them the mesh key"),
        "{}",
        stdout(&o)
    );
    for args in [
        &["mesh", "peers"][..],
        &["mesh", "topic", "history", "builds"],
    ] {
        assert!(bob.run(args).await.status.success());
    }
    let o = bob.run(&["mesh", "inbox"]).await;
    assert!(
        stdout(&o).contains("received the team key"),
        "{}",
        stdout(&o)
    );

    // Direct messages while bob runs every other verb first.
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
    ] {
        let o = bob.run(args).await;
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    let o = bob.run(&["mesh", "inbox", "--json"]).await;
    let texts: Vec<String> = stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "dm")
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["one", "two", "three"], "{}", stdout(&o));

    // A closed stdout: the messages are kept, unread, and shown next time.
    for text in ["four", "five"] {
        assert!(alice
            .run(&["mesh", "send", "bob", text])
            .await
            .status
            .success());
    }
    let mut c = bob.cmd(&["mesh", "inbox"]);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait().unwrap();
    let o = bob.run(&["mesh", "unread", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["direct"], 2, "{v}");
    let o = bob.run(&["mesh", "inbox"]).await;
    let out = stdout(&o);
    assert!(
        out.contains("[dm] alice (") && out.contains("): four") && out.contains("): five"),
        "{out}"
    );
    assert!(!out.contains("three"), "shown once: {out}");
    let o = bob.run(&["mesh", "unread"]).await;
    assert!(stdout(&o).contains("nothing unread"), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_verbs_rejoins_names_and_restores_lose_nothing() {
    let owner = peer();
    let (_broker, url) = up(&owner);
    let o = owner
        .run(&["mesh", "create", "team", "--broker", &url, "--name", "ana"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    // Ten processes change mesh.json at once: every change is kept.
    let joins: Vec<_> = (0..10)
        .map(|i| {
            let name = format!("t{i}");
            let r = &owner;
            async move { r.run(&["mesh", "topic", "join", &name]).await }
        })
        .collect();
    for o in futures_util::future::join_all(joins).await {
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = owner.run(&["mesh", "topic", "list"]).await;
    assert_eq!(stdout(&o).lines().count(), 10, "{}", stdout(&o));

    // A newcomer cannot take a member's name.
    let o = owner
        .run(&["mesh", "invite", "--uses", "3", "--json"])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let link = v["link"].as_str().unwrap().to_string();
    let mallory = peer();
    let o = mallory.run(&["mesh", "join", &link, "--name", "ANA"]).await;
    assert_eq!(o.status.code(), Some(25), "{}", stderr(&o));
    assert!(stderr(&o).contains("name_taken"), "{}", stderr(&o));

    // Joining again keeps the membership (topics, marks, keys).
    let ben = peer();
    assert!(ben
        .run(&["mesh", "join", &link, "--name", "ben"])
        .await
        .status
        .success());
    owner.run(&["mesh", "inbox"]).await;
    owner.run(&["mesh", "approve", "ben"]).await;
    assert!(ben.run(&["mesh", "inbox"]).await.status.success());
    ben.run(&["mesh", "topic", "join", "builds"]).await;
    let before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ben.home.path().join("nexus/mesh.json")).unwrap())
            .unwrap();
    assert!(ben
        .run(&["mesh", "join", &link, "--name", "ben"])
        .await
        .status
        .success());
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ben.home.path().join("nexus/mesh.json")).unwrap())
            .unwrap();
    assert_eq!(
        after["meshes"]["team"]["topics"],
        before["meshes"]["team"]["topics"]
    );
    assert_eq!(after["meshes"]["team"]["epoch"], 0);

    // Restoring someone else's backup over an identity asks for --force,
    // and keeps what it replaces.
    let mut env = ben.env.clone();
    env.push((
        "NEXUS_BACKUP_PASSPHRASE".into(),
        "backup passphrase 123".into(),
    ));
    let ben_b = Run {
        home: tempfile::tempdir().unwrap(),
        env: env.clone(),
    };
    std::fs::create_dir_all(ben_b.home.path().join("nexus")).unwrap();
    for f in ["vault.enc", "mesh.json"] {
        std::fs::copy(
            ben.home.path().join("nexus").join(f),
            ben_b.home.path().join("nexus").join(f),
        )
        .unwrap();
    }
    let file = ben_b.home.path().join("ben.backup");
    assert!(ben_b
        .run(&["mesh", "backup", file.to_str().unwrap()])
        .await
        .status
        .success());
    let other = Run {
        home: tempfile::tempdir().unwrap(),
        env,
    };
    assert!(
        other.run(&["mesh", "peers"]).await.status.code() != Some(0),
        "no mesh yet"
    );
    let o = other
        .run(&["mesh", "restore", file.to_str().unwrap()])
        .await;
    assert!(o.status.success(), "a fresh home takes it: {}", stderr(&o));
    // The owner's home is a member of a mesh: replacing needs --force.
    let restore = |force: bool| {
        let mut c = owner.cmd(&["mesh", "restore", file.to_str().unwrap()]);
        if force {
            c.arg("--force");
        }
        c.env("NEXUS_BACKUP_PASSPHRASE", "backup passphrase 123")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = restore(false);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = restore(true);
    assert!(o.status.success(), "{}", stderr(&o));
    let kept: Vec<String> = std::fs::read_dir(owner.home.path().join("nexus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mesh.json.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "the replaced state is kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_follow_rides_out_a_broker_restart() {
    let owner = peer();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let start = || up_on(&owner, &listen).0;
    let broker = start();
    let url = format!("ws://{listen}");
    owner
        .run(&[
            "mesh", "create", "team", "--broker", &url, "--name", "owner",
        ])
        .await;
    let (alice, bob) = (peer(), peer());
    for (r, name) in [(&alice, "alice"), (&bob, "bob")] {
        let o = owner.run(&["mesh", "invite", "--json"]).await;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let link = v["link"].as_str().unwrap().to_string();
        assert!(r
            .run(&["mesh", "join", &link, "--name", name])
            .await
            .status
            .success());
    }
    owner.run(&["mesh", "inbox"]).await;
    // Bob follows his inbox; every line goes to a channel.
    let mut c = bob.cmd(&["mesh", "inbox", "--follow"]);
    let mut follow = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let lines = common::mesh::Lines::of(follow.stdout.take().unwrap());
    let wait_for = |want: &str, secs: u64| lines.wait_for(want, secs);
    wait_for("received the team key", 15);
    assert!(alice
        .run(&["mesh", "send", "bob", "before the restart"])
        .await
        .status
        .success());
    wait_for("before the restart", 15);
    // The broker goes away and comes back on the same port and database.
    drop(broker);
    let seen = wait_for("reconnecting", 15);
    assert!(!seen.is_empty());
    let _broker = start();
    let o = alice
        .run(&["mesh", "send", "bob", "after the restart"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for("after the restart", 45);
    let _ = follow.kill();
    let _ = follow.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_hands_out_keys_at_once_and_loses_nothing_to_a_kill() {
    let owner = peer();
    let (_broker, url) = up(&owner);
    owner
        .run(&[
            "mesh", "create", "team", "--broker", &url, "--name", "owner",
        ])
        .await;
    let o = owner.run(&["daemon", "start"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let _stop = DaemonGuard(owner.home.path().join("nexus"));
    // A second start changes nothing and says why.
    let o = owner.run(&["daemon", "start"]).await;
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("already running"), "{}", stderr(&o));
    let o = owner.run(&["daemon", "status", "--json"]).await;
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["running"], true, "{s}");
    let pid = s["pid"].as_u64().unwrap();

    // A joiner gets the key within 5 s, with no command from the owner.
    let o = owner.run(&["mesh", "invite", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let link = v["link"].as_str().unwrap().to_string();
    let alice = peer();
    let t = std::time::Instant::now();
    assert!(alice
        .run(&["mesh", "join", &link, "--name", "alice"])
        .await
        .status
        .success());
    // She can post to a topic: that needs the key.
    let mut got = false;
    while t.elapsed() < std::time::Duration::from_secs(5) && !got {
        let o = alice
            .run(&["mesh", "topic", "send", "general", "hello all"])
            .await;
        got = o.status.success();
    }
    assert!(got, "no key within 5 s");

    // The daemon is killed; messages sent meanwhile, and those it had
    // stored, all reach the owner's inbox once.
    alice.run(&["mesh", "send", "owner", "while it ran"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    alice
        .run(&["mesh", "send", "owner", "while it was dead"])
        .await;
    let o = owner.run(&["daemon", "status"]).await;
    assert!(
        stdout(&o).contains("not running"),
        "a stale socket: {}",
        stdout(&o)
    );
    let o = owner.run(&["daemon", "start"]).await;
    assert!(
        o.status.success(),
        "restart over the stale socket: {}",
        stderr(&o)
    );
    alice
        .run(&["mesh", "send", "owner", "after the restart"])
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let o = owner.run(&["mesh", "inbox", "--json"]).await;
    let texts: Vec<String> = stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "dm")
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        ["while it ran", "while it was dead", "after the restart"],
        "{}",
        stdout(&o)
    );
    let o = owner.run(&["daemon", "stop"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = owner.run(&["daemon", "status", "--json"]).await;
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["running"], false);
}
