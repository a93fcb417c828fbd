//! [`Client`]: the one entry point.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use nexus_core::{
    Catalog, ChatRequest, Clock, Config, EventStream, NexusHome, PolicyConfig, SeededRandom,
    StreamAccumulator, StreamEvent, SystemClock, Usd, Vault,
};
use nexus_hierarchy::ledger::{day_before, day_of, Ledger, SqliteLedger};
use nexus_hierarchy::presets::{compute, Preset};
use nexus_hierarchy::source::check_model;
use nexus_hierarchy::validate::{CodeBlockValidator, CommandValidator, Format, SyntaxValidator};
use nexus_hierarchy::{
    store, AskRequest, Category, EscalationEngine, HierarchyConfig, RegistrySource, Router,
    RuleClassifier, TaskClassifier, TaskContext,
};
use nexus_providers::catalog::response_cost;
use nexus_providers::registry::{EnvLookup, Target};
use nexus_providers::Registry;

use crate::types::{label, AttemptInfo, HierarchyInfo, PresetInfo, Route, Stats, TierInfo};
use crate::{
    AskOptions, AskReply, ChatOptions, Error, ErrorCode, Input, Reply, Result, VaultHandle,
};

/// How to build a [`Client`]. `Default` reads `NEXUS_HOME` (else `~/.nexus`)
/// and the process environment, and opens the vault the CLI would.
#[derive(Default, Clone)]
pub struct ClientOptions {
    /// The state root; `None` means `NEXUS_HOME`, else `~/.nexus`.
    pub home: Option<PathBuf>,
    /// Variables consulted before the process environment (API keys,
    /// `*_BASE_URL`), so an app or a test can configure one client alone.
    pub env: HashMap<String, String>,
    /// A vault to use instead of the configured one: a Keychain vault from
    /// Swift, a Python object, a `MemoryVault` in tests.
    pub vault: Option<Arc<dyn Vault>>,
    /// Or how to open one when first needed (a CLI that may prompt for a
    /// passphrase): `Ok(None)` means none is set up, and keys come from the
    /// environment only; an error is reported when a key is needed.
    pub vault_loader: Option<VaultLoader>,
    /// Told before each wait between retries (a rate limit, an overloaded
    /// server), so a frontend can say it is waiting.
    pub on_retry: Option<nexus_providers::RetryHook>,
    /// Told of each attempt of an `ask` as it ends ("tier 1 failed,
    /// escalating"), so a frontend can show progress.
    pub on_attempt: Option<AttemptHook>,
}

/// See [`ClientOptions::on_attempt`].
pub type AttemptHook = Arc<dyn Fn(&AttemptInfo) + Send + Sync>;

/// Opens a vault on first use; see [`ClientOptions::vault_loader`].
pub use nexus_providers::registry::VaultLoader;

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("home", &self.home)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field(
                "vault",
                &self.vault.as_ref().map(|v| v.backend().to_string()),
            )
            .field("vault_loader", &self.vault_loader.is_some())
            .finish()
    }
}

/// The hierarchy as loaded: config, policy and the prepared router.
struct Loaded {
    config: HierarchyConfig,
    computed: bool,
    router: Router,
}

struct Inner {
    home: NexusHome,
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
    /// OAuth sign-ins started here: `pending`, `done`, or why one failed.
    pub(crate) oauth_flows: Mutex<BTreeMap<String, String>>,
    vault: Mutex<Option<Arc<dyn Vault>>>,
    vault_loader: Option<VaultLoader>,
    env: EnvLookup,
    policy: Mutex<Option<PolicyConfig>>,
    hierarchy: Mutex<Option<Arc<Loaded>>>,
    ledger: Mutex<Option<Arc<SqliteLedger>>>,
    on_attempt: Option<AttemptHook>,
}

