//! `xenraid replace` planning on a converted two-disk XenServer 7 host: the lab's captured
//! xs7-bios host (sdb the system disk, sda the second disk) with sda given sdb's partitions and
//! the four mirrors convert makes of them; then one disk pulled, failed, or back again, and new
//! disks good and bad.

use std::path::PathBuf;

use xenraid::host::parse::mdstat::{MdstatArray, MdstatMember};
use xenraid::host::{discover, Disk, HostFacts, HostSource, MdArray, Partition, RootedSource};
use xenraid::plan::render::render_plan;
use xenraid::plan::replace::{build_replace_plan, same_md_uuid, ReplaceIntent};
use xenraid::plan::{Action, Plan};

const ROLES: [(u32, &str, &str); 4] = [
    (1, "root", "60e806ea:e9c55d05:e474ee3e:43ca41fd"),
    (2, "backup", "48ad19eb:695c947f:c8426838:4d6bccfb"),
    (5, "logs", "e584df73:84cfec66:8f3e6a38:478e5b48"),
    (6, "swap", "bc1838df:2b1c2d4e:e472e6a4:51b14574"),
];
const SYS: &str = "/dev/disk/by-id/wwn-0x5000c500a0000001";
const TGT: &str = "/dev/disk/by-id/wwn-0x5000c500a0000002";

fn blkid_uuid(mdadm: &str) -> String {
    let h = mdadm.replace(':', "");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

type Roles = [(u32, &'static str, &'static str)];

fn as_member(p: &Partition, disk: &str, roles: &Roles) -> Partition {
    let mut p = p.clone();
    p.name = format!("{disk}{}", p.number);
    if let Some((_, _, uuid)) = roles.iter().find(|(n, _, _)| *n == p.number) {
        p.fs_type = Some("linux_raid_member".into());
        p.uuid = Some(blkid_uuid(uuid));
        p.label = None;
        p.mount_point = None;
        p.swap = false;
        p.holders = vec![format!("md12{}", p.number)];
    }
    p
}

/// Both disks in every mirror, bitmaps on.
fn converted() -> HostFacts {
    converted_from("xs7-bios")
}

fn converted_from(fixture: &str) -> HostFacts {
    converted_with(fixture, &ROLES, "1.2")
}

fn converted_with(fixture: &str, roles: &Roles, metadata: &str) -> HostFacts {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lab")
        .join(fixture);
    let source = RootedSource::captured(&root);
    let mut facts = discover(&source as &dyn HostSource).unwrap();
    // The captured system disk's table on both disks.
    let sys = facts
        .disks
        .iter()
        .find(|d| !d.partitions.is_empty())
        .unwrap()
        .clone();
    for d in facts.disks.iter_mut() {
        d.partitions = sys
            .partitions
            .iter()
            .map(|p| as_member(p, &d.name, roles))
            .collect();
        d.probe.pt_type = Some("gpt".into());
    }
    facts.arrays = roles
        .iter()
        .map(|(n, role, uuid)| MdArray {
            // 0.90 superblocks carry no name: 6.5's arrays are md0, md1, md2.
            name: if metadata == "0.90" {
                format!("md{}", n - 1)
            } else {
                format!("md12{n}")
            },
            dev: Some(format!("9:12{n}")),
            uuid: Some(uuid.to_string()),
            md_name: (metadata != "0.90").then(|| format!("xenraid:{role}")),
            level: Some("raid1".into()),
            metadata: Some(metadata.into()),
            array_state: Some("clean".into()),
            degraded: Some(0),
            sync_action: Some("idle".into()),
            members: vec![format!("sdb{n}"), format!("sda{n}")],
            mdstat: Some(MdstatArray {
                name: format!("md12{n}"),
                active: true,
                level: Some("raid1".into()),
                members: vec![
                    MdstatMember {
                        device: format!("sdb{n}"),
                        slot: Some(0),
                        ..Default::default()
                    },
                    MdstatMember {
                        device: format!("sda{n}"),
                        slot: Some(1),
                        ..Default::default()
                    },
                ],
                superblock: Some(metadata.into()),
                raid_disks: Some(2),
                working_disks: Some(2),
                status: Some("[UU]".into()),
                bitmap: Some("0/1 pages [0KB], 65536KB chunk".into()),
                ..Default::default()
            }),
        })
        .collect();
    facts
}

/// Disk `name` pulled: md lists its members as faulty, the disk itself is gone.
fn pulled(mut facts: HostFacts, name: &str) -> HostFacts {
    facts.disks.retain(|d| d.name != name);
    for a in facts.arrays.iter_mut() {
        a.degraded = Some(1);
        let m = a.mdstat.as_mut().unwrap();
        m.status = Some("[U_]".into());
        m.working_disks = Some(1);
        for x in m.members.iter_mut().filter(|x| x.device.starts_with(name)) {
            x.faulty = true;
        }
    }
    facts
}

fn blank(name: &str, serial: &str, wwn: &str, gib: u64) -> Disk {
    let mut d = converted().disk("sda").unwrap().clone();
    d.name = name.into();
    d.dev = "8:32".into();
    d.serial = Some(serial.into());
    d.wwn = Some(wwn.into());
    d.by_id = vec![format!("wwn-{wwn}")];
    d.size_bytes = gib << 30;
    d.partitions.clear();
    d.probe = Default::default();
    d.holders.clear();
    d
}

fn intent() -> ReplaceIntent {
    ReplaceIntent {
        known_disks: converted().disks.iter().map(|d| d.identity()).collect(),
        ..Default::default()
    }
}

fn ids(plan: &Plan) -> Vec<String> {
    plan.phases
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.id.clone()))
        .collect()
}

