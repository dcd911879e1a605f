//! doctor's monitor check on a host without systemd (XenServer 6.5's CentOS 5 dom0): init keeps
//! `xenraid monitor` running from an inittab `respawn` entry, and `--fix` adds that entry.

mod doctor_host;

use std::fs;

use doctor_host::*;
use xenraid::doctor::fix::execute;
use xenraid::doctor::Status;
use xenraid::exec::RecordingRunner;

const CENTOS5_INITTAB: &str =
    "id:3:initdefault:\nsi::sysinit:/etc/rc.d/rc.sysinit\nl3:3:wait:/etc/rc.d/rc 3\n";
const ENTRY: &str = "xm:2345:respawn:/usr/sbin/xenraid monitor >>/var/log/xenraid-monitor.log 2>&1";

/// The healthy converted host, booted by SysV init: no systemd unit, no systemd run directory.
fn sysv_host() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, root) = healthy();
    fs::remove_dir_all(root.join("run/systemd")).unwrap();
    fs::remove_dir_all(root.join("etc/systemd")).unwrap();
    write(&root, "/etc/inittab", CENTOS5_INITTAB);
    write(&root, "/proc/1/comm", "init\n");
    (dir, root)
}

#[test]
fn without_an_inittab_entry_the_monitor_fails_and_fix_adds_the_entry_then_telinit_q() {
    let (_dir, root) = sysv_host();
    let r = report(&root);
    let m = find(&r, "monitor");
    assert_eq!(m.status, Status::Fail, "{m:#?}");
    assert!(m.seen.contains("no inittab entry"), "{}", m.seen);
    assert!(!m.fix.as_deref().unwrap().contains("systemctl"));
    assert_eq!(argvs(&r), ["write /etc/inittab", "telinit q"]);

    let runner = RecordingRunner::new().with_output(&["telinit", "q"], 0, "");
    let outcomes = execute(&r.fixes, &runner, &root);
    assert!(outcomes.iter().all(|o| o.ok), "{outcomes:#?}");
    let inittab = fs::read_to_string(root.join("etc/inittab")).unwrap();
    assert!(inittab.starts_with(CENTOS5_INITTAB), "{inittab}");
    assert!(inittab.ends_with(&format!("{ENTRY}\n")), "{inittab}");

    // Entry there, process not (yet) started: telinit q only, the entry is not written twice.
    let r = report(&root);
    assert_eq!(find(&r, "monitor").status, Status::Fail);
    assert_eq!(argvs(&r), ["telinit q"]);
}

#[test]
fn a_monitor_init_respawns_passes() {
    let (_dir, root) = sysv_host();
    write(&root, "/etc/inittab", format!("{CENTOS5_INITTAB}{ENTRY}\n"));
    write(&root, "/proc/4711/cmdline", "/usr/sbin/xenraid\0monitor\0");
    let r = report(&root);
    assert_eq!(find(&r, "monitor").status, Status::Pass);
    assert!(argvs(&r).is_empty(), "{:?}", argvs(&r));
}

#[test]
fn a_monitor_started_by_hand_without_an_entry_warns_and_fix_adds_the_entry() {
    let (_dir, root) = sysv_host();
    write(&root, "/proc/4711/cmdline", "/root/xenraid\0monitor\0");
    let r = report(&root);
    let m = find(&r, "monitor");
    assert_eq!(m.status, Status::Warn, "{m:#?}");
    assert_eq!(argvs(&r), ["write /etc/inittab", "telinit q"]);
}
