//! `add-mirror`: two blank disks become another mirrored local SR on a running host. One
//! partition per disk, a RAID1 with a write-intent bitmap and a fixed name that mdadm.conf and
//! the initramfs keep across reboots, then `pvcreate` and `xe sr-create`. Pure, like the
//! conversion's planning: facts and intent in, a `Plan` out.

use serde::{Deserialize, Serialize};

use crate::host::render::human_size;
use crate::host::{Disk, HostFacts, InitramfsTool, ProductKind};

use super::boot_steps::{initramfs_argv, initramfs_image};
use super::edits::{edit_action, mdadm_conf, mdadm_conf_line, DRACUT_CONF};
use super::ids::md_uuid;
use super::model::*;
use super::preflight::{fail, pass, resolve_target, target_blank, target_found, target_users};
use super::steps::{
    mdadm_conf_path, run, run_owned, sr_create_step, step, wipe_disk_actions, writes,
};

/// The operation's own journal: a conversion's journal is never touched by it.
pub const JOURNAL_FILE: &str = "/var/lib/xenraid/add-mirror.json";
/// Below this a disk holds little more than the LVM and XAPI metadata.
pub const MIN_DISK_BYTES: u64 = 1 << 30;
/// The partition starts and ends on MiB boundaries, as every partitioner aligns today.
const ALIGN_BYTES: u64 = 1 << 20;
/// mdadm keeps `homehost:name` in 32 bytes and `xenraid:` takes 8 of them.
const MAX_NAME_LEN: usize = 24;
/// The conversion's storage array is `sr`; further mirrors count on from here.
const FIRST_DEFAULT_NUMBER: u32 = 2;
const DRACUT_CONF_PATH: &str = "/etc/dracut.conf.d/90-xenraid.conf";

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMirrorIntent {
    /// As typed: `/dev/sdX` or `/dev/disk/by-id/…`.
    pub disks: Vec<String>,
    /// The array's name (`/dev/md/<name>`); the first free `srN` when not given.
    pub name: Option<String>,
    /// The SR's name-label; derived from the array's name when not given.
    pub sr_name: Option<String>,
    /// Allow erasing partitions and signatures found on the disks (never when in use).
    pub wipe: bool,
}

pub fn build_add_mirror_plan(facts: &HostFacts, intent: &AddMirrorIntent) -> Plan {
    let found: Vec<Option<&Disk>> = intent
        .disks
        .iter()
        .map(|given| resolve_target(facts, given))
        .collect();
    let mut plan = Plan {
        profile: None,
        source: None,
        target: found.first().copied().flatten().map(Disk::identity),
        arrays: Vec::new(),
        preflight: vec![two_disks(&intent.disks)],
        phases: Vec::new(),
        notes: Vec::new(),
    };
    let checks: Vec<Check> = intent
        .disks
        .iter()
        .zip(&found)
        .map(|(given, disk)| target_found(given, *disk, facts))
        .collect();
    plan.preflight.push(combine("disks-found", checks));
    let named: Vec<(&str, &Disk)> = intent
        .disks
        .iter()
        .zip(&found)
        .filter_map(|(given, disk)| Some((given.as_str(), (*disk)?)))
        .collect();
    // Judged only on two found disks: otherwise two-disks or disks-found already says why.
    if let [a, b] = named[..] {
        plan.preflight.push(distinct(a, b));
    }
    let disks: Vec<&Disk> = named.iter().map(|(_, d)| *d).collect();

    if !disks.is_empty() {
        let in_use: Vec<bool> = disks
            .iter()
            .map(|d| !target_users(facts, d).is_empty())
            .collect();
        plan.preflight.push(not_in_use(facts, &disks));
        plan.preflight.push(blank(&disks, &in_use, intent.wipe));
        plan.preflight.push(large_enough(&disks));
    }
    let name = intent.name.clone().unwrap_or_else(|| default_name(facts));
    plan.preflight.push(name_free(facts, &name));
    plan.preflight.push(xenserver_host(facts));
    plan.preflight.push(super::preflight::tools_present(
        facts,
        &[
            vec!["mdadm"],
            vec!["sgdisk"],
            vec!["partx"],
            vec!["wipefs"],
            vec!["udevadm"],
            vec!["pvcreate"],
            vec!["xe"],
            vec!["dracut", "mkinitrd", "update-initramfs"],
        ],
    ));
    let (&[a, b], false) = (&disks[..], plan.refused()) else {
        return plan;
    };
    let sr_name = intent
        .sr_name
        .clone()
        .unwrap_or_else(|| format!("Local storage {name}"));
    let spec = ArraySpec {
        role: name.clone(),
        partition: 1,
        device: format!("/dev/md/{name}"),
        metadata: "1.2".into(),
        uuid: md_uuid(&format!("add-mirror|{}|{}|{name}", key(a), key(b))),
        content: Content::Storage,
    };
    plan.notes = notes(facts, a, b, &sr_name);
    plan.phases = vec![Phase {
        kind: PhaseKind::Maintenance,
        steps: steps(facts, a, b, &spec, &sr_name, intent.wipe),
    }];
    plan.arrays = vec![spec];
    plan
}

