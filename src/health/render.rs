//! `xenraid status` for a person.

use std::fmt::Write;

use super::disks::{display_name, role_word};
use super::md_sysfs::{ArrayHealth, MemberRole};
use super::HealthReport;

pub fn render(report: &HealthReport) -> String {
    let mut out = String::new();
    for a in &report.arrays {
        render_array(&mut out, a, report);
    }
    if !report.disks.is_empty() {
        out.push_str("disks:\n");
    }
    for d in &report.disks {
        let _ = writeln!(
            out,
            "  {:<8} serial {:<20} {}  {}",
            d.name,
            d.serial.as_deref().unwrap_or("?"),
            if d.bootable {
                "bootable"
            } else {
                "CANNOT BOOT"
            },
            d.by_id.as_deref().unwrap_or("")
        );
        let _ = writeln!(out, "           serves {}", d.serves.join(", "));
    }
    for p in &report.verdict.problems {
        let _ = write!(out, "{}: {} {}", p.severity.word(), p.subject, p.what);
        if let Some(fix) = &p.fix {
            let _ = write!(out, "\n  fix: {fix}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", report.verdict.summary);
    out
}

fn map(a: &ArrayHealth) -> String {
    let mut slots = vec!['_'; a.raid_disks as usize];
    for m in &a.members {
        if let Some(s) = m.slot.filter(|s| (*s as usize) < slots.len()) {
            if m.role == MemberRole::Active {
                slots[s as usize] = 'U';
            }
        }
    }
    format!("[{}]", slots.into_iter().collect::<String>())
}

fn render_array(out: &mut String, a: &ArrayHealth, report: &HealthReport) {
    let _ = writeln!(
        out,
        "{:<14} {:<7} {} {} {} bitmap {} metadata {} size {:.1} GiB",
        display_name(a),
        a.device,
        a.level,
        a.state,
        map(a),
        a.bitmap.as_deref().unwrap_or("NONE"),
        a.metadata.as_deref().unwrap_or("?"),
        a.size_bytes as f64 / (1u64 << 30) as f64
    );
    for m in &a.members {
        let serial = m
            .disk
            .as_ref()
            .and_then(|d| report.disks.iter().find(|x| &x.name == d))
            .and_then(|d| d.serial.as_deref())
            .unwrap_or("?");
        let slot = m.slot.map_or("-".to_string(), |s| s.to_string());
        let _ = write!(
            out,
            "    slot {slot:<2} {:<10} {:<10} serial {serial}",
            m.device,
            role_word(m.role)
        );
        if m.errors > 0 {
            let _ = write!(out, "  {} read errors corrected", m.errors);
        }
        out.push('\n');
    }
    if let Some(s) = &a.sync {
        let _ = write!(out, "    {} {:.1}%", a.sync_action, s.percent());
        if let Some(speed) = s.speed_kib {
            let _ = write!(out, "  {speed} KiB/s");
        }
        if let Some(eta) = s.eta_seconds {
            let _ = write!(out, "  ETA {}m{:02}s", eta / 60, eta % 60);
        }
        out.push('\n');
    }
    if a.sync_delayed {
        let _ = writeln!(
            out,
            "    {} waiting: another array on the same disk syncs first",
            a.sync_action
        );
    }
    if let Some(n) = a.mismatch_sectors.filter(|n| *n > 0) {
        let _ = writeln!(out, "    mismatch_cnt {n}");
    }
}
