//! The keyring vault on real OS backends: kernel keyutils, and the Secret
//! Service (gnome-keyring under `dbus-run-session`, as `scripts/test` runs
//! it). Where the machine has no such backend the test says why and returns.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_core::conformance::vault as suite;
use nexus_core::{Secret, Vault};
use nexus_vault::{KeyringBackend, KeyringVault};

fn unique_service(tag: &str) -> String {
    format!("nexus-test-{tag}-{}-{}", std::process::id(), line!())
}

fn run_suite(v: &KeyringVault) {
    suite::round_trip(v).unwrap();
    suite::list_by_prefix(v).unwrap();
    suite::large_and_unicode_values(v).unwrap();
    suite::rejects_bad_names(v).unwrap();
    // A value far over any single entry's cap is split and rejoined, and
    // shrinking it removes the parts it no longer needs.
    let big: String = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    v.set("test/big", &Secret::new(big.clone())).unwrap();
    assert_eq!(v.get("test/big").unwrap().unwrap().expose(), big);
    v.set("test/big", &Secret::new("small")).unwrap();
    assert_eq!(v.get("test/big").unwrap().unwrap().expose(), "small");
    assert!(v.delete("test/big").unwrap());
    assert!(
        v.list("").unwrap().is_empty(),
        "the index kept deleted names"
    );
}

#[test]
fn keyutils_backend() {
    let d = tempfile::tempdir().unwrap();
    let v = KeyringVault::new(
        KeyringBackend::Keyutils,
        unique_service("keyutils"),
        d.path(),
    );
    // Needs no `keyctl session`: entries live in the user keyring. Only a
    // kernel or sandbox without keyrings at all is a reason to skip.
    if let Err(e) = v.probe() {
        let why = e.to_string();
        assert!(
            why.contains("no keyrings") || why.contains("refused"),
            "the kernel keyring failed: {why}"
        );
        println!("SKIP kernel keyutils keyring: {why}");
        return;
    }
    run_suite(&v);
    println!("PASS kernel keyutils keyring: conformance suite and chunking");
}

#[test]
fn secret_service_backend() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        println!(
            "SKIP Secret Service keyring: no D-Bus session bus here; scripts/test runs this test \
             under dbus-run-session with an unlocked gnome-keyring"
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let v = KeyringVault::new(
        KeyringBackend::SecretService,
        unique_service("ss"),
        d.path(),
    );
    if let Err(e) = v.probe() {
        println!("SKIP Secret Service keyring: the session bus has no usable Secret Service ({e})");
        return;
    }
    run_suite(&v);
    println!("PASS Secret Service keyring (gnome-keyring): conformance suite and chunking");
}
