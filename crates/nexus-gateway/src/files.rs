//! Files under the workspace root, for callers with the `files` capability
//! on: `GET /api/v1/files/{path}` (a file's bytes, or a directory's
//! entries) and `PUT /api/v1/files/{path}` (written atomically). The root
//! is `[gateway] workspace` or `NEXUS_HOME/workspace`, created (0700) if
//! missing. A path is refused, before anything is opened, when it is
//! absolute, climbs with `..`, holds a backslash, a NUL, a control
//! character or a `%` (no second decoding), or passes through a symbolic
//! link; the resolved parent must still be inside the root.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::guard::Caller;
use crate::keys::Scope;
use crate::Shared;

/// The deepest path accepted.
const MAX_DEPTH: usize = 32;

/// `raw` as a safe relative path, or why not. Pure: no file is looked at.
pub fn relative(raw: &str) -> Result<PathBuf, String> {
    if raw.is_empty() || raw.len() > 1024 {
        return Err("a path is 1-1024 bytes".into());
    }
    if raw.contains(['\\', '\0', '%']) || raw.chars().any(char::is_control) {
        return Err("backslashes, NUL, control characters and `%` are refused".into());
    }
    let p = Path::new(raw);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` is refused".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are refused".into())
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err("the path names nothing".into());
    }
    if out.components().count() > MAX_DEPTH {
        return Err(format!("paths are at most {MAX_DEPTH} levels deep"));
    }
    Ok(out)
}

/// `rel` under `root`, refusing any symbolic link on the way and checking
/// that the existing part resolves inside `root`.
pub fn resolve(root: &Path, rel: &Path) -> Result<PathBuf, String> {
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err("symbolic links are refused".into()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    let full = root.join(rel);
    let real_root = root.canonicalize().map_err(|e| e.to_string())?;
    let mut existing = full.clone();
    while !existing.exists() {
        if !existing.pop() {
            break;
        }
    }
    let real = existing.canonicalize().map_err(|e| e.to_string())?;
    if !real.starts_with(&real_root) {
        return Err("the path leaves the workspace".into());
    }
    Ok(full)
}

fn root(s: &Shared) -> Result<PathBuf, ApiError> {
    if !s.config.capabilities.files {
        return Err(ApiError::forbidden(
            "file access is off; turn on [gateway.capabilities] files = true in config.toml",
        ));
    }
    let r = s.config.workspace.clone();
    nexus_core::private_dir(&r).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            nexus_sdk::ErrorCode::Internal,
            e.to_string(),
        )
    })?;
    Ok(r)
}

fn checked(s: &Shared, raw: &str) -> Result<PathBuf, ApiError> {
    let root = root(s)?;
    let rel = relative(raw).map_err(|why| {
        ApiError::forbidden(format!(
            "`{}`: {why}",
            raw.chars().take(100).collect::<String>()
        ))
    })?;
    resolve(&root, &rel).map_err(|why| {
        ApiError::forbidden(format!(
            "`{}`: {why}",
            raw.chars().take(100).collect::<String>()
        ))
    })
}

/// `GET /api/v1/files/{path}`.
pub async fn read(
    State(s): State<Arc<Shared>>,
    c: Caller,
    UrlPath(raw): UrlPath<String>,
) -> Result<Response, ApiError> {
    c.need(Scope::Read)?;
    let path = checked(&s, &raw)?;
    c.policy(&s, "files", "read", None)?;
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|_| ApiError::not_found(format!("no `{raw}` in the workspace")))?;
    if meta.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .map_err(|e| ApiError::not_found(e.to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        return Ok(Json(json!({ "entries": names })).into_response());
    }
    if meta.len() > 64 << 20 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            nexus_sdk::ErrorCode::InvalidRequest,
            "files over 64 MiB are not served",
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `PUT /api/v1/files/{path}` (admin).
pub async fn write(
    State(s): State<Arc<Shared>>,
    c: Caller,
    UrlPath(raw): UrlPath<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    c.need(Scope::Admin)?;
    let path = checked(&s, &raw)?;
    c.policy(&s, "files", "write", None)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    nexus_core::atomic_write(&path, &body, nexus_core::FileMode::Secret)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_tricks_are_refused_before_any_file_is_opened() {
        assert_eq!(
            relative("notes/today.md").unwrap(),
            PathBuf::from("notes/today.md")
        );
        assert_eq!(relative("./a/./b").unwrap(), PathBuf::from("a/b"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\..\\x",
            "%2e%2e/x",
            "a\0b",
            "a\nb",
            "..",
            ".",
        ] {
            assert!(relative(bad).is_err(), "{bad:?}");
        }
        assert!(relative(&"d/".repeat(40)).is_err());
    }

    #[test]
    fn symbolic_links_on_the_way_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ws");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert!(resolve(&root, Path::new("real/new.txt")).is_ok());
        assert!(resolve(&root, Path::new("link/passwd")).is_err());
        assert!(resolve(&root, Path::new("link")).is_err());
    }
}
