//! Extension archives: a `.tar.gz` (or plain `.tar`) of an extension's
//! directory, as `tar czf word-count.tar.gz word-count/` makes it.
//!
//! An archive comes from outside, so unpacking is bounded and refuses what
//! could escape or exhaust: only regular files and directories (no links,
//! devices or FIFOs), relative paths without `..`, at most [`MAX_ENTRIES`]
//! entries, [`MAX_DEPTH`] levels and [`MAX_UNPACKED`] bytes in all. A
//! refusal leaves nothing behind. The signature is checked afterwards, on
//! the unpacked files, exactly as for a directory.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The most bytes an archive may unpack to.
pub const MAX_UNPACKED: u64 = 256 << 20;
/// The most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// The deepest path in an archive.
pub const MAX_DEPTH: usize = 32;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// Not a tar or gzip-compressed tar, or cut short.
    #[error("not a readable .tar.gz or .tar archive: {0}")]
    Unreadable(String),
    /// An entry that could escape the directory, or is not a file or directory.
    #[error("the archive holds `{path}`, which is refused: {why}")]
    Refused {
        /// The entry.
        path: String,
        /// Why.
        why: String,
    },
    /// Too large, too many entries or too deep.
    #[error("the archive is too large: {0}")]
    TooLarge(String),
    /// No `nexus-extension.toml` at its root or in its one top directory.
    #[error(
        "the archive has no nexus-extension.toml at its root or in its one top-level directory"
    )]
    NoManifest,
    /// Writing the unpacked files failed.
    #[error("unpacking: {0}")]
    Io(String),
}

/// Whether `path` looks like an archive (a file, not a directory).
pub fn is_archive(path: &Path) -> bool {
    path.is_file()
}

/// What one entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file, executable or not.
    File {
        /// Whether any execute bit is set.
        exec: bool,
    },
}

/// Walks the archive in `bytes` (gzip-compressed or not), checking every
/// entry, and hands each to `sink` with its checked relative path and, for a
/// file, a reader of at most its declared size. Used by [`unpack`] and by
/// the fuzz target.
pub fn walk(
    bytes: impl Read,
    mut sink: impl FnMut(&Path, Kind, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let mut head = std::io::BufReader::new(bytes);
    let gz = {
        use std::io::BufRead;
        let buf = head
            .fill_buf()
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        buf.starts_with(&[0x1f, 0x8b])
    };
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(head))
    } else {
        Box::new(head)
    };
    // Decompressed bytes are bounded too (headers and padding count).
    let limit = MAX_UNPACKED + (MAX_ENTRIES as u64 + 2) * 1024;
    let mut archive = tar::Archive::new(reader.take(limit));
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
    let (mut count, mut total) = (0usize, 0u64);
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(ArchiveError::TooLarge(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        let raw = entry
            .path()
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?
            .into_owned();
        let shown = raw.display().to_string();
        let refused = |why: &str| ArchiveError::Refused {
            path: shown.chars().take(200).collect(),
            why: why.to_string(),
        };
        let path = checked(&raw).map_err(&refused)?;
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File {
                exec: entry.header().mode().unwrap_or(0o644) & 0o111 != 0,
            },
            // Metadata records some tars write; they carry no file.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => {
                return Err(refused(&format!(
                    "it is a {other:?}; only files and directories may be in an extension"
                )))
            }
        };
        let Some(path) = path else { continue };
        let size = entry.header().size().unwrap_or(0);
        total = total.saturating_add(size);
        if total > MAX_UNPACKED {
            return Err(ArchiveError::TooLarge(format!(
                "it unpacks to more than {} MiB",
                MAX_UNPACKED >> 20
            )));
        }
        let mut body = (&mut entry).take(size);
        sink(&path, kind, &mut body)?;
    }
    Ok(())
}

/// The entry's path made safe: relative, normal components only, not too
/// deep. `None` for the archive's root (`./`).
fn checked(raw: &Path) -> Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => {
                let s = p.to_str().ok_or("its name is not UTF-8")?;
                if s.chars().any(char::is_control) {
                    return Err("its name has control characters");
                }
                out.push(p);
            }
            Component::ParentDir => return Err("it climbs out with `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path"),
        }
    }
    if out.components().count() > MAX_DEPTH {
        return Err("it is nested too deep");
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Unpacks the archive at `file` into the new directory `into` and returns
/// the extension's directory in it: `into` itself, or the one top-level
/// directory holding `nexus-extension.toml`. On failure `into` is removed.
pub fn unpack(file: &Path, into: &Path) -> Result<PathBuf, ArchiveError> {
    let result = unpack_inner(file, into);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(into);
    }
    result
}

