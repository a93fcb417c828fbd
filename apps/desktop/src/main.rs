//! The Nexus desktop shell: a native window over the UI the daemon's
//! gateway serves (the same page `nexus desktop` opens in a browser), a
//! tray icon, and an OS notification when an extension asks for a
//! permission. It starts the daemon when none runs (through
//! `nexus desktop --json`, which also makes the session key). The page gets
//! no Tauri API: it talks to the gateway only, as in a browser.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tauri::menu::{Menu, MenuItem};
use tauri::tray::{MouseButton, TrayIconBuilder, TrayIconEvent};
use tauri::webview::PageLoadEvent;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder, WindowEvent};
use tauri_plugin_notification::NotificationExt;

/// A desktop session: the page to load, and the gateway and key to watch
/// approvals with.
struct Session {
    url: String,
    addr: String,
    key: String,
}

/// The `nexus` binary: `NEXUS_BIN`, else the one next to this program,
/// else the one on the PATH.
fn nexus() -> PathBuf {
    if let Some(p) = std::env::var_os("NEXUS_BIN") {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(PathBuf::from)) {
        let sibling = dir.join("nexus");
        if sibling.exists() {
            return sibling;
        }
    }
    PathBuf::from("nexus")
}

/// Asks `nexus desktop --json` for a session (starting the daemon if needed).
fn session() -> Result<Session, String> {
    let bin = nexus();
    let out = Command::new(&bin)
        .args(["desktop", "--json"])
        .output()
        .map_err(|e| format!("cannot run {} ({e}): install nexus, or set NEXUS_BIN", bin.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!(
            "`nexus desktop --json` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let text = |k: &str| v[k].as_str().map(str::to_string);
    match (text("url"), text("addr"), text("key")) {
        (Some(url), Some(addr), Some(key)) => Ok(Session { url, addr, key }),
        _ => Err(format!(
            "nexus could not open a session: {}",
            v["error"]["message"].as_str().unwrap_or("no URL in its answer")
        )),
    }
}

/// `GET path` on the gateway at `addr` with the session key: the JSON body.
fn get(addr: &str, key: &str, path: &str) -> Option<serde_json::Value> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.take(4 << 20).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

/// Shows the window (from the tray or a notification).
fn show(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// Every 2 s: a notification for each new question an extension asks.
fn watch_approvals(app: AppHandle, addr: String, key: String) {
    let mut seen = BTreeSet::new();
    loop {
        if let Some(v) = get(&addr, &key, "/api/v1/approvals") {
            for q in v["approvals"].as_array().into_iter().flatten() {
                let Some(n) = q["n"].as_u64() else { continue };
                if !seen.insert(n) {
                    continue;
                }
                let ext = q["extension"].as_str().unwrap_or("an extension");
                let cap = q["capability"].as_str().unwrap_or("a permission");
                let shown = app
                    .notification()
                    .builder()
                    .title(format!("Nexus: {ext} asks for {cap}"))
                    .body(format!(
                        "{} Answer in the Nexus window before it is denied.",
                        q["detail"].as_str().unwrap_or_default()
                    ))
                    .show();
                println!("notified approval {n}: {ext} {cap} ({})", if shown.is_ok() { "shown" } else { "not shown" });
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn main() {
    let s = match session() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Nexus: {e}");
            std::process::exit(1);
        }
    };
    let Ok(url) = s.url.parse::<tauri::Url>() else {
        eprintln!("Nexus: `{}` is not a URL", s.url);
        std::process::exit(1);
    };
    let (addr, key) = (s.addr, s.key);
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            WebviewWindowBuilder::new(app, "main", WebviewUrl::External(url))
                .title("Nexus")
                .inner_size(1200.0, 820.0)
                .on_page_load(|_, p| {
                    if p.event() == PageLoadEvent::Finished {
                        // Without the fragment: it carries the session key.
                        let mut u = p.url().clone();
                        u.set_fragment(None);
                        println!("loaded {u}");
                    }
                })
                .build()?;
            let open = MenuItem::with_id(app, "show", "Show Nexus", true, None::<&str>)?;
            let quit = MenuItem::with_id(app, "quit", "Quit Nexus", true, None::<&str>)?;
            let menu = Menu::with_items(app, &[&open, &quit])?;
            let mut tray = TrayIconBuilder::with_id("nexus")
                .tooltip("Nexus")
                .menu(&menu)
                .on_menu_event(|app, e| match e.id.as_ref() {
                    "show" => show(app),
                    "quit" => app.exit(0),
                    _ => {}
                })
                .on_tray_icon_event(|tray, e| {
                    if let TrayIconEvent::Click {
                        button: MouseButton::Left,
                        ..
                    } = e
                    {
                        show(tray.app_handle());
                    }
                });
            if let Some(icon) = app.default_window_icon() {
                tray = tray.icon(icon.clone());
            }
            tray.build(app)?;
            println!("tray ready");
            let handle = app.handle().clone();
            std::thread::spawn(move || watch_approvals(handle, addr, key));
            Ok(())
        })
        // Closing the window keeps Nexus in the tray (and its notifications).
        .on_window_event(|w, e| {
            if let WindowEvent::CloseRequested { api, .. } = e {
                let _ = w.hide();
                api.prevent_close();
            }
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("Nexus: {e}");
        std::process::exit(1);
    }
}
