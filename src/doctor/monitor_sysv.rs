//! The monitor on a host without systemd (XenServer 6.5's CentOS 5 dom0): an inittab
//! `respawn` entry is its service, so init starts it in every multi-user runlevel and starts
//! it again if it dies, as `Restart=always` does under systemd.

use crate::host::source::HostSource;

use super::checks::{check, Check, Status};
use super::facts::{DoctorFacts, MonitorState};

pub const INITTAB: &str = "/etc/inittab";
/// Its output goes to a log file, not to the console init gives it.
pub const MONITOR_ENTRY: &str =
    "xm:2345:respawn:/usr/sbin/xenraid monitor >>/var/log/xenraid-monitor.log 2>&1";
const MONITOR_COMMENT: &str = "# xenraid: watch the md mirrors and alert at once";

/// The active inittab line that runs `xenraid monitor`, if any.
pub fn monitor_entry(inittab: &str) -> Option<&str> {
    inittab.lines().map(str::trim).find(|line| {
        !line.starts_with('#')
            && line.splitn(4, ':').nth(3).is_some_and(|process| {
                let mut words = process.split_whitespace();
                words.next().is_some_and(|p| p.ends_with("xenraid"))
                    && words.next() == Some("monitor")
            })
    })
}

/// The inittab with the monitor's entry appended.
pub fn with_monitor_entry(inittab: &str) -> String {
    crate::plan::edits::with_lines_appended(inittab, &[MONITOR_COMMENT, MONITOR_ENTRY])
}

/// Whether a `xenraid monitor` process runs: /proc/<pid>/cmdline, argv[0] ending in
/// `xenraid` and argv[1] `monitor`.
pub fn monitor_running(src: &dyn HostSource) -> MonitorState {
    let Ok(entries) = src.list_dir("/proc") else {
        return MonitorState::Unknown("/proc is not readable".into());
    };
    let running = entries
        .iter()
        .filter(|e| e.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| src.read_to_string(&format!("/proc/{pid}/cmdline")).ok())
        .any(|cmdline| {
            let mut args = cmdline.split('\0');
            args.next().is_some_and(|a| a.ends_with("xenraid")) && args.next() == Some("monitor")
        });
    if running {
        MonitorState::Active
    } else {
        MonitorState::Inactive("not running".into())
    }
}

/// No systemd: init keeps the monitor running from an inittab `respawn` entry.
pub(super) fn check_monitor(facts: &DoctorFacts) -> Check {
    const NAME: &str = "monitor";
    let subject = Some(INITTAB);
    match (&facts.monitor, facts.monitor_unit_installed) {
        (MonitorState::Active, true) => check(
            NAME,
            subject,
            Status::Pass,
            "xenraid monitor runs, respawned by init".into(),
        ),
        (MonitorState::Active, false) => check(
            NAME,
            subject,
            Status::Warn,
            "xenraid monitor runs, but no inittab entry starts it again after a reboot or a crash"
                .into(),
        )
        .with_fix(format!(
            "add `{}` to /etc/inittab, then `telinit q`",
            MONITOR_ENTRY
        )),
        (MonitorState::Inactive(state), true) => check(
            NAME,
            subject,
            Status::Fail,
            format!("xenraid monitor {state}, though inittab has its entry"),
        )
        .with_fix("telinit q (init reads inittab again and starts it)"),
        (MonitorState::Inactive(state), false) => check(
            NAME,
            subject,
            Status::Fail,
            format!("xenraid monitor {state}; this host has SysV init and no inittab entry for it"),
        )
        .with_fix(format!(
            "add `{}` to /etc/inittab, then `telinit q`",
            MONITOR_ENTRY
        )),
        (MonitorState::Unknown(why), _) => check(
            NAME,
            subject,
            Status::Warn,
            format!("cannot tell whether xenraid monitor runs: {why}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_found_by_its_process_not_its_id() {
        let tab = "id:3:initdefault:\nl3:3:wait:/etc/rc.d/rc 3\n";
        assert_eq!(monitor_entry(tab), None);
        let with = with_monitor_entry(tab);
        assert_eq!(monitor_entry(&with), Some(MONITOR_ENTRY));
        assert!(with.starts_with(tab));
        let own = "mo:35:respawn:/opt/bin/xenraid monitor\n";
        assert_eq!(
            monitor_entry(own),
            Some("mo:35:respawn:/opt/bin/xenraid monitor")
        );
        assert_eq!(
            monitor_entry("#xm:2345:respawn:/usr/sbin/xenraid monitor\n"),
            None
        );
        assert_eq!(
            monitor_entry("xr:2345:once:/var/lib/xenraid/xenraid resume --yes\n"),
            None
        );
    }
}
