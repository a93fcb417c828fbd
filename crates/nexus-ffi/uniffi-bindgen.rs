//! The uniffi-bindgen pinned to this workspace's uniffi version, so the
//! Swift, Kotlin and Python sources always match the library.
fn main() {
    uniffi::uniffi_bindgen_main()
}
