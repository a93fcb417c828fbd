//! The Linux kernel keyring, used directly (not through the `keyring`
//! crate, whose keyutils store keeps entries in the *session* keyring: a
//! process started outside `keyctl session` could write an entry but never
//! read it back, and every probe left a key behind).
//!
//! Entries live in the *user* keyring (`@u`): one per UID, shared by all of
//! that user's processes whatever their session, kept until reboot. Each
//! key grants its owner UID every permission, so reading does not depend on
//! the reader possessing the keyring through its session.

use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

/// Why a kernel keyring call failed, in words.
fn why(e: KeyError) -> String {
    match e {
        KeyError::QuotaExceeded => {
            "the kernel key quota for this user is full (see /proc/key-users)".into()
        }
        KeyError::AccessDenied | KeyError::PermissionDenied => {
            "the kernel refused access to the user keyring".into()
        }
        KeyError::OperationNotSupported => "this kernel has no keyrings (CONFIG_KEYS)".into(),
        other => format!("kernel keyring error: {other:?}"),
    }
}

fn ring() -> Result<KeyRing, String> {
    KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(why)
}

/// The value of the key named `description`, if there is one.
pub(crate) fn read(description: &str) -> Result<Option<Vec<u8>>, String> {
    match ring()?.search(description) {
        Ok(k) => k.read_to_vec().map(Some).map_err(why),
        Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => Ok(None),
        Err(e) => Err(why(e)),
    }
}

/// Creates or replaces the key named `description`.
pub(crate) fn write(description: &str, value: &[u8]) -> Result<(), String> {
    let key = ring()?.add_key(description, value).map_err(why)?;
    let perms = KeyPermissionsBuilder::builder()
        .posessor(Permission::ALL)
        .user(Permission::ALL)
        .build();
    key.set_perms(perms).map_err(why)
}

/// Removes the key named `description`; whether there was one.
pub(crate) fn remove(description: &str) -> Result<bool, String> {
    match ring()?.search(description) {
        Ok(k) => k.invalidate().map(|()| true).map_err(why),
        Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => Ok(false),
        Err(e) => Err(why(e)),
    }
}
