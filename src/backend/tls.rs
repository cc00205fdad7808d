//! TLS for the PostgreSQL transports: sslmode → verification settings, CA
//! bundles (every certificate of the file trusted, as the RDS global bundle
//! needs), and a connector built only when the server agrees to TLS.
//!
//! Building a native-tls connector loads the system CA store (~40 ms with
//! OpenSSL), so, like libpq, nothing is built for `prefer` against a server
//! without TLS: [`LazyTls`] defers it to the moment the server answers `S`
//! to the SSL request.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use crate::error::{Error, Result};
use crate::settings::SslMode;

/// Reads every PEM certificate of a bundle file. Fails early (before the
/// network is tried) on an unreadable file, a broken block, or no block.
pub fn load_bundle(path: &Path) -> Result<Vec<native_tls::Certificate>> {
    let pem = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    // native-tls reads one certificate per call, so hand it each block.
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    let mut certs = Vec::new();
    for block in pem.split(BEGIN).skip(1) {
        let cert = native_tls::Certificate::from_pem(format!("{BEGIN}{block}").as_bytes()).map_err(|e| Error::InvalidSetting {
            key: "sslrootcert".into(),
            message: format!("{}: certificate {}: {e}", path.display(), certs.len() + 1),
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(Error::InvalidSetting {
            key: "sslrootcert".into(),
            message: format!("{}: no PEM certificate in the file", path.display()),
        });
    }
    Ok(certs)
}

/// What a TLS session must verify.
struct Settings {
    mode: SslMode,
    roots: Option<Vec<native_tls::Certificate>>,
}

impl Settings {
    fn connector(&self) -> Result<native_tls::TlsConnector, native_tls::Error> {
        let mut b = native_tls::TlsConnector::builder();
        match self.mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => {
                b.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
            }
            SslMode::VerifyCa => {
                b.danger_accept_invalid_hostnames(true);
            }
            SslMode::VerifyFull => {}
        }
        if let Some(roots) = &self.roots {
            for c in roots {
                b.add_root_certificate(c.clone());
            }
            // As libpq does: a given sslrootcert replaces the system store.
            b.disable_built_in_roots(true);
        }
        b.build()
    }
}

/// A `MakeTlsConnect` that builds the native-tls connector on first use.
#[derive(Clone)]
pub struct LazyTls(Arc<Settings>);

impl LazyTls {
    pub fn new(mode: SslMode, roots: Option<Vec<native_tls::Certificate>>) -> LazyTls {
        LazyTls(Arc::new(Settings { mode, roots }))
    }
}

/// One pending TLS handshake for one host name.
pub struct LazyConnect {
    settings: Arc<Settings>,
    domain: String,
}

impl<S> MakeTlsConnect<S> for LazyTls
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type TlsConnect = LazyConnect;
    type Error = native_tls::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<LazyConnect, native_tls::Error> {
        Ok(LazyConnect {
            settings: self.0.clone(),
            domain: domain.to_string(),
        })
    }
}

impl<S> TlsConnect<S> for LazyConnect
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type Error = native_tls::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, native_tls::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = self.settings.connector()?;
            postgres_native_tls::TlsConnector::new(connector, &self.domain)
                .connect(stream)
                .await
        })
    }
}
