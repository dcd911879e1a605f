//! `add-mirror` planning on the lab's xs7-bios host made to look converted (an `sr` array
//! on sda, its ARRAY lines in mdadm.conf) with two new blank disks: the plan, each refusal,
//! and the plan run through the engine against a scripted machine.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;

use xenraid::convert::journal::{JournalState, StepStatus};
use xenraid::convert::system::System;
use xenraid::convert::{
    run_plan, ConvertError, Journal, JournalStore, Outcome, ResyncSpeed, RunOptions,
};
use xenraid::exec::{Command, CommandOutput, ExecError};
use xenraid::host::parse::lvm::PhysicalVolume;
use xenraid::host::{discover, Disk, HostFacts, HostSource, MdArray, Partition, RootedSource};
use xenraid::plan::add_mirror::{build_add_mirror_plan, AddMirrorIntent};
use xenraid::plan::render::render_plan;
use xenraid::plan::{Action, Check, DoneCheck, Plan, Writes};

const NEW1: &str = "/dev/disk/by-id/wwn-0x5000c500a0000011";
const NEW2: &str = "/dev/disk/by-id/wwn-0x5000c500a0000012";
const GIB: u64 = 1 << 30;
const CONVERTED_CONF: &str = "MAILADDR root\n\n# xenraid: arrays are assembled by UUID, never by scanning\nARRAY /dev/md/root metadata=1.2 UUID=11111111:22222222:33333333:44444444 name=xenraid:root\nARRAY /dev/md/sr metadata=1.2 UUID=55555555:66666666:77777777:88888888 name=xenraid:sr\n";

fn blank(template: &Disk, name: &str, serial: &str, wwn: u64, size: u64) -> Disk {
    let mut disk = template.clone();
    disk.name = name.into();
    disk.dev = format!("8:{}", 16 * (name.as_bytes()[2] - b'a'));
    disk.serial = Some(serial.into());
    disk.wwn = Some(format!("{wwn:#x}"));
    disk.by_id = vec![format!("scsi-3{wwn:x}"), format!("wwn-{wwn:#x}")];
    disk.size_bytes = size;
    disk
}

fn member(name: &str, number: u32, holder: &str) -> Partition {
    Partition {
        name: name.into(),
        number,
        dev: "8:1".into(),
        start_sector: 2048,
        size_sectors: 2048 * 1024,
        type_guid: Some(xenraid::host::GPT_LINUX_RAID.into()),
        part_name: None,
        part_uuid: None,
        legacy_bios_bootable: false,
        fs_type: Some("linux_raid_member".into()),
        label: Some("xenraid:sr".into()),
        uuid: None,
        ambivalent_signatures: false,
        mount_point: None,
        swap: false,
        holders: vec![holder.into()],
    }
}

/// sdb: the running system (mounted); sda: a member of the `sr` array; sdc, sdd: new and
/// blank (2 GiB, serials XRLAB-NEW1/2).
fn facts() -> HostFacts {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab/xs7-bios");
    let mut facts = discover(&RootedSource::captured(&root) as &dyn HostSource).unwrap();
    let template = facts.disk("sda").unwrap().clone();
    facts.disks.push(blank(
        &template,
        "sdc",
        "XRLAB-NEW1",
        0x5000c500a0000011,
        2 * GIB,
    ));
    facts.disks.push(blank(
        &template,
        "sdd",
        "XRLAB-NEW2",
        0x5000c500a0000012,
        2 * GIB,
    ));
    facts.disks[0].partitions = vec![member("sda1", 1, "md126")];
    facts.disks[0].probe.pt_type = Some("gpt".into());
    facts.arrays.push(MdArray {
        name: "md126".into(),
        dev: Some("9:126".into()),
        uuid: Some("55555555:66666666:77777777:88888888".into()),
        md_name: Some("xenraid:sr".into()),
        level: Some("raid1".into()),
        metadata: Some("1.2".into()),
        array_state: Some("clean".into()),
        degraded: Some(0),
        sync_action: Some("idle".into()),
        members: vec!["sda1".into()],
        mdstat: None,
    });
    facts
        .files
        .insert("/etc/mdadm.conf".into(), CONVERTED_CONF.into());
    facts
}

fn disk_mut<'f>(facts: &'f mut HostFacts, name: &str) -> &'f mut Disk {
    facts.disks.iter_mut().find(|d| d.name == name).unwrap()
}

