//! A TCP connection that may become TLS (implicit TLS, or STARTTLS half-way through SMTP).
//!
//! rustls with the ring provider: pure Rust apart from ring's own C/asm, so the static musl
//! build stays static. Trust: a configured PEM bundle, else the host's CA bundle (CentOS and
//! Debian paths), else the built-in Mozilla roots.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::{CertificateDer, ServerName};

use super::NotifyError;

const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

pub enum Conn {
    /// Only while the connection moves into TLS.
    Closed,
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Conn, NotifyError> {
        let unreachable = |why: String| NotifyError::Unreachable {
            server: format!("{host}:{port}"),
            why,
        };
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve: {e}")))?
            .collect();
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout)).ok();
                    stream.set_write_timeout(Some(timeout)).ok();
                    stream.set_nodelay(true).ok();
                    return Ok(Conn::Plain(stream));
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(unreachable(last))
    }

    /// Moves the plain connection into TLS and completes the handshake now, so a bad
    /// certificate is reported as such rather than as a later write error.
    pub fn start_tls(&mut self, host: &str, ca_file: Option<&Path>) -> Result<(), NotifyError> {
        let Conn::Plain(stream) = std::mem::replace(self, Conn::Closed) else {
            return Ok(());
        };
        let config = client_config(ca_file)?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| NotifyError::Tls {
            server: host.into(),
            why: format!("not a valid server name: {e}"),
        })?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| {
            NotifyError::Tls {
                server: host.into(),
                why: e.to_string(),
            }
        })?;
        let mut tls = rustls::StreamOwned::new(conn, stream);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| NotifyError::Tls {
                    server: host.into(),
                    why: e.to_string(),
                })?;
        }
        *self = Conn::Tls(Box::new(tls));
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Closed => Err(std::io::ErrorKind::NotConnected.into()),
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Closed => Err(std::io::ErrorKind::NotConnected.into()),
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Closed => Ok(()),
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, NotifyError> {
    let tls_err = |why: String| NotifyError::Tls {
        server: String::new(),
        why,
    };
    let mut roots = rustls::RootCertStore::empty();
    let bundle = match ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| tls_err(format!("cannot read ca_file {}: {e}", path.display())))?,
        ),
        None => SYSTEM_BUNDLES
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok()),
    };
    match bundle {
        Some(pem) => {
            let certs = pem_certificates(&pem);
            if certs.is_empty() && ca_file.is_some() {
                return Err(tls_err("the ca_file holds no PEM certificate".into()));
            }
            roots.add_parsable_certificates(certs);
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Every `CERTIFICATE` block of a PEM bundle; anything else is skipped.
pub fn pem_certificates(pem: &str) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "-----BEGIN CERTIFICATE-----") => body = Some(String::new()),
            (Some(b), "-----END CERTIFICATE-----") => {
                if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                    out.push(CertificateDer::from(der));
                }
                body = None;
            }
            (Some(b), l) => b.push_str(l),
            (None, _) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_decoded_and_other_blocks_skipped() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n";
        let certs = pem_certificates(pem);
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].as_ref(), &[0, 1, 2, 3]);
    }
}