fn argv(plan: &Plan) -> Vec<String> {
    plan.phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .flat_map(|s| s.actions.iter())
        .filter_map(|a| match a {
            Action::Run { argv } => Some(argv.join(" ")),
            _ => None,
        })
        .collect()
}

fn refusal(plan: &Plan) -> String {
    assert!(plan.refused(), "expected a refusal: {}", render_plan(plan));
    assert!(plan.phases.is_empty(), "a refused plan runs nothing");
    plan.preflight
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {} (fix: {})", c.name, c.message, c.fix))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_pulled_disk_is_named_by_serial_and_its_stale_members_let_go() {
    let facts = pulled(converted(), "sdb");
    let plan = build_replace_plan(&facts, &intent());
    assert!(!plan.refused(), "{}", render_plan(&plan));
    assert_eq!(
        ids(&plan),
        [
            "remove-gone-root",
            "remove-gone-backup",
            "remove-gone-logs",
            "remove-gone-swap"
        ]
    );
    let notes = plan.notes.join("\n");
    assert!(notes.contains("serial XRLAB-SYS0"), "{notes}");
    assert!(notes.contains(SYS), "{notes}");
    assert!(notes.contains("xenraid replace --new"), "{notes}");
    assert_eq!(plan.source.as_ref().unwrap().by_id, TGT, "the healthy disk");
}

#[test]
fn a_new_disk_gets_the_healthy_table_every_member_grub_and_a_resync() {
    let mut facts = pulled(converted(), "sdb");
    facts
        .disks
        .push(blank("sdc", "XRLAB-NEW0", "0x5000c500a0000009", 4));
    let plan = build_replace_plan(
        &facts,
        &ReplaceIntent {
            new: Some("/dev/disk/by-id/wwn-0x5000c500a0000009".into()),
            ..intent()
        },
    );
    assert!(!plan.refused(), "{}", render_plan(&plan));
    insta::assert_snapshot!("replace-pulled-new-disk", render_plan(&plan));
    let cmds = argv(&plan);
    let new = "/dev/disk/by-id/wwn-0x5000c500a0000009";
    assert!(cmds.contains(&format!("sgdisk --replicate={new} {TGT}")));
    assert!(cmds.contains(&format!("mdadm /dev/md/root --add {new}-part1")));
    assert!(cmds.contains(&format!("grub-install --target=i386-pc {new}")));
    assert!(
        !cmds
            .iter()
            .any(|c| c.contains(TGT) && !c.contains("--replicate")),
        "the healthy disk is only read: {cmds:#?}"
    );
    assert_eq!(ids(&plan).last().unwrap(), "wait-resync");
}

