//! Vault and OAuth through the `nexus` binary, and redaction: no secret
//! appears in any output, error, `--json` or `Debug`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Output, Stdio};

use nexus_testkit::{oidc, Api, Script, StandIn};

mod common;

use common::{stderr, stdout, Run};

const KEY: &str = "sk-live-SECRET-0123456789abcdef";

fn vault_env(r: &mut Run) {
    r.env.push((
        "NEXUS_VAULT_PASSPHRASE".into(),
        "correct horse battery".into(),
    ));
}

fn all_output(outs: &[Output]) -> String {
    outs.iter()
        .map(|o| format!("{}{}", stdout(o), stderr(o)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_live_in_the_vault_and_never_show() {
    let s = StandIn::start().await;
    s.require_key(KEY);
    let mut r = Run::new();
    vault_env(&mut r);
    r.env
        .push(("OPENAI_BASE_URL".into(), s.base_url(Api::OpenAi)));
    let mut outs = Vec::new();
    // The key goes in through stdin, never argv.
    let o = r.run_stdin(&["auth", "set-key", "openai"], Some(KEY)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    outs.push(o);
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o", "from the vault"])
        .await;
    assert_eq!(stdout(&o), "echo: from the vault\n", "{}", stderr(&o));
    outs.push(o);
    for args in [
        &["vault", "status", "--json"][..],
        &["vault", "list", "--json"],
        &["vault", "list"],
        &["providers", "list", "--json"],
        &["providers", "list"],
        &["config", "show", "--json"],
        &["config", "show"],
        &["models", "list-available", "--json"],
    ] {
        let o = r.run(args).await;
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        outs.push(o);
    }
    // A server that echoes the key back in its error body.
    s.script(
        Api::OpenAi,
        [Script::Raw(401, format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}","type":"invalid_request_error","code":"invalid_api_key"}}}}"#))],
    );
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o", "--no-stream", "--json", "x"])
        .await;
    assert_eq!(o.status.code(), Some(10));
    outs.push(o);
    let everything = all_output(&outs);
    assert!(!everything.contains(KEY), "a key leaked:\n{everything}");
    assert!(everything.contains("provider/openai/api_key"));
    // The vault file holds no plaintext either.
    let raw = std::fs::read(r.home.path().join("nexus/vault.enc")).unwrap();
    assert!(!raw.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    // `vault get` is the one deliberate way to see a value.
    let o = r.run(&["vault", "get", "provider/openai/api_key"]).await;
    assert_eq!(stdout(&o).trim(), KEY);
    // A wrong passphrase is its own error class.
    let mut wrong = Run {
        home: r.home,
        env: r.env.clone(),
    };
    wrong.env.retain(|(k, _)| k != "NEXUS_VAULT_PASSPHRASE");
    wrong
        .env
        .push(("NEXUS_VAULT_PASSPHRASE".into(), "nope".into()));
    let o = wrong.run(&["vault", "list"]).await;
    assert_eq!(o.status.code(), Some(23));
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_secrets_migrate_on_first_start() {
    let mut r = Run::new();
    vault_env(&mut r);
    let home = r.home.path().join("nexus");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!("[providers.xai]\napi_key = \"{KEY}\"\n"),
    )
    .unwrap();
    std::fs::write(home.join("mcp_gateway_token"), "gw-SECRET-token\n").unwrap();
    let o = r.run(&["vault", "migrate", "--dry-run", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["secrets"].as_array().unwrap().len(), 2);
    assert!(
        home.join("mcp_gateway_token").exists(),
        "dry run removed a file"
    );
    // Any ordinary command migrates first.
    let o = r.run(&["providers", "list"]).await;
    assert!(
        stderr(&o).contains("moved 2 plaintext secret(s)"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("vault provider/xai/api_key"),
        "{}",
        stdout(&o)
    );
    assert!(!std::fs::read_to_string(home.join("config.toml"))
        .unwrap()
        .contains(KEY));
    assert!(!home.join("mcp_gateway_token").exists());
    let o = r.run(&["vault", "migrate"]).await;
    assert!(stdout(&o).contains("nothing to migrate"));
}

/// Runs `nexus` and acts on its stderr as a user would: `on_line` sees each
/// line and may start the browser.
async fn interactive(r: &Run, args: &[&str], on_line: impl Fn(&str) + Send + 'static) -> Output {
    let mut c = r.cmd(args);
    tokio::task::spawn_blocking(move || {
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let mut seen = String::new();
        for line in BufReader::new(err).lines() {
            let line = line.unwrap();
            on_line(&line);
            seen.push_str(&line);
            seen.push('\n');
        }
        let mut out = child.wait_with_output().unwrap();
        out.stderr = seen.into_bytes();
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_sign_in_status_refresh_and_logout_through_the_cli() {
    let Some(idp) = oidc::start() else { return };
    let s = StandIn::start().await;
    let mut r = Run::new();
    vault_env(&mut r);
    r.env
        .push(("OPENAI_BASE_URL".into(), s.base_url(Api::OpenAi)));
    for (k, v) in [
        ("auth_url", format!("{}/auth", idp.issuer)),
        ("token_url", format!("{}/token", idp.issuer)),
        ("device_url", format!("{}/device/auth", idp.issuer)),
        ("revoke_url", format!("{}/token/revocation", idp.issuer)),
        ("scopes", "openid offline_access api".to_string()),
    ] {
        let o = r
            .run(&["config", "set", &format!("oauth.openai.{k}"), &v])
            .await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = r.run(&["config", "oauth-status", "openai", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["configured"].as_bool(), v["authorized"].as_bool()),
        (Some(false), Some(false))
    );
    let o = r
        .run(&["config", "oauth-authorize", "openai", "--no-browser"])
        .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "not configured yet: {}",
        stderr(&o)
    );
    let o = r
        .run(&["config", "set-oauth", "openai", "nexus-test"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));

    // Authorization code + PKCE: the CLI prints the URL, "the browser" follows it.
    let rt = tokio::runtime::Handle::current();
    let o = interactive(
        &r,
        &[
            "config",
            "oauth-authorize",
            "openai",
            "--no-browser",
            "--timeout",
            "30",
        ],
        move |line| {
            if line.starts_with("http://127.0.0.1") && line.contains("/auth?") {
                rt.spawn(oidc::browse(line.to_string(), None));
            }
        },
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("signed in to openai"), "{}", stderr(&o));

    let o = r.run(&["config", "oauth-status", "openai", "--json"]).await;
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["authorized"], true);
    assert_eq!(st["refreshable"], true);
    assert!(st["scopes"].as_array().unwrap().iter().any(|x| x == "api"));

    // The provider now authenticates with the bearer token.
    let o = r.run(&["chat", "-m", "openai/gpt-4o", "with oauth"]).await;
    assert_eq!(stdout(&o), "echo: with oauth\n", "{}", stderr(&o));
    let auth = s.requests_for(Api::OpenAi)[0].headers["authorization"].clone();
    assert!(auth.starts_with("Bearer ") && auth.len() > 20);
    let o = r.run(&["providers", "list"]).await;
    assert!(stdout(&o).contains("OAuth sign-in"), "{}", stdout(&o));

    let o = r.run(&["config", "oauth-refresh", "openai"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o", "after refresh"])
        .await;
    assert!(o.status.success());
    let auth2 = s.requests_for(Api::OpenAi)[1].headers["authorization"].clone();
    assert_ne!(auth, auth2, "the refreshed token is used");

    // No token in any output.
    let token = auth2.trim_start_matches("Bearer ").to_string();
    let mut outs = vec![o];
    for args in [
        &["config", "oauth-status", "openai", "--json"][..],
        &["vault", "list", "--json"],
        &["providers", "list", "--json"],
    ] {
        outs.push(r.run(args).await);
    }
    assert!(!all_output(&outs).contains(&token), "a token leaked");

    let o = r.run(&["config", "oauth-logout", "openai"]).await;
    assert!(stderr(&o).contains("revoked"), "{}", stderr(&o));
    let o = r.run(&["config", "oauth-status", "openai", "--json"]).await;
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["authorized"], false);

    // The device flow, for headless machines.
    let issuer = idp.issuer.clone();
    let rt = tokio::runtime::Handle::current();
    let o = interactive(
        &r,
        &[
            "config",
            "oauth-authorize",
            "openai",
            "--device",
            "--timeout",
            "30",
        ],
        move |line| {
            if let Some(code) = line.strip_prefix("and enter the code: ") {
                let (issuer, code) = (issuer.clone(), code.trim().to_string());
                rt.spawn(async move { oidc::approve_device(&issuer, &code, false).await });
            }
        },
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["config", "oauth-status", "openai", "--json"]).await;
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["authorized"], true);
    let _ = std::io::stdout().flush();
}

/// Issue 14, defects 1 and 7: a key only in a vault that will not open is
/// "the vault is locked" (exit 23), not "set ANTHROPIC_API_KEY" (exit 4);
/// and on a headless host with no keyring, commands whose keys are in the
/// environment say nothing about the vault, while `vault status` reports.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_vault_is_exit_23_and_a_headless_host_stays_quiet() {
    let s = StandIn::start().await;
    // Headless: `cmd` clears the environment, so there is no D-Bus here.
    let quiet = Run::with_standin(&s);
    for args in [
        &["ask", "hello there"][..],
        &["providers", "list"],
        &["models", "list-available"],
        &["hierarchy", "get"],
    ] {
        let o = quiet.run(args).await;
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            !err.contains("vault") && !err.contains("D-Bus") && !err.contains("X11"),
            "{args:?} warned about the vault: {err}"
        );
    }
    let o = quiet.run(&["vault", "status"]).await;
    assert!(o.status.success(), "vault status failed: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("backend: none (unavailable)"), "{out}");
    assert!(out.contains("NEXUS_VAULT_PASSPHRASE"), "{out}");
    assert!(out.lines().all(|l| l.len() < 400), "{out}");
    let o = quiet.run(&["vault", "status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["available"], false);

    // The key only in a passphrase vault; then the wrong passphrase.
    let mut r = Run::new();
    r.env
        .push(("ANTHROPIC_BASE_URL".into(), s.base_url(Api::Anthropic)));
    vault_env(&mut r);
    let o = r
        .run_stdin(&["auth", "set-key", "anthropic"], Some("sk-in-vault\n"))
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r
        .run(&[
            "chat",
            "-m",
            "anthropic/claude-sonnet-4-5",
            "with the vault",
        ])
        .await;
    assert_eq!(stdout(&o), "echo: with the vault\n", "{}", stderr(&o));
    r.env.retain(|(k, _)| k != "NEXUS_VAULT_PASSPHRASE");
    r.env
        .push(("NEXUS_VAULT_PASSPHRASE".into(), "not it".into()));
    for args in [
        &["chat", "-m", "anthropic/claude-sonnet-4-5", "hi"][..],
        &["ask", "hi"],
    ] {
        let o = r.run(args).await;
        assert_eq!(o.status.code(), Some(23), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("wrong passphrase"), "{err}");
        assert!(!err.contains("export ANTHROPIC_API_KEY"), "{err}");
    }
    let o = r.run(&["providers", "list"]).await;
    assert!(stdout(&o).contains("the vault failed"), "{}", stdout(&o));
}

/// Issue 14: `auth status`, `auth token` and `auth logout`, as `gh` users
/// expect them.
#[tokio::test(flavor = "multi_thread")]
async fn auth_status_token_and_logout() {
    let mut r = Run::new();
    vault_env(&mut r);
    // Nothing yet: the table, and exit 4.
    let o = r.run(&["auth", "status"]).await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stdout(&o).contains("PROVIDER"), "{}", stdout(&o));
    r.env
        .push(("ANTHROPIC_API_KEY".into(), "sk-from-env".into()));
    let o = r.run_stdin(&["auth", "set-key", "openai"], Some(KEY)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["auth", "status", "--json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = |p: &str| {
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["provider"] == p)
            .unwrap()
            .clone()
    };
    assert_eq!(row("openai")["credential"], "vault provider/openai/api_key");
    assert_eq!(row("anthropic")["credential"], "env ANTHROPIC_API_KEY");
    assert_eq!(v["vault"]["available"], true);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(KEY),
        "status showed a key"
    );
    // `token` is the one deliberate way to print it.
    let o = r.run(&["auth", "token", "openai"]).await;
    assert_eq!(stdout(&o), format!("{KEY}\n"));
    let o = r.run(&["auth", "token", "anthropic"]).await;
    assert_eq!(stdout(&o), "sk-from-env\n");
    let o = r.run(&["auth", "logout", "openai"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["auth", "token", "openai"]).await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let o = r.run(&["auth", "logout", "anthropic"]).await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "nothing stored to forget: {}",
        stderr(&o)
    );
    let o = r.run(&["auth", "token", "nosuch"]).await;
    assert_eq!(o.status.code(), Some(3));
}
