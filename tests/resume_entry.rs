//! How a converted host resumes after its reboot: a one-shot unit under systemd, an inittab
//! entry under SysV init (XenServer 6.5's CentOS 5 dom0); the finish takes either away again.

mod common;

use common::plan_for;
use xenraid::plan::{Action, Plan};

fn edit<'a>(plan: &'a Plan, step: &str, path: &str) -> &'a str {
    plan.phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| s.id == step)
        .flat_map(|s| &s.actions)
        .find_map(|a| match a {
            Action::EditFile {
                path: p,
                new_content,
                ..
            } if p == path => Some(new_content.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{step} edits no {path}"))
}

#[test]
fn on_65_the_entry_runs_once_after_the_runlevel_scripts_and_the_finish_restores_inittab() {
    let facts = common::facts("xs65-bios");
    let original = &facts.files["/etc/inittab"];
    let plan = plan_for("xs65-bios", "/dev/sdb");
    let with_entry = edit(&plan, "install-resume", "/run/xenraid/newroot/etc/inittab");
    let added = with_entry
        .strip_prefix(original.as_str())
        .expect("the original inittab is kept as it is, the entry appended");
    let entry = added
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("an entry");
    // once: started in the background, so a resync of hours holds up no login; in every
    // multi-user runlevel; after `l3:3:wait:/etc/rc.d/rc 3`, so after xapi has started;
    // --wait: being in the background it waits for the resync even after `convert --no-wait`.
    assert_eq!(
        entry,
        "xr:2345:once:/var/lib/xenraid/xenraid resume --yes --wait"
    );
    let rc = with_entry.find("l3:3:wait:").expect("rc 3");
    assert!(with_entry.find(entry).unwrap() > rc);
    assert_eq!(edit(&plan, "finish", "/etc/inittab"), original);
}

#[test]
fn on_systemd_hosts_nothing_touches_inittab() {
    for (fixture, target) in [
        ("xs7-bios-boot-p3", "/dev/sdb"),
        ("xcpng8-uefi", "/dev/disk/by-id/virtio-XR0TGT02"),
        ("debian-bios", "/dev/sdb"),
    ] {
        let plan = plan_for(fixture, target);
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("inittab"), "{fixture}");
        assert!(json.contains("xenraid-resume.service"), "{fixture}");
    }
}
