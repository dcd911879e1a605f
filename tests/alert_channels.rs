//! Every alert channel against a real receiver: mail through aiosmtpd (Debian's
//! python3-aiosmtpd, started by tests/support/smtp_server.py) in plain, STARTTLS+AUTH and
//! implicit-TLS modes; the webhook against an HTTP listener; sendmail and `xe` through
//! real processes. Failures must be loud: wrong password, untrusted certificate, closed port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use xenraid::config::{MailConfig, TlsMode, WebhookConfig, XapiConfig};
use xenraid::exec::{RealRunner, RecordingRunner};
use xenraid::health::Severity;
use xenraid::notify::http::Webhook;
use xenraid::notify::mail::Mail;
use xenraid::notify::xapi::XapiMessage;
use xenraid::notify::{Alert, Notifier, NotifyError};

const PYTHON: &str = "/usr/bin/python3";

fn alert() -> Alert {
    Alert {
        host: "xs7-lab".into(),
        severity: Severity::Critical,
        event: "Fail".into(),
        array: Some("md127".into()),
        member: Some("sdb1".into()),
        disk_serial: Some("XR-DISK-B".into()),
        summary: "CRITICAL Fail: md/root marked sdb1 faulty".into(),
        detail: "Member sdb1 is on disk sdb, serial XR-DISK-B.\n.a line starting with a dot\n"
            .into(),
        time: 1_795_306_283,
    }
}

struct Smtp {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl Smtp {
    fn start(extra: &[&str]) -> Smtp {
        let out = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg("--out")
            .arg(out.path())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (run scripts/setup.sh: it installs python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start (python3-aiosmtpd missing? run scripts/setup.sh): {line:?}"));
        Smtp { child, port, out }
    }

    fn received(&self) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        for n in 1.. {
            let eml = self.out.path().join(format!("{n}.eml"));
            if !eml.exists() {
                break;
            }
            let meta = std::fs::read_to_string(self.out.path().join(format!("{n}.json"))).unwrap();
            out.push((
                std::fs::read_to_string(eml).unwrap(),
                serde_json::from_str(&meta).unwrap(),
            ));
        }
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `localhost` (not a CA: rustls refuses a CA as end entity).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl req failed");
    (cert, key)
}

fn mail_config(server: String) -> MailConfig {
    MailConfig {
        to: vec!["ops@example.com".into(), "oncall@example.com".into()],
        from: None,
        smtp: Some(server),
        tls: None,
        user: None,
        password_file: None,
        ca_file: None,
        sendmail: "/usr/sbin/sendmail".into(),
    }
}

fn send_mail(config: MailConfig) -> Result<(), NotifyError> {
    let runner = RecordingRunner::new();
    Mail {
        config,
        hostname: "xs7-lab".into(),
        runner: &runner,
    }
    .send(&alert())
}

#[test]
fn mail_over_plain_smtp_reaches_the_server_whole() {
    let server = Smtp::start(&[]);
    send_mail(mail_config(format!("127.0.0.1:{}", server.port))).unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    let (message, meta) = &got[0];
    assert_eq!(meta["from"], "xenraid@xs7-lab");
    assert_eq!(
        meta["to"],
        serde_json::json!(["ops@example.com", "oncall@example.com"])
    );
    assert!(
        message.contains("Subject: [xenraid] xs7-lab: CRITICAL Fail: md/root marked sdb1 faulty")
    );
    assert!(message.contains("X-Xenraid-Severity: CRITICAL"));
    assert!(message.contains("Date: Sun, 22 Nov 2026 00:11:23 +0000"));
    // Dot-stuffing undone by the server: the body line arrives as written.
    assert!(
        message.contains("\n.a line starting with a dot"),
        "{message}"
    );
    assert!(message.contains("serial XR-DISK-B"));
}

#[test]
fn mail_with_starttls_and_auth_and_with_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let starttls = Smtp::start(&[
        "--mode",
        "starttls",
        "--cert",
        c,
        "--key",
        k,
        "--user",
        "xenraid",
        "--password",
        "s3cret",
    ]);
    let mut config = mail_config(format!("localhost:{}", starttls.port));
    config.user = Some("xenraid".into());
    config.password_file = Some(password.clone());
    config.ca_file = Some(cert.clone());
    send_mail(config.clone()).unwrap();
    let got = starttls.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["tls"], true);
    assert_eq!(got[0].1["auth"], true);

    // A wrong password is an error naming the AUTH stage.
    std::fs::write(&password, "wrong").unwrap();
    let err = send_mail(config.clone()).unwrap_err().to_string();
    assert!(err.contains("AUTH PLAIN") && err.contains("535"), "{err}");
    std::fs::write(&password, "s3cret").unwrap();

    // Without the private CA the certificate is not trusted, and that is what is said.
    config.ca_file = None;
    let err = send_mail(config).unwrap_err();
    assert!(matches!(err, NotifyError::Tls { .. }), "{err}");

    let tls = Smtp::start(&["--mode", "tls", "--cert", c, "--key", k]);
    let mut config = mail_config(format!("localhost:{}", tls.port));
    config.tls = Some(TlsMode::Tls);
    config.ca_file = Some(cert);
    send_mail(config).unwrap();
    assert_eq!(tls.received()[0].1["tls"], true);
}

