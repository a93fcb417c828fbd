#![no_main]
// See crates/nexus-fuzz: what this target checks, also run on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| nexus_fuzz::host(data));
