//! Human output: one line per check, then what `--fix` would do or did.

use std::fmt::Write;

use super::checks::Check;
use super::DoctorReport;

pub fn check_line(c: &Check) -> String {
    let mut line = format!("{} {}", c.status.word(), c.name);
    if let Some(subject) = &c.subject {
        line += &format!(" {subject}");
    }
    line += &format!(" — {}", c.seen);
    if let Some(fix) = &c.fix {
        line += &format!("; fix: {fix}");
    }
    line
}

pub fn render(report: &DoctorReport) -> String {
    let mut out = String::new();
    for c in &report.checks {
        let _ = writeln!(out, "{}", check_line(c));
    }
    for w in &report.warnings {
        let _ = writeln!(out, "note: {w}");
    }
    if report.after_fix.is_none() {
        if !report.fixes.is_empty() {
            let _ = writeln!(out, "\n`xenraid doctor --fix` would:");
            for a in &report.fixes {
                for step in &a.steps {
                    let _ = writeln!(out, "  [{}] {step}", a.check);
                }
            }
        }
        return out;
    }
    let _ = writeln!(out, "\nfixes:");
    for o in &report.outcomes {
        let subject = o
            .subject
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let word = if o.ok { "done" } else { "FAILED" };
        let _ = writeln!(out, "  {word} {}{subject}: {}", o.check, o.detail);
    }
    let _ = writeln!(out, "\nafter the fixes:");
    for c in report.final_checks() {
        let _ = writeln!(out, "{}", check_line(c));
    }
    out
}