/// A Nexus client: providers, the model hierarchy, the vault. Cheap to
/// clone (clones share everything).
///
/// ```no_run
/// # async fn f() -> nexus_sdk::Result<()> {
/// let client = nexus_sdk::Client::new()?;
/// let reply = client.chat("openai/gpt-4o-mini", "Hello", &Default::default()).await?;
/// println!("{} ({} tokens, {:?})", reply.text, reply.usage.output_tokens, reply.cost);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("home", &self.inner.home.root())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Client {
    /// A client over `NEXUS_HOME` and the process environment.
    pub fn new() -> Result<Client> {
        Client::with_options(ClientOptions::default())
    }

    /// A client built from `options`.
    pub fn with_options(options: ClientOptions) -> Result<Client> {
        let home = match options.home {
            Some(p) => NexusHome::at(p),
            None => NexusHome::from_env()?,
        };
        let config = Config::load(&home)?;
        let (catalog, _source, _warning) = nexus_providers::catalog::load(&home);
        let overrides = options.env;
        let env: EnvLookup = Arc::new(move |k: &str| {
            overrides
                .get(k)
                .cloned()
                .or_else(|| std::env::var(k).ok())
                .filter(|v| !v.is_empty())
        });
        let vault_slot: Mutex<Option<Arc<dyn Vault>>> = Mutex::new(options.vault.clone());
        let mut registry = Registry::new(config.clone(), env.clone()).with_home(home.clone());
        if let Some(hook) = options.on_retry {
            registry = registry.with_retry_hook(hook);
        }
        registry = match (options.vault, options.vault_loader.clone()) {
            (Some(v), _) => registry.with_vault(v),
            (None, Some(loader)) => registry.with_vault_loader(loader),
            (None, None) => {
                let (h, c, e) = (home.clone(), config.clone(), env.clone());
                registry.with_vault_loader(Arc::new(move || open_vault_if_set_up(&h, &c, &e)))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                home,
                registry: Arc::new(registry),
                catalog: Arc::new(catalog),
                oauth_flows: Mutex::new(BTreeMap::new()),
                vault: vault_slot,
                vault_loader: options.vault_loader,
                env,
                policy: Mutex::new(None),
                hierarchy: Mutex::new(None),
                ledger: Mutex::new(None),
                on_attempt: options.on_attempt,
            }),
        })
    }

    /// The state root this client uses.
    pub fn home(&self) -> PathBuf {
        self.inner.home.root().to_path_buf()
    }

    fn target(&self, model: &str) -> Result<Target> {
        let reference = if model.is_empty() {
            self.inner.registry.default_model()?
        } else {
            model.to_string()
        };
        Ok(self
            .inner
            .registry
            .resolve(&self.inner.catalog, &reference)?)
    }

    fn request(target: &Target, input: Input, opts: &ChatOptions) -> Result<ChatRequest> {
        let (messages, system) = input.into_messages()?;
        let mut req = ChatRequest::new(target.model.clone(), "");
        req.messages = messages;
        req.system = match (opts.system.clone(), system) {
            (Some(a), Some(b)) => Some(format!("{a}\n\n{b}")),
            (a, b) => a.or(b),
        };
        req.max_tokens = opts.max_tokens;
        req.temperature = opts.temperature;
        req.tools.clone_from(&opts.tools);
        if let Some(f) = &opts.response_format {
            req.response_format = f.clone();
        }
        Ok(req)
    }

    /// One call to `model` (`provider/model`, a catalog id or alias; empty
    /// means the configured default), with its usage and cost.
    pub async fn chat(
        &self,
        model: &str,
        input: impl Into<Input>,
        options: &ChatOptions,
    ) -> Result<Reply> {
        let target = self.target(model)?;
        let mut req = Client::request(&target, input.into(), options)?;
        let provider = self.inner.registry.provider(&target.provider)?;
        let mut spend =
            crate::spend::begin(self.ledger()?, &self.policy()?, &target, &mut req).await?;
        match provider.chat(&req).await {
            Ok(response) => {
                let cost = cost_of(&self.inner.catalog, &target, &response);
                spend.settle(Ok((&response, cost)))?;
                let mut reply = Reply::new(&target.provider, &target.model, response, cost);
                reply.check_format(options.response_format.as_ref())?;
                Ok(reply)
            }
            Err(e) => {
                let _ = spend.settle(Err(&e));
                Err(e.into())
            }
        }
    }

    /// Streams an answer: events as they arrive, then the whole [`Reply`].
    pub async fn stream(
        &self,
        model: &str,
        input: impl Into<Input>,
        options: &ChatOptions,
    ) -> Result<ReplyStream> {
        let target = self.target(model)?;
        let mut req = Client::request(&target, input.into(), options)?;
        let provider = self.inner.registry.provider(&target.provider)?;
        let mut spend =
            crate::spend::begin(self.ledger()?, &self.policy()?, &target, &mut req).await?;
        let events = match provider.stream(&req).await {
            Ok(ev) => ev,
            Err(e) => {
                let _ = spend.settle(Err(&e));
                return Err(e.into());
            }
        };
        Ok(ReplyStream {
            events: Some(events),
            acc: Some(StreamAccumulator::new(req.model.clone())),
            catalog: self.inner.catalog.clone(),
            target,
            reply: None,
            spend: Some(spend),
            format: options.response_format.clone(),
        })
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub(crate) fn oauth_flows(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        lock(&self.inner.oauth_flows)
    }

    /// Drops the computed hierarchy (a key came or went): the next use
    /// computes it again, unless one is saved.
    pub(crate) fn forget_hierarchy(&self) {
        let computed = lock(&self.inner.hierarchy)
            .as_ref()
            .is_some_and(|l| l.computed);
        if computed {
            *lock(&self.inner.hierarchy) = None;
        }
    }

    /// Uses `p` from now on, with the hierarchy in use.
    pub(crate) fn use_policy(&self, p: PolicyConfig) -> Result<()> {
        let current = self.loaded().ok();
        *lock(&self.inner.policy) = Some(p);
        match current {
            Some(l) => self.prepare(l.config.clone(), l.computed).map(|_| ()),
            None => Ok(()),
        }
    }

    fn ledger(&self) -> Result<Arc<SqliteLedger>> {
        let mut slot = lock(&self.inner.ledger);
        if let Some(l) = &*slot {
            return Ok(l.clone());
        }
        let l = Arc::new(SqliteLedger::open(&store::ledger_path(&self.inner.home))?);
        *slot = Some(l.clone());
        Ok(l)
    }

    fn has_credentials(&self) -> impl Fn(&str) -> bool {
        let ready: Vec<String> = self
            .inner
            .registry
            .status()
            .into_iter()
            .filter(|s| s.is_configured())
            .map(|s| s.name)
            .collect();
        move |p: &str| ready.iter().any(|r| r == p)
    }

    fn policy(&self) -> Result<PolicyConfig> {
        let mut slot = lock(&self.inner.policy);
        if let Some(p) = &*slot {
            return Ok(p.clone());
        }
        let (_, p) = store::load(self.inner.registry.config())?;
        *slot = Some(p.clone());
        Ok(p)
    }

    fn prepare(&self, config: HierarchyConfig, computed: bool) -> Result<Arc<Loaded>> {
        let info = |m: &str| {
            self.inner
                .registry
                .resolve(&self.inner.catalog, m)
                .ok()
                .and_then(|t| t.info)
        };
        let router = Router::new(
            Arc::new(RuleClassifier),
            &config,
            &info,
            Arc::new(self.policy()?),
        );
        let loaded = Arc::new(Loaded {
            config,
            computed,
            router,
        });
        *lock(&self.inner.hierarchy) = Some(loaded.clone());
        Ok(loaded)
    }

    fn loaded(&self) -> Result<Arc<Loaded>> {
        if let Some(l) = &*lock(&self.inner.hierarchy) {
            return Ok(l.clone());
        }
        let (saved, _) = store::load(self.inner.registry.config())?;
        let (config, computed) = match store::effective(
            saved,
            &self.inner.catalog,
            &self.has_credentials(),
        ) {
            Ok(c) => c,
            // No key anywhere, and the vault that may hold them failed:
            // that is what to fix, not the environment.
            Err(nexus_hierarchy::HierarchyError::NoCredentials(_))
                if self.inner.registry.vault_error().is_some() =>
            {
                let why = self.inner.registry.vault_error().unwrap_or_default();
                return Err(Error::new(
                        ErrorCode::Vault,
                        format!("the vault is locked or unavailable, so the API keys in it cannot be read: {why}. Unlock it, see `nexus vault status`, or set a provider's key variable"),
                    ));
            }
            Err(e) => return Err(e.into()),
        };
        self.prepare(config, computed)
    }

    /// A request through the model hierarchy: classified, sent to the first
    /// tier the budget admits, escalated on error, refusal or rejected
    /// output, and recorded in the ledger.
    pub async fn ask(&self, prompt: &str, options: &AskOptions) -> Result<AskReply> {
        self.ask_observed(prompt, options, None).await
    }

    /// [`Client::ask`], telling `observer` of each attempt as it ends (as
    /// well as the client's own `on_attempt`): how the gateway streams an
    /// `ask` as events.
    pub async fn ask_observed(
        &self,
        prompt: &str,
        options: &AskOptions,
        observer: Option<AttemptHook>,
    ) -> Result<AskReply> {
        if prompt.trim().is_empty() {
            return Err(Error::new(ErrorCode::InvalidRequest, "the prompt is empty"));
        }
        let category = parse_category(options.category.as_deref())?;
        let loaded = self.loaded()?;
        let mut engine = EscalationEngine::new(
            RegistrySource::new(self.inner.registry.clone(), self.inner.catalog.clone()),
            loaded.router.clone(),
            self.ledger()?,
            loaded.config.cooldown,
            Arc::new(SystemClock),
            Arc::new(SeededRandom::from_entropy()),
        );
        for v in &options.validate {
            engine = match v.as_str() {
                "code" => engine.with_validator(Arc::new(CodeBlockValidator)),
                other => match Format::parse(other) {
                    Some(f) => engine.with_validator(Arc::new(SyntaxValidator(f))),
                    None => {
                        return Err(Error::config(format!(
                            "unknown validator `{other}`; use json, toml, yaml or code"
                        )))
                    }
                },
            };
        }
        if let Some(cmd) = &options.test_cmd {
            engine = engine.with_validator(Arc::new(CommandValidator::new(cmd.clone())));
        }
        let own = self.inner.on_attempt.clone();
        if own.is_some() || observer.is_some() {
            engine = engine.with_observer(Arc::new(move |a| {
                let info = AttemptInfo::from(a);
                for hook in own.iter().chain(observer.iter()) {
                    hook(&info);
                }
            }));
        }
        let out = engine
            .ask(AskRequest {
                prompt: prompt.to_string(),
                system: options.system.clone(),
                category,
                context: TaskContext {
                    scheduled: options.scheduled,
                    read_only: options.read_only,
                },
            })
            .await?;
        let cost = out.attempts.last().map(|a| a.cost);
        Ok(AskReply {
            reply: Reply::new(
                &out.provider,
                &out.attempts
                    .last()
                    .map(|a| a.model.clone())
                    .unwrap_or_default(),
                out.response,
                cost,
            ),
            request_id: out.request_id,
            category: out.category.as_str().to_string(),
            basis: label(&out.basis),
            tier: out.tier,
            escalations: out.escalations,
            total_cost: out.total_cost,
            attempts: out.attempts.iter().map(AttemptInfo::from).collect(),
        })
    }

    /// What `ask` would do with `prompt`, decided without calling a model:
    /// the category, and the first tier that today's budget admits.
    pub fn route(&self, prompt: &str, category: Option<&str>) -> Result<Route> {
        let category = parse_category(category)?;
        let loaded = self.loaded()?;
        let spent = self.ledger()?.spent_on(&day_of(SystemClock.now_millis()))?;
        let d = loaded
            .router
            .decide(prompt, TaskContext::default(), category, spent);
        Ok(Route {
            category: d.category.as_str().to_string(),
            basis: label(&d.basis),
            tier: d.tier.map(|t| t as u32 + 1),
            model: d
                .tier
                .map(|t| loaded.router.tiers(d.category)[t].tier.model.clone()),
            estimate: d.estimate,
        })
    }

    /// The category `prompt` falls in, and why. Pure and fast.
    pub fn classify(&self, prompt: &str) -> Result<(String, String)> {
        let c = RuleClassifier.classify(prompt, TaskContext::default());
        Ok((c.category.as_str().to_string(), label(&c.basis)))
    }

    /// The built-in presets.
    pub fn presets(&self) -> Vec<PresetInfo> {
        Preset::ALL
            .iter()
            .map(|p| PresetInfo {
                name: p.as_str().to_string(),
                description: preset_description(*p).to_string(),
            })
            .collect()
    }

    /// The hierarchy in effect.
    pub fn hierarchy(&self) -> Result<HierarchyInfo> {
        let l = self.loaded()?;
        Ok(HierarchyInfo {
            preset: l.config.preset.clone(),
            saved: !l.computed,
            categories: Category::ALL
                .iter()
                .map(|c| {
                    let tiers = l
                        .config
                        .tiers(*c)
                        .iter()
                        .map(|t| TierInfo {
                            model: t.model.clone(),
                            max_tokens: t.max_tokens,
                            max_cost: t.max_cost_per_request,
                        })
                        .collect();
                    (c.as_str().to_string(), tiers)
                })
                .collect::<BTreeMap<_, _>>(),
        })
    }

    /// Computes `preset` for the providers that have keys, saves it in
    /// config.toml and uses it from now on.
    pub fn use_preset(&self, name: &str) -> Result<HierarchyInfo> {
        let preset: Preset = name.parse()?;
        let tiers = compute(preset, &self.inner.catalog, &self.has_credentials())?;
        let cooldown = self.loaded().map(|l| l.config.cooldown).unwrap_or_default();
        let config = HierarchyConfig {
            preset: preset.as_str().to_string(),
            tiers,
            cooldown,
        };
        store::save_hierarchy(&self.inner.home, &config)?;
        self.prepare(config, false)?;
        self.hierarchy()
    }

    /// Edits one category's tiers with the CLI's syntax (`tier1=MODEL`,
    /// `tier2.max_tokens=800`, `tier3=disabled`), saves the hierarchy (now
    /// `custom`) and uses it from now on.
    pub fn set_tiers(&self, category: &str, edits: &[String]) -> Result<HierarchyInfo> {
        let category: Category = category.parse()?;
        let mut config = self.loaded()?.config.clone();
        let check = |m: &str| check_model(&self.inner.registry, &self.inner.catalog, m);
        config.apply_edits(category, edits, &check)?;
        store::save_hierarchy(&self.inner.home, &config)?;
        self.prepare(config, false)?;
        self.hierarchy()
    }

    /// Escalation and tier statistics of the last `days` days (today is 1).
    pub fn stats(&self, days: u32) -> Result<Stats> {
        let now = SystemClock.now_millis();
        let since = day_before(now, u64::from(days.max(1)) - 1);
        Ok(self.ledger()?.stats(&since)?)
    }

    /// Spend of the last `days` days (today is 1): by day, category and model.
    pub fn usage(&self, days: u32) -> Result<nexus_hierarchy::ledger::UsageReport> {
        let now = SystemClock.now_millis();
        let since = day_before(now, u64::from(days.max(1)) - 1);
        Ok(self.ledger()?.usage(&since, &day_of(now))?)
    }

    /// The conversation log under this client's home.
    pub fn history(&self) -> Result<crate::history::History> {
        crate::history::History::open(&self.inner.home)
    }

    /// Spent today, open budget holds included.
    pub fn spent_today(&self) -> Result<Usd> {
        Ok(self.ledger()?.spent_on(&day_of(SystemClock.now_millis()))?)
    }

    /// The vault: the one given in [`ClientOptions`], or the configured one
    /// (opened on first use).
    pub fn vault(&self) -> Result<VaultHandle> {
        let mut slot = lock(&self.inner.vault);
        if let Some(v) = &*slot {
            return Ok(VaultHandle::new(v.clone()));
        }
        if let Some(loader) = &self.inner.vault_loader {
            let v = loader()?.ok_or_else(|| {
                Error::new(
                    ErrorCode::Vault,
                    "no vault is set up here; see `nexus vault status`",
                )
            })?;
            *slot = Some(v.clone());
            return Ok(VaultHandle::new(v));
        }
        let v = open_vault(
            &self.inner.home,
            self.inner.registry.config(),
            &self.inner.env,
        )?;
        *slot = Some(v.clone());
        Ok(VaultHandle::new(v))
    }
}

