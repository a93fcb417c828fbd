#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{Config, Provider};
use nexus_providers::{EnvLookup, HttpOptions, Registry, RetryPolicy};
use nexus_testkit::{Api, StandIn};

pub const KEY: &str = "sk-test-0123456789abcdef";

pub fn fast_opts() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        stream_idle_timeout: Duration::from_secs(2),
        stream_total_timeout: Duration::from_secs(30),
        max_response_bytes: 1 << 20,
        max_stream_bytes: 4 << 20,
        retry: RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(10),
            max_total_wait: Duration::from_secs(10),
        },
        on_retry: None,
    }
}

pub fn env_of(pairs: Vec<(String, String)>) -> EnvLookup {
    let m: HashMap<String, String> = pairs.into_iter().collect();
    Arc::new(move |k| m.get(k).cloned())
}

pub fn registry(server: &StandIn, opts: HttpOptions) -> Registry {
    Registry::new(Config::default(), env_of(server.env(KEY))).with_http_options(opts)
}

pub async fn provider(server: &StandIn, api: Api) -> Arc<dyn Provider> {
    registry(server, fast_opts())
        .provider(api.provider())
        .unwrap()
}

pub async fn provider_with(server: &StandIn, api: Api, opts: HttpOptions) -> Arc<dyn Provider> {
    registry(server, opts).provider(api.provider()).unwrap()
}