#[test]
fn an_unreachable_server_is_an_error_naming_it() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = send_mail(mail_config(format!("127.0.0.1:{port}"))).unwrap_err();
    assert!(matches!(err, NotifyError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn sendmail_gets_the_whole_message_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let sendmail = dir.path().join("sendmail");
    let out = dir.path().join("out");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\necho \"$@\" > '{0}.args'\ncat > '{0}'\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &sendmail,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut config = mail_config(String::new());
    config.smtp = None;
    config.sendmail = sendmail.to_str().unwrap().into();
    Mail {
        config,
        hostname: "xs7-lab".into(),
        runner: &RealRunner,
    }
    .send(&alert())
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.with_extension("args"))
            .unwrap()
            .trim(),
        "-t -oi"
    );
    let message = std::fs::read_to_string(&out).unwrap();
    assert!(message.starts_with(
        "From: xenraid on xs7-lab <xenraid@xs7-lab>\nTo: ops@example.com, oncall@example.com\n"
    ));
    assert!(message.contains("\n\nMember sdb1 is on disk sdb"));
}

#[test]
fn the_xapi_message_is_what_xencenter_shows() {
    let runner = RecordingRunner::new();
    let xapi = XapiMessage {
        xe: XapiConfig {
            enabled: true,
            xe: "xe".into(),
        }
        .xe,
        host_uuid: Some("7d0f8c4e-0000-4000-8000-000000000001".into()),
        runner: &runner,
    };
    let argv = xapi.command(&alert()).argv();
    assert_eq!(
        argv[..4],
        ["xe", "message-create", "name=XENRAID_FAIL", "priority=1"]
    );
    assert!(argv[4].starts_with("body=CRITICAL Fail: md/root marked sdb1 faulty\n\nMember sdb1"));
    assert_eq!(argv[5], "host-uuid=7d0f8c4e-0000-4000-8000-000000000001");
    let no_host = XapiMessage {
        xe: "xe".into(),
        host_uuid: None,
        runner: &runner,
    };
    assert!(no_host.send(&alert()).is_err());
}

/// One HTTP exchange: returns the request the webhook sent.
fn http_once(status: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    break;
                }
            }
        }
        write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").unwrap();
        String::from_utf8(request).unwrap()
    });
    (port, handle)
}

#[test]
fn the_webhook_posts_the_alert_as_json_and_a_non_2xx_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "abc123\n").unwrap();
    let (port, server) = http_once("204 No Content");
    let hook = Webhook {
        config: WebhookConfig {
            url: format!("http://127.0.0.1:{port}/hooks/raid"),
            token_file: Some(token),
            ca_file: None,
        },
    };
    hook.send(&alert()).unwrap();
    let request = server.join().unwrap();
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /hooks/raid HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("Authorization: Bearer abc123"));
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["event"], "Fail");
    assert_eq!(json["severity"], "CRITICAL");
    assert_eq!(json["disk_serial"], "XR-DISK-B");

    let (port, server) = http_once("500 Internal Server Error");
    let hook = Webhook {
        config: WebhookConfig {
            url: format!("http://127.0.0.1:{port}/"),
            token_file: None,
            ca_file: None,
        },
    };
    let err = hook.send(&alert()).unwrap_err().to_string();
    server.join().unwrap();
    assert!(err.contains("500"), "{err}");
}

/// Channels go out side by side: the first one here can only succeed if the second runs
/// while it waits (sequential sending would leave it waiting for its whole timeout).
#[test]
fn channels_are_sent_side_by_side() {
    use std::sync::mpsc;
    use std::sync::Mutex;
    struct Waits(Mutex<mpsc::Receiver<()>>);
    struct Signals(Mutex<mpsc::Sender<()>>);
    impl Notifier for Waits {
        fn name(&self) -> &'static str {
            "waits"
        }
        fn send(&self, _: &Alert) -> Result<(), NotifyError> {
            self.0
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(10))
                .map_err(|_| NotifyError::Config("the other channel never ran".into()))
        }
    }
    impl Notifier for Signals {
        fn name(&self) -> &'static str {
            "signals"
        }
        fn send(&self, _: &Alert) -> Result<(), NotifyError> {
            self.0.lock().unwrap().send(()).unwrap();
            Err(NotifyError::Config("this one fails".into()))
        }
    }
    let (tx, rx) = mpsc::channel();
    let channels: Vec<Box<dyn Notifier>> = vec![
        Box::new(Waits(Mutex::new(rx))),
        Box::new(Signals(Mutex::new(tx))),
    ];
    let deliveries = xenraid::notify::dispatch(&channels, &alert());
    assert_eq!(deliveries.len(), 2);
    assert_eq!((deliveries[0].channel, deliveries[0].ok), ("waits", true));
    assert_eq!(
        (deliveries[1].channel, deliveries[1].ok),
        ("signals", false)
    );
    assert_eq!(deliveries[1].error.as_deref(), Some("this one fails"));
}