fn intent(disks: &[&str]) -> AddMirrorIntent {
    AddMirrorIntent {
        disks: disks.iter().map(|d| d.to_string()).collect(),
        name: None,
        sr_name: Some("Mirror 2".into()),
        wipe: false,
    }
}

fn plan(facts: &HostFacts, intent: &AddMirrorIntent) -> Plan {
    build_add_mirror_plan(facts, intent)
}

fn failing(plan: &Plan) -> Vec<&str> {
    plan.preflight
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect()
}

fn check<'p>(plan: &'p Plan, name: &str) -> &'p Check {
    plan.preflight
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

/// Refused by exactly `name` (and perhaps the checks that follow from it), with nothing to
/// run, and the words a user needs.
fn assert_refused_by(plan: &Plan, name: &str, seen: &str, fix: &str) {
    assert!(plan.refused(), "{}", render_plan(plan));
    assert!(plan.phases.is_empty(), "a refused plan has no steps");
    let c = check(plan, name);
    assert!(!c.passed, "{name} passed: {}", render_plan(plan));
    assert!(c.message.contains(seen), "{name}: {}", c.message);
    assert!(c.fix.contains(fix), "{name} fix: {}", c.fix);
    let text = render_plan(plan);
    assert!(text.contains("REFUSED: nothing will be written"), "{text}");
}

fn argvs(plan: &Plan) -> Vec<Vec<String>> {
    plan.phases
        .iter()
        .flat_map(|p| &p.steps)
        .flat_map(|s| &s.actions)
        .filter_map(|a| match a {
            Action::Run { argv } => Some(argv.clone()),
            _ => None,
        })
        .collect()
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.phases
        .iter()
        .flat_map(|p| &p.steps)
        .map(|s| s.id.as_str())
        .collect()
}

#[test]
fn two_blank_disks_become_a_named_mirror_with_an_sr() {
    let facts = facts();
    let plan = plan(&facts, &intent(&["/dev/sdc", NEW2]));
    assert!(failing(&plan).is_empty(), "{}", render_plan(&plan));
    assert_eq!(
        ids(&plan),
        [
            "partition-a",
            "partition-b",
            "clear-signatures",
            "create-array",
            "write-mdadm-conf",
            "dracut-config",
            "build-initramfs",
            "create-sr",
            "wait-resync"
        ]
    );
    // `sr` is taken by the conversion's array: the first free default is sr2.
    let array = &plan.arrays[0];
    assert_eq!(array.device, "/dev/md/sr2");
    let create = argvs(&plan)
        .into_iter()
        .find(|a| a[..2] == ["mdadm", "--create"])
        .unwrap();
    for want in [
        "--bitmap=internal",
        "--homehost=xenraid",
        "--name=sr2",
        "--level=1",
        "--raid-devices=2",
        &format!("{NEW1}-part1"),
        &format!("{NEW2}-part1"),
    ] {
        assert!(create.iter().any(|a| a == want), "{want} in {create:?}");
    }
    // Every step is checkable except the signature wipe, which is safe to repeat.
    for step in plan.phases.iter().flat_map(|p| &p.steps) {
        assert!(
            step.done_check != DoneCheck::Journal || step.id == "clear-signatures",
            "{} is only known done from the journal",
            step.id
        );
    }
    // Every disk step names both new disks, never the system or the old member.
    for step in plan.phases.iter().flat_map(|p| &p.steps) {
        for w in &step.writes {
            if let Writes::Disk { by_id, .. } = w {
                assert!(by_id == NEW1 || by_id == NEW2, "{}: {by_id}", step.id);
            }
        }
    }
    let text = render_plan(&plan);
    assert!(text.contains("device-config:device=/dev/md/sr2"));
    assert!(text.contains("name-label='Mirror 2'") || text.contains("name-label=Mirror 2"));
    insta::assert_snapshot!("add-mirror-text", text);
}

#[test]
fn the_mdadm_conf_line_is_appended_under_the_existing_header() {
    let plan = plan(&facts(), &intent(&[NEW1, NEW2]));
    let edit = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| s.id == "write-mdadm-conf")
        .unwrap();
    let Action::EditFile {
        path, new_content, ..
    } = &edit.actions[0]
    else {
        panic!("an edit")
    };
    assert_eq!(path, "/etc/mdadm.conf");
    let uuid = &plan.arrays[0].uuid;
    assert_eq!(
        new_content,
        &format!("{CONVERTED_CONF}ARRAY /dev/md/sr2 metadata=1.2 UUID={uuid} name=xenraid:sr2\n")
    );
    assert_eq!(
        edit.done_check,
        DoneCheck::FileContains {
            path: "/etc/mdadm.conf".into(),
            text: format!("ARRAY /dev/md/sr2 metadata=1.2 UUID={uuid} name=xenraid:sr2"),
        }
    );
}

