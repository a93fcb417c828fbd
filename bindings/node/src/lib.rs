//! Node.js bindings of the Nexus SDK. Each method converts its arguments,
//! calls `nexus_sdk`, and converts the result. Network calls return
//! Promises resolved from Nexus's tokio threads; errors are `Error`s with a
//! stable `code` (`rate_limited`, ...), a `name` (`RateLimitError`), the
//! details (`retryAfter`, `attempts`, ...) and a `cause`.

#![deny(clippy::unwrap_used)]

mod convert;
pub mod fast;
mod mesh;
mod vault;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use nexus_sdk as sdk;

use convert::{
    ask_reply, event, input, js_err, reply, AskOptions, AskReply, ChatOptions, Hierarchy, Preset,
    Reply, Stats, StreamEvent,
};
use vault::{ErrorSlot, JsVault};

pub(crate) struct Shared {
    client: sdk::Client,
    errors: ErrorSlot,
}

/// How to build a [`Client`].
#[napi(object)]
pub struct ClientOptions {
    /// The state root; default `NEXUS_HOME`, else `~/.nexus`.
    pub home: Option<String>,
    /// Variables consulted before `process.env` (API keys, `*_BASE_URL`).
    pub env: Option<HashMap<String, String>>,
}

/// A Nexus client: providers, the model hierarchy, the vault.
#[napi]
pub struct Client {
    shared: Arc<Shared>,
}

fn fail(env: &Env, shared: &Shared, e: sdk::Error) -> napi::Error {
    js_err(env, e, &shared.errors)
}

/// Runs `fut` on Nexus's threads; resolves with `conv(value)` on the JS
/// thread, or rejects with the typed error.
fn promise<'env, T, V, F>(
    env: &'env Env,
    shared: &Arc<Shared>,
    fut: F,
    conv: impl 'static + FnOnce(&'env Env, T) -> Result<V>,
) -> Result<PromiseRaw<'env, V>>
where
    T: 'static + Send,
    V: ToNapiValue,
    F: 'static + Send + std::future::Future<Output = sdk::Result<T>>,
{
    let shared = shared.clone();
    env.spawn_future_with_callback(async move { Ok(fut.await) }, move |env, r| match r {
        Ok(v) => conv(env, v),
        Err(e) => Err(fail(env, &shared, e)),
    })
}

