//! OAuth end to end against a real OAuth/OIDC server (npm's oidc-provider,
//! installed by scripts/test and started here on loopback): authorization
//! code + PKCE, the device flow, refresh with rotation, revocation, and the
//! failures: state mismatch, wrong verifier, denied consent, expired code,
//! and a dead refresh token.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::{ChatRequest, Config, MemoryVault, NexusHome, Provider, Vault};
use nexus_providers::oauth::{
    CallbackResult, LoopbackServer, OAuthError, OAuthManager, OAuthProfile,
};
use nexus_testkit::{Api, StandIn};

use nexus_testkit::oidc::{approve_device as approve, browse, start as idp, urlencode, Idp};

fn config(idp: &Idp, client_id: &str) -> Config {
    Config::from_toml(
        &format!(
            "[oauth.openai]\nclient_id = \"{client_id}\"\nauth_url = \"{i}/auth\"\ntoken_url = \"{i}/token\"\n\
             device_url = \"{i}/device/auth\"\nrevoke_url = \"{i}/token/revocation\"\nscopes = [\"openid\", \"offline_access\", \"api\"]\n",
            i = idp.issuer
        ),
        "test",
    )
    .unwrap()
}

fn profile(idp: &Idp, client_id: &str) -> OAuthProfile {
    OAuthProfile::load("openai", &config(idp, client_id)).unwrap()
}

fn manager(vault: Arc<dyn Vault>) -> (OAuthManager, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    (
        OAuthManager::new(NexusHome::at(d.path()), vault).unwrap(),
        d,
    )
}

type Shown = Arc<Mutex<Option<tokio::task::JoinHandle<String>>>>;

