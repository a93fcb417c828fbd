//! The desktop UI: the web app of `apps/web`, built into `ui/` and embedded
//! in the binary at compile time, served at `/` with a strict
//! Content-Security-Policy. It talks only to `/api/v1`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// What the page may load: only this origin; no inline script, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The embedded file at `path`, if any.
pub fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str) -> Response {
    let Some(body) = asset(path) else {
        if path == "index.html" {
            return (
                StatusCode::NOT_FOUND,
                "the desktop UI is not built into this binary: run `npm ci && npm run build` in apps/web, then rebuild",
            )
                .into_response();
        }
        return crate::error::ApiError::not_found(format!("no file /{path}")).into_response();
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(path)));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Built files carry their content hash in the name; the page does not.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

async fn file(Path(p): Path<String>) -> Response {
    if p.contains("..") || p.len() > 200 {
        return crate::error::ApiError::not_found("no such file").into_response();
    }
    serve(&format!("assets/{p}"))
}

/// `/`, `/index.html`, `/favicon.svg` and `/assets/*`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route("/index.html", get(|| async { serve("index.html") }))
        .route("/favicon.svg", get(|| async { serve("favicon.svg") }))
        .route("/assets/{*file}", get(file))
}
