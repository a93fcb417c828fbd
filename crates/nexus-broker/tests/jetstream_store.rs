//! The JetStream store passes the store conformance suite the memory and
//! SQLite stores pass, against a real `nats-server -js`.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

mod common;

use nexus_broker::jetstream::JetStreamStore;
use nexus_mesh::store::{conformance, BrokerStore};

#[test]
fn the_jetstream_store_passes_the_conformance_suite() {
    let Some((_s, url)) = common::server() else {
        return;
    };
    let store = JetStreamStore::connect(&url, 1).unwrap();
    conformance::membership(&store);
    conformance::queue_and_history(&store);
    // A second node sees what the first stored.
    let other = JetStreamStore::connect(&url, 1).unwrap();
    assert_eq!(other.members("lab").unwrap().len(), 2);
    assert_eq!(other.pending("lab", "b").unwrap().len(), 1);
    assert_eq!(
        other.history("lab", "t", None, 100, 1 << 20).unwrap().len(),
        6
    );
}

#[test]
fn a_bad_address_is_refused_with_what_to_do() {
    let e = JetStreamStore::connect("", 1).unwrap_err().to_string();
    assert!(e.contains("--nats"), "{e}");
    let e = JetStreamStore::connect("not a url at all", 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not parse"), "{e}");
}
