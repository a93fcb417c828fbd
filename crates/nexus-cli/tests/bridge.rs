//! Bridges through the real binary: three meshes on three brokers, joined
//! in a ring by three bridges (one supervised by its daemon, one in the
//! foreground through its daemon, one in-process), every message of every
//! mesh in every mesh exactly once, through a bridge killed mid-run.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::mesh::{connected, daemon, peer, up, DaemonGuard, Lines, Up};
use common::{ok, stderr, Run};
use serde_json::Value;

/// An owner with a mesh `name` on a broker of its own, its daemon running.
async fn owner(name: &str) -> (Up, Run, DaemonGuard) {
    let r = peer();
    let (broker, url) = up(&r);
    ok(
        &r,
        &[
            "mesh",
            "create",
            name,
            "--broker",
            &url,
            "--name",
            &format!("user-{name}"),
        ],
    )
    .await;
    ok(&r, &["mesh", "topic", "join", "news"]).await;
    let d = daemon(&r).await;
    (broker, r, d)
}

async fn join(owner: &Run, who: &Run, as_name: &str) {
    let v: Value = serde_json::from_str(&ok(owner, &["mesh", "invite", "--json"]).await).unwrap();
    ok(
        who,
        &[
            "mesh",
            "join",
            v["link"].as_str().unwrap(),
            "--name",
            as_name,
        ],
    )
    .await;
}