impl Client {
    /// The mesh, through the daemon when one runs for this home, else in
    /// this process ([`MeshRoute::Auto`](crate::MeshRoute)), unless
    /// `NEXUS_MESH_ROUTE` says `in_process` or `daemon`; the identity and
    /// mesh keys live in this client's vault.
    pub fn mesh(&self) -> Result<crate::Mesh> {
        let route = match (self.inner.env)("NEXUS_MESH_ROUTE").as_deref() {
            None | Some("auto") => crate::MeshRoute::Auto,
            Some("in_process") => crate::MeshRoute::InProcess,
            Some("daemon") => crate::MeshRoute::Daemon,
            Some(other) => {
                return Err(Error::config(format!(
                    "NEXUS_MESH_ROUTE is `{other}`; use auto, in_process or daemon"
                )))
            }
        };
        self.mesh_routed(route)
    }

    /// The mesh, routed as `route` says.
    pub fn mesh_routed(&self, route: crate::MeshRoute) -> Result<crate::Mesh> {
        let client = self.clone();
        let open: crate::mesh::VaultLoader = Arc::new(move || Ok(client.vault()?.inner()));
        Ok(crate::Mesh::new(self.inner.home.clone(), open, route))
    }
}

fn open_vault(home: &NexusHome, config: &Config, env: &EnvLookup) -> Result<Arc<dyn Vault>> {
    open_vault_if_set_up(home, config, env)?.ok_or_else(|| {
        Error::new(
            ErrorCode::Vault,
            "no vault is set up here; see `nexus vault status`",
        )
    })
}

