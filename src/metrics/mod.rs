//! Prometheus text exposition of a `HealthReport`, for node_exporter's textfile collector
//! (`textfile`) or a scrape of our own (`http`).
//!
//! The `node_md_*` families carry node_exporter's mdadm collector names, labels, help texts
//! and meanings, so dashboards and alerts written for it work unchanged:
//!
//! * `node_md_disks{device,state}`: state `active` = members in sync (`raid_disks - degraded`,
//!   the second number of mdstat's `[2/1]`), `failed` = faulty members (`(F)`), `spare` =
//!   members without a slot (`(S)`);
//! * `node_md_disks_required{device}` = `raid_disks`;
//! * `node_md_state{device,state}`: one of active, inactive, recovering, resync, check is 1;
//! * `node_md_blocks{device}` = array size in KiB (mdstat's "blocks");
//! * `node_md_blocks_synced{device}` = KiB done by the running sync, the whole size when none
//!   runs, 0 while it waits its turn (`resync=DELAYED`).
//!
//! One deliberate difference: node_exporter reads /proc/mdstat, where a delayed check or
//! recovery prints as `resync=DELAYED` and so counts as `resync`; here the state follows
//! `sync_action` (a delayed check is `check`). A `repair` is `resync`, as in mdstat.
//!
//! Do not feed `node_md_*` from both node_exporter's own mdadm collector and this textfile:
//! the same series twice makes node_exporter report a gathering error. `--no-node-md` leaves
//! them out.

pub mod http;
pub mod textfile;

use std::fmt::Write as _;

use crate::health::md_sysfs::{ArrayHealth, MemberRole};
use crate::health::{disks::role_word, HealthReport, Severity};

/// Default textfile, where node_exporter packages point `--collector.textfile.directory`.
pub const DEFAULT_TEXTFILE: &str = "/var/lib/node_exporter/textfile_collector/xenraid.prom";
/// Default listener: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9747";

/// What goes into the exposition besides the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsOptions {
    /// When the monitor last raised an alert (Unix seconds); the sample is left out when None.
    pub last_alert_unix: Option<u64>,
    /// Leave out the `node_md_*` families (node_exporter's own mdadm collector exports them).
    pub skip_node_md: bool,
}

/// The kernel's sync states as node_exporter labels them, in its order.
const MD_STATES: [&str; 5] = ["active", "inactive", "recovering", "resync", "check"];

/// One metric family being written: HELP and TYPE first, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn family<'a>(out: &'a mut String, name: &'static str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} gauge");
    Family { out, name }
}

/// A label value as the text format wants it: `\` `"` and newline escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: `\` and newline escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// node_exporter's `node_md_state` label for an array.
pub fn md_state(a: &ArrayHealth) -> &'static str {
    if a.state == "inactive" {
        return "inactive";
    }
    match a.sync_action.as_str() {
        "recover" => "recovering",
        "resync" | "repair" => "resync",
        "check" => "check",
        _ => "active",
    }
}

/// KiB synced, as mdstat's "(done/total)": the size when nothing runs, 0 while delayed.
fn blocks_synced(a: &ArrayHealth, blocks: u64) -> u64 {
    if md_state(a) == "active" || md_state(a) == "inactive" {
        return blocks;
    }
    a.sync.as_ref().map(|s| s.done_sectors / 2).unwrap_or(0)
}

fn severity_value(s: Severity) -> u64 {
    s.exit_code() as u64
}

