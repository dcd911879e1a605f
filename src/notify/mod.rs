//! Alerts and where they go: mail (SMTP or sendmail), a XAPI message, a webhook, and always
//! the journal (stderr under systemd). Each channel is tried on its own: one broken channel
//! never keeps an alert from the others.

pub mod http;
pub mod mail;
pub mod tls;
pub mod xapi;

use serde::Serialize;

use crate::config::Config;
use crate::exec::Runner;
use crate::health::Severity;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot reach {server}: {why}")]
    Unreachable { server: String, why: String },
    #[error("TLS with {server}: {why}")]
    Tls { server: String, why: String },
    #[error("{server} refused at {stage}: {reply}")]
    Refused {
        server: String,
        stage: String,
        reply: String,
    },
    #[error("{channel}: {why}")]
    Rejected { channel: &'static str, why: String },
    #[error("{0}")]
    Config(String),
}

/// One thing worth telling a person, in the words every channel uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub host: String,
    pub severity: Severity,
    /// mdadm's event names where one fits (Fail, DegradedArray, RebuildStarted, …).
    pub event: String,
    /// Kernel name of the array: md127.
    pub array: Option<String>,
    /// Member device: sdb1.
    pub member: Option<String>,
    pub disk_serial: Option<String>,
    /// One line.
    pub summary: String,
    /// What to look at and what to do.
    pub detail: String,
    /// Unix seconds.
    pub time: u64,
}

impl Alert {
    /// What makes two alerts "the same" for dedupe.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.event,
            self.array.as_deref().unwrap_or("-"),
            self.member.as_deref().unwrap_or("-")
        )
    }
}

pub trait Notifier: Send + Sync {
    fn name(&self) -> &'static str;
    fn send(&self, alert: &Alert) -> Result<(), NotifyError>;
}

/// What happened to one alert on one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel: &'static str,
    pub ok: bool,
    pub error: Option<String>,
    pub millis: u64,
}

/// The host's facts the channels need.
#[derive(Debug, Clone, Default)]
pub struct HostIdentity {
    pub hostname: String,
    pub host_uuid: Option<String>,
}

impl HostIdentity {
    pub fn read(src: &dyn crate::host::source::HostSource) -> HostIdentity {
        let hostname = src
            .read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let host_uuid = src
            .read_to_string("/etc/xensource-inventory")
            .ok()
            .and_then(|inv| {
                inv.lines().find_map(|l| {
                    l.strip_prefix("INSTALLATION_UUID=")
                        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
                })
            })
            .filter(|u| !u.is_empty());
        HostIdentity {
            hostname,
            host_uuid,
        }
    }
}

/// The configured channels, in a fixed order: mail, xapi, webhook.
pub fn channels<'r>(
    config: &Config,
    host: &HostIdentity,
    runner: &'r dyn Runner,
) -> Vec<Box<dyn Notifier + 'r>> {
    let mut out: Vec<Box<dyn Notifier + 'r>> = Vec::new();
    if let Some(mail) = &config.alert.mail {
        out.push(Box::new(mail::Mail {
            config: mail.clone(),
            hostname: host.hostname.clone(),
            runner,
        }));
    }
    if let Some(x) = config.alert.xapi.as_ref().filter(|x| x.enabled) {
        out.push(Box::new(xapi::XapiMessage {
            xe: x.xe.clone(),
            host_uuid: host.host_uuid.clone(),
            runner,
        }));
    }
    if let Some(hook) = &config.alert.webhook {
        out.push(Box::new(http::Webhook {
            config: hook.clone(),
        }));
    }
    out
}

/// Sends through every channel at once (a mail server that hangs for its whole timeout must
/// not hold the XenCenter message back); a channel that fails is logged and does not stop the
/// others. Deliveries come back in the channels' order.
pub fn dispatch(channels: &[Box<dyn Notifier + '_>], alert: &Alert) -> Vec<Delivery> {
    let send = |c: &dyn Notifier| {
        let start = std::time::Instant::now();
        let result = c.send(alert);
        let millis = start.elapsed().as_millis() as u64;
        if let Err(e) = &result {
            tracing::warn!(
                channel = c.name(),
                "alert `{}` NOT sent: {e}",
                alert.summary
            );
        }
        Delivery {
            channel: c.name(),
            ok: result.is_ok(),
            error: result.err().map(|e| e.to_string()),
            millis,
        }
    };
    if channels.len() < 2 {
        return channels.iter().map(|c| send(c.as_ref())).collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = channels
            .iter()
            .map(|c| scope.spawn(move || send(c.as_ref())))
            .collect();
        handles
            .into_iter()
            .zip(channels)
            .map(|(h, c)| {
                h.join().unwrap_or_else(|_| Delivery {
                    channel: c.name(),
                    ok: false,
                    error: Some("the channel panicked".into()),
                    millis: 0,
                })
            })
            .collect()
    })
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
