//! `Client::mesh()` in-process against a real broker on loopback: the
//! verbs an app calls in a loop, each on its own connection, none of them
//! leaking one (the broker allows eight per identity).

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use nexus_sdk::mesh::MeshEvent;
use nexus_sdk::{Client, ClientOptions, MemoryVault, MeshRoute};

fn peer(dir: &std::path::Path, name: &str) -> nexus_sdk::Mesh {
    Client::with_options(ClientOptions {
        home: Some(dir.join(name)),
        vault: Some(Arc::new(MemoryVault::default())),
        ..Default::default()
    })
    .unwrap()
    .mesh_routed(MeshRoute::InProcess)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn many_verbs_in_one_process_neither_leak_connections_nor_lose_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _broker) = nexus_mesh::server::start(
        "127.0.0.1:0",
        &dir.path().join("broker.db"),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let owner = peer(dir.path(), "owner");
    owner.create("lab", &url, Some("owner")).await.unwrap();
    let inv = owner
        .invite(None, std::time::Duration::from_secs(600), 1, "member")
        .await
        .unwrap();
    // Invites that make no sense are refused and change nothing.
    for (uses, role, says) in [(0, "member", "at least one"), (1, "god", "no role `god`")] {
        let e = owner
            .invite(None, std::time::Duration::from_secs(600), uses, role)
            .await
            .unwrap_err();
        assert_eq!(e.code(), nexus_sdk::ErrorCode::Mesh, "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
    let bob = peer(dir.path(), "bob");
    assert_eq!(bob.join(&inv.link, None, Some("bob")).await.unwrap(), "lab");
    owner.inbox(None).await.unwrap();
    bob.inbox(None).await.unwrap();
    assert!(bob.has_key(None).await.unwrap());
    // Three times the per-identity connection cap, back to back.
    for i in 0..24 {
        owner.send(None, "bob", &format!("m{i}")).await.unwrap();
    }
    assert_eq!(
        bob.unread(None).await.unwrap(),
        [("direct".to_string(), 24)]
    );
    let items = bob.inbox(None).await.unwrap();
    let texts: Vec<String> = items
        .iter()
        .filter_map(|i| match &i.message {
            MeshEvent::Dm { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, (0..24).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let seqs: Vec<i64> = items.iter().filter_map(|i| i.seq).collect();
    bob.mark_read(None, &seqs).await.unwrap();
    assert!(bob.unread(None).await.unwrap().is_empty());
    // Topic names are sealed: the broker stores and routes an opaque id.
    bob.topic(None, "secret-plans", true).await.unwrap();
    owner.topic(None, "secret-plans", true).await.unwrap();
    owner
        .publish(None, "secret-plans", "meet at noon")
        .await
        .unwrap();
    let items = bob.inbox(None).await.unwrap();
    assert!(
        items.iter().any(|i| matches!(&i.message,
            MeshEvent::Topic { topic, text, .. } if topic == "secret-plans" && text == "meet at noon")),
        "{items:?}"
    );
    assert_eq!(
        bob.unread(None).await.unwrap(),
        [("#secret-plans".to_string(), 1)]
    );
    let page = owner.history(None, "secret-plans", None, 10).await.unwrap();
    assert!(matches!(&page[0].message, MeshEvent::Topic { topic, .. } if topic == "secret-plans"));
    let mut stored = Vec::new();
    for f in ["broker.db", "broker.db-wal"] {
        stored.extend(std::fs::read(dir.path().join(f)).unwrap_or_default());
    }
    assert!(!stored.is_empty());
    assert!(
        !stored.windows(12).any(|w| w == b"secret-plans"),
        "the broker's database names the topic"
    );
    // No daemon runs for these homes: the daemon route says so.
    let e = owner
        .with_route(MeshRoute::Daemon)
        .peers(None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), nexus_sdk::ErrorCode::Internal, "{e}");
    assert!(e.to_string().contains("nexus daemon start"), "{e}");
}