fn open_vault_if_set_up(
    home: &NexusHome,
    config: &Config,
    env: &EnvLookup,
) -> std::result::Result<Option<Arc<dyn Vault>>, nexus_core::VaultError> {
    let configured = nexus_vault::configured_backend(config);
    let lookup = |k: &str| env(k);
    let opts = nexus_vault::Options {
        home,
        configured,
        env: &lookup,
        prompt: None,
        tell: None,
    };
    Ok(nexus_vault::open_if_set_up(&opts)?.map(|(v, _)| v))
}

fn parse_category(c: Option<&str>) -> Result<Option<Category>> {
    match c {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<Category>().map(Some).map_err(Error::from),
    }
}

fn preset_description(p: Preset) -> &'static str {
    match p {
        Preset::Budget => "cheapest models that do the job, escalating to affordable ones",
        Preset::Balanced => "a cheap first try, a solid middle, the best model last",
        Preset::Premium => "the strongest models first, from different providers",
        Preset::Speed => "the fastest models that do the job",
        Preset::ClaudeOnly => "Anthropic only: Haiku, then Sonnet, then Opus",
    }
}

fn cost_of(catalog: &Catalog, target: &Target, r: &nexus_core::ChatResponse) -> Option<Usd> {
    response_cost(catalog, &target.provider, r)
        .or_else(|| target.info.as_ref().map(|i| i.cost(&r.usage)))
}

