//! The command line, as clap sees it.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES_HELP;

/// Nexus: one client for every model provider.
#[derive(Debug, Parser)]
#[command(
    name = "nexus",
    version,
    about = "Nexus: one typed client for Anthropic, OpenAI, Gemini, OpenRouter, xAI, DeepSeek and OpenAI-compatible servers",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Filter `--json` output with a jq expression (strings print raw):
    /// `nexus auth status --json --jq '.providers[] | select(.ready) | .provider'`.
    #[arg(long, global = true, value_name = "EXPR")]
    pub(crate) jq: Option<String>,
    /// How much a verb may do without asking: plan (nothing that acts),
    /// read-only, write (the policy as written; the default) or yolo (a
    /// rule's prompt becomes yes). Checked against NEXUS_HOME/policy.yaml.
    #[arg(long, global = true, value_name = "MODE")]
    pub(crate) approval_mode: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DesktopArgs {
    /// Open the UI of the nexusd on another machine, through an SSH tunnel
    /// to its control socket (`user@host`, or a Host of ~/.ssh/config).
    #[arg(long, value_name = "USER@HOST")]
    pub(crate) ssh: Option<String>,
    /// The command that runs `nexus` on the remote machine (when it is not
    /// on the PATH of a non-interactive shell there).
    #[arg(
        long,
        value_name = "COMMAND",
        default_value = "nexus",
        requires = "ssh"
    )]
    pub(crate) remote_nexus: String,
    /// Print the URL (it carries a session key) instead of opening a browser.
    #[arg(long)]
    pub(crate) print_url: bool,
    /// Print `{url, mode, addr, socket}` as JSON (implies --print-url).
    #[arg(long)]
    pub(crate) json: bool,
    /// How long the session key lives.
    #[arg(long, default_value = "12h", value_name = "TTL")]
    pub(crate) session: String,
    /// Print only a session key and the control socket as JSON (what
    /// `--ssh` asks the remote machine for; its gateway need not listen).
    #[arg(long, hide = true)]
    pub(crate) session_only: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExtCommand {
    /// Install an extension from its directory or a .tar.gz of it (signature
    /// checked against trusted keys). A running nexusd starts it.
    Install {
        /// The directory holding nexus-extension.toml, or an archive of it.
        path: std::path::PathBuf,
        /// Install without a signature (for development; you are warned).
        #[arg(long)]
        allow_unsigned: bool,
    },
    /// Installed extensions.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Turn an extension on.
    Enable {
        /// The extension.
        id: String,
    },
    /// Turn an extension off.
    Disable {
        /// The extension.
        id: String,
    },
    /// Remove an extension (its data too, unless its manifest keeps it).
    Uninstall {
        /// The extension.
        id: String,
    },
    /// Call METHOD with JSON params and print the result: on the extension
    /// nexusd runs, or (no daemon) on one started for this call.
    Call {
        /// The extension.
        id: String,
        /// The method.
        method: String,
        /// Its parameters, as JSON (default `{}`).
        params: Option<String>,
    },
    /// An extension's log (its stderr and what it logs).
    Logs {
        /// The extension.
        id: String,
    },
    /// Sign the extension in DIR with your signing key (made on first use, kept in the vault).
    Sign {
        /// The directory holding nexus-extension.toml.
        path: std::path::PathBuf,
        /// Print the trusted comment to sign with `minisign -S -t` instead.
        #[arg(long)]
        print_comment: bool,
    },
    /// Keys whose signatures install.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Make nexus:// links open with `nexus open` (an XDG .desktop entry and
    /// xdg-mime; on macOS, print what to add).
    RegisterUrlHandler,
    /// An extension's data.
    #[command(subcommand)]
    Data(DataCommand),
    /// Permission questions waiting for an answer (nexusd asks them).
    Approvals {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Allow what question N asks for.
    Approve {
        /// The question's number (`nexus ext approvals`).
        n: u64,
        /// Remember it for this extension and capability.
        #[arg(long)]
        always: bool,
    },
    /// Refuse what question N asks for.
    Deny {
        /// The question's number (`nexus ext approvals`).
        n: u64,
        /// Remember it for this extension and capability.
        #[arg(long)]
        never: bool,
    },
    /// Bearer tokens for plugins that use the store over HTTP.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Remembered permission decisions of an extension (and revoke them).
    Permissions {
        /// The extension.
        id: String,
        /// Forget the decision for this capability.
        #[arg(long, value_name = "CAPABILITY", conflicts_with = "revoke_all")]
        revoke: Option<String>,
        /// Forget every decision.
        #[arg(long)]
        revoke_all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Trust a minisign public key (the file, or its base64 line).
    Add {
        /// The key.
        key: String,
    },
    /// Trusted keys.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a key.
    Rm {
        /// The key id.
        key_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ActionPolicyCommand {
    /// Which rule decides RESOURCE VERB, and what it decides.
    Explain {
        /// messages, topics, peers, presence, models, store, files, exec.
        resource: String,
        /// read, send, write, ask, chat, ...
        verb: String,
        /// The mesh.
        #[arg(long)]
        mesh: Option<String>,
        /// The peer.
        #[arg(long)]
        peer: Option<String>,
        /// plan, read-only, write (default) or yolo.
        #[arg(long, default_value = "write")]
        approval_mode: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain of the audit log: any edited, removed or reordered line is found.
    Verify {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApikeyCommand {
    /// Make a key (shown once): `--mesh M --scopes read,send[,admin] [--topics a,b] [--expires 24h]`.
    Create {
        /// The mesh it acts in.
        #[arg(long)]
        mesh: String,
        /// Comma-separated: read, send, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Only these topics (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        topics: Vec<String>,
        /// How long it works: 30m, 24h (default), 7d.
        #[arg(long, default_value = "24h")]
        expires: String,
        /// A name for it.
        #[arg(long, default_value = "")]
        label: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every key (never the secret).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print your own admin key (kept in the vault; nexusd makes it) for scripts and the desktop.
    Local,
    /// Revoke a key: open streams close within a second.
    Revoke {
        /// Its id (`nexus apikey list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum McpCommand {
    /// Serve Nexus as an MCP server on stdin/stdout (for Claude Code: see install-claude).
    Serve {
        /// plan, read-only, write (default) or yolo: bounds what the tools may do.
        #[arg(long, default_value = "write")]
        approval_mode: String,
    },
    /// Add Nexus to Claude Code: the project's .mcp.json (default) or your user config.
    InstallClaude {
        /// Write your user config (~/.claude.json) instead of ./.mcp.json.
        #[arg(long)]
        user: bool,
        /// The .mcp.json to write (default: ./.mcp.json).
        #[arg(long, conflicts_with = "user")]
        file: Option<std::path::PathBuf>,
    },
    /// Register an MCP server: `nexus mcp add NAME -- COMMAND ARGS...` or `--url URL`.
    Add {
        /// Its name.
        name: String,
        /// An HTTP server's URL instead of a command.
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// Environment for the command (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The command and its arguments (after `--`).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Registered servers (and extensions that offer tools).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unregister a server.
    Remove {
        /// Its name.
        name: String,
    },
    /// Start a server, initialize, list its tools, stop it: version, latency, tool count (10 s at most).
    Test {
        /// Its name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A server's tools, with whether your policy allows each.
    Tools {
        /// Its name (`ext:ID` for an extension).
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call a server's tool with JSON arguments (the deny list is checked first).
    Call {
        /// The server (`ext:ID` for an extension).
        name: String,
        /// The tool.
        tool: String,
        /// Its arguments, as JSON (default `{}`).
        args: Option<String>,
    },
    /// Allow a tool (with any allowed, only those allowed may be called).
    Allow {
        /// The server.
        name: String,
        /// The tool.
        tool: String,
    },
    /// Deny a tool (deny wins over allow).
    Deny {
        /// The server.
        name: String,
        /// The tool.
        tool: String,
    },
    /// Import servers from an .mcp.json (default ./.mcp.json), keeping every key.
    Import {
        /// The file.
        file: Option<std::path::PathBuf>,
    },
    /// Export your servers into an .mcp.json (default ./.mcp.json), merging, keeping its other keys.
    Export {
        /// The file.
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token for plugin ID (shown once; replaces an earlier one).
    Issue {
        /// The plugin (an extension id).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Plugins that hold a token.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke plugin ID's token.
    Revoke {
        /// The plugin.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Delete an extension's stored data.
    Clear {
        /// The extension.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AliasesCommand {
    /// Name a model.
    Set {
        /// The alias.
        name: String,
        /// What it stands for (`provider/model` or a catalog id).
        model: String,
    },
    /// Every alias.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an alias.
    Rm {
        /// The alias.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TemplatesCommand {
    /// Save a template (replacing one of the same name).
    Set {
        /// Its name.
        name: String,
        /// The system prompt.
        #[arg(long)]
        system: Option<String>,
        /// The prompt; `$input` is replaced by what follows `nexus chat -t NAME`.
        #[arg(long)]
        prompt: Option<String>,
        /// The model to use unless `-m` says otherwise.
        #[arg(short, long)]
        model: Option<String>,
    },
    /// Every template.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One template.
    Show {
        /// Its name.
        name: String,
    },
    /// Remove a template.
    Rm {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HistoryCommand {
    /// The newest conversations first.
    List {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        count: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A conversation's turns (ID, or a unique start of it).
    Show {
        /// The conversation.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Conversations whose prompts or answers contain TEXT.
    Search {
        /// What to look for.
        text: String,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        count: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a conversation and its turns.
    Rm {
        /// The conversation.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send a prompt to a model and print the answer (streamed by default).
    Chat(ChatArgs),
    /// Ask through the model hierarchy: cheap tiers first, escalating on failure.
    Ask(AskArgs),
    /// Short names for models: `nexus aliases set fast openai/gpt-4o-mini`, then `-m fast`.
    #[command(subcommand)]
    Aliases(AliasesCommand),
    /// Saved prompts: `nexus templates set sum --prompt 'Summarise: $input'`, then `nexus chat -t sum TEXT`.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Extensions: signed child processes speaking JSON-RPC on their stdio.
    #[command(subcommand)]
    Ext(ExtCommand),
    /// MCP: serve Nexus to Claude Code (`mcp serve`), and your registry of MCP servers.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// API keys for the gateway (http://127.0.0.1:18789/api/v1).
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// The action policy (NEXUS_HOME/policy.yaml, under the admin's).
    #[command(subcommand, name = "policy")]
    ActionPolicy(ActionPolicyCommand),
    /// The audit log of policy decisions (hash-chained).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Follow a nexus:// link: `nexus://join/...` joins a mesh,
    /// `nexus://install/ID?src=DIR` installs a signed extension (after you confirm).
    Open {
        /// The link.
        url: String,
        /// Your display name, for a join link.
        #[arg(long = "name")]
        alias: Option<String>,
        /// Install without asking (an install link still needs a trusted signature).
        #[arg(long)]
        yes: bool,
    },
    /// The conversation log: every `nexus chat` turn, to list, show, search,
    /// remove, and continue (`nexus chat -c`, `--cid ID`).
    #[command(subcommand)]
    History(HistoryCommand),
    /// The model hierarchy: tiers per category, presets, escalation policy, stats.
    #[command(subcommand)]
    Hierarchy(HierarchyCommand),
    /// Spend by day, category and model, from the cost ledger.
    Usage {
        /// Days to cover, today included.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The model catalog.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Providers: which are configured, and from where.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Read and edit config.toml under NEXUS_HOME, and sign in with OAuth.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Store credentials.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Run a mesh broker on embedded SQLite under NEXUS_HOME, with the
    /// resident Nexus (nexusd) in the same process unless one runs already.
    Up {
        #[command(flatten)]
        serve: nexus_broker::ServeArgs,
        /// Do not run the resident Nexus (nexusd) alongside the broker.
        #[arg(long)]
        no_daemon: bool,
    },
    /// The agent mesh: end-to-end encrypted messages between peers.
    Mesh(MeshArgs),
    /// The resident Nexus (nexusd): keeps your meshes connected, stores
    /// what arrives, hands the mesh key to newcomers within seconds.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Services nexusd keeps running: `[services.NAME]` in config.toml
    /// (and the built-in `broker`), restarted with backoff when they exit.
    #[command(subcommand)]
    Services(ServicesCommand),
    /// Jobs nexusd runs on a schedule (local time; DST handled).
    #[command(subcommand)]
    Cron(CronCommand),
    /// Every log in one place: nexusd, each service, the CLI's errors.
    Logs(LogsArgs),
    /// The desktop UI (settings, mesh chat, services, logs) in your
    /// browser, served by nexusd's gateway; `--ssh` reaches another machine's.
    Desktop(DesktopArgs),
    /// The encrypted vault that holds keys and tokens.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DaemonCommand {
    /// Start nexusd in the background (or in this terminal).
    Start {
        /// Run here, in the foreground, until Ctrl-C or SIGTERM.
        #[arg(long)]
        foreground: bool,
        /// Beat every this long (up to 24h; 0 or off: never), over `[heartbeat]
        /// interval`: run the proactive tasks and record what they find.
        #[arg(long, value_name = "INTERVAL")]
        heartbeat: Option<String>,
    },
    /// Run a heartbeat now and print what each task found.
    HeartbeatNow {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whether nexusd runs, and how its meshes are.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop nexusd.
    Stop,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// `clear` removes every log.
    #[command(subcommand)]
    pub(crate) action: Option<LogsAction>,
    /// Only this source (`nexusd`, a service's name, `cli`).
    #[arg(long, short = 's')]
    pub(crate) service: Option<String>,
    /// Only this level and above: debug, info, warn, error.
    #[arg(long, value_parser = ["debug", "info", "warn", "error"])]
    pub(crate) level: Option<String>,
    /// Only lines containing this text.
    #[arg(long)]
    pub(crate) grep: Option<String>,
    /// Only the last while: 30s, 15m, 1h, 2d.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Keep printing new lines.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// Print JSON lines.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write the matching lines (JSON lines) to FILE instead.
    #[arg(long, value_name = "FILE")]
    pub(crate) export: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LogsAction {
    /// Remove every log under NEXUS_HOME/logs.
    Clear,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CronCommand {
    /// Add a job: `nexus cron add "0 9 * * 1-5" -- COMMAND ARGS` or `--ask PROMPT`.
    Add {
        /// Five fields (minute hour day month weekday), or six with seconds first.
        schedule: String,
        /// Ask the model hierarchy this instead of running a command.
        #[arg(long, conflicts_with = "command")]
        ask: Option<String>,
        /// When times passed while the machine slept: run once, or skip them.
        #[arg(long, default_value = "run-once", value_parser = ["run-once", "skip"])]
        missed: String,
        /// The command (one argument runs under /bin/sh -c).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// The jobs, their next time and their last run.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a job.
    Rm {
        /// Its id (`j1`).
        id: String,
    },
    /// Run a job now (through nexusd when it runs).
    Run {
        /// Its id.
        id: String,
    },
    /// When an expression fires next (local time; set TZ to see another zone).
    Next {
        /// The expression.
        schedule: String,
        /// From this time (RFC 3339); default now.
        #[arg(long)]
        from: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServicesCommand {
    /// Each service's state, pid, uptime, restarts, last exit and health.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a service (or every one).
    Start {
        /// The service; all when left out.
        service: Option<String>,
    },
    /// Stop a service (or every one): SIGTERM to its process group, then
    /// SIGKILL after its grace period.
    Stop {
        /// The service; all when left out.
        service: Option<String>,
    },
    /// Restart a service (or every one): the old process is gone before
    /// the new one starts.
    Restart {
        /// The service; all when left out.
        service: Option<String>,
    },
    /// Install nexusd under the service manager: a systemd user unit
    /// (Linux) or a launchd agent (macOS), with NEXUS_HOME in it.
    Install {
        /// Write a launchd agent (the default on macOS).
        #[arg(long)]
        launchd: bool,
        /// Print it instead of writing it.
        #[arg(long)]
        print: bool,
    },
    /// Remove what `install` wrote.
    Uninstall {
        /// The launchd agent (the default on macOS).
        #[arg(long)]
        launchd: bool,
    },
    /// Print a service's log.
    Logs {
        /// The service.
        service: String,
        /// Keep printing what it writes.
        #[arg(short, long)]
        follow: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// `provider/model`, a catalog id or alias, or just a provider name.
    /// Defaults to `default_model` in config.toml, else the first provider with a key.
    #[arg(short, long)]
    pub(crate) model: Option<String>,
    /// The system prompt.
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Wait for the whole answer instead of streaming it.
    #[arg(long)]
    pub(crate) no_stream: bool,
    /// Print the final response, with usage and cost, as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// The most tokens the answer may use.
    #[arg(long)]
    pub(crate) max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long)]
    pub(crate) temperature: Option<f64>,
    /// Also print the model's reasoning (to stderr) where the provider streams it.
    #[arg(long)]
    pub(crate) show_reasoning: bool,
    /// Offer a local command to the model as a tool (repeatable): it gets the
    /// call's JSON arguments on stdin (and in $NEXUS_TOOL_ARGS), and its
    /// stdout is the result; a non-zero exit is reported to the model as a failure.
    #[arg(long = "tool", value_name = "NAME=COMMAND")]
    pub(crate) tools: Vec<String>,
    /// At most this many rounds of tool calls.
    #[arg(long, default_value_t = 8)]
    pub(crate) max_tool_rounds: u32,
    /// Ask for JSON that follows this JSON Schema (inline, or @FILE); the
    /// answer is checked against it.
    #[arg(long, value_name = "SCHEMA")]
    pub(crate) schema: Option<String>,
    /// Use a saved template (`nexus templates list`): its system prompt,
    /// model, and prompt with `$input` replaced by the prompt given here.
    #[arg(short, long, value_name = "NAME")]
    pub(crate) template: Option<String>,
    /// Continue the last conversation.
    #[arg(short = 'c', long = "continue", conflicts_with = "cid")]
    pub(crate) continue_last: bool,
    /// Continue conversation ID (see `nexus history list`).
    #[arg(long, value_name = "ID")]
    pub(crate) cid: Option<String>,
    /// Do not record this exchange in the conversation log (also: `nexus config set history.log false`).
    #[arg(long)]
    pub(crate) no_log: bool,
    /// Chat turn by turn (the default with no prompt on a terminal): `!multi`
    /// starts several lines, `!end` sends them, Ctrl-D quits.
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// The prompt, or `-` to read it from standard input. Piped input and a
    /// prompt together are combined: the prompt, then the input. With no
    /// prompt on a terminal, an interactive chat starts.
    pub(crate) prompt: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    /// The category (heartbeat, daily, planning, coding, review); classified from the prompt if omitted.
    #[arg(short, long)]
    pub(crate) category: Option<String>,
    /// The system prompt.
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Print the answer, the tier that gave it and every attempt as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Escalate unless the answer is valid: json, toml, yaml, or code (fenced blocks parse).
    #[arg(long = "validate", value_name = "KIND")]
    pub(crate) validate: Vec<String>,
    /// Escalate unless this command (your tests) passes; the answer is on its stdin and in $NEXUS_ANSWER_FILE.
    #[arg(long, value_name = "CMD")]
    pub(crate) test_cmd: Option<String>,
    /// The task runs on a schedule (classifies as heartbeat).
    #[arg(long)]
    pub(crate) scheduled: bool,
    /// The task only reads (classifies as review).
    #[arg(long)]
    pub(crate) read_only: bool,
    /// The prompt, or `-` to read it from standard input.
    pub(crate) prompt: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HierarchyCommand {
    /// Show each category's tiers and where they came from.
    Get {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Edit a category's tiers: `nexus hierarchy set coding tier1=claude-sonnet-4-5 tier2=gpt-4o tier3=disabled`.
    Set {
        /// The category.
        category: String,
        /// tierN=MODEL, tierN=disabled, tierN.max_tokens=N, tierN.max_cost=USD.
        #[arg(required = true)]
        edits: Vec<String>,
    },
    /// Replace every category's tiers with a preset computed for the providers you have keys for.
    Preset {
        /// budget, balanced, premium, speed or claude-only.
        name: String,
        /// Consider preview (experimental) models too; deprecated ones never.
        #[arg(long)]
        include_preview: bool,
    },
    /// The escalation policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Escalation rate per category and success per tier, from the cost ledger.
    Stats {
        /// Days to cover, today included.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Show the policy.
    Get {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set keys: `max-escalations=3`, `daily-budget=20.00`, `max-cost-per-request=0.50` (amounts take `none`).
    Set {
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        assignments: Vec<String>,
    },
    /// `nexus hierarchy policy enable auto-escalation`.
    Enable {
        /// auto-escalation, escalate-on-error, escalate-on-refusal or escalate-on-invalid-output.
        what: String,
    },
    /// `nexus hierarchy policy disable auto-escalation`.
    Disable {
        /// auto-escalation, escalate-on-error, escalate-on-refusal or escalate-on-invalid-output.
        what: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsCommand {
    /// List models in the catalog (works offline), or ask a provider with --remote.
    List {
        /// Only this provider's models.
        #[arg(long)]
        provider: Option<String>,
        /// Ask the provider's API for the models it serves now (needs --provider and a key).
        #[arg(long, requires = "provider")]
        remote: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Catalog models whose provider has a key (what presets and tiers can use).
    ListAvailable {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the model `nexus chat` uses without `-m`, or set it.
    Default {
        /// The new default (`provider/model`, a catalog id, or an alias).
        model: Option<String>,
    },
    /// Download a newer catalog (from `catalog.url`, NEXUS_CATALOG_URL or --url), validate it, and cache it.
    UpdateRankings {
        /// Fetch from here instead (https://, http:// or file://).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProvidersCommand {
    /// Every provider, whether it has a key, where the key and base URL come from.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the path of config.toml.
    Path,
    /// Print the effective config (secrets masked).
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a key, for example `nexus config set providers.openai.base_url http://localhost:8080/v1`.
    Set {
        /// A dotted key.
        key: String,
        /// The value (numbers and booleans are stored typed).
        value: String,
    },
    /// Remove a key.
    Unset {
        /// A dotted key.
        key: String,
    },
    /// Configure OAuth for a provider: the client id (config.toml) and optional secret (vault).
    SetOauth {
        /// google (gemini), anthropic, openai, or a provider with endpoints in [oauth.NAME].
        provider: String,
        /// The OAuth client id.
        client_id: String,
        /// The client secret, or `-` to read it from stdin; public (PKCE) clients have none.
        client_secret: Option<String>,
    },
    /// Sign in: authorization code + PKCE through a loopback redirect, or the device flow.
    OauthAuthorize {
        /// The provider.
        provider: String,
        /// Use the device flow (for machines without a browser).
        #[arg(long)]
        device: bool,
        /// Print the URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Whether OAuth is configured and signed in, the expiry and the scopes.
    OauthStatus {
        /// The provider.
        provider: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refresh the access token now.
    OauthRefresh {
        /// The provider.
        provider: String,
    },
    /// Revoke the tokens (where the server supports it) and forget them.
    OauthLogout {
        /// The provider.
        provider: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Store a provider's API key in the vault, read from stdin or a no-echo prompt (never from arguments).
    SetKey {
        /// The provider (anthropic, openai, gemini, ...).
        provider: String,
    },
    /// Every provider's credential (environment, vault or OAuth, never the
    /// value), OAuth sign-ins with their expiry, and the vault, in one table.
    /// Exits 4 when no provider has a credential.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a provider's stored credential: its API key in the vault and
    /// its OAuth sign-in (revoked where the provider allows).
    Logout {
        /// The provider.
        provider: String,
    },
    /// Print the credential Nexus would send to a provider (an API key, or
    /// an OAuth access token, refreshed first if it is about to expire), for
    /// scripts: `curl -H "x-api-key: $(nexus auth token anthropic)"`.
    Token {
        /// The provider.
        provider: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum VaultCommand {
    /// Which backend is in use, and why.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The names of stored secrets (never their values).
    List {
        /// Only names that start with this.
        #[arg(default_value = "")]
        prefix: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one secret's value.
    Get {
        /// Its name, for example provider/openai/api_key.
        name: String,
    },
    /// Store a secret, read from stdin or a no-echo prompt.
    Set {
        /// Its name, `namespace/name`.
        name: String,
    },
    /// Remove a secret.
    Rm {
        /// Its name.
        name: String,
    },
    /// Move plaintext secrets under NEXUS_HOME into the vault.
    Migrate {
        /// Show what would move, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct MeshArgs {
    /// The mesh to act on (default: the last one created or joined).
    #[arg(long, global = true)]
    pub(crate) mesh: Option<String>,
    #[command(subcommand)]
    pub(crate) command: MeshCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MeshCommand {
    /// Create a mesh on a broker, owned by you.
    Create {
        /// The mesh name.
        name: String,
        /// The broker, ws://HOST:PORT (see `nexus up`).
        #[arg(long)]
        broker: String,
        /// Your display name in the mesh.
        #[arg(long = "name")]
        alias: String,
    },
    /// Print an invite link (owner only).
    Invite {
        /// How long it stays valid: 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        expires: String,
        /// How many peers may join with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// member, reader or admin.
        #[arg(long, default_value = "member")]
        role: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join a mesh with an invite link, or a short code and --broker.
    Join {
        /// nexus://join/..., the full code, or a short code like ABCD-EF01-2345-6789.
        link: String,
        /// The broker: needed with a short code; with a link, another
        /// node of the invite's broker cluster to use instead of its own.
        #[arg(long)]
        broker: Option<String>,
        /// Your display name in the mesh.
        #[arg(long = "name")]
        alias: String,
    },
    /// The members, their presence and grants.
    Peers {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a direct message (end-to-end encrypted).
    Send {
        /// Peer id, id prefix, or name.
        peer: String,
        /// The message.
        text: String,
    },
    /// Unread messages in the local inbox, per topic and for direct ones.
    Unread {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch messages waiting for you; with --follow, keep listening.
    /// Each is kept in the local inbox before the broker lets it go, and
    /// marked read only once printed.
    Inbox {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        /// Keep listening.
        #[arg(long)]
        follow: bool,
    },
    /// Topics: create|join|leave|list|send|history.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Your status: `nexus mesh status set TEXT`.
    #[command(subcommand)]
    Status(PresenceCommand),
    /// Your summary: `nexus mesh summary set TEXT`.
    #[command(subcommand)]
    Summary(PresenceCommand),
    /// Grant capabilities (admin): read, dm, broadcast, admin, comma-separated.
    Grant {
        /// The peer.
        peer: String,
        /// Capabilities.
        caps: String,
    },
    /// Revoke capabilities (admin).
    Revoke {
        /// The peer.
        peer: String,
        /// Capabilities.
        caps: String,
    },
    /// Block a peer (admin); the mesh key rotates to a new epoch.
    Block {
        /// The peer.
        peer: String,
    },
    /// Send the mesh key to a newcomer who joined through a multi-use
    /// invite (owner); with no peer, list who is waiting.
    Approve {
        /// The newcomer: peer id, its first characters, or name.
        peer: Option<String>,
        /// Print the waiting list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ask the owner and admins for the current mesh key again (it comes
    /// at your next `inbox`, from whoever handed it to you before).
    RequestKey,
    /// Print the safety number to compare with a peer.
    Verify {
        /// The peer.
        peer: String,
    },
    /// Forward topics between two meshes this peer is a member of.
    #[command(subcommand)]
    Bridge(BridgeCommand),
    /// Back up your identity and mesh keys (passphrase from NEXUS_BACKUP_PASSPHRASE or a prompt).
    Backup {
        /// The file to write.
        file: std::path::PathBuf,
    },
    /// Restore your identity and mesh keys from a backup.
    Restore {
        /// The backup file.
        file: std::path::PathBuf,
        /// Replace an existing, different identity (a copy of it is kept).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BridgeCommand {
    /// Run a bridge until stopped: every message of its topics in one mesh
    /// is published once in the other (see docs/MESH.md, "Bridges").
    Run {
        /// The bridge file (YAML: meshes, topics, max_hops, filter).
        file: std::path::PathBuf,
        /// One JSON line per event (forwarded, skipped, trouble).
        #[arg(long)]
        json: bool,
    },
    /// Check a bridge file and print what it forwards.
    Check {
        /// The bridge file.
        file: std::path::PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic (and join it).
    Create {
        /// The topic.
        name: String,
    },
    /// Join a topic.
    Join {
        /// The topic.
        name: String,
    },
    /// Leave a topic.
    Leave {
        /// The topic.
        name: String,
    },
    /// Topics you joined.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Publish to a topic.
    Send {
        /// The topic.
        name: String,
        /// The message.
        text: String,
    },
    /// A page of a topic's history, newest first.
    History {
        /// The topic.
        name: String,
        /// Entries before this sequence number.
        #[arg(long)]
        before: Option<u64>,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PresenceCommand {
    /// Set it.
    Set {
        /// The text.
        text: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}
