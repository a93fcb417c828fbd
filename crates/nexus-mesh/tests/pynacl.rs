//! Interop with libsodium through PyNaCl (from PyPI; scripts/test installs
//! it): PyNaCl opens what Nexus seals, Nexus opens what PyNaCl seals, and
//! PyNaCl decrypts a Nexus backup file.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use nexus_mesh::backup::{self, BackupKdf};
use nexus_mesh::dm::{self, Sealed};
use nexus_mesh::identity::{hex, unhex};
use nexus_mesh::Identity;

fn pynacl(args: &[&str]) -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py");
    let probe = Command::new("python3").args(["-c", "import nacl"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        let msg =
            "SKIP libsodium interop: PyNaCl is not installed; ./scripts/test installs it with pip";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        println!("{msg}");
        return None;
    }
    let o = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(String::from_utf8(o.stdout).unwrap())
}

#[test]
fn pynacl_opens_a_nexus_direct_message_and_nexus_opens_a_pynacl_one() {
    let alice = Identity::generate("alice").unwrap();
    let bob = Identity::generate("bob").unwrap();
    let sealed = dm::seal(&alice, &bob.x25519_public(), "héllo from nexus".as_bytes()).unwrap();
    let Some(plain) = pynacl(&[
        "open-dm",
        &hex(&*bob.x25519_secret()),
        &hex(&alice.x25519_public()),
        &hex(&sealed.nonce),
        &hex(&sealed.ciphertext),
    ]) else {
        return;
    };
    assert_eq!(plain, "héllo from nexus");

    let out = pynacl(&[
        "seal-dm",
        &hex(&*bob.x25519_secret()),
        &hex(&alice.x25519_public()),
        "hello from pynacl",
    ])
    .unwrap();
    let (nonce, ct) = out.split_once(' ').unwrap();
    let sealed = Sealed {
        nonce: unhex(nonce).unwrap().try_into().unwrap(),
        ciphertext: unhex(ct).unwrap(),
    };
    assert_eq!(
        dm::open(&alice, &bob.x25519_public(), &sealed).unwrap(),
        b"hello from pynacl"
    );
}

#[test]
fn pynacl_decrypts_a_backup() {
    let id = Identity::generate("alice").unwrap();
    let bytes = backup::create(
        &id,
        serde_json::json!([{"mesh": "lab", "epoch": 3}]),
        "correct horse battery staple",
        BackupKdf {
            opslimit: 2,
            memlimit: 16 * 1024 * 1024,
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mesh.backup");
    std::fs::write(&file, &bytes).unwrap();
    let Some(json) = pynacl(&[
        "open-backup",
        file.to_str().unwrap(),
        "correct horse battery staple",
    ]) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ed25519_seed"], hex(id.ed25519_seed()));
    assert_eq!(v["name"], "alice");
    assert_eq!(v["meshes"][0]["epoch"], 3);
}