/// A streamed answer. Call [`ReplyStream::next`] until it returns `None`;
/// then [`ReplyStream::reply`] holds the whole answer with usage and cost.
pub struct ReplyStream {
    events: Option<EventStream>,
    acc: Option<StreamAccumulator>,
    catalog: Arc<Catalog>,
    target: Target,
    reply: Option<Reply>,
    /// The budget claim, settled when the stream ends (or is dropped).
    spend: Option<crate::spend::Spend>,
    /// The response format the whole answer is checked against.
    format: Option<nexus_core::ResponseFormat>,
}

impl std::fmt::Debug for ReplyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyStream")
            .field("provider", &self.target.provider)
            .field("done", &self.events.is_none())
            .finish_non_exhaustive()
    }
}

impl ReplyStream {
    /// The next event; `None` once the answer is complete. An error ends
    /// the stream.
    pub async fn next(&mut self) -> Option<Result<StreamEvent>> {
        let events = self.events.as_mut()?;
        match events.next().await {
            Some(Ok(ev)) => {
                if let Some(acc) = &mut self.acc {
                    acc.push(&ev);
                }
                Some(Ok(ev))
            }
            Some(Err(e)) => {
                self.events = None;
                self.acc = None;
                if let Some(mut s) = self.spend.take() {
                    let _ = s.settle(Err(&e));
                }
                Some(Err(e.into()))
            }
            None => {
                self.events = None;
                let acc = self.acc.take()?;
                match acc.finish() {
                    Ok(r) => {
                        let cost = cost_of(&self.catalog, &self.target, &r);
                        if let Some(mut s) = self.spend.take() {
                            if let Err(e) = s.settle(Ok((&r, cost))) {
                                return Some(Err(e));
                            }
                        }
                        let mut reply =
                            Reply::new(&self.target.provider, &self.target.model, r, cost);
                        if let Err(e) = reply.check_format(self.format.as_ref()) {
                            return Some(Err(e));
                        }
                        self.reply = Some(reply);
                        None
                    }
                    Err(why) => {
                        if let Some(mut s) = self.spend.take() {
                            s.fail("error:protocol");
                        }
                        Some(Err(Error::new(
                            ErrorCode::Provider,
                            format!("{}: {why}", self.target.provider),
                        )))
                    }
                }
            }
        }
    }