#[test]
fn the_initramfs_is_rebuilt_on_the_running_root_and_checked_for_the_array() {
    let plan = plan(&facts(), &intent(&[NEW1, NEW2]));
    let step = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| s.id == "build-initramfs")
        .unwrap();
    assert_eq!(
        step.actions,
        vec![Action::Run {
            argv: [
                "dracut",
                "--force",
                "--mdadmconf",
                "--add",
                "mdraid",
                "--add-drivers",
                "raid1",
                "/boot/initrd-6.1.0-50-amd64.img",
                "6.1.0-50-amd64"
            ]
            .map(String::from)
            .to_vec()
        }]
    );
    assert_eq!(
        step.done_check,
        DoneCheck::InitramfsContains {
            image: "/boot/initrd-6.1.0-50-amd64.img".into(),
            path: "etc/mdadm.conf".into(),
            text: plan.arrays[0].uuid.clone(),
        }
    );
}

#[test]
fn the_dracut_conf_is_left_alone_when_it_is_complete() {
    let mut facts = facts();
    facts.files.insert(
        "/etc/dracut.conf.d/90-xenraid.conf".into(),
        xenraid::plan::edits::DRACUT_CONF.into(),
    );
    let plan = plan(&facts, &intent(&[NEW1, NEW2]));
    assert!(!ids(&plan).contains(&"dracut-config"));
}

#[test]
fn both_partitions_are_the_smaller_disks_size_on_mib_boundaries() {
    let mut facts = facts();
    disk_mut(&mut facts, "sdd").size_bytes = 3 * GIB + 12345 * 512;
    let plan = plan(&facts, &intent(&[NEW1, NEW2]));
    let shapes: Vec<_> = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.done_check {
            DoneCheck::PartitionTable { partitions, .. } => Some(partitions.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(shapes.len(), 2);
    assert_eq!(shapes[0], shapes[1]);
    let p = &shapes[0][0];
    assert_eq!((p.number, p.start, p.type_code.as_str()), (1, 2048, "fd00"));
    assert_eq!((p.end + 1) % 2048, 0, "ends on a MiB boundary");
    // Before sdc's backup GPT (the last 33 sectors).
    assert!(p.end < 2 * GIB / 512 - 33);
    assert!(plan.notes.iter().any(|n| n.contains("differ in size")));
}

#[test]
fn refuses_a_mounted_system_disk() {
    let plan = plan(&facts(), &intent(&["/dev/sdb", NEW2]));
    assert_refused_by(
        &plan,
        "disks-not-in-use",
        "sdb1 is mounted on /",
        "choose disks nothing uses",
    );
    // An in-use disk is never offered --wipe-target.
    assert!(!check(&plan, "disks-blank").fix.contains("--wipe-target"));
}

#[test]
fn refuses_a_member_of_an_existing_array() {
    let plan = plan(&facts(), &intent(&["/dev/sda", NEW2]));
    assert_refused_by(
        &plan,
        "disks-not-in-use",
        "sda1 is held by md126 (array xenraid:sr)",
        "of an array",
    );
}

#[test]
fn refuses_an_lvm_physical_volume() {
    let mut facts = facts();
    facts.physical_volumes.push(PhysicalVolume {
        device: "/dev/sdc".into(),
        vg_name: Some("VG_XenStorage-0d0c".into()),
        uuid: None,
    });
    let plan = plan(&facts, &intent(&[NEW1, NEW2]));
    assert_refused_by(
        &plan,
        "disks-not-in-use",
        "sdc is an LVM physical volume of VG_XenStorage-0d0c",
        "volume group",
    );
}

#[test]
fn refuses_a_disk_with_data_unless_told_to_wipe() {
    let mut facts = facts();
    let sdd = disk_mut(&mut facts, "sdd");
    sdd.probe.pt_type = Some("gpt".into());
    let mut part = member("sdd1", 1, "");
    part.holders.clear();
    part.fs_type = Some("ext4".into());
    sdd.partitions = vec![part];
    let refused = plan(&facts, &intent(&[NEW1, NEW2]));
    assert_refused_by(
        &refused,
        "disks-blank",
        "sdd is not blank: a gpt partition table, partition 1 (ext4 signature)",
        "add --wipe-target",
    );
    assert_eq!(failing(&refused), ["disks-blank"]);

    let mut wipe = intent(&[NEW1, NEW2]);
    wipe.wipe = true;
    let plan = plan(&facts, &wipe);
    assert!(!plan.refused(), "{}", render_plan(&plan));
    let first = &plan.phases[0].steps[0];
    assert_eq!(first.id, "wipe-disks");
    // Only the disk that had something on it.
    assert_eq!(first.writes.len(), 1);
    let argvs: Vec<String> = first
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Run { argv } => Some(argv.join(" ")),
            _ => None,
        })
        .collect();
    assert_eq!(
        argvs,
        [
            format!("wipefs --all {NEW2}-part1"),
            format!("sgdisk --zap-all {NEW2}"),
            format!("wipefs --all {NEW2}"),
        ]
    );
}

