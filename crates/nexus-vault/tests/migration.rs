//! Migration off plaintext: a crash injected at every step of every secret
//! loses nothing, a rerun finishes the job, and a third run changes nothing.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use nexus_core::{NexusHome, Vault};
use nexus_vault::migrate::{migrate, migrate_with, pending, Step};
use nexus_vault::{FileVault, KdfParams, KeySource, MemoryVault, Secret};

const SECRETS: &[(&str, &str)] = &[
    (
        "plugin/weather/auth_token_hash",
        "sha256:9f86d081884c7d659a2feaa0c55ad015",
    ),
    (
        "plugin/git-tools/auth_token_hash",
        "sha256:60303ae22b998861bce3b28f33eec1be",
    ),
    ("gateway/mcp_token", "mcp-gw-4f1b8e2a7c"),
    (
        "signing/trusted_keys",
        "{\"keys\":[{\"id\":\"k1\",\"private_key\":\"ed25519:AAAA\"}]}\n",
    ),
    ("provider/openai/api_key", "sk-proj-plaintext-openai"),
    ("provider/anthropic/api_key", "sk-ant-plaintext-anthropic"),
];

fn seed(home: &Path) {
    std::fs::write(
        home.join("plugins.json"),
        r#"{"plugins": [
            {"id": "weather", "version": "1.2.0", "auth_token_hash": "sha256:9f86d081884c7d659a2feaa0c55ad015"},
            {"id": "git-tools", "version": "0.3.1", "auth_token_hash": "sha256:60303ae22b998861bce3b28f33eec1be"},
            {"id": "notes", "version": "2.0.0"}
        ]}"#,
    )
    .unwrap();
    std::fs::write(home.join("mcp_gateway_token"), "mcp-gw-4f1b8e2a7c\n").unwrap();
    std::fs::write(
        home.join("trusted_keys.json"),
        "{\"keys\":[{\"id\":\"k1\",\"private_key\":\"ed25519:AAAA\"}]}\n",
    )
    .unwrap();
    std::fs::write(
        home.join("config.toml"),
        "# my settings\ndefault_model = \"sonnet\"\n\n[providers.openai]\napi_key = \"sk-proj-plaintext-openai\"\nbase_url = \"https://api.openai.com/v1\"\n\n[providers.anthropic]\napi_key = \"sk-ant-plaintext-anthropic\"\n",
    )
    .unwrap();
}

/// Every byte of plaintext left under `home`.
fn plaintext(home: &Path) -> String {
    let mut all = String::new();
    for f in [
        "plugins.json",
        "mcp_gateway_token",
        "trusted_keys.json",
        "config.toml",
    ] {
        if let Ok(b) = std::fs::read(home.join(f)) {
            all.push_str(&String::from_utf8_lossy(&b));
        }
    }
    all
}

/// Nothing lost: each secret is in the vault (verbatim) or in the plaintext.
fn nothing_lost(home: &Path, vault: &dyn Vault) {
    let plain = plaintext(home);
    for (name, value) in SECRETS {
        let in_vault = vault
            .get(name)
            .unwrap()
            .is_some_and(|s| s.expose() == *value);
        let in_plain = plain.contains(value.trim());
        assert!(in_vault || in_plain, "{name} was lost");
    }
}

fn finished(home: &Path, vault: &dyn Vault) {
    let plain = plaintext(home);
    for (name, value) in SECRETS {
        assert_eq!(vault.get(name).unwrap().unwrap().expose(), *value, "{name}");
        assert!(
            !plain.contains(value.trim()),
            "{name} is still in plaintext"
        );
    }
    assert!(!home.join("mcp_gateway_token").exists());
    assert!(!home.join("trusted_keys.json").exists());
    // Metadata stays, without the secret.
    let plugins: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("plugins.json")).unwrap()).unwrap();
    assert_eq!(plugins["plugins"][0]["version"], "1.2.0");
    assert_eq!(
        plugins["plugins"][0]["auth_token_hash_vault"],
        "plugin/weather/auth_token_hash"
    );
    assert_eq!(plugins["plugins"][2]["id"], "notes");
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains("# my settings") && config.contains("base_url"),
        "{config}"
    );
    assert!(!pending(&NexusHome::at(home)));
}

