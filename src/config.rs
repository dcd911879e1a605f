//! `/etc/xenraid/xenraid.toml`: where alerts go, how often to remind, where metrics are written.
//!
//! Parsed strictly (unknown keys are errors: a typo must not silently disable an alert channel)
//! and validated into values the monitor can use without further checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const DEFAULT_PATH: &str = "/etc/xenraid/xenraid.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {field}: {problem} (fix: {fix})")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
        fix: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub alert: AlertConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// While an array stays degraded, alert again this often ("24h", "90m", "0" = never).
    #[serde(default = "default_reminder")]
    pub reminder: String,
    /// The same event for the same array and member is sent once within this window.
    #[serde(default = "default_dedupe")]
    pub dedupe: String,
    /// Rebuild progress is reported every this many percent (0 = only start and finish).
    #[serde(default = "default_progress_step")]
    pub progress_step: u8,
    /// Where the monitor keeps what it sent (dedupe and reminders survive a restart).
    #[serde(default = "default_state_file")]
    pub state_file: PathBuf,
}

fn default_reminder() -> String {
    "24h".into()
}
fn default_dedupe() -> String {
    "10m".into()
}
fn default_progress_step() -> u8 {
    25
}
fn default_state_file() -> PathBuf {
    PathBuf::from("/var/lib/xenraid/monitor-state.json")
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            reminder: default_reminder(),
            dedupe: default_dedupe(),
            progress_step: default_progress_step(),
            state_file: default_state_file(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    pub mail: Option<MailConfig>,
    pub xapi: Option<XapiConfig>,
    pub webhook: Option<WebhookConfig>,
}

impl AlertConfig {
    pub fn any(&self) -> bool {
        self.mail.is_some()
            || self.xapi.as_ref().is_some_and(|x| x.enabled)
            || self.webhook.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub to: Vec<String>,
    /// Defaults to `xenraid@<hostname>`.
    pub from: Option<String>,
    /// `host:port` of an SMTP server; without it mail goes through `sendmail`.
    pub smtp: Option<String>,
    /// `starttls` (default when a user is set), `tls` (implicit, port 465) or `none`.
    pub tls: Option<TlsMode>,
    pub user: Option<String>,
    /// Read from a file (mode 0600) rather than written here.
    pub password_file: Option<PathBuf>,
    /// PEM bundle to trust instead of the built-in web roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Local sendmail binary, used when `smtp` is not set.
    #[serde(default = "default_sendmail")]
    pub sendmail: String,
}

fn default_sendmail() -> String {
    "/usr/sbin/sendmail".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XapiConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The `xe` binary.
    #[serde(default = "default_xe")]
    pub xe: String,
}

fn yes() -> bool {
    true
}
fn default_xe() -> String {
    "xe".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL that receives a JSON POST per alert.
    pub url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// node_exporter textfile collector file, rewritten atomically at every look.
    pub textfile: Option<PathBuf>,
    /// Leave out node_md_* (node_exporter's own mdadm collector already exports them).
    #[serde(default)]
    pub skip_node_md: bool,
}

impl Config {
    /// The file at `path`; a missing file at the default path is the default configuration
    /// (alerts then go to the journal only), a missing file named explicitly is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, problem: String, fix: &str| ConfigError::Invalid {
            path: path.into(),
            field: field.into(),
            problem,
            fix: fix.into(),
        };
        for (field, value) in [
            ("monitor.reminder", &self.monitor.reminder),
            ("monitor.dedupe", &self.monitor.dedupe),
        ] {
            parse_duration(value)
                .map_err(|p| invalid(field, p, "write e.g. \"24h\", \"90m\", \"30s\" or \"0\""))?;
        }
        if self.monitor.progress_step > 100 {
            return Err(invalid(
                "monitor.progress_step",
                format!("{} is over 100", self.monitor.progress_step),
                "use a percentage step such as 25, or 0 for start and finish only",
            ));
        }
        if let Some(mail) = &self.alert.mail {
            if mail.to.is_empty() {
                return Err(invalid(
                    "alert.mail.to",
                    "no recipient".into(),
                    "list at least one address: to = [\"ops@example.com\"]",
                ));
            }
            for address in mail.to.iter().chain(mail.from.iter()) {
                check_address(address).map_err(|p| {
                    invalid(
                        "alert.mail",
                        p,
                        "write a plain address such as ops@example.com",
                    )
                })?;
            }
            if let Some(server) = &mail.smtp {
                split_host_port(server, 25).map_err(|p| {
                    invalid(
                        "alert.mail.smtp",
                        p,
                        "write host:port, e.g. smtp.example.com:587",
                    )
                })?;
            } else if mail.user.is_some() || mail.tls.is_some() {
                return Err(invalid(
                    "alert.mail",
                    "user/tls set but no smtp server".into(),
                    "set smtp = \"host:port\", or remove user/tls to use the local sendmail",
                ));
            }
            if mail.user.is_some() != mail.password_file.is_some() {
                return Err(invalid(
                    "alert.mail",
                    "user and password_file go together".into(),
                    "set both (the password file holds only the password), or neither",
                ));
            }
            if mail.user.is_some() && mail.tls == Some(TlsMode::None) {
                return Err(invalid(
                    "alert.mail.tls",
                    "a password would cross the network in clear".into(),
                    "use tls = \"starttls\" or \"tls\"",
                ));
            }
        }
        if let Some(hook) = &self.alert.webhook {
            crate::notify::http::Url::parse(&hook.url).map_err(|p| {
                invalid(
                    "alert.webhook.url",
                    p,
                    "write http://host[:port]/path or https://…",
                )
            })?;
        }
        Ok(())
    }

    pub fn reminder(&self) -> Option<Duration> {
        parse_duration(&self.monitor.reminder)
            .ok()
            .filter(|d| !d.is_zero())
    }

    pub fn dedupe(&self) -> Duration {
        parse_duration(&self.monitor.dedupe).unwrap_or(Duration::from_secs(600))
    }
}