#[test]
fn refuses_the_same_disk_twice() {
    let plan = plan(&facts(), &intent(&["/dev/sdc", NEW1]));
    assert_refused_by(
        &plan,
        "disks-distinct",
        "/dev/sdc and /dev/disk/by-id/wwn-0x5000c500a0000011 are the same disk (sdc, serial XRLAB-NEW1)",
        "two different disks",
    );
}

#[test]
fn refuses_a_missing_disk() {
    let plan = plan(&facts(), &intent(&[NEW1, "/dev/sdz"]));
    assert_refused_by(
        &plan,
        "disks-found",
        "/dev/sdz is not a disk on this host",
        "pick one of: ",
    );
    assert!(check(&plan, "disks-found").fix.contains(NEW2));
    // Not a second failure for the same cause.
    assert_eq!(failing(&plan), ["disks-found"]);
    let neither = plan_for_missing();
    assert_eq!(failing(&neither), ["disks-found"]);
    assert!(neither.phases.is_empty());
}

fn plan_for_missing() -> Plan {
    plan(&facts(), &intent(&["/dev/sdy", "/dev/sdz"]))
}

#[test]
fn refuses_one_disk_or_three() {
    let one = plan(&facts(), &intent(&[NEW1]));
    assert_refused_by(&one, "two-disks", "1 given", "exactly two");
    let three = plan(&facts(), &intent(&[NEW1, NEW2, "/dev/sda"]));
    assert_refused_by(&three, "two-disks", "3 given", "exactly two");
}

#[test]
fn refuses_a_disk_under_a_gibibyte() {
    let mut facts = facts();
    disk_mut(&mut facts, "sdd").size_bytes = 512 << 20;
    let plan = plan(&facts, &intent(&[NEW1, NEW2]));
    assert_refused_by(
        &plan,
        "disks-large-enough",
        "sdd has 512.0 MiB",
        "at least 1.0 GiB",
    );
}

#[test]
fn refuses_a_taken_or_malformed_name() {
    let mut taken = intent(&[NEW1, NEW2]);
    taken.name = Some("sr".into());
    let plan_taken = plan(&facts(), &taken);
    assert_refused_by(
        &plan_taken,
        "array-name-free",
        "an array named sr exists",
        "the first free default is sr2",
    );
    let mut bad = intent(&[NEW1, NEW2]);
    bad.name = Some("my mirror".into());
    assert_refused_by(
        &plan(&facts(), &bad),
        "array-name-free",
        "`my mirror` cannot name an md array",
        "--name",
    );
}

#[test]
fn refuses_a_host_without_xapi() {
    let mut facts = facts();
    facts.product.kind = xenraid::host::ProductKind::Linux;
    assert_refused_by(
        &plan(&facts, &intent(&[NEW1, NEW2])),
        "xenserver-host",
        "not a XenServer",
        "XenServer or XCP-ng",
    );
}

/// A machine on which every check holds once its step ran, recording what was run.
#[derive(Default)]
struct Scripted {
    asked: RefCell<HashSet<String>>,
    commands: RefCell<Vec<String>>,
    crash_on: Option<String>,
}