    /// The whole answer, once [`ReplyStream::next`] has returned `None`.
    pub fn reply(&self) -> Option<&Reply> {
        self.reply.as_ref()
    }

    /// Moves the stream onto a background task (on the current tokio
    /// runtime) that reads ahead into a buffer of up to `capacity` events.
    /// A consumer on another thread then takes events in batches, so
    /// crossing threads costs once per batch, not once per token: the
    /// bindings stream this way.
    pub fn read_ahead(self, capacity: usize) -> ReadAhead {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let reply = Arc::new(Mutex::new(None));
        let slot = reply.clone();
        tokio::spawn(async move {
            let mut s = self;
            while let Some(item) = s.next().await {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
            *lock(&slot) = s.reply.take();
            drop(tx);
        });
        ReadAhead {
            rx,
            reply,
            held: None,
        }
    }

    /// Reads the rest of the stream and returns the whole answer.
    pub async fn collect(mut self) -> Result<Reply> {
        while let Some(r) = self.next().await {
            r?;
        }
        self.reply
            .ok_or_else(|| Error::new(ErrorCode::Provider, "the stream ended without an answer"))
    }
}

/// A [`ReplyStream`] read ahead on a background task; see
/// [`ReplyStream::read_ahead`].
#[derive(Debug)]
pub struct ReadAhead {
    rx: tokio::sync::mpsc::Receiver<Result<StreamEvent>>,
    reply: Arc<Mutex<Option<Reply>>>,
    /// An error that followed events of a batch: it ends the next one.
    held: Option<Error>,
}

impl ReadAhead {
    /// Waits for the next event, then takes every event already read (up
    /// to `max`). Empty once the stream has ended. An error comes alone,
    /// after the events before it.
    pub async fn next_batch(&mut self, max: usize) -> Vec<Result<StreamEvent>> {
        if let Some(e) = self.held.take() {
            return vec![Err(e)];
        }
        let mut out = Vec::new();
        if let Some(first) = self.rx.recv().await {
            out.push(first);
            self.drain(&mut out, max);
        }
        out
    }

