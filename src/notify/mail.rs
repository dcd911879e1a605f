//! Mail without an MTA: SMTP straight to the configured server (STARTTLS or implicit TLS,
//! AUTH PLAIN/LOGIN), or the local `sendmail -t` when no server is configured.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;

use super::tls::Conn;
use super::{Alert, Notifier, NotifyError};
use crate::config::{split_host_port, MailConfig, TlsMode};
use crate::exec::{Command, Runner};

const TIMEOUT: Duration = Duration::from_secs(15);

pub struct Mail<'r> {
    pub config: MailConfig,
    pub hostname: String,
    pub runner: &'r dyn Runner,
}

impl Notifier for Mail<'_> {
    fn name(&self) -> &'static str {
        "mail"
    }

    fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        let from = self
            .config
            .from
            .clone()
            .unwrap_or_else(|| format!("xenraid@{}", self.hostname));
        let message = format_message(alert, &from, &self.config.to);
        match &self.config.smtp {
            Some(server) => {
                let password = match &self.config.password_file {
                    Some(path) => Some(
                        std::fs::read_to_string(path)
                            .map_err(|e| {
                                NotifyError::Config(format!(
                                    "cannot read the SMTP password file {}: {e}",
                                    path.display()
                                ))
                            })?
                            .trim_end_matches(['\r', '\n'])
                            .to_string(),
                    ),
                    None => None,
                };
                let credentials = self.config.user.clone().zip(password);
                send_smtp(&SmtpTarget {
                    server,
                    tls: self.config.tls.unwrap_or(if credentials.is_some() {
                        TlsMode::Starttls
                    } else {
                        TlsMode::None
                    }),
                    ca_file: self.config.ca_file.as_deref(),
                    credentials: credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
                    helo: &self.hostname,
                    from: &from,
                    to: &self.config.to,
                    message: &message,
                })
            }
            None => {
                let command = Command::new(&self.config.sendmail, ["-t", "-oi"]);
                self.runner
                    .run_with_input(&command, message.as_bytes())
                    .map(|_| ())
                    .map_err(|e| NotifyError::Rejected {
                        channel: "sendmail",
                        why: e.to_string(),
                    })
            }
        }
    }
}

pub struct SmtpTarget<'a> {
    pub server: &'a str,
    pub tls: TlsMode,
    pub ca_file: Option<&'a std::path::Path>,
    pub credentials: Option<(&'a str, &'a str)>,
    pub helo: &'a str,
    pub from: &'a str,
    pub to: &'a [String],
    pub message: &'a str,
}

pub fn send_smtp(t: &SmtpTarget) -> Result<(), NotifyError> {
    let default_port = if t.tls == TlsMode::Tls { 465 } else { 25 };
    let (host, port) = split_host_port(t.server, default_port).map_err(NotifyError::Config)?;
    let mut conn = Conn::connect(&host, port, TIMEOUT)?;
    if t.tls == TlsMode::Tls {
        conn.start_tls(&host, t.ca_file)?;
    }
    let mut s = Session {
        conn,
        server: format!("{host}:{port}"),
    };
    s.expect(220, "greeting")?;
    let mut caps = s.command(&format!("EHLO {}", t.helo), 250, "EHLO")?;
    if t.tls == TlsMode::Starttls {
        if !has_cap(&caps, "STARTTLS") {
            return Err(s.refused(
                "STARTTLS",
                "the server does not offer STARTTLS (set tls = \"tls\" for port 465, or \"none\")"
                    .into(),
            ));
        }
        s.command("STARTTLS", 220, "STARTTLS")?;
        s.conn.start_tls(&host, t.ca_file)?;
        caps = s.command(&format!("EHLO {}", t.helo), 250, "EHLO after STARTTLS")?;
    }
    if let Some((user, password)) = t.credentials {
        let b64 = |x: &str| base64::engine::general_purpose::STANDARD.encode(x);
        let auth = caps
            .iter()
            .find(|l| l.to_ascii_uppercase().starts_with("AUTH"))
            .cloned()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if auth.contains("PLAIN") {
            s.command(
                &format!("AUTH PLAIN {}", b64(&format!("\0{user}\0{password}"))),
                235,
                "AUTH PLAIN",
            )?;
        } else if auth.contains("LOGIN") {
            s.command("AUTH LOGIN", 334, "AUTH LOGIN")?;
            s.command(&b64(user), 334, "AUTH LOGIN user")?;
            s.command(&b64(password), 235, "AUTH LOGIN password")?;
        } else {
            return Err(s.refused(
                "AUTH",
                "the server offers neither AUTH PLAIN nor LOGIN".into(),
            ));
        }
    }
    s.command(&format!("MAIL FROM:<{}>", t.from), 250, "MAIL FROM")?;
    for rcpt in t.to {
        s.command(&format!("RCPT TO:<{rcpt}>"), 250, "RCPT TO")?;
    }
    s.command("DATA", 354, "DATA")?;
    let body = dot_stuff(t.message);
    s.write(&body)?;
    s.command(".", 250, "end of DATA")?;
    // The mail is accepted: a QUIT that goes wrong changes nothing.
    let _ = s.command("QUIT", 221, "QUIT");
    Ok(())
}