#[napi]
impl Client {
    /// A client; `vault` is an optional host vault object with `get`,
    /// `set`, `delete` and `list` methods (see `HostVault`).
    #[napi(
        constructor,
        ts_args_type = "options?: ClientOptions, vault?: HostVault"
    )]
    pub fn new(
        env: Env,
        options: Option<ClientOptions>,
        vault: Option<Object<'_>>,
    ) -> Result<Self> {
        let errors = ErrorSlot::default();
        let options = options.unwrap_or(ClientOptions {
            home: None,
            env: None,
        });
        let vault = match vault {
            Some(v) => {
                Some(Arc::new(JsVault::new(&env, v, errors.clone())?) as Arc<dyn sdk::Vault>)
            }
            None => None,
        };
        let opts = sdk::ClientOptions {
            home: options.home.map(Into::into),
            env: options.env.unwrap_or_default(),
            vault,
            ..Default::default()
        };
        match sdk::Client::with_options(opts) {
            Ok(client) => Ok(Client {
                shared: Arc::new(Shared { client, errors }),
            }),
            Err(e) => Err(js_err(&env, e, &errors)),
        }
    }

    /// The state root this client uses.
    #[napi(getter)]
    pub fn home(&self) -> String {
        self.shared.client.home().display().to_string()
    }

    /// One call to `model`; `prompt` is a string or `{role, content}[]`.
    #[napi(
        ts_args_type = "model: string, prompt: string | Message[] | ConversationMessage[], options?: ChatOptions"
    )]
    pub fn chat<'env>(
        &self,
        env: &'env Env,
        model: String,
        prompt: Unknown<'_>,
        options: Option<ChatOptions>,
    ) -> Result<PromiseRaw<'env, Reply>> {
        let input = input(prompt)?;
        let opts = options.map(Into::into).unwrap_or_default();
        let c = self.shared.client.clone();
        promise(
            env,
            &self.shared,
            async move { c.chat(&model, input, &opts).await },
            |_, r| Ok(reply(r)),
        )
    }

    /// Streams an answer: `for await (const ev of await client.stream(...))`;
    /// `stream.reply` holds the whole answer afterwards.
    #[napi(
        ts_args_type = "model: string, prompt: string | Message[] | ConversationMessage[], options?: ChatOptions",
        ts_return_type = "Promise<ChatStream & AsyncIterable<StreamEvent>>"
    )]
    pub fn stream<'env>(
        &self,
        env: &'env Env,
        model: String,
        prompt: Unknown<'_>,
        options: Option<ChatOptions>,
    ) -> Result<PromiseRaw<'env, ChatStream>> {
        let input = input(prompt)?;
        let opts = options.map(Into::into).unwrap_or_default();
        let c = self.shared.client.clone();
        let shared = self.shared.clone();
        promise(
            env,
            &self.shared,
            async move {
                let s = c.stream(&model, input, &opts).await?;
                Ok(s.read_ahead(READ_AHEAD))
            },
            move |_, ahead| {
                Ok(ChatStream {
                    ahead: Arc::new(tokio::sync::Mutex::new(ahead)),
                    ended: Arc::default(),
                    buf: Arc::new(Mutex::new(VecDeque::new())),
                    shared,
                })
            },
        )
    }

    /// A request through the model hierarchy, with escalation.
    #[napi]
    pub fn ask<'env>(
        &self,
        env: &'env Env,
        prompt: String,
        options: Option<AskOptions>,
    ) -> Result<PromiseRaw<'env, AskReply>> {
        let opts = options.map(Into::into).unwrap_or_default();
        let c = self.shared.client.clone();
        promise(
            env,
            &self.shared,
            async move { c.ask(&prompt, &opts).await },
            |_, r| Ok(ask_reply(r)),
        )
    }

    /// What `ask` would do with `prompt`, decided without calling a model.
    #[napi(ts_return_type = "Route")]
    pub fn route(&self, env: Env, prompt: String, category: Option<String>) -> Result<fast::Built> {
        let r = self
            .shared
            .client
            .route(&prompt, category.as_deref())
            .map_err(|e| fail(&env, &self.shared, e))?;
        fast::Obj::new(&env)
            .str(c"category", &r.category)?
            .str(c"basis", &r.basis)?
            .opt_num(c"tier", r.tier.map(f64::from))?
            .opt_str(c"model", r.model.as_deref())?
            .num(c"estimate", r.estimate.dollars())?
            .done()
    }

    /// The category of `prompt`, and why.
    #[napi(ts_return_type = "Classification")]
    pub fn classify(&self, env: Env, prompt: String) -> Result<fast::Built> {
        let (category, basis) = self
            .shared
            .client
            .classify(&prompt)
            .map_err(|e| fail(&env, &self.shared, e))?;
        fast::Obj::new(&env)
            .str(c"category", &category)?
            .str(c"basis", &basis)?
            .done()
    }

    /// The built-in presets.
    #[napi]
    pub fn presets(&self) -> Vec<Preset> {
        self.shared
            .client
            .presets()
            .into_iter()
            .map(|p| Preset {
                name: p.name,
                description: p.description,
            })
            .collect()
    }

    /// The hierarchy in effect.
    #[napi]
    pub fn hierarchy(&self, env: Env) -> Result<Hierarchy> {
        let h = self
            .shared
            .client
            .hierarchy()
            .map_err(|e| fail(&env, &self.shared, e))?;
        Ok(h.into())
    }

    /// Applies and saves a preset; returns the new hierarchy.
    #[napi]
    pub fn use_preset(&self, env: Env, name: String) -> Result<Hierarchy> {
        let h = self
            .shared
            .client
            .use_preset(&name)
            .map_err(|e| fail(&env, &self.shared, e))?;
        Ok(h.into())
    }

    /// Edits one category's tiers (`["tier1=MODEL", "tier3=disabled"]`).
    #[napi]
    pub fn set_tiers(&self, env: Env, category: String, edits: Vec<String>) -> Result<Hierarchy> {
        let h = self
            .shared
            .client
            .set_tiers(&category, &edits)
            .map_err(|e| fail(&env, &self.shared, e))?;
        Ok(h.into())
    }

    /// Escalation and tier statistics of the last `days` days (default 1).
    #[napi]
    pub fn stats(&self, env: Env, days: Option<u32>) -> Result<Stats> {
        let s = self
            .shared
            .client
            .stats(days.unwrap_or(1))
            .map_err(|e| fail(&env, &self.shared, e))?;
        Ok(s.into())
    }

    /// Dollars spent today, open budget holds included.
    #[napi]
    pub fn spent_today(&self, env: Env) -> Result<f64> {
        self.shared
            .client
            .spent_today()
            .map(|u| u.dollars())
            .map_err(|e| fail(&env, &self.shared, e))
    }

    /// The agent mesh: through the daemon when one runs, else in this
    /// process.
    #[napi(getter)]
    pub fn mesh(&self, env: Env) -> Result<mesh::Mesh> {
        self.mesh_routed(env, "auto".into())
    }

    /// The mesh, routed: `"auto"`, `"in_process"` or `"daemon"`.
    #[napi(ts_args_type = "route: 'auto' | 'in_process' | 'daemon'")]
    pub fn mesh_routed(&self, env: Env, route: String) -> Result<mesh::Mesh> {
        let r = mesh::route(&route)?;
        let inner = self
            .shared
            .client
            .mesh_routed(r)
            .map_err(|e| fail(&env, &self.shared, e))?;
        Ok(mesh::Mesh {
            inner,
            shared: self.shared.clone(),
        })
    }

    /// The vault this client uses.
    #[napi(getter)]
    pub fn vault(&self, env: Env) -> Result<Vault> {
        let v = self
            .shared
            .client
            .vault()
            .map_err(|e| fail(&env, &self.shared, e))?;
        Ok(Vault {
            inner: v,
            shared: self.shared.clone(),
        })
    }
}

