//! OAuth 2.0 sign-in for providers: authorization code with PKCE (S256)
//! over a loopback redirect (RFC 8252), the device authorization grant
//! (RFC 8628) for headless machines, refresh before expiry without racing
//! other processes, and revocation on logout (RFC 7009).
//!
//! Tokens live in the vault (`oauth/<provider>/token`); the client id in
//! `config.toml` (`[oauth.<provider>]`), the client secret, if any, in the
//! vault (`oauth/<provider>/client_secret`).

mod loopback;
mod profile;

use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use nexus_core::{Clock, NexusHome, ProviderError, Secret, SystemClock, Vault, VaultError};

pub use loopback::{CallbackResult, LoopbackServer};
pub use profile::{canonical, BuiltinProfile, OAuthProfile, BUILTIN_PROFILES};

/// Refresh this long before the access token expires.
pub const REFRESH_MARGIN_SECS: u64 = 60;

/// An OAuth failure. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// No client id is configured for the provider.
    #[error("OAuth is not configured for {0}: run `nexus config set-oauth {0} CLIENT_ID`")]
    NotConfigured(String),
    /// Not signed in.
    #[error("not signed in to {0}: run `nexus config oauth-authorize {0}`")]
    NotAuthorized(String),
    /// The redirect's `state` did not match: a forged or stale callback.
    #[error("the sign-in callback's state did not match this request (a forged or stale redirect); nothing was stored. Start again with `nexus config oauth-authorize`")]
    StateMismatch,
    /// The user (or the server) refused.
    #[error("sign-in was refused: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        /// The OAuth error code (`access_denied`, ...).
        error: String,
        /// The server's description.
        description: Option<String>,
    },
    /// A grant (code, refresh token) is invalid, expired or revoked.
    #[error("{what} was rejected by the server ({detail}); sign in again with `nexus config oauth-authorize {provider}`")]
    InvalidGrant {
        /// The provider.
        provider: String,
        /// What was rejected.
        what: &'static str,
        /// The server's words.
        detail: String,
    },
    /// Nothing arrived in time.
    #[error("timed out after {0}s waiting for the sign-in to finish; run the command again")]
    Timeout(u64),
    /// The server answered something unexpected.
    #[error("the OAuth server at {endpoint} failed: {detail}")]
    Server {
        /// Which endpoint.
        endpoint: String,
        /// What happened (never a token).
        detail: String,
    },
    /// A bad endpoint URL in the configuration.
    #[error("invalid OAuth endpoint `{0}`; fix it in config.toml [oauth.<provider>]")]
    BadUrl(String),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A local I/O failure (loopback listener, lock file).
    #[error("{0}")]
    Io(String),
}

/// A stored token set.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredToken {
    /// The access token.
    pub access_token: String,
    /// The refresh token, if one was issued.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Usually `bearer`.
    #[serde(default)]
    pub token_type: String,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl StoredToken {
    /// Whether it expires within `margin` of `now` (both in seconds).
    pub fn expires_within(&self, now: u64, margin: u64) -> bool {
        self.expires_at
            .is_some_and(|e| e <= now.saturating_add(margin))
    }
}

/// What `nexus config oauth-status` shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OAuthStatus {
    /// The provider.
    pub provider: String,
    /// A client id is configured.
    pub configured: bool,
    /// A token is stored.
    pub authorized: bool,
    /// Expiry, seconds since the epoch.
    pub expires_at: Option<u64>,
    /// Whether the access token has expired (a refresh may still work).
    pub expired: bool,
    /// Whether a refresh token is stored.
    pub refreshable: bool,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

/// What the device flow asks the user to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeInfo {
    /// Where to go.
    pub verification_uri: String,
    /// The same, with the code filled in, if the server offers it.
    pub verification_uri_complete: Option<String>,
    /// The code to enter.
    pub user_code: String,
    /// How long the code lives, seconds.
    pub expires_in: u64,
}

type Client = oauth2::basic::BasicClient<
    EndpointSet,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