fn has_cap(lines: &[String], cap: &str) -> bool {
    lines.iter().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(cap))
    })
}

struct Session {
    conn: Conn,
    server: String,
}

impl Session {
    fn refused(&self, stage: &str, why: String) -> NotifyError {
        NotifyError::Refused {
            server: self.server.clone(),
            stage: stage.into(),
            reply: why,
        }
    }

    fn write(&mut self, text: &str) -> Result<(), NotifyError> {
        self.conn
            .write_all(text.as_bytes())
            .and_then(|_| self.conn.flush())
            .map_err(|e| NotifyError::Unreachable {
                server: self.server.clone(),
                why: e.to_string(),
            })
    }

    fn command(&mut self, line: &str, code: u16, stage: &str) -> Result<Vec<String>, NotifyError> {
        self.write(&format!("{line}\r\n"))?;
        self.expect(code, stage)
    }

    /// Reads one (multi-line) reply; byte by byte so nothing after it is consumed before a
    /// STARTTLS handshake.
    fn expect(&mut self, code: u16, stage: &str) -> Result<Vec<String>, NotifyError> {
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while line.last() != Some(&b'\n') {
                match self.conn.read(&mut byte) {
                    Ok(0) => {
                        return Err(self.refused(stage, "the server closed the connection".into()))
                    }
                    Ok(_) => line.push(byte[0]),
                    Err(e) => {
                        return Err(NotifyError::Unreachable {
                            server: self.server.clone(),
                            why: format!("{stage}: {e}"),
                        })
                    }
                }
                if line.len() > 4096 {
                    return Err(self.refused(stage, "reply line too long".into()));
                }
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let got: Option<u16> = text.get(..3).and_then(|c| c.parse().ok());
            let more = text.as_bytes().get(3) == Some(&b'-');
            lines.push(text.get(4..).unwrap_or("").to_string());
            if !more {
                if got != Some(code) {
                    return Err(self.refused(stage, text));
                }
                return Ok(lines);
            }
        }
    }
}

/// SMTP transparency (RFC 5321 4.5.2): a line starting with "." gets another; CRLF endings.
pub fn dot_stuff(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    for line in message.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

pub fn format_message(alert: &Alert, from: &str, to: &[String]) -> String {
    format!(
        "From: xenraid on {host} <{from}>\nTo: {to}\nSubject: [xenraid] {host}: {summary}\nDate: {date}\n\
         Message-ID: <xenraid-{time}-{id}@{host}>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 8bit\nX-Xenraid-Event: {event}\nX-Xenraid-Severity: {sev}\n\n{body}\n",
        host = alert.host,
        to = to.join(", "),
        summary = alert.summary,
        date = rfc2822(alert.time),
        time = alert.time,
        id = alert.key().replace(|c: char| !c.is_ascii_alphanumeric(), "."),
        event = alert.event,
        sev = alert.severity.word(),
        body = alert.detail,
    )
}

/// `Sat, 21 Nov 2026 01:02:03 +0000` from Unix seconds (UTC: dom0 clocks are UTC anyway).
pub fn rfc2822(unix: u64) -> String {
    let days = (unix / 86400) as i64;
    let secs = unix % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc2822() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_795_306_283), "Sun, 22 Nov 2026 00:11:23 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn leading_dots_are_doubled_and_lines_end_in_crlf() {
        assert_eq!(dot_stuff("a\n.b\n..c"), "a\r\n..b\r\n...c\r\n");
    }
}
