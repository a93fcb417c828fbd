//! The hostile-peer suite: a bad member, a bad stranger and a bad broker,
//! against a real broker (and real clients) on loopback. Each attack from
//! the security review has its case here; the broker and the clients stay
//! up, bounded, and say plainly what they refused.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use nexus_core::{MemoryVault, NexusHome, SystemClock, Vault};
use nexus_mesh::auth::Invite;
use nexus_mesh::broker::{create_payload, join_payload, Broker, Limits};
use nexus_mesh::client::Connection;
use nexus_mesh::frame::{self, Frame};
use nexus_mesh::identity::hex;
use nexus_mesh::peer::{Envelope, Incoming, Peer};
use nexus_mesh::server::{self, ServeOptions};
use nexus_mesh::store::SqliteStore;
use nexus_mesh::Identity;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(10);

struct Running {
    url: String,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

async fn start_with(limits: Limits, options: ServeOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("broker.db")).unwrap());
    let broker = Arc::new(Broker::new(store, Arc::new(SystemClock), limits).with_group_commit());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if options.tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    server::serve_with(listener, broker.clone(), options);
    Running {
        url,
        broker,
        _dir: dir,
    }
}

async fn start() -> Running {
    start_with(Limits::default(), ServeOptions::default()).await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn code(f: &Frame) -> &str {
    match f {
        Frame::Error { code, .. } => code,
        _ => "",
    }
}

use nexus_fuzz::nested_page;

/// A peer in its own home with an in-memory vault.
struct Home {
    peer: Peer,
    vault: Arc<dyn Vault>,
    _dir: tempfile::TempDir,
}

fn home(name: &str) -> Home {
    let dir = tempfile::tempdir().unwrap();
    let vault: Arc<dyn Vault> = Arc::new(MemoryVault::default());
    let peer = Peer::load(NexusHome::at(dir.path()), vault.clone(), Some(name)).unwrap();
    Home {
        peer,
        vault,
        _dir: dir,
    }
}

async fn inbox(p: &mut Peer, mesh: &str) -> Vec<String> {
    let mut seen = Vec::new();
    p.inbox(mesh, false, &mut |i| {
        seen.push(match i {
            Incoming::Notice { text } => format!("notice: {text}"),
            Incoming::Dm { text, .. } => format!("dm: {text}"),
            Incoming::Topic { text, .. } => format!("topic: {text}"),
        });
        Ok(())
    })
    .await
    .unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deeply_nested_frame_kills_neither_broker_nor_client() {
    let srv = start().await;
    let bomb = nested_page(1_800);
    assert!(bomb.len() < 16_000, "{} bytes", bomb.len());
    // From a stranger: never decoded (not a hello), one refusal, closed.
    let x = Connection::open(&srv.url).await.unwrap();
    x.send_raw(bomb.clone()).unwrap();
    assert_eq!(code(&x.recv_timeout(T).await.unwrap()), "unauthenticated");
    // From a member: decoded without recursion and refused.
    let owner = Identity::generate("o").unwrap();
    let o = Connection::open(&srv.url).await.unwrap();
    o.create_mesh(&owner, "lab").await.unwrap();
    for depth in [1_800, 15_000] {
        o.send_raw(nested_page(depth)).unwrap();
        let f = o.wait_for(T, |_| false).await.unwrap_err().to_string();
        assert!(
            f.contains("malformed") && f.contains("only topic messages"),
            "{f}"
        );
    }
    // The broker still serves.
    o.send(&Frame::ListPeers).unwrap();
    assert!(matches!(
        o.wait_for(T, |f| matches!(f, Frame::PeerList { .. }))
            .await
            .unwrap(),
        Frame::PeerList { .. }
    ));
}

/// A broker that says whatever `script` sends, to whoever connects.
async fn bad_broker(script: Vec<Message>) -> (String, tokio::sync::oneshot::Receiver<usize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", l.local_addr().unwrap());
    let (done, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
        let mut sent = 0;
        for m in script {
            match tokio::time::timeout(Duration::from_secs(2), ws.send(m)).await {
                Ok(Ok(())) => sent += 1,
                _ => break,
            }
        }
        let _ = done.send(sent);
        // Keep the socket open a little, then drop it.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_broker_cannot_crash_or_flood_a_client() {
    // Bombs, an oversized message and garbage: the client drops them, and
    // the one good frame after them still arrives.
    let good = Frame::Welcome { queued: 7 }.encode();
    let (url, _) = bad_broker(vec![
        Message::Binary(nested_page(1_800).into()),
        Message::Binary(nested_page(15_000).into()),
        Message::Binary(frame::encode_batch(&[nested_page(500)]).into()),
        Message::Binary(vec![frame::VERSION, 99, 1, 2, 3].into()),
        Message::Binary(good.into()),
    ])
    .await;
    let c = Connection::open(&url).await.unwrap();
    assert_eq!(c.recv_timeout(T).await, Some(Frame::Welcome { queued: 7 }));
    // A message over the limit breaks the connection cleanly.
    let (url, _) = bad_broker(vec![Message::Binary(vec![0u8; 2 << 20].into())]).await;
    let c = Connection::open(&url).await.unwrap();
    assert_eq!(c.recv_timeout(T).await, None);
    // A flood the client does not read: the broker's sends block once the
    // client's bounded inbox and the socket buffers are full.
    let big = Frame::Done {
        what: "x".repeat(16 * 1024),
    }
    .encode();
    let flood: Vec<Message> = (0..20_000)
        .map(|_| Message::Binary(big.clone().into()))
        .collect();
    let (url, sent) = bad_broker(flood).await;
    let _c = Connection::open(&url).await.unwrap();
    let sent = tokio::time::timeout(Duration::from_secs(20), sent)
        .await
        .unwrap()
        .unwrap();
    assert!(
        sent < 5_000,
        "the client read {sent} messages ahead without bound"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_cannot_plant_mesh_keys() {
    let srv = start().await;
    let (mut owner, mut alice, mut eve) = (home("owner"), home("alice"), home("eve"));
    owner.peer.create("lab", &srv.url).await.unwrap();
    for p in [&mut alice, &mut eve] {
        let inv = owner
            .peer
            .invite("lab", Duration::from_secs(3600), 1, "member")
            .await
            .unwrap();
        p.peer.join(&inv.link(), None).await.unwrap();
    }
    let said = inbox(&mut owner.peer, "lab").await;
    assert_eq!(
        said.iter()
            .filter(|s| s.contains("sent them the mesh key"))
            .count(),
        2,
        "{said:?}"
    );
    inbox(&mut alice.peer, "lab").await;
    let genuine = owner.peer.root("lab").unwrap().unwrap();
    assert_eq!(alice.peer.root("lab").unwrap().unwrap(), genuine);

    // Eve, a plain member, seals "root keys" to alice: one for the current
    // epoch, one for the next and one far in the future.
    let (c, _) = eve.peer.connect("lab").await.unwrap();
    for epoch in [0u32, 1, 9] {
        let env = Envelope::RootKey {
            mesh: "lab".into(),
            epoch,
            key: hex(&[0xee; 32]),
            // A naming key too: refused with the rest.
            names: hex(&[0xee; 32]),
        };
        let id = c
            .send_dm(
                eve.peer.identity(),
                alice.peer.identity().peer_id().as_str(),
                &hex(&alice.peer.identity().x25519_public()),
                &serde_json::to_vec(&env).unwrap(),
            )
            .unwrap();
        c.wait_for(T, |f| matches!(f, Frame::Ack { id: a } if *a == id))
            .await
            .unwrap();
    }
    let said = inbox(&mut alice.peer, "lab").await;
    assert_eq!(
        said.iter()
            .filter(|s| s.contains("refused a mesh key") && s.contains("not the owner or an admin"))
            .count(),
        3,
        "{said:?}"
    );
    assert_eq!(
        alice.peer.root("lab").unwrap().unwrap(),
        genuine,
        "the key is unchanged"
    );
    assert_eq!(alice.peer.state().meshes["lab"].epoch, Some(0));

    // A garbage direct message, then a real one: the garbage is kept and
    // shown as such, and does not stop the rest.
    c.send(&Frame::Dm {
        id: "garbage-1".into(),
        from: eve.peer.identity().peer_id().to_string(),
        to: alice.peer.identity().peer_id().to_string(),
        nonce: [3; 24],
        body: vec![0xab; 80],
    })
    .unwrap();
    c.wait_for(T, |f| matches!(f, Frame::Ack { id } if id == "garbage-1"))
        .await
        .unwrap();
    let text = Envelope::Text {
        text: "after the garbage".into(),
    };
    let id = c
        .send_dm(
            eve.peer.identity(),
            alice.peer.identity().peer_id().as_str(),
            &hex(&alice.peer.identity().x25519_public()),
            &serde_json::to_vec(&text).unwrap(),
        )
        .unwrap();
    c.wait_for(T, |f| matches!(f, Frame::Ack { id: a } if *a == id))
        .await
        .unwrap();
    let said = inbox(&mut alice.peer, "lab").await;
    assert!(
        said.iter().any(|s| s.contains("does not decrypt")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|s| s == "dm: after the garbage"),
        "{said:?}"
    );
    assert!(alice.peer.unread("lab").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_sticks() {
    let srv = start().await;
    let (mut owner, mut eve) = (home("owner"), home("eve"));
    owner.peer.create("lab", &srv.url).await.unwrap();
    let multi = owner
        .peer
        .invite("lab", Duration::from_secs(3600), 5, "member")
        .await
        .unwrap();
    // Issued before the block, used after it.
    let early = owner
        .peer
        .invite("lab", Duration::from_secs(3600), 1, "member")
        .await
        .unwrap();
    eve.peer.join(&multi.link(), None).await.unwrap();
    // A multi-use invite: the owner is asked before the key goes out.
    let said = inbox(&mut owner.peer, "lab").await;
    assert!(
        said.iter().any(|s| s.contains("nexus mesh approve")),
        "{said:?}"
    );
    assert!(inbox(&mut eve.peer, "lab")
        .await
        .iter()
        .all(|s| !s.contains("received")));
    assert_eq!(owner.peer.pending("lab").unwrap().len(), 1);
    owner.peer.approve("lab", "eve").await.unwrap();
    let said = inbox(&mut eve.peer, "lab").await;
    assert!(
        said.iter()
            .any(|s| s.contains("received the lab key (epoch 0)")),
        "{said:?}"
    );

    owner.peer.block("lab", "eve").await.unwrap();
    // Eve comes back with a fresh identity through the same invite.
    let mut eve2 = home("eva");
    let e = eve2
        .peer
        .join(&multi.link(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("invite_spent") && e.contains("revoked"), "{e}");
    // Or through an invite issued before the block: she gets in, but never
    // the key, automatically or by approval.
    let mut mallory = home("mallory");
    mallory.peer.join(&early.link(), None).await.unwrap();
    let said = inbox(&mut owner.peer, "lab").await;
    assert!(
        said.iter()
            .any(|s| s.contains("mallory") && s.contains("gets no mesh key")),
        "{said:?}"
    );
    let e = owner
        .peer
        .approve("lab", "mallory")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no one named"), "{e}");
    inbox(&mut mallory.peer, "lab").await;
    assert_eq!(mallory.peer.root("lab").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_key_can_be_asked_for_again_and_only_by_whom_it_went_to() {
    let srv = start().await;
    let (mut owner, mut alice, mut eve) = (home("owner"), home("alice"), home("eve"));
    owner.peer.create("lab", &srv.url).await.unwrap();
    let single = owner
        .peer
        .invite("lab", Duration::from_secs(3600), 1, "member")
        .await
        .unwrap();
    let multi = owner
        .peer
        .invite("lab", Duration::from_secs(3600), 3, "member")
        .await
        .unwrap();
    alice.peer.join(&single.link(), None).await.unwrap();
    eve.peer.join(&multi.link(), None).await.unwrap();
    inbox(&mut owner.peer, "lab").await;
    inbox(&mut alice.peer, "lab").await;
    let genuine = owner.peer.root("lab").unwrap().unwrap();
    assert_eq!(alice.peer.root("lab").unwrap().unwrap(), genuine);
    // Alice's vault loses the key (a reset keyring, say).
    alice.vault.delete("mesh/lab/root/0").unwrap();
    assert_eq!(alice.peer.root("lab").unwrap(), None);
    assert_eq!(alice.peer.request_key("lab").await.unwrap(), 1);
    // Eve, still waiting for approval, asks too: the owner is only told.
    eve.peer.request_key("lab").await.unwrap();
    let said = inbox(&mut owner.peer, "lab").await;
    assert!(
        said.iter()
            .any(|s| s.contains("alice") && s.contains("sent it")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|s| s.contains("eve") && s.contains("nexus mesh approve")),
        "{said:?}"
    );
    let said = inbox(&mut alice.peer, "lab").await;
    assert!(
        said.iter()
            .any(|s| s.contains("received the lab key (epoch 0) again")),
        "{said:?}"
    );
    assert_eq!(alice.peer.root("lab").unwrap().unwrap(), genuine);
    inbox(&mut eve.peer, "lab").await;
    assert_eq!(
        eve.peer.root("lab").unwrap(),
        None,
        "not sent without approval"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn captured_joins_and_creates_cannot_be_replayed() {
    let srv = start().await;
    let owner = Identity::generate("o").unwrap();
    let key = hex(&owner.ed25519_public());
    let x = hex(&owner.x25519_public());
    let (ts, nonce) = (now_ms(), "0123456789abcdef-create".to_string());
    let create = Frame::CreateMesh {
        mesh: "lab".into(),
        key: key.clone(),
        x25519: x.clone(),
        name: "o".into(),
        ts,
        sig: hex(&owner.sign(&create_payload("lab", &key, &x, "o", ts, &nonce))),
        nonce,
    };
    let c = Connection::open(&srv.url).await.unwrap();
    c.send(&create).unwrap();
    assert!(matches!(
        c.recv_timeout(T).await.unwrap(),
        Frame::Welcome { .. }
    ));

    let joiner = Identity::generate("j").unwrap();
    let inv = Invite::new(&owner, "lab", &srv.url, "member", now_ms() + 60_000, 5).unwrap();
    let (jk, jx, nonce) = (
        hex(&joiner.ed25519_public()),
        hex(&joiner.x25519_public()),
        "0123456789abcdef-join".to_string(),
    );
    let join = Frame::Join {
        invite: inv.code(),
        key: jk.clone(),
        x25519: jx.clone(),
        name: "j".into(),
        ts,
        sig: hex(&joiner.sign(&join_payload(&inv.id, &jk, &jx, "j", ts, &nonce))),
        nonce,
    };
    let j = Connection::open(&srv.url).await.unwrap();
    j.send(&join).unwrap();
    assert!(matches!(
        j.recv_timeout(T).await.unwrap(),
        Frame::Welcome { .. }
    ));
    // The attacker captured both frames and sends them again.
    for replay in [join, create] {
        let a = Connection::open(&srv.url).await.unwrap();
        a.send(&replay).unwrap();
        let f = a.recv_timeout(T).await.unwrap();
        assert_eq!(code(&f), "bad_request", "{f:?}");
        assert!(format!("{f:?}").contains("replay"));
        assert_eq!(
            a.recv_timeout(T).await,
            None,
            "and the connection is closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_message_from_a_stranger_is_cut_off() {
    let srv = start().await;
    // Raw WebSocket: 2 MiB in one message (the old broker buffered up to
    // 16 MiB per connection before anyone had said hello).
    let (mut raw, _) = tokio_tungstenite::connect_async(&srv.url).await.unwrap();
    let sent = raw
        .send(Message::Binary(vec![frame::VERSION; 2 << 20].into()))
        .await;
    use futures_util::StreamExt;
    let next = tokio::time::timeout(T, raw.next()).await.unwrap();
    assert!(
        sent.is_err() || !matches!(next, Some(Ok(Message::Binary(_)))),
        "the broker read it: {next:?}"
    );
    // Everyone else is served.
    let owner = Identity::generate("o").unwrap();
    let o = Connection::open(&srv.url).await.unwrap();
    o.create_mesh(&owner, "lab").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_batch_of_bad_frames_gets_one_answer() {
    let srv = start().await;
    let frames: Vec<Vec<u8>> = (0..10_000).map(|_| Frame::ListPeers.encode()).collect();
    let batch = frame::encode_batch(&frames);
    assert!(batch.len() < 31_000);
    let x = Connection::open(&srv.url).await.unwrap();
    x.send_raw(batch).unwrap();
    assert_eq!(code(&x.recv_timeout(T).await.unwrap()), "unauthenticated");
    assert_eq!(x.recv_timeout(T).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_never_reads_is_let_go() {
    let limits = Limits {
        rate_per_sec: 1_000_000,
        burst: 1_000_000,
        max_queued_bytes: 1 << 20,
        ..Limits::default()
    };
    let srv = start_with(limits, ServeOptions::default()).await;
    let owner = Identity::generate("o").unwrap();
    let o = Connection::open(&srv.url).await.unwrap();
    o.create_mesh(&owner, "lab").await.unwrap();
    // The sloth: a raw WebSocket that says hello and then never reads.
    let sloth = Identity::generate("s").unwrap();
    let inv = Invite::new(&owner, "lab", &srv.url, "member", now_ms() + 60_000, 1).unwrap();
    let s = Connection::open(&srv.url).await.unwrap();
    s.join(&sloth, &inv).await.unwrap();
    let (mut raw, _) = tokio_tungstenite::connect_async(&srv.url).await.unwrap();
    let nonce = "0123456789abcdef-sloth";
    raw.send(Message::Binary(
        nexus_mesh::auth::sign_hello(&sloth, "lab", now_ms(), nonce)
            .encode()
            .into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = srv.broker.connections();
    // 40 MiB of topic messages: far past what a reader may have queued.
    let body = vec![7u8; 32 * 1024];
    for i in 0..1_280 {
        o.send(&Frame::Publish {
            id: format!("m{i}"),
            from: owner.peer_id().to_string(),
            topic: "t".into(),
            epoch: 0,
            nonce: [0; 24],
            body: body.clone(),
        })
        .unwrap();
        if i % 64 == 63 {
            // Drain the owner's acks as a live client would.
            while o.try_recv().is_some() {}
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let deadline = Instant::now() + T;
    while srv.broker.connections() >= before && Instant::now() < deadline {
        while o.try_recv().is_some() {}
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        srv.broker.connections() < before,
        "the sloth was disconnected"
    );
    // Everyone else is still served.
    o.send(&Frame::ListPeers).unwrap();
    o.wait_for(T, |f| matches!(f, Frame::PeerList { .. }))
        .await
        .unwrap();
    drop(raw);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_strangers_are_cut_off_and_counted() {
    let limits = Limits {
        handshake_timeout_ms: 500,
        max_unauthenticated: 4,
        max_connections_per_ip: 6,
        ..Limits::default()
    };
    let srv = start_with(limits, ServeOptions::default()).await;
    let addr = srv.url.trim_start_matches("ws://").to_string();
    // Slowloris: TCP connections that never finish the handshake.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The fifth stranger finds no room: closed at once.
    let mut fifth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_millis(400), fifth.read(&mut b)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    // The idle ones are closed at the deadline.
    let t = Instant::now();
    for mut s in idle {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut b)).await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    // A WebSocket that never says hello is closed too.
    let ws = Connection::open(&srv.url).await.unwrap();
    assert_eq!(ws.recv_timeout(Duration::from_secs(3)).await, None);
    // The per-address share: connections past it are closed at once.
    let srv = start_with(
        Limits {
            max_connections_per_ip: 3,
            ..Limits::default()
        },
        ServeOptions::default(),
    )
    .await;
    let addr = srv.url.trim_start_matches("ws://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let n = tokio::time::timeout(Duration::from_millis(400), fourth.read(&mut b)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    for mut s in held {
        let n = tokio::time::timeout(Duration::from_millis(200), s.read(&mut b)).await;
        assert!(n.is_err(), "the first three are still open: {n:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn large_posts_leave_history_readable() {
    let srv = start().await;
    let owner = Identity::generate("o").unwrap();
    let o = Connection::open(&srv.url).await.unwrap();
    o.create_mesh(&owner, "lab").await.unwrap();
    for i in 0..6 {
        let id = format!("big{i}");
        o.send(&Frame::Publish {
            id: id.clone(),
            from: owner.peer_id().to_string(),
            topic: "t".into(),
            epoch: 0,
            nonce: [0; 24],
            body: vec![1u8; 60_000],
        })
        .unwrap();
        o.wait_for(T, |f| matches!(f, Frame::Ack { id: a } if *a == id))
            .await
            .unwrap();
    }
    let mut before = None;
    let mut seqs = Vec::new();
    loop {
        o.send(&Frame::History {
            topic: "t".into(),
            before,
            limit: 500,
        })
        .unwrap();
        let Frame::HistoryPage { entries, .. } = o
            .wait_for(T, |f| matches!(f, Frame::HistoryPage { .. }))
            .await
            .unwrap()
        else {
            unreachable!()
        };
        assert!(
            !entries.is_empty() && entries.len() < 6,
            "a page bounded in bytes"
        );
        seqs.extend(entries.iter().map(|(s, _)| *s));
        let oldest = entries.last().unwrap().0;
        if oldest == 1 {
            break;
        }
        before = Some(oldest);
    }
    assert_eq!(seqs, [6, 5, 4, 3, 2, 1], "every message, page by page");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_end_to_end_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let nexus_testkit::tls::TestCertificate { ca, cert, key } =
        nexus_testkit::tls::certificate(dir.path());
    let srv = start_with(
        Limits::default(),
        ServeOptions {
            tls: Some(nexus_mesh::tls::acceptor(&cert, &key).unwrap()),
            ..ServeOptions::default()
        },
    )
    .await;
    let url = srv.url.replace("127.0.0.1", "localhost");
    // Without the CA: a clear TLS refusal.
    std::env::remove_var(nexus_mesh::tls::CA_FILE_ENV);
    let e = Connection::open(&url).await.unwrap_err().to_string();
    assert!(
        e.contains("TLS") && e.contains(nexus_mesh::tls::CA_FILE_ENV),
        "{e}"
    );
    // Plain ws:// to a TLS port fails.
    assert!(Connection::open(&url.replace("wss://", "ws://"))
        .await
        .is_err());
    // With the CA: the mesh works over wss://.
    std::env::set_var(nexus_mesh::tls::CA_FILE_ENV, &ca);
    let owner = Identity::generate("o").unwrap();
    let o = Connection::open(&url).await.unwrap();
    o.create_mesh(&owner, "lab").await.unwrap();
    o.send(&Frame::ListPeers).unwrap();
    o.wait_for(T, |f| matches!(f, Frame::PeerList { .. }))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_goes_silent_is_found_by_a_ping() {
    // A live broker answers a ping at once.
    let srv = start().await;
    let owner = Identity::generate("o").unwrap();
    let o = Connection::open(&srv.url).await.unwrap();
    o.create_mesh(&owner, "lab").await.unwrap();
    nexus_mesh::session::ping(&o).await.unwrap();
    // One that keeps the socket open and says nothing (a half-open
    // connection) fails the ping within its wait, and says why.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let _ws = tokio_tungstenite::accept_async(s).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let c = Connection::open(&url).await.unwrap();
    let t = Instant::now();
    let e = nexus_mesh::session::ping(&c).await.unwrap_err();
    assert!(t.elapsed() <= nexus_mesh::session::PING_WAIT + Duration::from_secs(2));
    assert!(
        matches!(&e, nexus_mesh::MeshError::Io(m) if m.contains("stopped answering")),
        "{e}"
    );
}