fn token_name(provider: &str) -> String {
    format!("oauth/{provider}/token")
}

/// The vault name of a provider's OAuth client secret.
pub fn client_secret_name(provider: &str) -> String {
    format!("oauth/{provider}/client_secret")
}

fn request_error<RE: std::error::Error + 'static>(
    provider: &str,
    endpoint: &str,
    what: &'static str,
    e: RequestTokenError<RE, impl oauth2::ErrorResponse + 'static>,
) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let s = serde_json::to_value(&r).unwrap_or_default();
            let code = s
                .get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("error")
                .to_string();
            let desc = s
                .get("error_description")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let detail = match &desc {
                Some(d) => format!("{code}: {d}"),
                None => code.clone(),
            };
            match code.as_str() {
                "invalid_grant" => OAuthError::InvalidGrant {
                    provider: provider.to_string(),
                    what,
                    detail,
                },
                "access_denied" => OAuthError::Denied {
                    error: code,
                    description: desc,
                },
                "expired_token" => OAuthError::InvalidGrant {
                    provider: provider.to_string(),
                    what: "the device code",
                    detail,
                },
                _ => OAuthError::Server {
                    endpoint: endpoint.to_string(),
                    detail,
                },
            }
        }
        RequestTokenError::Request(r) => {
            let mut detail = format!("request failed: {r}");
            let mut src = std::error::Error::source(&r);
            while let Some(e) = src {
                detail.push_str(&format!(": {e}"));
                src = e.source();
            }
            OAuthError::Server {
                endpoint: endpoint.to_string(),
                detail,
            }
        }
        // The body may hold tokens: never include it.
        RequestTokenError::Parse(err, _body) => OAuthError::Server {
            endpoint: endpoint.to_string(),
            detail: format!("unparseable response ({})", err.path()),
        },
        RequestTokenError::Other(o) => OAuthError::Server {
            endpoint: endpoint.to_string(),
            detail: o,
        },
    }
}

/// Signs in, refreshes and signs out, keeping tokens in a vault.
pub struct OAuthManager {
    home: NexusHome,
    vault: Arc<dyn Vault>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OAuthManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthManager")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

impl OAuthManager {
    /// A manager storing tokens in `vault`, with its lock files under `home`.
    pub fn new(home: NexusHome, vault: Arc<dyn Vault>) -> Result<Self, OAuthError> {
        // Token endpoints must never be followed through redirects.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // OAuth calls are rare; a fresh connection each time avoids
            // POSTs failing on keep-alive connections the server dropped.
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| OAuthError::Io(format!("cannot build the HTTP client: {e}")))?;
        Ok(OAuthManager {
            home,
            vault,
            http,
            clock: Arc::new(SystemClock),
        })
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn client(&self, p: &OAuthProfile, redirect: Option<&str>) -> Result<Client, OAuthError> {
        let url = |s: &str| -> Result<String, OAuthError> {
            if s.starts_with("https://")
                || s.starts_with("http://127.0.0.1")
                || s.starts_with("http://localhost")
            {
                Ok(s.to_string())
            } else {
                Err(OAuthError::BadUrl(s.to_string()))
            }
        };
        let bad = |s: &str| OAuthError::BadUrl(s.to_string());
        let mut c = oauth2::basic::BasicClient::new(ClientId::new(p.client_id.clone()))
            .set_auth_uri(oauth2::AuthUrl::new(url(&p.auth_url)?).map_err(|_| bad(&p.auth_url))?)
            .set_token_uri(
                oauth2::TokenUrl::new(url(&p.token_url)?).map_err(|_| bad(&p.token_url))?,
            )
            .set_device_authorization_url_option(
                p.device_url
                    .as_deref()
                    .map(|u| DeviceAuthorizationUrl::new(u.to_string()).map_err(|_| bad(u)))
                    .transpose()?,
            )
            .set_revocation_url_option(
                p.revoke_url
                    .as_deref()
                    .map(|u| RevocationUrl::new(u.to_string()).map_err(|_| bad(u)))
                    .transpose()?,
            );
        if let Some(s) = self.vault.get(&client_secret_name(&p.provider))? {
            c = c.set_client_secret(ClientSecret::new(s.expose().to_string()));
        }
        if let Some(r) = redirect {
            c = c.set_redirect_uri(RedirectUrl::new(r.to_string()).map_err(|_| bad(r))?);
        }
        Ok(c)
    }

    fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    fn store(&self, provider: &str, t: &StoredToken) -> Result<(), OAuthError> {
        let json = serde_json::to_string(t).map_err(|e| OAuthError::Io(e.to_string()))?;
        self.vault.set(&token_name(provider), &Secret::new(json))?;
        Ok(())
    }

    /// The stored token, if any.
    pub fn token(&self, provider: &str) -> Result<Option<StoredToken>, OAuthError> {
        match self.vault.get(&token_name(provider))? {
            None => Ok(None),
            Some(s) => serde_json::from_str(s.expose()).map(Some).map_err(|_| {
                OAuthError::Vault(VaultError::Corrupt(format!(
                    "the stored {provider} token is not valid JSON"
                )))
            }),
        }
    }

    fn token_from(
        &self,
        r: &oauth2::StandardTokenResponse<oauth2::EmptyExtraTokenFields, BasicTokenType>,
        previous_refresh: Option<String>,
        requested: &[String],
    ) -> StoredToken {
        StoredToken {
            access_token: r.access_token().secret().clone(),
            // Without rotation the server sends no new refresh token: keep ours.
            refresh_token: r
                .refresh_token()
                .map(|t| t.secret().clone())
                .or(previous_refresh),
            expires_at: r.expires_in().map(|d| self.now() + d.as_secs()),
            scopes: r
                .scopes()
                .map(|s| s.iter().map(|x| x.to_string()).collect())
                .unwrap_or_else(|| requested.to_vec()),
            token_type: "bearer".into(),
        }
    }

