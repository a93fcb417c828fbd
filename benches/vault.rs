//! The vault: `get` from an unlocked vault (µs), and unlocking a file vault
//! with the production Argon2id parameters (64 MiB, 3 passes, 1 lane).
//!
//! `cargo bench -p nexus-benches --bench vault`

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use nexus_core::{MemoryVault, Secret, Vault};
use nexus_vault::{FileVault, KdfParams, KeySource};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.enc");
    let file = FileVault::open_with(
        &path,
        KeySource::Passphrase(Secret::new("bench passphrase")),
        KdfParams::DEFAULT,
    )
    .unwrap();
    let mem = MemoryVault::new();
    for i in 0..200 {
        let v = Secret::new(format!("sk-proj-{i:04}-0123456789abcdef0123456789abcdef"));
        file.set(&format!("provider/p{i}/api_key"), &v).unwrap();
        mem.set(&format!("provider/p{i}/api_key"), &v).unwrap();
    }
    let mut g = c.benchmark_group("vault_get");
    g.bench_function("file_unlocked", |b| {
        b.iter(|| file.get("provider/p123/api_key").unwrap())
    });
    g.bench_function("memory", |b| {
        b.iter(|| mem.get("provider/p123/api_key").unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("vault_unlock");
    g.sample_size(10);
    g.bench_function("file_argon2id_64MiB_t3_p1", |b| {
        b.iter(|| {
            FileVault::open(
                &path,
                KeySource::Passphrase(Secret::new("bench passphrase")),
            )
            .unwrap()
        });
    });
    g.finish();

    let mut g = c.benchmark_group("vault_set");
    g.sample_size(20);
    g.bench_function("file_200_entries", |b| {
        b.iter(|| {
            file.set("provider/p7/api_key", &Secret::new("sk-rotated"))
                .unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