#[test]
fn the_healthy_disk_as_new_is_refused() {
    let facts = pulled(converted(), "sdb");
    let plan = build_replace_plan(
        &facts,
        &ReplaceIntent {
            new: Some(TGT.into()),
            ..intent()
        },
    );
    let why = refusal(&plan);
    assert!(why.contains("new-disk-not-healthy"), "{why}");
    assert!(why.contains("only working copy"), "{why}");
}

#[test]
fn a_smaller_new_disk_is_refused_with_the_size_needed() {
    let mut facts = pulled(converted(), "sdb");
    facts
        .disks
        .push(blank("sdc", "XRLAB-NEW0", "0x5000c500a0000009", 2));
    let plan = build_replace_plan(
        &facts,
        &ReplaceIntent {
            new: Some("/dev/sdc".into()),
            ..intent()
        },
    );
    let why = refusal(&plan);
    assert!(why.contains("new-disk-large-enough"), "{why}");
    assert!(why.contains("too small"), "{why}");
}

#[test]
fn a_new_disk_in_use_is_refused_even_with_wipe() {
    let mut facts = pulled(converted(), "sdb");
    let mut busy = blank("sdc", "XRLAB-NEW0", "0x5000c500a0000009", 4);
    let mut part = converted().disk("sdb").unwrap().partitions[0].clone();
    part.name = "sdc1".into();
    part.mount_point = Some("/mnt/data".into());
    part.fs_type = Some("ext4".into());
    part.uuid = Some("9d1c3b1e-0000-4000-8000-000000000001".into());
    part.holders.clear();
    busy.partitions.push(part);
    busy.probe.pt_type = Some("gpt".into());
    facts.disks.push(busy);
    let plan = build_replace_plan(
        &facts,
        &ReplaceIntent {
            new: Some("/dev/sdc".into()),
            wipe_target: true,
            ..intent()
        },
    );
    let why = refusal(&plan);
    assert!(why.contains("mounted on /mnt/data"), "{why}");
}

#[test]
fn a_new_disk_with_data_needs_wipe_target() {
    let mut facts = pulled(converted(), "sdb");
    let mut used = blank("sdc", "XRLAB-NEW0", "0x5000c500a0000009", 4);
    used.probe.pt_type = Some("dos".into());
    facts.disks.push(used);
    let asked = |wipe| {
        build_replace_plan(
            &facts,
            &ReplaceIntent {
                new: Some("/dev/sdc".into()),
                wipe_target: wipe,
                ..intent()
            },
        )
    };
    let why = refusal(&asked(false));
    assert!(why.contains("--wipe-target"), "{why}");
    let wiped = asked(true);
    assert!(!wiped.refused());
    assert_eq!(ids(&wiped)[4], "wipe-new");
}

#[test]
fn a_member_disk_that_came_back_is_re_added_not_rebuilt() {
    let mut facts = pulled(converted(), "sdb");
    // The same disk, back under a new kernel name.
    let mut back = converted().disk("sdb").unwrap().clone();
    back.name = "sdc".into();
    for p in back.partitions.iter_mut() {
        p.name = format!("sdc{}", p.number);
        p.holders.clear();
    }
    facts.disks.push(back);
    let plan = build_replace_plan(&facts, &intent());
    assert!(!plan.refused(), "{}", render_plan(&plan));
    let cmds = argv(&plan);
    assert!(
        cmds.contains(&format!("mdadm /dev/md/root --re-add {SYS}-part1")),
        "{cmds:#?}"
    );
    assert!(
        !cmds.iter().any(|c| c.contains("sgdisk")),
        "not repartitioned"
    );
    assert!(plan.notes.join(" ").contains("came back"));

    // Without a bitmap md rebuilds the whole member: the plan says --add.
    for a in facts.arrays.iter_mut() {
        a.mdstat.as_mut().unwrap().bitmap = None;
    }
    let plan = build_replace_plan(&facts, &intent());
    assert!(argv(&plan).contains(&format!("mdadm /dev/md/root --add {SYS}-part1")));
}