/// The whole exposition, families in a fixed order, arrays in kernel-name order.
pub fn render(report: &HealthReport, options: &MetricsOptions) -> String {
    let mut out = String::new();
    let arrays = &report.arrays;
    if !options.skip_node_md {
        render_node_md(&mut out, arrays);
    }

    let mut f = family(
        &mut out,
        "xenraid_md_info",
        "An md array: its stable name (/dev/md/NAME), level, metadata and UUID; always 1.",
    );
    for a in arrays {
        f.sample(
            &[
                ("device", &a.device),
                ("name", a.name.as_deref().unwrap_or("")),
                ("level", &a.level),
                ("metadata", a.metadata.as_deref().unwrap_or("")),
                ("uuid", a.uuid.as_deref().unwrap_or("")),
            ],
            1,
        );
    }
    let mut f = family(
        &mut out,
        "xenraid_md_degraded",
        "Members missing from the array (md's degraded count).",
    );
    for a in arrays {
        f.sample(&[("device", &a.device)], a.missing.into());
    }
    let mut f = family(
        &mut out,
        "xenraid_md_bitmap_present",
        "1 when the array has a write-intent bitmap (a crash or a briefly lost member resyncs only what changed).",
    );
    for a in arrays {
        f.sample(&[("device", &a.device)], a.bitmap.is_some().into());
    }
    let mut f = family(
        &mut out,
        "xenraid_md_mismatch_sectors",
        "Sectors found to differ between the members by the last check or repair (mismatch_cnt).",
    );
    for a in arrays {
        if let Some(m) = a.mismatch_sectors {
            f.sample(&[("device", &a.device)], m);
        }
    }
    let mut f = family(
        &mut out,
        "xenraid_md_member_state",
        "A member of an array: its partition, whole disk, disk serial and role (active, rebuilding, spare, faulty); always 1.",
    );
    for a in arrays {
        for m in &a.members {
            let disk = m.disk.as_deref().unwrap_or("");
            f.sample(
                &[
                    ("device", &a.device),
                    ("member", &m.device),
                    ("disk", disk),
                    ("serial", serial_of(report, disk)),
                    ("role", role_word(m.role)),
                ],
                1,
            );
        }
    }
    let mut f = family(
        &mut out,
        "xenraid_disk_bootable",
        "1 when firmware could start the system from this disk alone (BIOS boot code or an EFI system partition).",
    );
    for d in &report.disks {
        f.sample(
            &[
                ("disk", &d.name),
                ("serial", d.serial.as_deref().unwrap_or("")),
            ],
            d.bootable.into(),
        );
    }
    family(
        &mut out,
        "xenraid_health_severity",
        "The verdict of xenraid status --check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    )
    .sample(&[], severity_value(report.verdict.severity));
    let mut f = family(
        &mut out,
        "xenraid_last_alert_timestamp_seconds",
        "When the monitor last raised an alert, in seconds since the epoch.",
    );
    if let Some(t) = options.last_alert_unix {
        f.sample(&[], t);
    }
    out
}

fn serial_of<'a>(report: &'a HealthReport, disk: &str) -> &'a str {
    report
        .disks
        .iter()
        .find(|d| d.name == disk)
        .and_then(|d| d.serial.as_deref())
        .unwrap_or("")
}

fn render_node_md(out: &mut String, arrays: &[ArrayHealth]) {
    let count = |a: &ArrayHealth, role: MemberRole| {
        a.members.iter().filter(|m| m.role == role).count() as u64
    };
    let mut f = family(out, "node_md_blocks", "Total number of blocks on device.");
    for a in arrays {
        f.sample(&[("device", &a.device)], a.size_bytes / 1024);
    }
    let mut f = family(
        out,
        "node_md_blocks_synced",
        "Number of blocks synced on device.",
    );
    for a in arrays {
        f.sample(
            &[("device", &a.device)],
            blocks_synced(a, a.size_bytes / 1024),
        );
    }
    let mut f = family(
        out,
        "node_md_disks",
        "Number of active/failed/spare disks of device.",
    );
    for a in arrays {
        let active = a.raid_disks.saturating_sub(a.missing) as u64;
        f.sample(&[("device", &a.device), ("state", "active")], active);
        f.sample(
            &[("device", &a.device), ("state", "failed")],
            count(a, MemberRole::Faulty),
        );
        f.sample(
            &[("device", &a.device), ("state", "spare")],
            count(a, MemberRole::Spare),
        );
    }
    let mut f = family(
        out,
        "node_md_disks_required",
        "Total number of disks of device.",
    );
    for a in arrays {
        f.sample(&[("device", &a.device)], a.raid_disks.into());
    }
    let mut f = family(out, "node_md_state", "Indicates the state of md-device.");
    for a in arrays {
        let now = md_state(a);
        for s in MD_STATES {
            f.sample(&[("device", &a.device), ("state", s)], (s == now).into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn an_empty_report_still_declares_every_family() {
        let report = HealthReport {
            arrays: vec![],
            disks: vec![],
            verdict: crate::health::verdict::judge(&[], &[], true),
        };
        let text = render(&report, &MetricsOptions::default());
        assert!(text.contains("# TYPE node_md_state gauge\n"));
        assert!(text.contains("xenraid_health_severity 3\n"));
        assert!(!text
            .lines()
            .any(|l| l.starts_with("xenraid_last_alert_timestamp_seconds")));
        let text = render(
            &report,
            &MetricsOptions {
                last_alert_unix: Some(1_700_000_000),
                skip_node_md: true,
            },
        );
        assert!(!text.contains("node_md_"));
        assert!(text.contains("xenraid_last_alert_timestamp_seconds 1700000000\n"));
    }
}