/// A `show_url` callback that "opens the browser".
fn browser(tamper: Option<fn(String) -> String>) -> (impl Fn(&str) + Send + Sync, Shown) {
    let handle: Shown = Arc::new(Mutex::new(None));
    let h = handle.clone();
    let show = move |url: &str| {
        let url = url.to_string();
        *h.lock().unwrap() = Some(tokio::spawn(browse(url, tamper)));
    };
    (show, handle)
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_sign_in_then_providers_use_the_bearer_token() {
    let Some(idp) = idp() else { return };
    let vault: Arc<dyn Vault> = Arc::new(MemoryVault::new());
    let (m, home) = manager(vault.clone());
    let p = profile(&idp, "nexus-test");
    let (show, page) = browser(None);
    let t = m
        .authorize(&p, &show, Duration::from_secs(20))
        .await
        .unwrap();
    let handle = page.lock().unwrap().take().unwrap();
    let page = handle.await.unwrap();
    assert!(page.contains("Signed in"), "{page}");
    assert!(t.refresh_token.is_some());
    assert!(t.expires_at.is_some());
    assert!(t.scopes.iter().any(|s| s == "api"), "{:?}", t.scopes);
    let st = m.status("openai", true).unwrap();
    assert!(st.authorized && st.refreshable && !st.expired);
    // Nothing secret in Debug.
    assert!(!format!("{t:?}").contains(&t.access_token));

    // A provider configured for OAuth sends the access token.
    let s = StandIn::start().await;
    let env: HashMap<String, String> =
        [("OPENAI_BASE_URL".to_string(), s.base_url(Api::OpenAi))].into();
    let reg = nexus_providers::Registry::new(
        config(&idp, "nexus-test"),
        Arc::new(move |k| env.get(k).cloned()),
    )
    .with_vault(vault.clone())
    .with_home(NexusHome::at(home.path()));
    let status = reg
        .status()
        .into_iter()
        .find(|x| x.name == "openai")
        .unwrap();
    assert_eq!(status.credential.to_string(), "OAuth sign-in");
    let r = reg
        .provider("openai")
        .unwrap()
        .chat(&ChatRequest::new("gpt-4o", "hi"))
        .await
        .unwrap();
    assert_eq!(r.text, "echo: hi");
    let sent = s.requests_for(Api::OpenAi);
    assert_eq!(
        sent[0].headers["authorization"],
        format!("Bearer {}", t.access_token)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_mismatch_is_refused_and_nothing_is_stored() {
    let Some(idp) = idp() else { return };
    let vault: Arc<dyn Vault> = Arc::new(MemoryVault::new());
    let (m, _home) = manager(vault.clone());
    fn forge(url: String) -> String {
        let i = url.find("state=").unwrap();
        format!(
            "{}state=forged{}",
            &url[..i],
            url[i..]
                .find('&')
                .map_or(String::new(), |j| url[i + j..].to_string())
        )
    }
    let (show, _page) = browser(Some(forge));
    let e = m
        .authorize(&profile(&idp, "nexus-test"), &show, Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::StateMismatch), "{e}");
    assert!(vault.list("oauth/").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_consent_is_reported() {
    let Some(idp) = idp() else { return };
    let (m, _home) = manager(Arc::new(MemoryVault::new()));
    let mut p = profile(&idp, "nexus-test");
    p.extra_params.push(("login_hint".into(), "deny".into()));
    let (show, _page) = browser(None);
    let e = m
        .authorize(&p, &show, Duration::from_secs(20))
        .await
        .unwrap_err();
    match e {
        OAuthError::Denied { error, .. } => assert_eq!(error, "access_denied"),
        e => panic!("{e}"),
    }
}

/// Gets an authorization code by hand, so the exchange can be tampered with.
async fn code_for(idp: &Idp, client_id: &str) -> (String, String, String) {
    let server = LoopbackServer::bind().await.unwrap();
    let redirect = server.redirect_uri();
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let url = format!(
        "{}/auth?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20offline_access%20api&state=s1&code_challenge={}&code_challenge_method=S256",
        idp.issuer,
        urlencode(&redirect),
        challenge.as_str()
    );
    let wait = tokio::spawn(server.wait(Duration::from_secs(20)));
    browse(url, None).await;
    match wait.await.unwrap().unwrap() {
        CallbackResult::Code { code, .. } => (code, verifier.secret().clone(), redirect),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_pkce_verifier_is_rejected() {
    let Some(idp) = idp() else { return };
    let (m, _home) = manager(Arc::new(MemoryVault::new()));
    let (code, _verifier, redirect) = code_for(&idp, "nexus-test").await;
    let wrong = "x".repeat(64);
    let e = m
        .exchange_code(&profile(&idp, "nexus-test"), &redirect, code, wrong)
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::InvalidGrant { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_rejected() {
    let Some(idp) = idp() else { return };
    let (m, _home) = manager(Arc::new(MemoryVault::new()));
    // This client's codes live one second.
    let (code, verifier, redirect) = code_for(&idp, "nexus-short-code").await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let e = m
        .exchange_code(
            &profile(&idp, "nexus-short-code"),
            &redirect,
            code,
            verifier,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::InvalidGrant { .. }), "{e}");
    assert!(e.to_string().contains("sign in again"), "{e}");
}

async fn approve_device(issuer: String, user_code: String, deny: bool) {
    approve(&issuer, &user_code, deny).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn device_flow_approved_and_denied() {
    let Some(idp) = idp() else { return };
    for deny in [false, true] {
        let vault: Arc<dyn Vault> = Arc::new(MemoryVault::new());
        let (m, _home) = manager(vault.clone());
        let issuer = idp.issuer.clone();
        let show = move |d: &nexus_providers::oauth::DeviceCodeInfo| {
            assert!(d.verification_uri.contains("/device"), "{d:?}");
            tokio::spawn(approve_device(issuer.clone(), d.user_code.clone(), deny));
        };
        let r = m
            .authorize_device(&profile(&idp, "nexus-test"), &show, Duration::from_secs(30))
            .await;
        if deny {
            assert!(matches!(r, Err(OAuthError::Denied { .. })), "{r:?}");
            assert!(vault.list("oauth/").unwrap().is_empty());
        } else {
            let t = r.unwrap();
            assert!(t.refresh_token.is_some());
            assert!(vault.get("oauth/openai/token").unwrap().is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_a_dead_refresh_token_says_sign_in_again() {
    let Some(idp) = idp() else { return };
    let vault: Arc<dyn Vault> = Arc::new(MemoryVault::new());
    let (m, _home) = manager(vault.clone());
    // This client's access tokens live five seconds: inside the refresh margin.
    let p = profile(&idp, "nexus-short-token");
    let (show, _page) = browser(None);
    let first = m
        .authorize(&p, &show, Duration::from_secs(20))
        .await
        .unwrap();
    let source =
        nexus_providers::oauth::OAuthTokenSource::new(Arc::new(manager_for(&vault)), p.clone());
    let bearer = nexus_providers::auth::TokenSource::bearer(&source)
        .await
        .unwrap();
    assert_ne!(
        bearer.expose(),
        first.access_token,
        "a token near expiry is refreshed before use"
    );
    let second = m.token("openai").unwrap().unwrap();
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "the refresh token rotated"
    );

    // The rotated-out refresh token is dead: the server rejects it, and the
    // error tells the user what to do.
    vault
        .set(
            "oauth/openai/token",
            &nexus_core::Secret::new(serde_json::to_string(&first).unwrap()),
        )
        .unwrap();
    let e = m.refresh(&p, true).await.unwrap_err();
    assert!(matches!(e, OAuthError::InvalidGrant { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("sign in again with `nexus config oauth-authorize openai`"),
        "{e}"
    );
}

fn manager_for(vault: &Arc<dyn Vault>) -> OAuthManager {
    let d = tempfile::tempdir().unwrap().keep();
    OAuthManager::new(NexusHome::at(d), vault.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_refreshers_do_not_burn_a_rotating_refresh_token() {
    let Some(idp) = idp() else { return };
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("vault.enc");
    let open = || -> Arc<dyn Vault> { Arc::new(nexus_vault_file(&path)) };
    let home = NexusHome::at(d.path());
    let a = OAuthManager::new(home.clone(), open()).unwrap();
    let p = profile(&idp, "nexus-test");
    let (show, _page) = browser(None);
    a.authorize(&p, &show, Duration::from_secs(20))
        .await
        .unwrap();
    // Two "processes": separate vault handles on one file, one lock dir.
    let b = OAuthManager::new(home.clone(), open()).unwrap();
    let c = OAuthManager::new(home, open()).unwrap();
    let (rb, rc) = tokio::join!(b.refresh(&p, true), c.refresh(&p, true));
    rb.unwrap();
    rc.unwrap();
    // The stored refresh token is the live one: another refresh works.
    let d2 = OAuthManager::new(NexusHome::at(d.path()), open()).unwrap();
    d2.refresh(&p, true).await.unwrap();
}

fn nexus_vault_file(path: &std::path::Path) -> impl Vault {
    // A passphrase file vault with test-cheap KDF settings, standing in for
    // whatever vault a process would open.
    TestFileVault(path.to_path_buf())
}

/// A minimal file-backed vault for the two-process test (JSON, reread on
/// every call, like separate processes would see it).
struct TestFileVault(PathBuf);

impl TestFileVault {
    fn read(&self) -> HashMap<String, String> {
        std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
}

impl Vault for TestFileVault {
    fn backend(&self) -> &str {
        "test-file"
    }
    fn get(&self, name: &str) -> Result<Option<nexus_core::Secret>, nexus_core::VaultError> {
        Ok(self
            .read()
            .get(name)
            .map(|v| nexus_core::Secret::new(v.clone())))
    }
    fn set(&self, name: &str, value: &nexus_core::Secret) -> Result<(), nexus_core::VaultError> {
        let mut m = self.read();
        m.insert(name.into(), value.expose().into());
        std::fs::write(&self.0, serde_json::to_string(&m).unwrap()).unwrap();
        Ok(())
    }
    fn delete(&self, name: &str) -> Result<bool, nexus_core::VaultError> {
        let mut m = self.read();
        let had = m.remove(name).is_some();
        std::fs::write(&self.0, serde_json::to_string(&m).unwrap()).unwrap();
        Ok(had)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, nexus_core::VaultError> {
        Ok(self
            .read()
            .into_keys()
            .filter(|k| k.starts_with(prefix))
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_at_the_server() {
    let Some(idp) = idp() else { return };
    let vault: Arc<dyn Vault> = Arc::new(MemoryVault::new());
    let (m, _home) = manager(vault.clone());
    let p = profile(&idp, "nexus-test");
    let (show, _page) = browser(None);
    let t = m
        .authorize(&p, &show, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(m.logout(&p).await.unwrap(), "the server revoked");
    assert!(m.token("openai").unwrap().is_none());
    // The revoked refresh token no longer works.
    vault
        .set(
            "oauth/openai/token",
            &nexus_core::Secret::new(serde_json::to_string(&t).unwrap()),
        )
        .unwrap();
    let r = m.refresh(&p, true).await;
    assert!(matches!(r, Err(OAuthError::InvalidGrant { .. })), "{r:?}");
}
