//! A real broker on loopback (WebSocket, SQLite in WAL mode): three peers,
//! root-key distribution sealed to each joiner, direct messages and topics,
//! delivery to a peer that was offline, a broker restart with no
//! acknowledged message lost, error frames for every kind of bad input
//! while the broker stays up, and no plaintext in its database.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::SystemClock;
use nexus_mesh::auth::{sign_hello, Invite};
use nexus_mesh::broker::{Broker, Limits};
use nexus_mesh::client::{open_dm, Connection};
use nexus_mesh::frame::{self, Frame};
use nexus_mesh::identity::hex;
use nexus_mesh::store::SqliteStore;
use nexus_mesh::{server, topic, Identity};

const T: Duration = Duration::from_secs(10);

struct Running {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

async fn start(db: &Path) -> Running {
    let store = Arc::new(SqliteStore::open(db).unwrap());
    // As `nexus up` runs it: topic messages stored by group commit.
    let broker =
        Arc::new(Broker::new(store, Arc::new(SystemClock), Limits::default()).with_group_commit());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    Running {
        url,
        task: server::serve(listener, broker),
    }
}

/// The next frame matching `pred`, skipping others.
async fn until(c: &Connection, pred: impl Fn(&Frame) -> bool) -> Frame {
    loop {
        let f = c.recv_timeout(T).await.expect("a frame in time");
        if pred(&f) {
            return f;
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Mesh {
    owner: Identity,
    alice: Identity,
    bob: Identity,
    root: [u8; 32],
}

/// Owner creates the mesh and invites two peers; the root key reaches
/// each joiner sealed to its own X25519 key, never through the link.
async fn setup(url: &str) -> (Mesh, Connection, Connection, Connection) {
    let owner = Identity::generate("owner").unwrap();
    let alice = Identity::generate("alice").unwrap();
    let bob = Identity::generate("bob").unwrap();
    let root = [42u8; 32];
    let o = Connection::open(url).await.unwrap();
    o.create_mesh(&owner, "lab").await.unwrap();
    let invite = Invite::new(&owner, "lab", url, "member", now_ms() + 3_600_000, 2).unwrap();
    assert!(!invite.link().contains(&hex(&root)));
    let a = Connection::open(url).await.unwrap();
    a.join(&alice, &Invite::parse(&invite.link()).unwrap())
        .await
        .unwrap();
    let b = Connection::open(url).await.unwrap();
    b.join(&bob, &invite).await.unwrap();
    // The owner seals the root key to each newcomer.
    let mut joined = Vec::new();
    for _ in 0..2 {
        let Frame::MemberJoined { peer, x25519, .. } =
            until(&o, |f| matches!(f, Frame::MemberJoined { .. })).await
        else {
            unreachable!()
        };
        joined.push((peer, x25519));
    }
    for (peer, x25519) in joined {
        o.send_dm(&owner, &peer, &x25519, &root).unwrap();
        until(&o, |f| matches!(f, Frame::Ack { .. })).await;
    }
    for (c, me) in [(&a, &alice), (&b, &bob)] {
        let dm = until(c, |f| matches!(f, Frame::Dm { .. })).await;
        let key = open_dm(me, &hex(&owner.x25519_public()), &dm).unwrap();
        assert_eq!(key, root);
        let Frame::Dm { id, .. } = dm else {
            unreachable!()
        };
        c.ack(&id).unwrap();
    }
    (
        Mesh {
            owner,
            alice,
            bob,
            root,
        },
        o,
        a,
        b,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn three_peers_exchange_direct_and_topic_messages() {
    let d = tempfile::tempdir().unwrap();
    let srv = start(&d.path().join("broker.db")).await;
    let (m, o, a, b) = setup(&srv.url).await;

    // Direct: alice → bob, bob → owner.
    a.send_dm(
        &m.alice,
        m.bob.peer_id().as_str(),
        &hex(&m.bob.x25519_public()),
        b"hi bob",
    )
    .unwrap();
    until(&a, |f| matches!(f, Frame::Ack { .. })).await;
    let dm = until(&b, |f| matches!(f, Frame::Dm { .. })).await;
    assert_eq!(
        open_dm(&m.bob, &hex(&m.alice.x25519_public()), &dm).unwrap(),
        b"hi bob"
    );
    b.send_dm(
        &m.bob,
        m.owner.peer_id().as_str(),
        &hex(&m.owner.x25519_public()),
        b"hi owner",
    )
    .unwrap();
    let dm = until(&o, |f| matches!(f, Frame::Dm { .. })).await;
    assert_eq!(
        open_dm(&m.owner, &hex(&m.bob.x25519_public()), &dm).unwrap(),
        b"hi owner"
    );

    // A topic: sealed with the topic key derived from the root key.
    let key = topic::topic_key(&m.root, "builds", 0).unwrap();
    let from = m.alice.peer_id().to_string();
    let (nonce, ct) = topic::seal(&key, "builds", 0, &from, b"build 412 green").unwrap();
    a.send(&Frame::Publish {
        id: "p1".into(),
        from: from.clone(),
        topic: "builds".into(),
        epoch: 0,
        nonce,
        body: ct,
    })
    .unwrap();
    for (c, _) in [(&o, "owner"), (&b, "bob")] {
        let Frame::Publish {
            nonce, body, from, ..
        } = until(c, |f| matches!(f, Frame::Publish { .. })).await
        else {
            unreachable!()
        };
        let plain = topic::open(&key, "builds", 0, &from, &nonce, &body).unwrap();
        assert_eq!(plain, b"build 412 green");
    }
    // A retry of the same message (its ack was lost, say) is acknowledged
    // again, but neither stored nor delivered twice.
    until(&a, |f| matches!(f, Frame::Ack { id } if id == "p1")).await;
    let (nonce2, ct2) = topic::seal(&key, "builds", 0, &from, b"build 412 green").unwrap();
    a.send(&Frame::Publish {
        id: "p1".into(),
        from: from.clone(),
        topic: "builds".into(),
        epoch: 0,
        nonce: nonce2,
        body: ct2,
    })
    .unwrap();
    let ack = until(&a, |f| matches!(f, Frame::Ack { .. })).await;
    assert!(
        matches!(ack, Frame::Ack { ref id } if id == "p1"),
        "{ack:?}"
    );
    let again = b.recv_timeout(std::time::Duration::from_millis(300)).await;
    assert!(
        !matches!(again, Some(Frame::Publish { .. })),
        "delivered twice: {again:?}"
    );
    // History pages.
    b.send(&Frame::History {
        topic: "builds".into(),
        before: None,
        limit: 10,
    })
    .unwrap();
    let Frame::HistoryPage { entries, .. } =
        until(&b, |f| matches!(f, Frame::HistoryPage { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(entries.len(), 1);

    // Presence.
    a.send(&Frame::SetPresence {
        status: Some("busy".into()),
        summary: Some("reviewing PR 7".into()),
    })
    .unwrap();
    until(&a, |f| matches!(f, Frame::Done { .. })).await;
    o.send(&Frame::ListPeers).unwrap();
    let Frame::PeerList { peers } = until(&o, |f| matches!(f, Frame::PeerList { .. })).await else {
        unreachable!()
    };
    assert_eq!(peers.len(), 3);
    let alice = peers.iter().find(|p| p.name == "alice").unwrap();
    assert!(alice.online);
    assert_eq!(
        (alice.status.as_str(), alice.summary.as_str()),
        ("busy", "reviewing PR 7")
    );
    srv.task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_delivery_and_a_broker_restart_lose_nothing_acknowledged() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("broker.db");
    let srv = start(&db).await;
    let (m, _o, a, b) = setup(&srv.url).await;
    drop(b); // bob goes offline
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = a
        .send_dm(
            &m.alice,
            m.bob.peer_id().as_str(),
            &hex(&m.bob.x25519_public()),
            b"while you were out",
        )
        .unwrap();
    let Frame::Ack { id: acked } = until(&a, |f| matches!(f, Frame::Ack { .. })).await else {
        unreachable!()
    };
    assert_eq!(acked, id, "the broker persisted it before acknowledging");

    // The broker dies and comes back on the same database.
    srv.task.abort();
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let srv = start(&db).await;

    let b = Connection::open(&srv.url).await.unwrap();
    let queued = b.hello(&m.bob, "lab").await.unwrap();
    assert_eq!(queued, 1);
    let dm = until(&b, |f| matches!(f, Frame::Dm { .. })).await;
    assert_eq!(
        open_dm(&m.bob, &hex(&m.alice.x25519_public()), &dm).unwrap(),
        b"while you were out"
    );
    // Received but not acknowledged (not stored yet): it stays queued.
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = Connection::open(&srv.url).await.unwrap();
    assert_eq!(b.hello(&m.bob, "lab").await.unwrap(), 1);
    let Frame::Dm { id, .. } = until(&b, |f| matches!(f, Frame::Dm { .. })).await else {
        unreachable!()
    };
    b.ack(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // let the ack land
    drop(b);
    // Acknowledged: not delivered again.
    let b = Connection::open(&srv.url).await.unwrap();
    assert_eq!(b.hello(&m.bob, "lab").await.unwrap(), 0);
    srv.task.abort();
}

fn code(f: &Frame) -> &str {
    match f {
        Frame::Error { code, .. } => code,
        _ => "",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_error_frames_and_the_broker_stays_up() {
    let d = tempfile::tempdir().unwrap();
    let srv = start(&d.path().join("broker.db")).await;
    let (m, o, a, _b) = setup(&srv.url).await;

    // Strangers: each refusal is one error frame, then the connection is
    // closed (nothing more it sends is read).
    let url = srv.url.clone();
    let refused = |bytes: Vec<u8>, want: &'static str, answers: usize| {
        let url = url.clone();
        async move {
            let x = Connection::open(&url).await.unwrap();
            x.send_raw(bytes).unwrap();
            for _ in 0..answers {
                assert_eq!(code(&x.recv_timeout(T).await.unwrap()), want);
            }
            assert!(x.recv_timeout(T).await.is_none(), "closed after {want}");
        }
    };
    refused(b"\x02\x07\x05short".to_vec(), "malformed", 1).await;
    refused(b"\x01\x07{\"json\":1}".to_vec(), "unauthenticated", 1).await;
    refused(vec![0u8; 300 * 1024], "unauthenticated", 1).await;
    let mut big_hello = vec![frame::VERSION, 1];
    big_hello.resize(20 * 1024, b'a');
    refused(big_hello, "too_large", 1).await;
    // Binary frames: a truncated publish, a publish before hello (never
    // decoded), a broken batch, and a batch of two frames (one answer).
    let publish = Frame::Publish {
        id: "p0".into(),
        from: m.alice.peer_id().to_string(),
        topic: "t".into(),
        epoch: 0,
        nonce: [1; 24],
        body: vec![2; 40],
    }
    .encode();
    refused(publish[..publish.len() - 3].to_vec(), "unauthenticated", 1).await;
    refused(publish.clone(), "unauthenticated", 1).await;
    refused(vec![frame::VERSION, frame::BATCH, 40, 1], "malformed", 1).await;
    refused(
        frame::encode_batch(&[publish, Frame::ListPeers.encode()]),
        "unauthenticated",
        1,
    )
    .await;

    // A forged hello: alice's peer id and key, signed by someone else.
    let mallory = Identity::generate("mallory").unwrap();
    let Frame::Hello { ts, nonce, sig, .. } =
        sign_hello(&mallory, "lab", now_ms(), "0123456789abcdef0123")
    else {
        unreachable!()
    };
    let forged = Frame::Hello {
        mesh: "lab".into(),
        peer: m.alice.peer_id().to_string(),
        key: hex(&m.alice.ed25519_public()),
        ts,
        nonce,
        sig,
    };
    refused(forged.encode(), "bad_hello", 1).await;

    // A replayed hello.
    let hello = sign_hello(&m.bob, "lab", now_ms(), "fedcba9876543210fedc");
    let y = Connection::open(&srv.url).await.unwrap();
    y.send(&hello).unwrap();
    assert!(matches!(
        y.recv_timeout(T).await.unwrap(),
        Frame::Welcome { .. }
    ));
    let z = Connection::open(&srv.url).await.unwrap();
    z.send(&hello).unwrap();
    let f = z.recv_timeout(T).await.unwrap();
    assert_eq!(code(&f), "bad_hello");
    assert!(format!("{f:?}").contains("replay"));

    // The wrong mesh, and a stranger: the same refusal, which tells
    // neither whether the mesh exists nor who is a member.
    let wrong_mesh = sign_hello(&m.alice, "elsewhere", now_ms(), "aaaaaaaaaaaaaaaaaaaa");
    let stranger = sign_hello(&mallory, "lab", now_ms(), "bbbbbbbbbbbbbbbbbbbb");
    let mut said = Vec::new();
    for h in [wrong_mesh, stranger] {
        let w = Connection::open(&srv.url).await.unwrap();
        w.send(&h).unwrap();
        said.push(w.recv_timeout(T).await.unwrap());
    }
    assert_eq!(code(&said[0]), "refused");
    assert_eq!(said[0], said[1], "uniform refusals");

    // A revoked grant.
    o.send(&Frame::Grant {
        peer: m.alice.peer_id().to_string(),
        caps: vec!["dm".into()],
        revoke: true,
    })
    .unwrap();
    until(&o, |f| matches!(f, Frame::Done { .. })).await;
    a.send_dm(
        &m.alice,
        m.bob.peer_id().as_str(),
        &hex(&m.bob.x25519_public()),
        b"nope",
    )
    .unwrap();
    assert_eq!(
        code(&until(&a, |f| matches!(f, Frame::Error { .. })).await),
        "forbidden"
    );
    // Non-admins cannot grant themselves anything back.
    a.send(&Frame::Grant {
        peer: m.alice.peer_id().to_string(),
        caps: vec!["dm".into()],
        revoke: false,
    })
    .unwrap();
    assert_eq!(
        code(&until(&a, |f| matches!(f, Frame::Error { .. })).await),
        "forbidden"
    );

    // After all that, the broker still serves everyone.
    o.send(&Frame::ListPeers).unwrap();
    assert!(matches!(
        until(&o, |f| matches!(f, Frame::PeerList { .. })).await,
        Frame::PeerList { .. }
    ));
    srv.task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn spent_and_expired_invites_and_blocks() {
    let d = tempfile::tempdir().unwrap();
    let srv = start(&d.path().join("broker.db")).await;
    let (m, o, _a, _b) = setup(&srv.url).await; // the invite allowed 2 uses, both spent
    let owner = &m.owner;
    let late = Identity::generate("late").unwrap();
    let spent = Invite::new(owner, "lab", &srv.url, "member", now_ms() + 60_000, 1).unwrap();
    let c = Connection::open(&srv.url).await.unwrap();
    c.join(&late, &spent).await.unwrap();
    let other = Identity::generate("other").unwrap();
    let c2 = Connection::open(&srv.url).await.unwrap();
    let e = c2.join(&other, &spent).await.unwrap_err().to_string();
    assert!(e.contains("invite_spent"), "{e}");
    let expired = Invite::new(owner, "lab", &srv.url, "member", now_ms() - 1, 5).unwrap();
    let c2 = Connection::open(&srv.url).await.unwrap();
    let e = c2.join(&other, &expired).await.unwrap_err().to_string();
    assert!(e.contains("expired"), "{e}");
    // Blocking disconnects and keeps the peer out.
    o.send(&Frame::Block {
        peer: late.peer_id().to_string(),
        blocked: true,
    })
    .unwrap();
    until(&o, |f| matches!(f, Frame::Done { .. })).await;
    let c3 = Connection::open(&srv.url).await.unwrap();
    let e = c3.hello(&late, "lab").await.unwrap_err().to_string();
    assert!(e.contains("blocked"), "{e}");
    srv.task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_holds_no_plaintext() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("broker.db");
    let srv = start(&db).await;
    let (m, o, a, b) = setup(&srv.url).await;
    let secret = b"PLAINTEXT-CANARY-7f3e";
    // A registered short code is stored so that no one reading the files
    // can join with it, yet it still works for whoever has it.
    // A multi-use invite, registered and used once: still good for more.
    let inv = Invite::new(&m.owner, "lab", &srv.url, "member", now_ms() + 60_000, 3).unwrap();
    o.send(&Frame::PutInvite { code: inv.code() }).unwrap();
    until(&o, |f| matches!(f, Frame::Done { .. })).await;
    let g = Connection::open(&srv.url).await.unwrap();
    g.send(&Frame::GetInvite {
        short: inv.short_code().to_lowercase(),
    })
    .unwrap();
    assert_eq!(
        until(&g, |f| matches!(f, Frame::InviteCode { .. })).await,
        Frame::InviteCode { code: inv.code() }
    );
    let carol = Identity::generate("carol").unwrap();
    let cc = Connection::open(&srv.url).await.unwrap();
    cc.join(&carol, &inv).await.unwrap();
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.send_dm(
        &m.alice,
        m.bob.peer_id().as_str(),
        &hex(&m.bob.x25519_public()),
        secret,
    )
    .unwrap();
    until(&a, |f| matches!(f, Frame::Ack { .. })).await;
    let key = topic::topic_key(&m.root, "t", 0).unwrap();
    let from = m.alice.peer_id().to_string();
    let (n, ct) = topic::seal(&key, "t", 0, &from, secret).unwrap();
    a.send(&Frame::Publish {
        id: "p".into(),
        from,
        topic: "t".into(),
        epoch: 0,
        nonce: n,
        body: ct,
    })
    .unwrap();
    until(&a, |f| matches!(f, Frame::Ack { .. })).await;
    srv.task.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut all = Vec::new();
    for entry in std::fs::read_dir(d.path()).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let hex_secret = hex(secret);
    let root_hex = hex(&m.root);
    let short = inv.short_code();
    let short_bare = short.replace('-', "");
    let code = inv.code();
    for needle in [
        &secret[..],
        hex_secret.as_bytes(),
        root_hex.as_bytes(),
        &m.root[..],
        short.as_bytes(),
        short_bare.as_bytes(),
        short_bare.to_lowercase().as_bytes(),
        code.as_bytes(),
        inv.id.as_bytes(),
    ] {
        assert!(
            !all.windows(needle.len()).any(|w| w == needle),
            "plaintext, a key or an invite is in the broker's files"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_identity_on_two_connections_gets_everything_on_both() {
    let d = tempfile::tempdir().unwrap();
    let srv = start(&d.path().join("broker.db")).await;
    let (m, _o, a, b) = setup(&srv.url).await;
    // Bob's daemon (b) and a CLI verb of his (b2), at once: neither evicts
    // the other.
    let b2 = Connection::open(&srv.url).await.unwrap();
    b2.hello(&m.bob, "lab").await.unwrap();
    a.send_dm(
        &m.alice,
        m.bob.peer_id().as_str(),
        &hex(&m.bob.x25519_public()),
        b"to every bob",
    )
    .unwrap();
    for c in [&b, &b2] {
        let dm = until(c, |f| matches!(f, Frame::Dm { .. })).await;
        assert_eq!(
            open_dm(&m.bob, &hex(&m.alice.x25519_public()), &dm).unwrap(),
            b"to every bob"
        );
    }
    // Either one's acknowledgement takes it off the queue.
    let b3 = Connection::open(&srv.url).await.unwrap();
    assert_eq!(
        b3.hello(&m.bob, "lab").await.unwrap(),
        1,
        "not yet acknowledged"
    );
    let Frame::Dm { id, .. } = until(&b3, |f| matches!(f, Frame::Dm { .. })).await else {
        unreachable!()
    };
    b2.ack(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b4 = Connection::open(&srv.url).await.unwrap();
    assert_eq!(b4.hello(&m.bob, "lab").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_on_one_connection_overlap_and_each_gets_its_own_answer() {
    let d = tempfile::tempdir().unwrap();
    let srv = start(&d.path().join("broker.db")).await;
    let (m, o, a, _b) = setup(&srv.url).await;
    let t = std::time::Duration::from_secs(10);
    // What arrives, as a Stream.
    let mut incoming = Box::pin(o.messages());
    a.send_dm(
        &m.alice,
        m.owner.peer_id().as_str(),
        &hex(&m.owner.x25519_public()),
        b"hi",
    )
    .unwrap();
    let first = tokio::time::timeout(t, futures_util::StreamExt::next(&mut incoming))
        .await
        .unwrap();
    assert!(matches!(first, Some(Frame::Dm { .. })), "{first:?}");
    drop(incoming);
    // Three at once: a page of history, the member list, and a grant the
    // broker refuses. The refusal refuses only the grant.
    let history = Frame::History {
        topic: "nothing-yet".into(),
        before: None,
        limit: 10,
    };
    let grant = Frame::Grant {
        peer: "no-such-peer".into(),
        caps: vec!["read".into()],
        revoke: false,
    };
    let (h, p, g) = tokio::join!(
        o.request(&history, t),
        o.request(&Frame::ListPeers, t),
        o.request(&grant, t),
    );
    assert!(matches!(h.unwrap(), Frame::HistoryPage { entries, .. } if entries.is_empty()));
    assert!(matches!(p.unwrap(), Frame::PeerList { peers } if peers.len() == 3));
    assert!(
        matches!(g, Err(nexus_mesh::MeshError::Refused { .. })),
        "{g:?}"
    );
    // Nothing was left over for the message stream.
    assert!(o
        .recv_timeout(std::time::Duration::from_millis(200))
        .await
        .is_none());
    // A clone shares the connection: a request from another task is
    // answered there, while this one reads messages as a Stream.
    let other = o.clone();
    let peers = tokio::spawn(async move { other.request(&Frame::ListPeers, t).await });
    assert!(matches!(
        peers.await.unwrap().unwrap(),
        Frame::PeerList { .. }
    ));
    // Many in flight at once, answered in any order, each to its caller.
    let asks: Vec<_> = (0..50)
        .map(|i| {
            let o = &o;
            async move {
                let f = if i % 2 == 0 {
                    Frame::ListPeers
                } else {
                    Frame::History {
                        topic: format!("t{i}"),
                        before: None,
                        limit: 1,
                    }
                };
                (i, o.request(&f, t).await.unwrap())
            }
        })
        .collect();
    for (i, answer) in futures_util::future::join_all(asks).await {
        match answer {
            Frame::PeerList { .. } => assert_eq!(i % 2, 0),
            Frame::HistoryPage { topic, .. } => assert_eq!(topic, format!("t{i}")),
            other => panic!("{other:?}"),
        }
    }
}
