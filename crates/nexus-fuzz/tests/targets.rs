//! The fuzz targets on stable: each over its committed seed corpus
//! (fuzz/corpus/TARGET, the deep-nesting bombs among them) and over
//! property-generated inputs, in the normal test run.

#![allow(clippy::unwrap_used, missing_docs)]

use proptest::prelude::*;

fn corpus(target: &str, run: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        run(&std::fs::read(&p).unwrap());
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn seed_corpora() {
    corpus("frame", nexus_fuzz::frame);
    corpus("batch", nexus_fuzz::batch);
    corpus("invite", nexus_fuzz::invite);
    corpus("presence", nexus_fuzz::presence);
    corpus("sse", nexus_fuzz::sse);
    corpus("provider", nexus_fuzz::provider);
    corpus("vault_file", nexus_fuzz::vault_file);
    corpus("backup_file", nexus_fuzz::backup_file);
    corpus("structured", nexus_fuzz::structured);
    corpus("extension", nexus_fuzz::extension);
    corpus("archive", nexus_fuzz::archive);
    corpus("policy", nexus_fuzz::policy);
    corpus("bridge", nexus_fuzz::bridge);
}

#[test]
fn nesting_bombs_of_every_depth_return() {
    for depth in [1, 100, 1_800, 20_000] {
        nexus_fuzz::frame(&nexus_fuzz::nested_page(depth));
    }
    for depth in [1, 127, 129, 2_000] {
        nexus_fuzz::frame(&nexus_fuzz::nested_page_json(depth));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        nexus_fuzz::frame(&data);
        let mut v2 = vec![nexus_mesh::frame::VERSION];
        v2.extend_from_slice(&data);
        nexus_fuzz::frame(&v2);
    }

    #[test]
    fn extension_packages(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        nexus_fuzz::extension(&data);
    }

    #[test]
    fn policies(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        nexus_fuzz::policy(&data);
    }

    #[test]
    fn hosts(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        nexus_fuzz::host(&data);
    }

    #[test]
    fn bridges(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        nexus_fuzz::bridge(&data);
    }

    #[test]
    fn archives(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        nexus_fuzz::archive(&data);
    }

    #[test]
    fn structured_outputs(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        nexus_fuzz::structured(&data);
    }

    #[test]
    fn batches(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        nexus_fuzz::batch(&data);
    }

    #[test]
    fn invites(s in ".{0,400}", b in proptest::collection::vec(any::<u8>(), 0..400)) {
        nexus_fuzz::invite(s.as_bytes());
        nexus_fuzz::invite(&b);
        nexus_fuzz::invite(format!("nexus://join/{s}").as_bytes());
    }

    #[test]
    fn presence_values(s in "(sealed1:)?[0-9]{0,3}:?[0-9a-f]{0,200}", b in proptest::collection::vec(any::<u8>(), 0..300)) {
        nexus_fuzz::presence(s.as_bytes());
        nexus_fuzz::presence(&b);
    }

    #[test]
    fn sse_streams(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        nexus_fuzz::sse(&data);
    }

    #[test]
    fn provider_replies(pick in any::<u8>(), body in "(data: )?[{}\\[\\]\":,a-z0-9 \\n]{0,600}") {
        let mut data = vec![pick];
        data.extend_from_slice(body.as_bytes());
        nexus_fuzz::provider(&data);
    }

    #[test]
    fn provider_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        nexus_fuzz::provider(&data);
    }

    #[test]
    fn backups(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut b = b"NXMBAK01".to_vec();
        b.extend_from_slice(&data);
        nexus_fuzz::backup_file(&b);
        nexus_fuzz::backup_file(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn vault_files(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut v = b"NXVAULT1".to_vec();
        v.extend_from_slice(&data);
        nexus_fuzz::vault_file(&v);
        nexus_fuzz::vault_file(&data);
    }
}
