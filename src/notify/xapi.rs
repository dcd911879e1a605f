//! A XAPI message (`xe message-create`): it shows in XenCenter's and Xen Orchestra's alerts.

use super::{Alert, Notifier, NotifyError};
use crate::exec::{Command, Runner};
use crate::health::Severity;

pub struct XapiMessage<'r> {
    pub xe: String,
    /// This host's uuid (`INSTALLATION_UUID` in /etc/xensource-inventory).
    pub host_uuid: Option<String>,
    pub runner: &'r dyn Runner,
}

impl XapiMessage<'_> {
    pub fn command(&self, alert: &Alert) -> Command {
        // XAPI priorities: 1 is the most urgent, 5 informational.
        let priority = match alert.severity {
            Severity::Critical => "1",
            Severity::Warning | Severity::Unknown => "3",
            Severity::Ok => "5",
        };
        let mut args = vec![
            "message-create".to_string(),
            format!("name=XENRAID_{}", alert.event.to_ascii_uppercase()),
            format!("priority={priority}"),
            format!("body={}\n\n{}", alert.summary, alert.detail),
        ];
        if let Some(uuid) = &self.host_uuid {
            args.push(format!("host-uuid={uuid}"));
        }
        Command::new(&self.xe, args)
    }
}

impl Notifier for XapiMessage<'_> {
    fn name(&self) -> &'static str {
        "xapi"
    }

    fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        if self.host_uuid.is_none() {
            return Err(NotifyError::Config(
                "no INSTALLATION_UUID in /etc/xensource-inventory: not a XenServer/XCP-ng host"
                    .into(),
            ));
        }
        self.runner
            .run(&self.command(alert))
            .map(|_| ())
            .map_err(|e| NotifyError::Rejected {
                channel: "xapi",
                why: e.to_string(),
            })
    }
}