/// Waits until `r` holds the key of `mesh` (the owner's daemon sends it).
async fn keyed(r: &Run, mesh: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = r.run(&["mesh", "--mesh", mesh, "inbox"]).await;
        let o2 = r
            .run(&["mesh", "--mesh", mesh, "topic", "history", "news", "--json"])
            .await;
        if o.status.success() && o2.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no key for {mesh}: {}",
            stderr(&o2)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The texts in `mesh`'s #news history as `r` reads it, in order, with
/// where each began.
async fn texts(r: &Run, mesh: &str) -> Vec<(String, Option<String>)> {
    let o = ok(
        r,
        &[
            "mesh", "--mesh", mesh, "topic", "history", "news", "--limit", "500", "--json",
        ],
    )
    .await;
    let page: Vec<Value> = serde_json::from_str(&o).unwrap();
    let mut out: Vec<(String, Option<String>)> = page
        .iter()
        .filter(|e| e["message"]["type"] == "topic")
        .map(|e| {
            let m = &e["message"];
            (
                m["text"].as_str().unwrap().to_string(),
                m["bridged"]["origin"]["mesh_name"]
                    .as_str()
                    .map(str::to_string),
            )
        })
        .collect();
    out.reverse();
    out
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bridge_run(r: &Run) -> (Killed, Lines) {
    let mut c = r
        .cmd(&["mesh", "bridge", "run", "bridge.yaml", "--json"])
        .current_dir(r.home.path().join("nexus"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Lines::of(c.stdout.take().unwrap());
    (Killed(c), lines)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ring_of_three_bridges_delivers_each_message_once_per_mesh() {
    let names = ["m0", "m1", "m2"];
    let mut owners = Vec::new();
    for n in names {
        owners.push(owner(n).await);
    }
    // Bridge k is in mesh k and mesh k+1.
    let bridges: Vec<Run> = (0..3).map(|_| peer()).collect();
    for (k, b) in bridges.iter().enumerate() {
        for m in [k, (k + 1) % 3] {
            join(&owners[m].1, b, &format!("bridge{k}")).await;
            keyed(b, names[m]).await;
        }
        let yaml = format!(
            "# a ring\nmeshes: [{}, {}]\ntopics: [news]\nmax_hops: 2\n",
            names[k],
            names[(k + 1) % 3]
        );
        std::fs::write(b.home.path().join("nexus/bridge.yaml"), yaml).unwrap();
        let file = b.home.path().join("nexus/bridge.yaml");
        let check = ok(
            b,
            &["mesh", "bridge", "check", file.to_str().unwrap(), "--json"],
        )
        .await;
        assert!(check.contains("\"max_hops\": 2"), "{check}");
    }
    // A bad file is refused with what is wrong, before anything runs.
    std::fs::write(
        bridges[0].home.path().join("nexus/bad.yaml"),
        "meshes: [m0, m0]\ntopics: [news]\n",
    )
    .unwrap();
    let o = bridges[0]
        .cmd(&["mesh", "bridge", "run", "bad.yaml"])
        .current_dir(bridges[0].home.path().join("nexus"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("two different meshes"),
        "{}",
        stderr(&o)
    );

    // Bridge 0 runs as a service of its daemon; bridge 1 in the foreground
    // through its daemon; bridge 2 in-process, with no daemon.
    std::fs::write(
        bridges[0].home.path().join("nexus/config.toml"),
        "[services.bridge]\nbridge = \"bridge.yaml\"\n",
    )
    .unwrap();
    let _d0 = daemon(&bridges[0]).await;
    let _d1 = daemon(&bridges[1]).await;
    connected(&bridges[0]).await;
    connected(&bridges[1]).await;
    let (b1, lines1) = bridge_run(&bridges[1]);
    lines1.wait_for("\"started\"", 20);
    let (b2, lines2) = bridge_run(&bridges[2]);
    lines2.wait_for("\"started\"", 20);
    let service_pid = |o: &str| -> Option<u64> {
        let v: Value = serde_json::from_str(o).ok()?;
        let s = v["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "bridge")?;
        (s["state"] == "running")
            .then(|| s["pid"].as_u64())
            .flatten()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let o = ok(&bridges[0], &["services", "status", "--json"]).await;
        if let Some(pid) = service_pid(&o) {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the bridge service never ran: {o}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Every user publishes. Meanwhile bridge 1 is killed and stays down for
    // a while, and the supervised bridge 0 is killed (its daemon restarts
    // it): what they had not forwarded comes back to them unread.
    let per = 4;
    let mut b1 = Some(b1);
    for i in 0..per {
        for (m, n) in names.iter().enumerate() {
            ok(
                &owners[m].1,
                &["mesh", "topic", "send", "news", &format!("{n} says {i}")],
            )
            .await;
        }
        if i == 1 {
            b1.take();
            std::process::Command::new("kill")
                .args(["-KILL", &first.to_string()])
                .status()
                .unwrap();
        }
    }
    for (m, n) in names.iter().enumerate() {
        ok(
            &owners[m].1,
            &[
                "mesh",
                "topic",
                "send",
                "news",
                &format!("{n} after the kills"),
            ],
        )
        .await;
    }
    let (_b1, _lines1) = bridge_run(&bridges[1]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = ok(&bridges[0], &["services", "status", "--json"]).await;
        match service_pid(&o) {
            Some(pid) if pid != first => break,
            _ => assert!(Instant::now() < deadline, "not restarted: {o}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let total = names.len() * (per + 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    for (m, n) in names.iter().enumerate() {
        let mut seen;
        loop {
            seen = texts(&owners[m].1, n).await;
            if seen.len() >= total || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(
            seen.len() >= total,
            "{n} holds {} of {total}: {seen:?}",
            seen.len()
        );
    }
    // Give a stray duplicate time to land, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (m, n) in names.iter().enumerate() {
        let seen = texts(&owners[m].1, n).await;
        let mut sorted: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
        sorted.sort_unstable();
        let len = sorted.len();
        sorted.dedup();
        assert_eq!(len, sorted.len(), "a duplicate in {n}: {seen:?}");
        assert_eq!(len, total, "{n}: {seen:?}");
        for (text, origin) in &seen {
            let from = text.split(' ').next().unwrap();
            if from == *n {
                assert_eq!(origin, &None, "{n}'s own message came back: {text}");
            } else {
                assert_eq!(origin.as_deref(), Some(from), "{text} in {n}");
            }
        }
    }
    // A reader sees where a copy began, not the envelope.
    let o = ok(
        &owners[1].1,
        &["mesh", "--mesh", "m1", "topic", "history", "news"],
    )
    .await;
    assert!(o.contains("user-m0@m0 via bridge"), "{o}");
    assert!(!o.contains("nxb1"), "{o}");
    drop(b2);
}