#[test]
fn failed_members_on_a_present_disk_are_failed_and_removed_everywhere() {
    let mut facts = converted();
    let m = facts.arrays[0].mdstat.as_mut().unwrap();
    m.members[0].faulty = true;
    m.status = Some("[_U]".into());
    facts.arrays[0].degraded = Some(1);
    let plan = build_replace_plan(&facts, &intent());
    assert!(!plan.refused(), "{}", render_plan(&plan));
    assert_eq!(
        ids(&plan),
        ["remove-root", "remove-backup", "remove-logs", "remove-swap"]
    );
    assert!(argv(&plan).contains(&format!(
        "mdadm /dev/md/root --fail {SYS}-part1 --remove {SYS}-part1"
    )));
    assert!(plan.notes.join(" ").contains("XRLAB-SYS0"));
}

#[test]
fn complete_mirrors_need_failed_or_spare() {
    let plan = build_replace_plan(&converted(), &intent());
    let why = refusal(&plan);
    assert!(why.contains("every array is complete"), "{why}");

    let mut facts = converted();
    facts
        .disks
        .push(blank("sdc", "XRLAB-NEW0", "0x5000c500a0000009", 4));
    let spare = build_replace_plan(
        &facts,
        &ReplaceIntent {
            new: Some("/dev/sdc".into()),
            spare: true,
            ..intent()
        },
    );
    assert!(!spare.refused(), "{}", render_plan(&spare));
    assert!(ids(&spare).contains(&"add-member-root".to_string()));
    assert!(!ids(&spare).contains(&"wait-resync".to_string()));
}

#[test]
fn md_uuids_match_in_blkid_and_mdadm_spelling() {
    let mdadm = "60e806ea:e9c55d05:e474ee3e:43ca41fd";
    assert!(same_md_uuid(&blkid_uuid(mdadm), mdadm));
    // 0.90: blkid prints each word byte-swapped.
    assert!(same_md_uuid("ea06e860-055d-c5e9-3eee-74e4fd41ca43", mdadm));
    assert!(!same_md_uuid("48ad19eb-695c-947f-c842-68384d6bccfb", mdadm));
}

#[test]
fn uefi_the_new_disk_gets_an_esp_with_the_lost_ones_id_and_its_own_boot_entry() {
    let mut facts = converted_from("xcpng8-uefi");
    // Each disk's ESP has a volume id of its own; fstab mounts sdb's.
    let esp = "BD0B-82A7".to_string();
    for d in facts.disks.iter_mut().filter(|d| d.name == "sdb") {
        for p in d.partitions.iter_mut().filter(|p| p.is_esp()) {
            p.uuid = Some(esp.clone());
        }
    }
    let boot_efi = facts
        .fstab
        .iter_mut()
        .find(|e| e.file == "/boot/efi")
        .unwrap();
    boot_efi.spec = format!("UUID={esp}");
    let mut facts = pulled(facts, "sdb");
    facts
        .disks
        .push(blank("sdc", "XRLAB-NEW0", "0x5000c500a0000009", 4));
    let plan = build_replace_plan(
        &facts,
        &ReplaceIntent {
            new: Some("/dev/sdc".into()),
            ..intent()
        },
    );
    assert!(!plan.refused(), "{}", render_plan(&plan));
    let new = "/dev/disk/by-id/wwn-0x5000c500a0000009";
    let id: String = esp.chars().filter(char::is_ascii_hexdigit).collect();
    let cmds = argv(&plan);
    assert!(
        cmds.contains(&format!("mkfs.vfat -F 32 -n XRAID-ESP -i {id} {new}-part4")),
        "{cmds:#?}"
    );
    assert!(cmds.iter().any(|c| c.starts_with(&format!(
        "efibootmgr --create-only --disk {new} --part 4 --label XCP-ng (xenraid XRLAB-NEW0)"
    ))));
    assert!(!cmds.iter().any(|c| c.starts_with("grub-install")));
    let ids = ids(&plan);
    let first_member = ids
        .iter()
        .position(|i| i.starts_with("add-member"))
        .unwrap();
    let entry = ids.iter().position(|i| i == "boot-entry-new").unwrap();
    assert!(entry < first_member, "boot loader before members: {ids:?}");
    assert!(plan.phases[0]
        .steps
        .iter()
        .any(|s| s.actions.iter().any(|a| matches!(
            a,
            Action::EfiBootOrderFirst { labels } if labels[1] == "XCP-ng (xenraid XRLAB-NEW0)"
        ))));
}