fn unpack_inner(file: &Path, into: &Path) -> Result<PathBuf, ArchiveError> {
    let io = |e: std::io::Error| ArchiveError::Io(e.to_string());
    let f = std::fs::File::open(file)
        .map_err(|e| ArchiveError::Io(format!("{}: {e}", file.display())))?;
    nexus_core::private_dir(into).map_err(io)?;
    walk(f, |path, kind, body| {
        let target = into.join(path);
        match kind {
            Kind::Dir => std::fs::create_dir_all(&target).map_err(io),
            Kind::File { exec } => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                // A later entry of the same name replaces the file, never
                // follows a link (none can be made).
                let _ = std::fs::remove_file(&target);
                let mut out = std::fs::File::create(&target).map_err(io)?;
                std::io::copy(body, &mut out).map_err(io)?;
                use std::os::unix::fs::PermissionsExt;
                let mode = if exec { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).map_err(io)
            }
        }
    })?;
    let manifest = crate::manifest::FILE;
    if into.join(manifest).is_file() {
        return Ok(into.to_path_buf());
    }
    let tops: Vec<PathBuf> = std::fs::read_dir(into)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    match tops.as_slice() {
        [one] if one.join(manifest).is_file() => Ok(one.clone()),
        _ => Err(ArchiveError::NoManifest),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(body.len() as u64);
            h.set_mode(0o755);
            // set_path refuses `..`; write the name raw, as an attacker would.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn paths(bytes: &[u8]) -> Result<Vec<String>, ArchiveError> {
        let mut out = Vec::new();
        walk(bytes, |p, _, r| {
            std::io::copy(r, &mut std::io::sink()).unwrap();
            out.push(p.display().to_string());
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn escapes_links_and_devices_are_refused() {
        let f = tar::EntryType::Regular;
        assert_eq!(
            paths(&tar_of(&[("./a/b.txt", f, b"x"), ("c", f, b"")])).unwrap(),
            ["a/b.txt", "c"]
        );
        for bad in ["../evil", "a/../../evil", "/etc/passwd"] {
            let e = paths(&tar_of(&[(bad, f, b"x")])).unwrap_err();
            assert!(matches!(e, ArchiveError::Refused { .. }), "{bad}: {e}");
        }
        for kind in [
            tar::EntryType::Symlink,
            tar::EntryType::Link,
            tar::EntryType::Char,
            tar::EntryType::Fifo,
        ] {
            let e = paths(&tar_of(&[("x", kind, b"")])).unwrap_err();
            assert!(e.to_string().contains("only files and directories"), "{e}");
        }
        let deep = "d/".repeat(MAX_DEPTH + 1) + "f";
        assert!(paths(&tar_of(&[(&deep[..], f, b"")])).is_err());
        assert!(matches!(
            paths(
                b"not an archive at all, just text that goes on for a while"
                    .repeat(20)
                    .as_slice()
            ),
            Err(ArchiveError::Unreadable(_))
        ));
    }

    #[test]
    fn unpack_finds_the_manifest_in_the_top_directory_and_cleans_up_on_refusal() {
        let d = tempfile::tempdir().unwrap();
        let f = tar::EntryType::Regular;
        let good = tar_of(&[
            ("ext/", tar::EntryType::Directory, b""),
            ("ext/nexus-extension.toml", f, b"id = \"x\""),
            ("ext/main.py", f, b"print()"),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &good).unwrap();
        let file = d.path().join("x.tar.gz");
        std::fs::write(&file, gz.finish().unwrap()).unwrap();
        let root = unpack(&file, &d.path().join("u")).unwrap();
        assert_eq!(root, d.path().join("u").join("ext"));
        assert_eq!(std::fs::read(root.join("main.py")).unwrap(), b"print()");

        let bad = tar_of(&[("ok.txt", f, b"fine"), ("../../x", f, b"bad")]);
        let file = d.path().join("bad.tar");
        std::fs::write(&file, bad).unwrap();
        assert!(unpack(&file, &d.path().join("v")).is_err());
        assert!(!d.path().join("v").exists(), "nothing is left behind");
        assert!(!d.path().join("x").exists());

        let none = tar_of(&[("readme", f, b"")]);
        std::fs::write(&file, none).unwrap();
        assert_eq!(
            unpack(&file, &d.path().join("w")).unwrap_err(),
            ArchiveError::NoManifest
        );
    }
}
