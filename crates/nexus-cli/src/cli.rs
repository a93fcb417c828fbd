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
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send a prompt to a model and print the answer (streamed by default).
    Chat(ChatArgs),
    /// The model catalog.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Providers: which are configured, and from where.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Read and edit config.toml under NEXUS_HOME.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: Shell,
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
    /// The prompt, or `-` to read it from standard input.
    pub(crate) prompt: String,
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}
