//! TLS for https:// mirrors: rustls with the system's CA roots (`/etc/ssl/certs`, or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) plus the certificates of `--ca-cert FILE`, ALPN
//! offering HTTP/2 then HTTP/1.1.
//!
//! Crypto provider: *ring*, measured against aws-lc-rs (performance.md, "HTTPS, HTTP/2 and
//! the TLS crypto provider"): `cat` over HTTPS used the same CPU with both (AES-GCM runs at
//! memory speed either way, and a handshake is paid once per connection), while aws-lc-rs made
//! the stripped binary 19% larger and adds a long C build to every clean build. The
//! `aws-lc-rs` feature switches to it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::{Error, Result};

/// The system's CA certificates. `SSL_CERT_FILE` / `SSL_CERT_DIR` when set; else the
/// distribution's bundle file alone when there is one: it holds every certificate of the
/// directory beside it (update-ca-certificates writes both), and reading the directory too
/// means opening each of its ~150 files at every start of every helper (1 s of a 1.7 s
/// attach in the test VM); else the certificate directory.
fn system_roots() -> rustls_native_certs::CertificateResult {
    let env_set = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    match openssl_probe::probe().cert_file {
        Some(bundle) if !env_set => rustls_native_certs::load_certs_from_paths(Some(&bundle), None),
        _ => rustls_native_certs::load_native_certs(),
    }
}

/// The rustls configuration every client shares.
pub fn client_config(ca_cert: Option<&Path>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let native = system_roots();
    for e in &native.errors {
        tracing::debug!("system CA certificates: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("{added} system CA certificates");
    if let Some(path) = ca_cert {
        let bad = |why: String| Error::Invalid(format!("--ca-cert {}: {why}", path.display()));
        let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&data)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in the file".into()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| bad(format!("unusable certificate: {e}")))?;
        }
    }
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(feature = "aws-lc-rs")]
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