/// What names a disk in the ids derived from it: the serial survives a renumbering.
fn key(disk: &Disk) -> String {
    disk.serial.clone().unwrap_or_else(|| disk.stable_path())
}

/// One check for both disks: failed when either fails, with each failure's own words.
fn combine(name: &str, checks: Vec<Check>) -> Check {
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    if failed.is_empty() {
        return pass(
            name,
            checks
                .iter()
                .map(|c| c.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    let mut fixes: Vec<&str> = Vec::new();
    for check in &failed {
        if !check.fix.is_empty() && !fixes.contains(&check.fix.as_str()) {
            fixes.push(&check.fix);
        }
    }
    fail(
        name,
        failed
            .iter()
            .map(|c| c.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        fixes.join("\n"),
    )
}

fn two_disks(given: &[String]) -> Check {
    const NAME: &str = "two-disks";
    if given.len() == 2 {
        pass(NAME, format!("{} and {}", given[0], given[1]))
    } else {
        fail(
            NAME,
            format!(
                "a mirror takes two disks, {} given ({})",
                given.len(),
                given.join(", ")
            ),
            "name exactly two: --disks /dev/disk/by-id/A,/dev/disk/by-id/B",
        )
    }
}

fn distinct((given_a, a): (&str, &Disk), (given_b, b): (&str, &Disk)) -> Check {
    const NAME: &str = "disks-distinct";
    let serial = |d: &Disk| d.serial.clone().unwrap_or_else(|| "unknown".into());
    if a.name == b.name {
        fail(
            NAME,
            format!(
                "{} and {} are the same disk ({}, serial {}): a mirror on one disk protects nothing",
                given_a,
                given_b,
                a.name,
                serial(a)
            ),
            "name two different disks",
        )
    } else {
        pass(
            NAME,
            format!(
                "{} (serial {}) and {} (serial {})",
                a.name,
                serial(a),
                b.name,
                serial(b)
            ),
        )
    }
}

fn not_in_use(facts: &HostFacts, disks: &[&Disk]) -> Check {
    const NAME: &str = "disks-not-in-use";
    let users: Vec<String> = disks.iter().flat_map(|d| target_users(facts, d)).collect();
    if users.is_empty() {
        pass(
            NAME,
            format!(
                "nothing mounted, swapped on or held on {}",
                names(disks).join(" or ")
            ),
        )
    } else {
        fail(
            NAME,
            users.join("; "),
            "choose disks nothing uses (`xenraid inspect` shows what each disk serves): a disk of the running system, of an array, of a volume group or of an SR is never wiped",
        )
    }
}

fn names(disks: &[&Disk]) -> Vec<String> {
    disks.iter().map(|d| d.name.clone()).collect()
}

fn blank(disks: &[&Disk], in_use: &[bool], wipe: bool) -> Check {
    let checks = disks
        .iter()
        .zip(in_use)
        .map(|(disk, busy)| {
            if *busy {
                return fail(
                    "",
                    format!("{} is in use and is never wiped", disk.name),
                    "see disks-not-in-use",
                );
            }
            let mut check = target_blank(disk, wipe, false);
            if !check.message.starts_with(&disk.name) {
                check.message = format!("{}: {}", disk.name, check.message);
            }
            check
        })
        .collect();
    combine("disks-blank", checks)
}

fn large_enough(disks: &[&Disk]) -> Check {
    let checks = disks
        .iter()
        .map(|d| {
            if d.size_bytes >= MIN_DISK_BYTES {
                pass("", format!("{} has {}", d.name, human_size(d.size_bytes)))
            } else {
                fail(
                    "",
                    format!(
                        "{} has {} ({} bytes)",
                        d.name,
                        human_size(d.size_bytes),
                        d.size_bytes
                    ),
                    format!("use disks of at least {}", human_size(MIN_DISK_BYTES)),
                )
            }
        })
        .collect();
    combine("disks-large-enough", checks)
}

/// Every array name this host knows: running arrays and mdadm.conf's lines.
fn names_in_use(facts: &HostFacts) -> Vec<String> {
    let mut used: Vec<String> = facts
        .arrays
        .iter()
        .filter_map(|a| a.md_name.as_deref())
        .map(|n| n.rsplit(':').next().unwrap_or(n).to_string())
        .collect();
    for text in ["/etc/mdadm.conf", "/etc/mdadm/mdadm.conf"]
        .iter()
        .filter_map(|p| facts.files.get(*p))
    {
        for line in crate::host::parse::mdadm::parse_mdadm_conf_arrays(text) {
            if let Some(name) = &line.name {
                used.push(name.rsplit(':').next().unwrap_or(name).to_string());
            }
            if let Some(dev) = line.device.strip_prefix("/dev/md/") {
                used.push(dev.to_string());
            }
        }
    }
    used
}

fn default_name(facts: &HostFacts) -> String {
    let used = names_in_use(facts);
    (FIRST_DEFAULT_NUMBER..)
        .map(|n| format!("sr{n}"))
        .find(|n| !used.contains(n))
        .unwrap_or_else(|| "sr".into())
}

fn name_free(facts: &HostFacts, name: &str) -> Check {
    const NAME: &str = "array-name-free";
    let well_formed = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !well_formed {
        return fail(
            NAME,
            format!("`{name}` cannot name an md array"),
            format!(
                "use --name with a letter first, then letters, digits, _ - . (at most {MAX_NAME_LEN})"
            ),
        );
    }
    if names_in_use(facts).iter().any(|n| n == name) {
        return fail(
            NAME,
            format!("an array named {name} exists or is in mdadm.conf"),
            format!(
                "choose another --name (the first free default is {})",
                default_name(facts)
            ),
        );
    }
    pass(NAME, format!("/dev/md/{name} is free"))
}

fn xenserver_host(facts: &HostFacts) -> Check {
    const NAME: &str = "xenserver-host";
    if facts.product.kind == ProductKind::Linux {
        fail(
            NAME,
            "not a XenServer / XCP-ng host: add-mirror makes an SR, which needs XAPI",
            "run it in a XenServer or XCP-ng control domain",
        )
    } else {
        pass(
            NAME,
            format!("{} {}", facts.product.brand, facts.product.version),
        )
    }
}

/// One partition spanning both disks' common size: (start, end) in each disk's logical
/// sectors, end inclusive as sgdisk counts.
fn partition_span(disk: &Disk, end_bytes: u64) -> (u64, u64) {
    let lss = u64::from(disk.logical_sector_size.max(512));
    (ALIGN_BYTES / lss, end_bytes / lss - 1)
}

/// Where the partition ends (exclusive, bytes): on both disks the same, before the smaller
/// disk's backup GPT (128 entries of 128 bytes and a header sector), on a MiB boundary.
fn common_end_bytes(a: &Disk, b: &Disk) -> u64 {
    let usable = |d: &Disk| {
        let lss = u64::from(d.logical_sector_size.max(512));
        (d.size_bytes / lss * lss).saturating_sub(16384 + lss)
    };
    usable(a).min(usable(b)) / ALIGN_BYTES * ALIGN_BYTES
}

fn steps(
    facts: &HostFacts,
    a: &Disk,
    b: &Disk,
    spec: &ArraySpec,
    sr_name: &str,
    wipe: bool,
) -> Vec<Step> {
    let both = || vec![writes(a), writes(b)];
    let mut steps = Vec::new();
    let dirty = |d: &Disk| {
        !d.partitions.is_empty() || d.probe.pt_type.is_some() || d.probe.fs_type.is_some()
    };
    if wipe && (dirty(a) || dirty(b)) {
        let targets: Vec<&Disk> = [a, b].into_iter().filter(|d| dirty(d)).collect();
        steps.push(step(
            "wipe-disks",
            "erase the old partitions and signatures found on the disks (--wipe-target)",
            targets.iter().map(|d| writes(d)).collect(),
            targets.iter().flat_map(|d| wipe_disk_actions(d)).collect(),
            DoneCheck::Journal,
        ));
    }

    let end = common_end_bytes(a, b);
    for (id, disk) in [("partition-a", a), ("partition-b", b)] {
        let (start, last) = partition_span(disk, end);
        let by_id = disk.stable_path();
        steps.push(step(
            id,
            &format!(
                "one Linux RAID partition on disk serial {}, the same size on both disks",
                disk.serial.as_deref().unwrap_or("unknown")
            ),
            vec![writes(disk)],
            vec![
                run_owned(vec![
                    "sgdisk".into(),
                    "--clear".into(),
                    format!("--new=1:{start}:{last}"),
                    "--typecode=1:fd00".into(),
                    format!("--change-name=1:xenraid-{}", spec.role),
                    by_id.clone(),
                ]),
                // BLKPG per partition, as convert does: no BLKRRPART race with udev.
                run(&["partx", "-u", &by_id]),
                run(&["udevadm", "settle"]),
            ],
            DoneCheck::PartitionTable {
                by_id,
                partitions: vec![PartitionShape {
                    number: 1,
                    start,
                    end: last,
                    type_code: "fd00".into(),
                }],
            },
        ));
    }

    let members = [a.partition_path(1), b.partition_path(1)];
    let mut clear: Vec<Action> = members
        .iter()
        .map(|m| run(&["wipefs", "--all", m]))
        .collect();
    clear.push(run(&["udevadm", "settle"]));
    steps.push(step(
        "clear-signatures",
        "an old md superblock or filesystem where the new partition starts would confuse assembly",
        both(),
        clear,
        DoneCheck::Journal,
    ));

    let mut create: Vec<String> = [
        "mdadm",
        "--create",
        &spec.device,
        "--run",
        "--metadata=1.2",
        "--level=1",
        "--raid-devices=2",
        // mdadm's default changed across versions; a resync after a crash must not read the
        // whole disk.
        "--bitmap=internal",
        // A fixed homehost keeps the name independent of the hostname, which XenServer lets
        // users change; mdadm.conf maps it to /dev/md/<name>.
        "--homehost=xenraid",
        &format!("--name={}", spec.role),
        &format!("--uuid={}", spec.uuid),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    create.push(crate::plan::shared::bitmap_chunk(
        end.saturating_sub(ALIGN_BYTES),
    ));
    create.extend(members.iter().cloned());
    steps.push(step(
        "create-array",
        &format!(
            "RAID1 {} on both new partitions; md syncs them in the background",
            spec.device
        ),
        both(),
        vec![run_owned(create)],
        DoneCheck::All {
            checks: members
                .iter()
                .map(|m| DoneCheck::ArrayMember {
                    uuid: spec.uuid.clone(),
                    member: m.clone(),
                })
                .collect(),
        },
    ));

    let conf_path = mdadm_conf_path(facts);
    let old_conf = facts.files.get(conf_path).cloned().unwrap_or_default();
    steps.push(step(
        "write-mdadm-conf",
        "an ARRAY line by UUID, so the array comes back as the same name at every boot",
        vec![Writes::HostFile {
            path: conf_path.into(),
        }],
        vec![edit_action(
            conf_path,
            &old_conf,
            &mdadm_conf(&old_conf, std::slice::from_ref(spec)),
        )],
        DoneCheck::FileContains {
            path: conf_path.into(),
            text: mdadm_conf_line(spec),
        },
    ));

    let dracut = facts.boot.initramfs_tool == Some(InitramfsTool::Dracut);
    let dracut_conf_ok = facts.files.get(DRACUT_CONF_PATH).is_some_and(|t| {
        ["mdraid", "raid1", "mdadmconf"]
            .iter()
            .all(|w| t.contains(w))
    });
    if dracut && !dracut_conf_ok {
        let old = facts
            .files
            .get(DRACUT_CONF_PATH)
            .cloned()
            .unwrap_or_default();
        steps.push(step(
            "dracut-config",
            "upgrades keep mdadm.conf but regenerate the initramfs: make md part of every build",
            vec![Writes::HostFile {
                path: DRACUT_CONF_PATH.into(),
            }],
            vec![edit_action(DRACUT_CONF_PATH, &old, DRACUT_CONF)],
            DoneCheck::FileContains {
                path: DRACUT_CONF_PATH.into(),
                text: "add_dracutmodules+=\" mdraid \"".into(),
            },
        ));
    }

    let (image, _) = initramfs_image(facts);
    steps.push(step(
        "build-initramfs",
        "the initramfs carries its own copy of mdadm.conf: rebuilt, it names the new array too",
        vec![Writes::HostFile {
            path: image.clone(),
        }],
        vec![run_owned(initramfs_argv(facts, None))],
        if dracut {
            DoneCheck::InitramfsContains {
                image,
                path: "etc/mdadm.conf".into(),
                text: spec.uuid.clone(),
            }
        } else {
            DoneCheck::Journal
        },
    ));

    // After mdadm.conf and the initramfs: the SR's PBD names /dev/md/<name>, which must
    // exist at every boot before XAPI plugs it.
    steps.push(sr_create_step(facts, &spec.device, sr_name, both()));

    let devices = vec![spec.device.clone()];
    steps.push(step(
        "wait-resync",
        "the mirror protects nothing until both members are in sync (the SR is usable meanwhile)",
        vec![Writes::Nothing],
        vec![Action::WaitSync {
            devices: devices.clone(),
        }],
        DoneCheck::InSync { devices },
    ));
    steps
}

fn notes(facts: &HostFacts, a: &Disk, b: &Disk, sr_name: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let end = common_end_bytes(a, b);
    let (small, large) = if a.size_bytes <= b.size_bytes {
        (a, b)
    } else {
        (b, a)
    };
    if large.size_bytes - small.size_bytes > ALIGN_BYTES {
        notes.push(format!(
            "the disks differ in size: the mirror is as large as {} ({}); {} of {} stays unused",
            small.name,
            human_size(end),
            human_size(large.size_bytes - small.size_bytes),
            large.name
        ));
    }
    if facts
        .storage_repositories
        .iter()
        .any(|sr| sr.name_label == sr_name)
    {
        notes.push(format!(
            "an SR named '{sr_name}' exists already: XenCenter will list two (--sr-name gives another)"
        ));
    }
    notes
}
