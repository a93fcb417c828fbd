//! Installing, removing and switching extensions on and off: the files
//! under `NEXUS_HOME/extensions/` and `state.json`. Running them is
//! [`crate::host`]'s.

use std::path::Path;

use crate::host::{ExtError, Installed, Paths, State};
use crate::manifest::Manifest;
use crate::sign::{self, PublicKey, SignError};

/// Installs the extension in `src`, a directory or an archive
/// ([`crate::archive`]): checks the manifest and (unless `allow_unsigned`)
/// the signature against `trusted`, then copies it into place, replacing
/// an older version atomically.
pub fn install(
    paths: &Paths,
    src: &Path,
    trusted: &[PublicKey],
    allow_unsigned: bool,
) -> Result<(Manifest, Option<String>), ExtError> {
    install_expecting(paths, src, trusted, allow_unsigned, None)
}

/// [`install`], refusing unless the extension's id is `expect` (a deep
/// link names the id it installs; the files must agree).
pub fn install_expecting(
    paths: &Paths,
    src: &Path,
    trusted: &[PublicKey],
    allow_unsigned: bool,
    expect: Option<&str>,
) -> Result<(Manifest, Option<String>), ExtError> {
    if !crate::archive::is_archive(src) {
        return install_dir(paths, src, trusted, allow_unsigned, expect);
    }
    let io = |e: std::io::Error| ExtError::Io(e.to_string());
    nexus_core::private_dir(&paths.extensions()).map_err(io)?;
    let unpacked = paths
        .extensions()
        .join(format!(".unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&unpacked);
    let result = crate::archive::unpack(src, &unpacked)
        .map_err(ExtError::Archive)
        .and_then(|dir| install_dir(paths, &dir, trusted, allow_unsigned, expect));
    let _ = std::fs::remove_dir_all(&unpacked);
    result
}

fn install_dir(
    paths: &Paths,
    src: &Path,
    trusted: &[PublicKey],
    allow_unsigned: bool,
    expect: Option<&str>,
) -> Result<(Manifest, Option<String>), ExtError> {
    let manifest = Manifest::load(src)?;
    if let Some(want) = expect {
        if manifest.id != want {
            return Err(ExtError::Io(format!(
                "the link says `{want}` but the files hold `{}`; not installing",
                manifest.id
            )));
        }
    }
    let signed_by = match sign::verify_extension(src, &manifest, trusted) {
        Ok(k) => Some(k),
        Err(SignError::Unsigned(_)) if allow_unsigned => None,
        Err(e) => return Err(e.into()),
    };
    let io = |e: std::io::Error| ExtError::Io(e.to_string());
    nexus_core::private_dir(&paths.extensions()).map_err(io)?;
    let dest = paths.dir(&manifest.id);
    let staging = paths.extensions().join(format!(".{}.new", manifest.id));
    let _ = std::fs::remove_dir_all(&staging);
    copy_dir(src, &staging, 0).map_err(io)?;
    let old = paths.extensions().join(format!(".{}.old", manifest.id));
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(&dest, &old).map_err(io)?;
    }
    std::fs::rename(&staging, &dest).map_err(io)?;
    let _ = std::fs::remove_dir_all(&old);
    let mut state = State::load(paths);
    state.0.insert(
        manifest.id.clone(),
        Installed {
            version: manifest.version.clone(),
            enabled: true,
            signed_by: signed_by.clone(),
            disabled_because: None,
        },
    );
    state.save(paths)?;
    Ok((manifest, signed_by))
}

/// The manifest of the extension in `src`, a directory or an archive
/// (unpacked into a scratch directory and removed again).
pub fn inspect(paths: &Paths, src: &Path) -> Result<Manifest, ExtError> {
    if !crate::archive::is_archive(src) {
        return Ok(Manifest::load(src)?);
    }
    nexus_core::private_dir(&paths.extensions()).map_err(|e| ExtError::Io(e.to_string()))?;
    let scratch = paths
        .extensions()
        .join(format!(".inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = crate::archive::unpack(src, &scratch)
        .map_err(ExtError::Archive)
        .and_then(|dir| Ok(Manifest::load(&dir)?));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Copies a directory tree (regular files and directories only; symbolic
/// links are refused so an archive cannot point outside itself).
fn copy_dir(from: &Path, to: &Path, depth: usize) -> std::io::Result<()> {
    if depth > 32 {
        return Err(std::io::Error::other(
            "the extension's directories nest deeper than 32",
        ));
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        let target = to.join(e.file_name());
        if t.is_symlink() {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link; extensions may not hold links",
                e.path().display()
            )));
        } else if t.is_dir() {
            copy_dir(&e.path(), &target, depth + 1)?;
        } else if t.is_file() {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// Removes extension `id`; its data goes too unless its manifest says
/// `persistent_data = true`. Returns whether the data was kept.
pub fn uninstall(paths: &Paths, id: &str) -> Result<bool, ExtError> {
    let mut state = State::load(paths);
    if state.0.remove(id).is_none() {
        return Err(ExtError::NotInstalled(id.to_string()));
    }
    let keep = Manifest::load(&paths.dir(id))
        .map(|m| m.persistent_data)
        .unwrap_or(false);
    std::fs::remove_dir_all(paths.dir(id)).map_err(|e| ExtError::Io(e.to_string()))?;
    if !keep {
        let _ = std::fs::remove_dir_all(paths.data(id));
    }
    state.save(paths)?;
    Ok(keep)
}

/// Turns extension `id` on or off.
pub fn set_enabled(
    paths: &Paths,
    id: &str,
    enabled: bool,
    because: Option<String>,
) -> Result<(), ExtError> {
    let mut state = State::load(paths);
    let e = state
        .0
        .get_mut(id)
        .ok_or_else(|| ExtError::NotInstalled(id.to_string()))?;
    e.enabled = enabled;
    e.disabled_because = if enabled { None } else { because };
    state.save(paths)
}
