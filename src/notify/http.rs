//! The webhook: one JSON POST per alert over HTTP/1.1 (TLS for https), any 2xx is success.

use std::io::{Read, Write};
use std::time::Duration;

use super::tls::Conn;
use super::{Alert, Notifier, NotifyError};
use crate::config::{split_host_port, WebhookConfig};

const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{text}` is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err("credentials in the URL would be logged; use token_file".into());
        }
        let (host, port) = split_host_port(authority, if https { 443 } else { 80 })?;
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{path}` has spaces or control characters"));
        }
        Ok(Url {
            https,
            host,
            port,
            path: path.to_string(),
        })
    }
}

pub struct Webhook {
    pub config: WebhookConfig,
}

impl Notifier for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        let url = Url::parse(&self.config.url).map_err(NotifyError::Config)?;
        let token = match &self.config.token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        NotifyError::Config(format!("cannot read token_file {}: {e}", p.display()))
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let body = serde_json::to_string(alert).map_err(|e| NotifyError::Config(e.to_string()))?;
        post_json(
            &url,
            token.as_deref(),
            self.config.ca_file.as_deref(),
            &body,
        )
    }
}

/// POSTs `body`; returns the status line's code when it is not 2xx as an error.
pub fn post_json(
    url: &Url,
    bearer: Option<&str>,
    ca_file: Option<&std::path::Path>,
    body: &str,
) -> Result<(), NotifyError> {
    let mut conn = Conn::connect(&url.host, url.port, TIMEOUT)?;
    if url.https {
        conn.start_tls(&url.host, ca_file)?;
    }
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: xenraid/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
        url.path,
        url.host,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    let server = format!("{}:{}", url.host, url.port);
    let io = |e: std::io::Error| NotifyError::Unreachable {
        server: server.clone(),
        why: e.to_string(),
    };
    conn.write_all(request.as_bytes()).map_err(io)?;
    conn.flush().map_err(io)?;
    // The status line is all we need; read until it is complete.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 8192 {
        let n = conn.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let code: Option<u16> = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok());
    match code {
        Some(c) if (200..300).contains(&c) => Ok(()),
        _ => Err(NotifyError::Refused {
            server,
            stage: "POST".into(),
            reply: if status_line.is_empty() {
                "no HTTP response".into()
            } else {
                status_line
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("https://hooks.example.com/a/b?x=1").unwrap(),
            Url {
                https: true,
                host: "hooks.example.com".into(),
                port: 443,
                path: "/a/b?x=1".into()
            }
        );
        assert_eq!(Url::parse("http://10.0.2.2:8080").unwrap().path, "/");
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://u:p@x/").is_err());
    }
}