/// "24h", "90m", "30s", "2d", "0": one number and one unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => return Err(format!("`{other}` is not a unit (s, m, h, d)")),
    };
    Ok(Duration::from_secs(n * seconds))
}

fn check_address(address: &str) -> Result<(), String> {
    let ok = address
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !address.contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("`{address}` is not a mail address"))
    }
}

/// `host:port` (or `[v6]:port`); the port defaults when missing.
pub fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: unclosed ["))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("`{p}` is not a port"))?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/xenraid/xenraid.toml"))
    }

    #[test]
    fn a_full_file_parses_and_defaults_fill_the_rest() {
        let c = parse(
            r#"
[monitor]
reminder = "12h"
[alert.mail]
to = ["ops@example.com"]
smtp = "mail.example.com:587"
user = "xenraid"
password_file = "/etc/xenraid/smtp-password"
[alert.xapi]
[alert.webhook]
url = "https://hooks.example.com/raid"
[metrics]
textfile = "/var/lib/node_exporter/textfile_collector/xenraid.prom"
"#,
        )
        .unwrap();
        assert_eq!(c.reminder(), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(c.dedupe(), Duration::from_secs(600));
        assert_eq!(c.monitor.progress_step, 25);
        assert!(c.alert.xapi.as_ref().unwrap().enabled);
        assert_eq!(
            c.alert.mail.as_ref().unwrap().sendmail,
            "/usr/sbin/sendmail"
        );
        assert!(c.alert.any());
    }

    #[test]
    fn a_missing_default_file_is_the_default_config_but_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("xenraid.toml");
        assert_eq!(Config::load(&missing, false).unwrap(), Config::default());
        assert!(matches!(
            Config::load(&missing, true),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn mistakes_are_named_with_their_fix() {
        let cases = [
            ("[alert.mail]\nto = []\n", "alert.mail.to"),
            ("[alert.mail]\nto = [\"ops\"]\n", "not a mail address"),
            ("[alert.mail]\nto = [\"a@b\"]\nuser = \"u\"\n", "no smtp server"),
            (
                "[alert.mail]\nto = [\"a@b\"]\nsmtp = \"h:25\"\nuser = \"u\"\n",
                "password_file",
            ),
            (
                "[alert.mail]\nto = [\"a@b\"]\nsmtp = \"h:25\"\ntls = \"none\"\nuser = \"u\"\npassword_file = \"/p\"\n",
                "in clear",
            ),
            ("[alert.mail]\nto = [\"a@b\"]\nsmtp = \"h:x\"\n", "not a port"),
            ("[monitor]\nreminder = \"3 weeks\"\n", "monitor.reminder"),
            ("[alert.webhook]\nurl = \"ftp://x\"\n", "alert.webhook.url"),
            ("[alert.mial]\nto = [\"a@b\"]\n", "unknown field `mial`"),
        ];
        for (text, expected) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.starts_with("/etc/xenraid/xenraid.toml"), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("10").is_err());
        assert_eq!(split_host_port("[::1]:2525", 25), Ok(("::1".into(), 2525)));
        assert_eq!(split_host_port("mx", 25), Ok(("mx".into(), 25)));
    }
}
