//! A throwaway certificate authority for TLS tests and load runs: a CA and
//! a certificate for `localhost` it signed, made with the `openssl` command.

use std::path::{Path, PathBuf};

/// The files [`certificate`] made.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// The CA's certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server's certificate for `localhost` (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// Makes a CA and a P-256 certificate for `localhost` in `dir`, valid two
/// days. Panics with the failing `openssl` command when it cannot.
pub fn certificate(dir: &Path) -> TestCertificate {
    let run = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl {args:?} failed (is openssl installed?)");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-days",
            "2",
            "-subj",
            "/CN=Nexus test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    ]
    .concat());
    run(&[
        &["req", "-new"][..],
        &ec,
        &[
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
    ]
    .concat());
    let ext = "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n";
    assert!(std::fs::write(dir.join("ext.cnf"), ext).is_ok());
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    TestCertificate {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}