    /// Authorization code + PKCE (S256) through a one-shot loopback
    /// listener on 127.0.0.1 with an ephemeral port and a random path.
    /// `show_url` is called with the URL to open (print it, or open a
    /// browser); the flow fails on a state mismatch, a refusal or `timeout`.
    pub async fn authorize(
        &self,
        p: &OAuthProfile,
        show_url: &(dyn Fn(&str) + Send + Sync),
        timeout: Duration,
    ) -> Result<StoredToken, OAuthError> {
        let server = LoopbackServer::bind().await?;
        let client = self.client(p, Some(&server.redirect_uri()))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(CsrfToken::new_random);
        for s in &p.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        for (k, v) in &p.extra_params {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (url, state) = req.set_pkce_challenge(challenge).url();
        show_url(url.as_str());
        let cb = server.wait(timeout).await?;
        let code = match cb {
            CallbackResult::Code { code, state: got } => {
                if got != *state.secret() {
                    return Err(OAuthError::StateMismatch);
                }
                code
            }
            CallbackResult::Error {
                error,
                description,
                state: got,
            } => {
                if got.as_deref() != Some(state.secret().as_str()) {
                    return Err(OAuthError::StateMismatch);
                }
                return Err(OAuthError::Denied { error, description });
            }
        };
        self.exchange(p, &client, code, verifier).await
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens
    /// and stores them. Public so tests can present a wrong verifier.
    pub async fn exchange_code(
        &self,
        p: &OAuthProfile,
        redirect_uri: &str,
        code: String,
        verifier: String,
    ) -> Result<StoredToken, OAuthError> {
        let client = self.client(p, Some(redirect_uri))?;
        self.exchange(p, &client, code, PkceCodeVerifier::new(verifier))
            .await
    }

    async fn exchange(
        &self,
        p: &OAuthProfile,
        client: &Client,
        code: String,
        verifier: PkceCodeVerifier,
    ) -> Result<StoredToken, OAuthError> {
        let r = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| request_error(&p.provider, &p.token_url, "the authorization code", e))?;
        let t = self.token_from(&r, None, &p.scopes);
        self.store(&p.provider, &t)?;
        Ok(t)
    }

    /// The device authorization grant: `show` gets the code and where to
    /// enter it; this polls until the user approves, refuses, or the code
    /// expires.
    pub async fn authorize_device(
        &self,
        p: &OAuthProfile,
        show: &(dyn Fn(&DeviceCodeInfo) + Send + Sync),
        timeout: Duration,
    ) -> Result<StoredToken, OAuthError> {
        let client = self.client(p, None)?;
        let dev_url = p.device_url.clone().ok_or_else(|| OAuthError::Server {
            endpoint: p.auth_url.clone(),
            detail: format!(
                "{} has no device authorization endpoint; set oauth.{}.device_url or sign in without --device",
                p.provider, p.provider
            ),
        })?;
        let mut req = client
            .exchange_device_code()
            .map_err(|e| OAuthError::Server {
                endpoint: dev_url.clone(),
                detail: e.to_string(),
            })?;
        for s in &p.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let details: oauth2::StandardDeviceAuthorizationResponse =
            req.request_async(&self.http).await.map_err(|e| {
                request_error(&p.provider, &dev_url, "the device authorization request", e)
            })?;
        show(&DeviceCodeInfo {
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().clone()),
            user_code: details.user_code().secret().clone(),
            expires_in: details.expires_in().as_secs(),
        });
        let r = client
            .exchange_device_access_token(&details)
            .request_async(&self.http, tokio::time::sleep, Some(timeout))
            .await
            .map_err(|e| match e {
                RequestTokenError::Other(o) if o.contains("timed out") || o.contains("Timeout") => {
                    OAuthError::Timeout(timeout.as_secs())
                }
                e => request_error(&p.provider, &p.token_url, "the device code", e),
            })?;
        let t = self.token_from(&r, None, &p.scopes);
        self.store(&p.provider, &t)?;
        Ok(t)
    }

    /// Refreshes the token (always when `force`, else only within
    /// [`REFRESH_MARGIN_SECS`] of expiry). A lock file serializes refreshes
    /// across processes, and the vault is re-read under the lock, so a
    /// rotating refresh token is used once.
    pub async fn refresh(&self, p: &OAuthProfile, force: bool) -> Result<StoredToken, OAuthError> {
        let before = self.token(&p.provider)?;
        let lock = self.lock(&p.provider).await?;
        // Re-read: another process may have refreshed while we waited.
        let current = self
            .token(&p.provider)?
            .ok_or_else(|| OAuthError::NotAuthorized(p.provider.clone()))?;
        let someone_else = before
            .as_ref()
            .is_some_and(|b| b.access_token != current.access_token);
        if !current.expires_within(self.now(), REFRESH_MARGIN_SECS) && (!force || someone_else) {
            drop(lock);
            return Ok(current);
        }
        let rt = current
            .refresh_token
            .clone()
            .ok_or_else(|| OAuthError::InvalidGrant {
                provider: p.provider.clone(),
                what: "the session",
                detail: "no refresh token was issued".into(),
            })?;
        let client = self.client(p, None)?;
        let r = client
            .exchange_refresh_token(&RefreshToken::new(rt.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| request_error(&p.provider, &p.token_url, "the refresh token", e))?;
        let t = self.token_from(&r, Some(rt), &current.scopes);
        self.store(&p.provider, &t)?;
        drop(lock);
        Ok(t)
    }

    async fn lock(&self, provider: &str) -> Result<std::fs::File, OAuthError> {
        self.home
            .ensure()
            .map_err(|e| OAuthError::Io(e.to_string()))?;
        let path = self.home.join(format!("oauth-{provider}.lock"));
        tokio::task::spawn_blocking(move || {
            let f = std::fs::File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| OAuthError::Io(format!("cannot open {}: {e}", path.display())))?;
            f.lock()
                .map_err(|e| OAuthError::Io(format!("cannot lock {}: {e}", path.display())))?;
            Ok(f)
        })
        .await
        .map_err(|e| OAuthError::Io(e.to_string()))?
    }