impl System for Scripted {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        self.commands.borrow_mut().push(command.to_string());
        if self
            .crash_on
            .as_deref()
            .is_some_and(|c| command.to_string().starts_with(c))
        {
            return Err(ExecError::Killed {
                command: command.clone(),
                stderr_tail: "power cut".into(),
            });
        }
        Ok(CommandOutput {
            status: 0,
            stdout: if command.program == "xe" {
                "sr-uuid-2\n".into()
            } else {
                String::new()
            },
            stderr: String::new(),
        })
    }
    fn run_copy(&self, command: &Command, _dest: &str) -> Result<(), ConvertError> {
        self.run(command).map(|_| ()).map_err(Into::into)
    }
    fn holds(&self, check: &DoneCheck, _journal: &Journal) -> Result<bool, ConvertError> {
        Ok(match check {
            DoneCheck::Journal => false,
            c => !self
                .asked
                .borrow_mut()
                .insert(serde_json::to_string(c).unwrap()),
        })
    }
    fn write_file(&self, path: &str, _content: &str) -> Result<(), ConvertError> {
        self.commands.borrow_mut().push(format!("write {path}"));
        Ok(())
    }
    fn wait_sync(&self, devices: &[String]) -> Result<(), ConvertError> {
        self.commands
            .borrow_mut()
            .push(format!("wait {}", devices.join(" ")));
        Ok(())
    }
    fn mounts_under(&self, _dir: &str) -> Vec<String> {
        Vec::new()
    }
    fn holder_of(&self, _member: &str) -> Option<String> {
        None
    }
    fn resolve(&self, path: &str) -> Option<String> {
        Some(path.into())
    }
    fn read_value(&self, _path: &str) -> Option<String> {
        Some("200000".into())
    }
    fn write_value(&self, path: &str, value: &str) -> Result<(), ConvertError> {
        self.commands
            .borrow_mut()
            .push(format!("set {path}={value}"));
        Ok(())
    }
}

fn options() -> RunOptions {
    RunOptions {
        no_wait: false,
        resync_speed: ResyncSpeed::Max,
        stop_before: None,
    }
}

fn quiet(_: &str) {}

fn position(commands: &[String], prefix: &str) -> usize {
    commands
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {commands:#?}"))
}

#[test]
fn the_engine_runs_it_to_the_end_with_the_resync_sped_up_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("add-mirror.json"));
    let mut journal = Journal::new(plan(&facts(), &intent(&[NEW1, NEW2])), options());
    let sys = Scripted::default();
    assert_eq!(
        run_plan(&sys, &store, &mut journal, &quiet).unwrap(),
        Outcome::Complete
    );
    assert_eq!(journal.state, JournalState::Complete);
    assert_eq!(journal.sr_uuid.as_deref(), Some("sr-uuid-2"));
    let commands = sys.commands.borrow();
    let speed = "set /proc/sys/dev/raid/speed_limit_max=";
    let raised = position(&commands, &format!("{speed}2000000000"));
    let create = position(&commands, "mdadm --create /dev/md/sr2");
    let conf = position(&commands, "write /etc/mdadm.conf");
    let dracut = position(&commands, "dracut --force");
    let sr = position(&commands, "xe sr-create");
    let wait = position(&commands, "wait /dev/md/sr2");
    let restored = commands
        .iter()
        .position(|c| *c == format!("{speed}200000"))
        .expect("the old limit restored");
    // The name is fixed in mdadm.conf and the initramfs before XAPI is told about it.
    assert!(raised < create && create < conf && conf < dracut && dracut < sr);
    assert!(sr < wait && wait < restored);
    for cmd in commands.iter() {
        assert!(
            !cmd.contains("wwn-0x5000c500a0000001") && !cmd.contains("wwn-0x5000c500a0000002"),
            "touched a disk that is not new: {cmd}"
        );
    }
}

#[test]
fn run_again_after_a_power_cut_it_goes_on_from_the_interrupted_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::new(dir.path().join("add-mirror.json"));
    let mut journal = Journal::new(plan(&facts(), &intent(&[NEW1, NEW2])), options());
    let crashing = Scripted {
        crash_on: Some("mdadm --create".into()),
        ..Scripted::default()
    };
    assert!(run_plan(&crashing, &store, &mut journal, &quiet).is_err());
    let mut journal = store.load().unwrap().unwrap();
    assert_eq!(journal.status("partition-b"), StepStatus::Done);
    assert_eq!(journal.status("create-array"), StepStatus::Started);

    let sys = Scripted::default();
    assert_eq!(
        run_plan(&sys, &store, &mut journal, &quiet).unwrap(),
        Outcome::Complete
    );
    let commands = sys.commands.borrow();
    assert!(
        !commands.iter().any(|c| c.starts_with("sgdisk")),
        "the disks are not partitioned again: {commands:#?}"
    );
    assert!(commands.iter().any(|c| c.starts_with("mdadm --create")));
}