const XS65_ROLES: [(u32, &str, &str); 3] = [
    (1, "root", "0c0ffee0:11111111:22222222:33333333"),
    (2, "backup", "0c0ffee0:44444444:55555555:66666666"),
    (3, "sr", "0c0ffee0:77777777:88888888:99999999"),
];

/// A converted 6.5 host (md 0.90 on p1, p2, p3 of both disks) whose system disk sda was
/// pulled, and a blank sdc in its place.
fn xs65_replace(spare: bool) -> Plan {
    let converted = converted_with("xs65-bios", &XS65_ROLES, "0.90");
    let known_disks = converted.disks.iter().map(|d| d.identity()).collect();
    let mut facts = if spare {
        converted
    } else {
        pulled(converted, "sda")
    };
    facts
        .disks
        .push(blank("sdc", "XRLAB-NEW0", "0x5000c500a0000009", 4));
    let plan = build_replace_plan(
        &facts,
        &ReplaceIntent {
            new: Some("/dev/sdc".into()),
            spare,
            known_disks,
            ..Default::default()
        },
    );
    assert!(!plan.refused(), "{}", render_plan(&plan));
    plan
}

#[test]
fn xs65_the_new_disk_is_flagged_bootable_only_once_its_root_member_is_in_sync() {
    // gptmbr.bin starts the first flagged partition; flagged while its member still rebuilds,
    // a BIOS that starts the new disk would run a blank extlinux boot sector.
    let plan = xs65_replace(false);
    let new = "/dev/disk/by-id/wwn-0x5000c500a0000009";
    let ids = ids(&plan);
    let pos = |id: &str| {
        ids.iter()
            .position(|i| i == id)
            .unwrap_or_else(|| panic!("no {id} in {ids:?}"))
    };
    assert!(pos("bootloader-new") < pos("add-member-md0"), "{ids:?}");
    assert!(pos("wait-resync") < pos("boot-flag-new"), "{ids:?}");
    let steps: Vec<_> = plan.phases.iter().flat_map(|p| &p.steps).collect();
    let mut flagged_before_sync = false;
    let mut in_sync = false;
    for step in &steps {
        for action in &step.actions {
            match action {
                Action::WaitSync { .. } | Action::RequireSync { .. } => in_sync = true,
                Action::Run { argv } if argv[0] == "sgdisk" => {
                    let flags = argv.iter().any(|a| a.ends_with(":set:2"));
                    flagged_before_sync |= flags && !in_sync;
                }
                _ => {}
            }
        }
    }
    assert!(!flagged_before_sync, "{}", render_plan(&plan));
    // With --no-wait the run stops before the flag until root's array is in sync.
    let flag_step = steps.iter().find(|s| s.id == "boot-flag-new").unwrap();
    assert_eq!(
        flag_step.actions[0],
        Action::RequireSync {
            devices: vec!["/dev/md0".into()]
        }
    );
    let cmds = argv(&plan);
    assert!(
        cmds.iter().any(|c| c.starts_with("dd if=")
            && c.ends_with(&format!("gptmbr.bin of={new} bs=440 count=1 conv=notrunc"))),
        "{cmds:#?}"
    );
    assert_eq!(
        cmds.last().unwrap(),
        &format!("sgdisk --attributes=1:set:2 {new}")
    );
    assert!(!cmds.iter().any(|c| c.starts_with("grub-install")));
}

#[test]
fn xs65_a_spare_gets_gptmbr_but_no_flag_and_the_note_says_doctor_sets_it() {
    let plan = xs65_replace(true);
    let cmds = argv(&plan);
    assert!(cmds.iter().any(|c| c.starts_with("dd if=")), "{cmds:#?}");
    assert!(!cmds.iter().any(|c| c.contains(":set:2")), "{cmds:#?}");
    let notes = plan.notes.join("\n");
    assert!(notes.contains("xenraid doctor --fix"), "{notes}");
}
