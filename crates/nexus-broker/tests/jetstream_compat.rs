//! What the JetStream store relies on, checked against the real Debian
//! `nats-server` (2.9.10) through async-nats 0.51: streams with a
//! duplicate window, `Nats-Msg-Id` de-duplication, optimistic concurrency
//! on a subject (`Nats-Expected-Last-Subject-Sequence`), direct gets by
//! subject (last, next from a sequence), message deletion, and KV buckets
//! with compare-and-set. Server 2.9 lacks per-message TTL (2.11) and
//! multi-filter consumers (2.10): nothing here uses them.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use common::server;

fn seq_of(m: &jetstream::message::StreamMessage) -> u64 {
    m.headers
        .get("Nexus-Seq")
        .unwrap()
        .as_str()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_jetstream_features_the_store_uses_work_on_this_server() {
    let Some((_s, url)) = server() else { return };
    let client = async_nats::connect(&url).await.unwrap();
    let info = client.server_info();
    assert!(info.jetstream, "{info:?}");
    let js = jetstream::new(client);
    let mut st = js
        .create_stream(stream::Config {
            name: "NEXUS_T_lab".into(),
            subjects: vec!["nexus.lab.t.>".into()],
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..Default::default()
        })
        .await
        .unwrap();

    // Appends with a per-subject number in a header, each expecting the
    // subject's last stream sequence: a stale expectation is refused.
    let publish = |n: u64, last: u64, id: &str| {
        jetstream::message::PublishMessage::build()
            .payload(format!("m{n}").into())
            .header("Nexus-Seq", n.to_string().as_str())
            .message_id(id)
            .expected_last_subject_sequence(last)
    };
    let a1 = js
        .send_publish("nexus.lab.t.news", publish(1, 0, "a1"))
        .await
        .unwrap()
        .await
        .unwrap();
    let other = js
        .send_publish("nexus.lab.t.ops", publish(1, 0, "o1"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((a1.sequence, other.sequence), (1, 2));
    let a2 = js
        .send_publish("nexus.lab.t.news", publish(2, a1.sequence, "a2"))
        .await
        .unwrap()
        .await
        .unwrap();
    let stale = js
        .send_publish("nexus.lab.t.news", publish(3, a1.sequence, "a3"))
        .await
        .unwrap()
        .await;
    assert!(
        stale.is_err(),
        "a stale expectation was accepted: {stale:?}"
    );

    // A retry with the same id is a duplicate, acknowledged with the first
    // copy's sequence, even with a stale expectation.
    let again = js
        .send_publish("nexus.lab.t.news", publish(2, a1.sequence, "a2"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.sequence, a2.sequence);

    // Direct gets by subject: the last, and the next from a sequence.
    let last = st
        .direct_get_last_for_subject("nexus.lab.t.news")
        .await
        .unwrap();
    assert_eq!((last.sequence, seq_of(&last)), (a2.sequence, 2));
    let first = st
        .direct_get_next_for_subject("nexus.lab.t.news", Some(2))
        .await
        .unwrap();
    assert_eq!(
        first.sequence, a2.sequence,
        "the next news message from 2 is 3"
    );
    let raw = st.get_raw_message(a1.sequence).await.unwrap();
    assert_eq!(seq_of(&raw), 1);
    let none = st
        .direct_get_next_for_subject("nexus.lab.t.news", Some(a2.sequence + 1))
        .await;
    assert!(none.is_err(), "nothing after the last: {none:?}");

    // Acknowledged DMs are deleted by sequence.
    assert!(st.delete_message(other.sequence).await.unwrap());
    assert!(st.get_raw_message(other.sequence).await.is_err());
    assert_eq!(st.info().await.unwrap().state.messages, 2);

    // KV with compare-and-set: `create` only when absent, `update` only
    // from the revision read.
    // async-nats 0.51's `create_key_value` first asks for the account's
    // info, whose 2.9 answer it cannot parse; the bucket's stream is made by
    // hand, in the KV layout, and then opened as a bucket.
    let made = js
        .create_key_value(kv::Config {
            bucket: "nexus_probe".into(),
            ..Default::default()
        })
        .await;
    assert!(made.is_err(), "create_key_value works on 2.9 now: use it");
    js.create_stream(stream::Config {
        name: "KV_nexus_members".into(),
        subjects: vec!["$KV.nexus_members.>".into()],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .unwrap();
    let kv = js.get_key_value("nexus_members").await.unwrap();
    let r1 = kv.create("lab.alice", "v1".into()).await.unwrap();
    assert!(
        kv.create("lab.alice", "v1b".into()).await.is_err(),
        "created twice"
    );
    let r2 = kv.update("lab.alice", "v2".into(), r1).await.unwrap();
    assert!(
        kv.update("lab.alice", "v3".into(), r1).await.is_err(),
        "a stale revision won"
    );
    let e = kv.entry("lab.alice").await.unwrap().unwrap();
    assert_eq!((e.revision, &e.value[..]), (r2, &b"v2"[..]));
    assert!(kv.get("lab.nobody").await.unwrap().is_none());
}
