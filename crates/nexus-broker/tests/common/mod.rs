//! A real `nats-server` for the JetStream tests (nexus-testkit's).

#![allow(dead_code)]

/// A server and its store directory, both gone when dropped.
pub(crate) struct Server(nexus_testkit::nats::Nats, tempfile::TempDir);

/// One JetStream server and its URL; `None` (SKIP) without nats-server.
pub(crate) fn server() -> Option<(Server, String)> {
    let dir = tempfile::tempdir().unwrap();
    let n = nexus_testkit::nats::start(1, dir.path())?;
    let url = n.urls[0].clone();
    Some((Server(n, dir), url))
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
