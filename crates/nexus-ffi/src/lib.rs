//! The uniffi facade of Nexus for Swift and Kotlin. The bindings issue adds
//! the exported surface; until then this crate pins the seam.

/// The version of the Nexus libraries this facade wraps.
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(super::version(), env!("CARGO_PKG_VERSION"));
    }
}