#[test]
fn moves_everything_and_is_idempotent() {
    let d = tempfile::tempdir().unwrap();
    seed(d.path());
    let home = NexusHome::at(d.path());
    let vault = MemoryVault::new();
    assert!(pending(&home));
    let dry = migrate(&home, &vault, true).unwrap();
    assert_eq!(dry.len(), SECRETS.len());
    assert!(dry.iter().all(|m| m.action == "would_move"));
    assert!(
        vault.list("").unwrap().is_empty(),
        "dry run wrote to the vault"
    );
    assert!(
        plaintext(d.path()).contains("sk-proj-plaintext-openai"),
        "dry run removed plaintext"
    );
    let moved = migrate(&home, &vault, false).unwrap();
    assert_eq!(moved.len(), SECRETS.len());
    assert!(moved.iter().all(|m| m.action == "moved"));
    finished(d.path(), &vault);
    let again = migrate(&home, &vault, false).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_crash_at_any_step_loses_nothing() {
    let steps = [
        Step::Read,
        Step::Written,
        Step::Verified,
        Step::Overwritten,
        Step::Removed,
    ];
    let mut injected = 0;
    for (secret, _) in SECRETS {
        for step in steps {
            let d = tempfile::tempdir().unwrap();
            seed(d.path());
            let home = NexusHome::at(d.path());
            // A real encrypted vault, so its own writes are exercised too.
            let vault = FileVault::open_with(
                &d.path().join("vault.enc"),
                KeySource::Passphrase(Secret::new("pw")),
                KdfParams::INSECURE_FOR_TESTS,
            )
            .unwrap();
            let crash = |s: Step, what: &str| {
                if s == step && what == *secret {
                    Err(())
                } else {
                    Ok(())
                }
            };
            match migrate_with(&home, &vault, false, &crash) {
                Err(e) => {
                    injected += 1;
                    assert!(e.to_string().contains("injected"), "{e}");
                }
                // Whole-file steps do not exist for JSON and TOML secrets.
                Ok(_) => assert_eq!(step, Step::Overwritten, "{secret} {step:?} never reached"),
            }
            nothing_lost(d.path(), &vault);
            // Restart: a fresh handle, and the migration runs again.
            let vault = FileVault::open_with(
                &d.path().join("vault.enc"),
                KeySource::Passphrase(Secret::new("pw")),
                KdfParams::INSECURE_FOR_TESTS,
            )
            .unwrap();
            migrate(&home, &vault, false).unwrap();
            finished(d.path(), &vault);
        }
    }
    assert!(
        injected >= SECRETS.len() * 4,
        "only {injected} crashes were injected"
    );
}

#[test]
fn a_vault_that_fails_to_write_keeps_the_plaintext() {
    struct ReadOnly;
    impl Vault for ReadOnly {
        fn backend(&self) -> &str {
            "read-only"
        }
        fn get(&self, _: &str) -> Result<Option<Secret>, nexus_core::VaultError> {
            Ok(None)
        }
        fn set(&self, _: &str, _: &Secret) -> Result<(), nexus_core::VaultError> {
            Err(nexus_core::VaultError::Backend {
                backend: "read-only".into(),
                why: "disk full".into(),
            })
        }
        fn delete(&self, _: &str) -> Result<bool, nexus_core::VaultError> {
            Ok(false)
        }
        fn list(&self, _: &str) -> Result<Vec<String>, nexus_core::VaultError> {
            Ok(vec![])
        }
    }
    let d = tempfile::tempdir().unwrap();
    seed(d.path());
    let before = plaintext(d.path());
    let e = migrate(&NexusHome::at(d.path()), &ReadOnly, false).unwrap_err();
    assert!(e.to_string().contains("nothing lost"), "{e}");
    assert_eq!(plaintext(d.path()), before);
}
