//! `nexus-broker migrate` copies a SQLite broker into JetStream, and
//! `nexus-broker status` shows the server, JetStream and the broker nodes.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use nexus_broker::jetstream::JetStreamStore;
use nexus_mesh::store::{conformance, BrokerStore, SqliteStore};

fn broker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nexus-broker"))
}

#[test]
fn a_sqlite_broker_is_copied_whole_and_once() {
    let Some((_s, url)) = common::server() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("broker.db");
    {
        let s = SqliteStore::open(&db).unwrap();
        conformance::membership(&s);
        conformance::queue_and_history(&s);
    }
    let o = broker()
        .args([
            "migrate",
            "--from",
            &format!("sqlite:{}", db.display()),
            "--to",
            &url,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("lab: 2 members"), "{out}");
    assert!(out.contains("copied 1 mesh(es)"), "{out}");

    let from = SqliteStore::open(&db).unwrap();
    let to = JetStreamStore::connect(&url, 1).unwrap();
    let frames = |s: &dyn BrokerStore, t: &str| -> Vec<Vec<u8>> {
        s.history("lab", t, None, 100, 1 << 20)
            .unwrap()
            .into_iter()
            .map(|(_, f)| f)
            .collect()
    };
    for t in ["t", "big", "u"] {
        assert_eq!(frames(&from, t), frames(&to, t), "topic {t}");
    }
    assert_eq!(
        to.pending("lab", "b").unwrap(),
        from.pending("lab", "b").unwrap()
    );
    assert_eq!(to.members("lab").unwrap().len(), 2);
    assert!(
        !to.use_invite("lab", "i2", 5).unwrap(),
        "revoked stays revoked"
    );
    // A retried message keeps its id: still one message after the copy.
    let again = to.append_topic("lab", "t", "m1", b"retry").unwrap();
    assert!(!again.fresh);

    // Twice is refused, with why.
    let o = broker()
        .args(["migrate", "--from", &db.display().to_string(), "--to", &url])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already has a mesh `lab`"), "{err}");
    let o = broker()
        .args(["migrate", "--from", "sqlite:/no/such.db", "--to", &url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
}

#[test]
fn status_shows_the_server_jetstream_and_the_broker_nodes() {
    let Some((_s, url)) = common::server() else {
        return;
    };
    let port = common::free_port();
    let mut node = broker()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nats",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(node.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let o = broker()
        .args(["status", "--nats", &url, "--json"])
        .output()
        .unwrap();
    let _ = node.kill();
    let _ = node.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["jetstream"], true, "{v}");
    assert!(v["leader"].is_string(), "{v}");
    assert_eq!(v["brokers"].as_array().unwrap().len(), 1, "{v}");
    let o = broker()
        .args(["status", "--nats", "nats://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no NATS server answered"));
}
