//! The shared provider conformance suite, run against every provider over
//! real HTTP to its local stand-in.

mod common;

macro_rules! family {
    ($m:ident, $api:expr) => {
        mod $m {
            use super::common;
            use nexus_testkit::StandIn;
            use std::sync::Arc;

            async fn make() -> (Arc<dyn nexus_core::Provider>, String) {
                // Each test gets its own server; it lives as long as the
                // provider's test by being leaked into a static-lifetime box.
                let server: &'static StandIn = Box::leak(Box::new(StandIn::start().await));
                server.require_key(common::KEY);
                (
                    common::provider(server, $api).await,
                    $api.sample_model().to_string(),
                )
            }

            nexus_core::provider_conformance_tests!(make());
        }
    };
}

family!(anthropic, nexus_testkit::Api::Anthropic);
family!(openai, nexus_testkit::Api::OpenAi);
family!(openrouter, nexus_testkit::Api::OpenRouter);
family!(xai, nexus_testkit::Api::Xai);
family!(deepseek, nexus_testkit::Api::DeepSeek);
family!(compatible, nexus_testkit::Api::Compatible);
family!(gemini, nexus_testkit::Api::Gemini);