/// A streamed answer: an async iterable of [`StreamEvent`]s. Events cross
/// from Nexus's threads to JavaScript in batches, one hop per network
/// read rather than one per token.
#[napi]
pub struct ChatStream {
    ahead: Arc<tokio::sync::Mutex<sdk::ReadAhead>>,
    /// The consumer reached the end (so `reply` may show the answer).
    ended: Arc<std::sync::atomic::AtomicBool>,
    buf: Arc<Mutex<VecDeque<sdk::Result<sdk::StreamEvent>>>>,
    shared: Arc<Shared>,
}

const BATCH: usize = 1024;
/// Events read ahead of the consumer, at most.
const READ_AHEAD: usize = 8192;

/// One step of the async iterator protocol.
#[napi(object)]
pub struct StreamStep {
    /// Whether the stream has ended.
    pub done: bool,
    /// The event, unless done.
    pub value: Option<StreamEvent>,
}

fn step(
    env: &Env,
    shared: &Shared,
    ended: &std::sync::atomic::AtomicBool,
    next: Option<sdk::Result<sdk::StreamEvent>>,
) -> Result<StreamStep> {
    if !matches!(next, Some(Ok(_))) {
        ended.store(true, std::sync::atomic::Ordering::Release);
    }
    match next {
        None => Ok(StreamStep {
            done: true,
            value: None,
        }),
        Some(Ok(ev)) => Ok(StreamStep {
            done: false,
            value: Some(event(ev)),
        }),
        Some(Err(e)) => Err(fail(env, shared, e)),
    }
}

#[napi]
impl ChatStream {
    /// The async iterator protocol's `next`.
    #[napi(ts_return_type = "Promise<IteratorResult<StreamEvent, undefined>>")]
    pub fn next<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, StreamStep>> {
        let mut buffered = self.buf.lock().ok().and_then(|mut b| b.pop_front());
        if buffered.is_none() {
            // Whatever the background reader has already read, without a hop.
            if let Ok(mut ahead) = self.ahead.try_lock() {
                let mut ready = ahead.ready(BATCH).into_iter();
                buffered = ready.next();
                if let Ok(mut b) = self.buf.lock() {
                    b.extend(ready);
                }
            }
        }
        if let Some(next) = buffered {
            // Already here: resolve now, on this thread.
            return match step(env, &self.shared, &self.ended, Some(next)) {
                Ok(s) => PromiseRaw::resolve(env, s),
                Err(e) => PromiseRaw::reject(env, JsError::from(e).into_unknown(*env)),
            };
        }
        let ahead = self.ahead.clone();
        let buf = self.buf.clone();
        let shared = self.shared.clone();
        let ended = self.ended.clone();
        env.spawn_future_with_callback(
            async move {
                let mut batch = ahead.lock().await.next_batch(BATCH).await.into_iter();
                let first = batch.next();
                if let Ok(mut b) = buf.lock() {
                    b.extend(batch);
                }
                Ok(first)
            },
            move |env, first| step(env, &shared, &ended, first),
        )
    }

