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

#[test]
fn two_nodes_changing_one_member_at_once_lose_nothing() {
    let Some((_s, url)) = common::server() else {
        return;
    };
    let a = JetStreamStore::connect(&url, 1).unwrap();
    conformance::membership(&a);
    let per = 40;
    std::thread::scope(|scope| {
        for tag in ["x", "y"] {
            let url = url.clone();
            scope.spawn(move || {
                let node = JetStreamStore::connect(&url, 1).unwrap();
                for _ in 0..per {
                    node.update_member("lab", "b", &|m| m.summary.push_str(tag))
                        .unwrap()
                        .unwrap();
                }
            });
        }
    });
    let m = a.member("lab", "b").unwrap().unwrap();
    assert_eq!(m.summary.matches('x').count(), per, "{}", m.summary);
    assert_eq!(m.summary.matches('y').count(), per, "{}", m.summary);
}
