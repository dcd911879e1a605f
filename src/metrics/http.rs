//! A minimal `/metrics` endpoint: std's TcpListener, one blocking accept loop in a thread,
//! HTTP/1.0 answers, the exposition computed on demand for every scrape.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("{addr}: not a loopback address; the metrics name disks and serials, so listening beyond this host needs --allow-remote")]
    NotLoopback { addr: SocketAddr },
    #[error("{addr}: cannot resolve it to an address")]
    BadAddress { addr: String },
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Produces the exposition text for one scrape.
pub type Producer = Arc<dyn Fn() -> String + Send + Sync>;

/// The largest request head read; a scrape's is a few hundred bytes.
const MAX_REQUEST: usize = 8192;
/// A client that sends nothing does not hold the (single) accept loop longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    /// Binds `addr` (`127.0.0.1:9747`, `[::1]:9747`, port 0 for any free port). Anything but
    /// a loopback address is refused unless `allow_remote`.
    pub fn bind(addr: &str, allow_remote: bool) -> Result<MetricsServer, HttpError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|_| HttpError::BadAddress { addr: addr.into() })?
            .collect();
        if addrs.is_empty() {
            return Err(HttpError::BadAddress { addr: addr.into() });
        }
        if !allow_remote {
            if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(HttpError::NotLoopback { addr: *a });
            }
        }
        let listener = TcpListener::bind(&addrs[..]).map_err(|source| HttpError::Bind {
            addr: addr.into(),
            source,
        })?;
        Ok(MetricsServer { listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves forever in a thread of its own, one connection at a time.
    pub fn spawn(self, produce: Producer) -> JoinHandle<()> {
        std::thread::spawn(move || self.serve(produce))
    }

    fn serve(self, produce: Producer) {
        for stream in self.listener.incoming() {
            match stream {
                Ok(stream) => {
                    if let Err(err) = answer(stream, &produce) {
                        tracing::debug!("metrics client: {err}");
                    }
                }
                Err(err) => tracing::warn!("metrics listener: accept: {err}"),
            }
        }
    }
}

fn answer(mut stream: TcpStream, produce: &Producer) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (status, body) = route(&head, produce);
    let response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        if status.starts_with("200") {
            "text/plain; version=0.0.4; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        },
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    if !head.starts_with("HEAD ") {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// The request up to the blank line that ends its head (or what came before EOF / the limit).
fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Status line and body for a request head.
fn route(head: &str, produce: &Producer) -> (&'static str, String) {
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", produce()),
        ("GET" | "HEAD", _) => ("404 Not Found", "not found: try /metrics\n".into()),
        ("", _) => ("400 Bad Request", "bad request\n".into()),
        _ => ("405 Method Not Allowed", "only GET\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer() -> Producer {
        Arc::new(|| "x 1\n".to_string())
    }

    #[test]
    fn routes() {
        let p = producer();
        assert_eq!(route("GET /metrics HTTP/1.1\r\n\r\n", &p).0, "200 OK");
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0\r\n\r\n", &p).1, "x 1\n");
        assert_eq!(route("GET / HTTP/1.1\r\n\r\n", &p).0, "404 Not Found");
        assert_eq!(
            route("POST /metrics HTTP/1.1\r\n\r\n", &p).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("", &p).0, "400 Bad Request");
    }

    #[test]
    fn refuses_a_remote_address_unless_allowed() {
        assert!(matches!(
            MetricsServer::bind("0.0.0.0:0", false),
            Err(HttpError::NotLoopback { .. })
        ));
        assert!(MetricsServer::bind("127.0.0.1:0", false).is_ok());
        assert!(matches!(
            MetricsServer::bind("not an address", false),
            Err(HttpError::BadAddress { .. })
        ));
    }
}
