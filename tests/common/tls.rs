//! Certificates for TLS tests, made with `openssl`: a CA, and a server certificate for 127.0.0.1 it
//! issued. Clients trust the CA through `SSL_CERT_FILE`. Shared by the Redis over TLS test and the
//! load generator's https test (`#[path]`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files made in `dir`: the CA's certificate, and the server's certificate and key.
pub struct Issued {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a CA and a certificate for 127.0.0.1, named `{name}.pem` and `{name}.key`, in `dir`.
pub fn issue(dir: &Path, name: &str) -> Issued {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    let ca_subject = ["-days", "1", "-subj", "/CN=estuary test CA"];
    openssl(
        &[&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"][..], &ca_subject]
            .concat(),
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    let sign = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "san.cnf"];
    openssl(&[&["x509", "-req", "-in", &csr, "-out", &pem][..], &sign].concat());
    Issued { ca: dir.join("ca.pem"), cert: dir.join(pem), key: dir.join(key) }
}
