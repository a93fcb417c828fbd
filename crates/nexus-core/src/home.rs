//! `NEXUS_HOME` and atomic file writes: the one place nexus-core touches the
//! file system.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

/// The root of all Nexus state: `$NEXUS_HOME`, or `~/.nexus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexusHome {
    root: PathBuf,
}

impl NexusHome {
    /// From the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::resolve(
            std::env::var_os("NEXUS_HOME"),
            std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")),
        )
    }

    /// From explicit values of `NEXUS_HOME` and the user's home directory.
    pub fn resolve(nexus_home: Option<OsString>, home: Option<OsString>) -> Result<Self, Error> {
        if let Some(n) = nexus_home.filter(|s| !s.is_empty()) {
            return Ok(NexusHome { root: n.into() });
        }
        match home.filter(|s| !s.is_empty()) {
            Some(h) => Ok(NexusHome {
                root: PathBuf::from(h).join(".nexus"),
            }),
            None => Err(Error::ConfigKey {
                key: "NEXUS_HOME".into(),
                message: "neither NEXUS_HOME nor HOME is set; set NEXUS_HOME to a directory".into(),
            }),
        }
    }

    /// At an explicit directory.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        NexusHome { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// A path under the root.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// Creates the directory (mode 0700) if it is missing, and takes group
    /// and other access away from one that exists.
    pub fn ensure(&self) -> Result<(), Error> {
        private_dir(&self.root).map_err(|e| Error::io(&self.root, e))
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `dir` (and missing parents) with mode 0700; an existing `dir`
/// that group or others may enter is narrowed to 0700. Everything under
/// `NEXUS_HOME` is the user's alone.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    create_private_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(())
}

/// Prepares a database file for a store that opens it itself (SQLite):
/// its directory 0700, the file created 0600 when missing (SQLite gives
/// its `-wal` and `-shm` files the database's mode) and narrowed to 0600,
/// with those companions, when it exists.
pub fn private_db_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let mut companions = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            companions.push(PathBuf::from(p));
        }
        for p in companions {
            match std::fs::metadata(&p) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// File permissions for [`atomic_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// 0644: readable config and data.
    Normal,
    /// 0600: anything holding a secret.
    Secret,
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or
/// the new one, never a mix: a temp file in the same directory, fsync,
/// rename over the target, then fsync of the directory.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let nonce = crate::clock::SeededRandom::from_entropy();
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{:x}",
        std::process::id(),
        crate::RandomSource::next_u64(&nonce)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(match mode {
                FileMode::Normal => 0o644,
                FileMode::Secret => 0o600,
            });
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(dir) {
            // Persist the rename itself.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nexus_home_wins_over_home() {
        let h = NexusHome::resolve(Some("/a".into()), Some("/b".into())).unwrap();
        assert_eq!(h.root(), Path::new("/a"));
        let h = NexusHome::resolve(None, Some("/b".into())).unwrap();
        assert_eq!(h.root(), Path::new("/b/.nexus"));
        assert!(NexusHome::resolve(None, None).is_err());
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/secret.bin");
        atomic_write(&p, b"one", FileMode::Secret).unwrap();
        atomic_write(&p, b"two", FileMode::Secret).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o600);
        }
        // No temp files left behind.
        let n = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(n, 1);
    }
}