    /// Ends the iteration early (`break` in `for await`).
    #[napi(
        js_name = "return",
        ts_return_type = "Promise<IteratorResult<StreamEvent, undefined>>"
    )]
    pub fn finish<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, StreamStep>> {
        if let Ok(mut b) = self.buf.lock() {
            b.clear();
        }
        PromiseRaw::resolve(
            env,
            StreamStep {
                done: true,
                value: None,
            },
        )
    }

    /// Reads the rest of the stream and resolves with the whole answer.
    #[napi]
    pub fn collect<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Reply>> {
        let ahead = self.ahead.clone();
        let buf = self.buf.clone();
        promise(
            env,
            &self.shared,
            async move {
                let pending = buf
                    .lock()
                    .map(|mut b| std::mem::take(&mut *b))
                    .unwrap_or_default();
                for r in pending {
                    r?;
                }
                let mut a = ahead.lock().await;
                loop {
                    let batch = a.next_batch(BATCH).await;
                    if batch.is_empty() {
                        break;
                    }
                    for r in batch {
                        r?;
                    }
                }
                a.reply().ok_or_else(|| {
                    sdk::Error::new(
                        sdk::ErrorCode::Provider,
                        "the stream ended without an answer",
                    )
                })
            },
            |_, r| Ok(reply(r)),
        )
    }

    /// The whole answer, once the stream has ended.
    #[napi(getter)]
    pub fn reply(&self) -> Option<Reply> {
        if !self.ended.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let a = self.ahead.try_lock().ok()?;
        a.reply().map(reply)
    }
}

/// The vault the client uses: named secrets. Every call runs off the
/// JavaScript thread (a file vault may run Argon2id).
#[napi]
pub struct Vault {
    inner: sdk::VaultHandle,
    shared: Arc<Shared>,
}

#[napi]
impl Vault {
    /// The backend's name.
    #[napi(getter)]
    pub fn backend(&self) -> String {
        self.inner.backend()
    }

    /// Reads a secret; `null` when absent.
    #[napi]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> Result<PromiseRaw<'env, Option<String>>> {
        let v = self.inner.clone();
        promise(
            env,
            &self.shared,
            async move {
                blocking(move || v.get(&name).map(|s| s.map(|s| s.expose().to_string()))).await
            },
            |_, r| Ok(r),
        )
    }

    /// Writes a secret.
    #[napi]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        name: String,
        value: String,
    ) -> Result<PromiseRaw<'env, ()>> {
        let v = self.inner.clone();
        promise(
            env,
            &self.shared,
            async move { blocking(move || v.set(&name, &value)).await },
            |_, r| Ok(r),
        )
    }

    /// Removes a secret; says whether there was one.
    #[napi]
    pub fn delete<'env>(&self, env: &'env Env, name: String) -> Result<PromiseRaw<'env, bool>> {
        let v = self.inner.clone();
        promise(
            env,
            &self.shared,
            async move { blocking(move || v.delete(&name)).await },
            |_, r| Ok(r),
        )
    }

    /// Names (never values) starting with `prefix` (default: all).
    #[napi]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        prefix: Option<String>,
    ) -> Result<PromiseRaw<'env, Vec<String>>> {
        let v = self.inner.clone();
        promise(
            env,
            &self.shared,
            async move { blocking(move || v.list(prefix.as_deref().unwrap_or(""))).await },
            |_, r| Ok(r),
        )
    }

    /// Stores a provider's API key where Nexus looks for it.
    #[napi]
    pub fn set_key<'env>(
        &self,
        env: &'env Env,
        provider: String,
        key: String,
    ) -> Result<PromiseRaw<'env, ()>> {
        let v = self.inner.clone();
        promise(
            env,
            &self.shared,
            async move { blocking(move || v.set_key(&provider, &key)).await },
            |_, r| Ok(r),
        )
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> sdk::Result<T> + Send + 'static,
) -> sdk::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(sdk::Error::new(sdk::ErrorCode::Internal, e.to_string())))
}

/// The SDK's version.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Every error `code` a Nexus error can carry.
#[napi]
pub fn error_codes() -> Vec<String> {
    sdk::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect()
}

/// Whether `e` is a Nexus error (optionally of one `code`).
#[napi(
    ts_args_type = "e: unknown, code?: NexusErrorCode",
    ts_return_type = "e is NexusError"
)]
pub fn is_nexus_error(e: Unknown<'_>, code: Option<String>) -> Result<bool> {
    if e.get_type()? != ValueType::Object {
        return Ok(false);
    }
    let obj = Object::from_unknown(e)?;
    let Some(c) = obj
        .get_named_property::<Option<String>>("code")
        .ok()
        .flatten()
    else {
        return Ok(false);
    };
    let known = sdk::ErrorCode::ALL.iter().any(|k| k.as_str() == c);
    Ok(known && obj.is_error()? && code.is_none_or(|want| want == c))
}

#[napi(module_exports)]
pub fn init(exports: Object<'_>, env: Env) -> Result<()> {
    // `for await` needs `[Symbol.asyncIterator]` on the stream's prototype.
    let patch: Function<'_, Object<'_>, ()> = env.run_script(
        "(function (exports) { for (const c of [exports.ChatStream, exports.MeshFollow]) { c.prototype[Symbol.asyncIterator] = function () { return this; }; } })",
    )?;
    patch.call(exports)
}
