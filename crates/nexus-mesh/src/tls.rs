//! TLS for the mesh's WebSocket (`wss://`), with rustls on the ring
//! provider the rest of Nexus already builds. A broker serves TLS with a
//! certificate and key in PEM files; a client trusts the web PKI roots,
//! plus a CA of its own from `NEXUS_MESH_CA_FILE` (a private broker's
//! self-made certificate, say).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::MeshError;

/// The environment variable naming a PEM file of extra CA certificates a
/// client trusts for `wss://` brokers.
pub const CA_FILE_ENV: &str = "NEXUS_MESH_CA_FILE";

/// A byte stream a WebSocket runs over: plain TCP or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`].
pub(crate) type Stream = Box<dyn Io>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> MeshError {
    MeshError::Io(format!("{what}: {e}"))
}

/// The server side: a certificate chain and its private key, PEM.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, MeshError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect())
        .map_err(|e| {
            tls_err(
                &format!("cannot read the certificate {}", cert.display()),
                e,
            )
        })?;
    if chain.is_empty() {
        return Err(MeshError::Invalid(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| tls_err(&format!("cannot read the private key {}", key.display()), e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS setup", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_err("the certificate and key do not fit together", e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The client side: web PKI roots, plus the CAs in `extra` (PEM).
pub fn client_config(extra: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, MeshError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra {
        for c in CertificateDer::pem_file_iter(path)
            .map_err(|e| tls_err(&format!("cannot read CA file {}", path.display()), e))?
        {
            let c = c.map_err(|e| tls_err(&format!("bad CA file {}", path.display()), e))?;
            roots
                .add(c)
                .map_err(|e| tls_err(&format!("bad CA in {}", path.display()), e))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS setup", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects to `host:port`, with TLS when `tls` (the certificate must name
/// `host`).
pub(crate) async fn connect(host: &str, port: u16, tls: bool) -> Result<Stream, MeshError> {
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| MeshError::Io(format!("cannot reach the broker at {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let extra = std::env::var_os(CA_FILE_ENV);
    let config = client_config(extra.as_deref().map(Path::new))?;
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|e| tls_err(&format!("`{host}` is not a TLS server name"), e))?;
    let s = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            tls_err(
                &format!("TLS with the broker at {host}:{port} failed (a private CA goes in {CA_FILE_ENV})"),
                e,
            )
        })?;
    Ok(Box::new(s))
}