    /// [`ReadAhead::next_batch`] for a thread outside the runtime (it
    /// blocks; never call it from async code).
    pub fn blocking_next_batch(&mut self, max: usize) -> Vec<Result<StreamEvent>> {
        if let Some(e) = self.held.take() {
            return vec![Err(e)];
        }
        let mut out = Vec::new();
        if let Some(first) = self.rx.blocking_recv() {
            out.push(first);
            self.drain(&mut out, max);
        }
        out
    }

    /// Takes the events already read, without waiting.
    pub fn ready(&mut self, max: usize) -> Vec<Result<StreamEvent>> {
        if let Some(e) = self.held.take() {
            return vec![Err(e)];
        }
        let mut out = Vec::new();
        self.drain(&mut out, max);
        out
    }

    fn drain(&mut self, out: &mut Vec<Result<StreamEvent>>, max: usize) {
        if matches!(out.last(), Some(Err(_))) {
            return;
        }
        while out.len() < max {
            match self.rx.try_recv() {
                Ok(Ok(ev)) => out.push(Ok(ev)),
                Ok(Err(e)) if out.is_empty() => {
                    out.push(Err(e));
                    return;
                }
                Ok(Err(e)) => {
                    self.held = Some(e);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// The whole answer, once the stream has ended.
    pub fn reply(&self) -> Option<Reply> {
        lock(&self.reply).clone()
    }
}