    /// Revokes the tokens where the server supports it, then forgets them.
    /// Returns whether the server confirmed the revocation.
    pub async fn logout(&self, p: &OAuthProfile) -> Result<bool, OAuthError> {
        let Some(t) = self.token(&p.provider)? else {
            return Err(OAuthError::NotAuthorized(p.provider.clone()));
        };
        let mut revoked = false;
        if let Some(revoke_url) = &p.revoke_url {
            // RFC 7009 is one form POST; sent directly so loopback test
            // servers work (the oauth2 crate insists on https here).
            let url = self.client(p, None).map(|_| revoke_url.clone())?;
            if !(url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost"))
            {
                return Err(OAuthError::BadUrl(url));
            }
            let (token, hint) = match &t.refresh_token {
                Some(rt) => (rt.clone(), "refresh_token"),
                None => (t.access_token.clone(), "access_token"),
            };
            let mut body = format!(
                "token={}&token_type_hint={hint}&client_id={}",
                form_encode(&token),
                form_encode(&p.client_id)
            );
            if let Some(secret) = self.vault.get(&client_secret_name(&p.provider))? {
                body.push_str(&format!("&client_secret={}", form_encode(secret.expose())));
            }
            let resp = self
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| OAuthError::Server {
                    endpoint: url.clone(),
                    detail: format!("request failed: {e}"),
                })?;
            if !resp.status().is_success() {
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap_or_default();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let detail = v
                    .get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("error")
                    .to_string();
                return Err(OAuthError::Server {
                    endpoint: url,
                    detail: format!("HTTP {status}: {detail}"),
                });
            }
            revoked = true;
        }
        self.vault.delete(&token_name(&p.provider))?;
        Ok(revoked)
    }

    /// The provider's sign-in state.
    pub fn status(&self, provider: &str, configured: bool) -> Result<OAuthStatus, OAuthError> {
        let t = self.token(provider)?;
        let now = self.now();
        Ok(OAuthStatus {
            provider: provider.to_string(),
            configured,
            authorized: t.is_some(),
            expires_at: t.as_ref().and_then(|t| t.expires_at),
            expired: t.as_ref().is_some_and(|t| t.expires_within(now, 0)),
            refreshable: t.as_ref().is_some_and(|t| t.refresh_token.is_some()),
            scopes: t.map(|t| t.scopes).unwrap_or_default(),
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Supplies a current bearer token to a provider, refreshing it on its own.
#[derive(Debug)]
pub struct OAuthTokenSource {
    manager: Arc<OAuthManager>,
    profile: OAuthProfile,
}

impl OAuthTokenSource {
    /// A source for `profile`'s provider.
    pub fn new(manager: Arc<OAuthManager>, profile: OAuthProfile) -> Self {
        OAuthTokenSource { manager, profile }
    }
}

#[async_trait::async_trait]
impl crate::auth::TokenSource for OAuthTokenSource {
    async fn bearer(&self) -> Result<Secret, ProviderError> {
        let to_provider_error = |e: OAuthError| {
            ProviderError::new(
                nexus_core::ErrorKind::Auth,
                self.profile.provider.clone(),
                e.to_string(),
            )
        };
        let t = self
            .manager
            .token(&self.profile.provider)
            .map_err(to_provider_error)?
            .ok_or_else(|| {
                to_provider_error(OAuthError::NotAuthorized(self.profile.provider.clone()))
            })?;
        if t.expires_within(self.manager.now(), REFRESH_MARGIN_SECS) {
            let t = self
                .manager
                .refresh(&self.profile, false)
                .await
                .map_err(to_provider_error)?;
            return Ok(Secret::new(t.access_token));
        }
        Ok(Secret::new(t.access_token))
    }
}
