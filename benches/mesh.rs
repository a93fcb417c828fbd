//! The mesh broker's per-message work, piece by piece: the frame codec, topic
//! sealing and opening (XChaCha20-Poly1305), and storing a group commit of
//! topic messages in SQLite (WAL). `nexus-loadgen` measures them together.
//!
//! `cargo bench -p nexus-benches --bench mesh`

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use nexus_mesh::frame::Frame;
use nexus_mesh::store::{Append, BrokerStore, SqliteStore};
use nexus_mesh::topic;

fn publish() -> Frame {
    let key = topic::topic_key(&[7; 32], "load", 0).unwrap();
    let from = "0123456789abcdef0123456789abcdef".to_string();
    let (nonce, body) = topic::seal(&key, "load", 0, &from, &[1u8; 256]).unwrap();
    Frame::Publish {
        id: format!("{from}-12345"),
        from,
        topic: "load".into(),
        epoch: 0,
        nonce,
        body,
    }
}

fn bench(c: &mut Criterion) {
    let f = publish();
    let bytes = f.encode();
    let mut g = c.benchmark_group("mesh_frame");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_publish_256B", |b| b.iter(|| f.encode()));
    g.bench_function("decode_publish_256B", |b| {
        b.iter(|| Frame::decode(&bytes).unwrap())
    });
    g.finish();

    let key = topic::topic_key(&[7; 32], "load", 0).unwrap();
    let (nonce, ct) = topic::seal(&key, "load", 0, "peer", &[1u8; 256]).unwrap();
    let mut g = c.benchmark_group("mesh_topic_crypto");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal_256B", |b| {
        b.iter(|| topic::seal(&key, "load", 0, "peer", &[1u8; 256]).unwrap())
    });
    g.bench_function("open_256B", |b| {
        b.iter(|| topic::open(&key, "load", 0, "peer", &nonce, &ct).unwrap())
    });
    let mut sealer = topic::Sealer::new(&key, "load", 0, "peer").unwrap();
    g.bench_function("sealer_seal_256B", |b| {
        b.iter(|| sealer.seal(&[1u8; 256]).unwrap())
    });
    let (snonce, sct) = sealer.seal(&[1u8; 256]).unwrap();
    let mut opener = topic::Opener::new(&key, "load", 0);
    g.bench_function("opener_open_256B", |b| {
        b.iter_batched(
            || sct.clone(),
            |ct| opener.open("peer", &snonce, ct).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("broker.db")).unwrap();
    let mut g = c.benchmark_group("mesh_store_group_commit");
    for n in [1usize, 32, 256] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("append_{n}_x_{}B", bytes.len()), |b| {
            b.iter_batched(
                || {
                    (0..n)
                        .map(|_| nexus_mesh::client::message_id().unwrap())
                        .collect::<Vec<_>>()
                },
                |ids| {
                    let items: Vec<_> = ids
                        .iter()
                        .map(|id| Append {
                            mesh: "bench",
                            topic: "load",
                            id,
                            frame: &bytes,
                        })
                        .collect();
                    store.append_topics(&items).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
