//! `xenraid replace`: which member disk failed (or vanished), which disk still holds a working
//! copy of every array, and the plan that folds a new disk (or the same disk, back after a
//! transient loss) into the mirrors. Pure: facts in, plan out.

use crate::host::{Disk, DiskIdentity, HostFacts, MdArray};

use super::model::*;
use super::preflight::{resolve_target, target_blank, target_large_enough, target_not_in_use};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct ReplaceIntent {
    /// The member disk to replace; found by itself when one disk failed or is missing.
    pub failed: Option<String>,
    /// The disk that takes its place (blank, or `wipe_target`).
    pub new: Option<String>,
    pub wipe_target: bool,
    /// Add the new disk as a hot spare to complete mirrors.
    pub spare: bool,
    /// The disks the conversion recorded: a disk that is gone is still named by serial.
    pub known_disks: Vec<DiskIdentity>,
    /// Where each present disk sits (kernel name → SCSI address / enclosure slot), from sysfs.
    pub slots: Vec<(String, String)>,
}

/// A RAID1 array and where its members are.
#[derive(Debug, Clone)]
pub struct Mirror<'f> {
    pub array: &'f MdArray,
    /// `/dev/md/root` for named arrays, `/dev/md0` for 0.90 ones.
    pub device: String,
    /// Step ids use it: `root`, `md0`.
    pub role: String,
    pub uuid: String,
    pub bitmap: bool,
    pub degraded: bool,
    pub members: Vec<Member<'f>>,
}

#[derive(Debug, Clone)]
pub struct Member<'f> {
    /// The kernel name md lists (`sda3`), even when the device itself is gone.
    pub kernel_name: String,
    pub disk: Option<&'f Disk>,
    pub partition: Option<u32>,
    pub faulty: bool,
    pub spare: bool,
}

impl Member<'_> {
    fn working(&self) -> bool {
        self.disk.is_some() && !self.faulty && !self.spare
    }
    fn on(&self, disk: &Disk) -> bool {
        self.disk.is_some_and(|d| d.name == disk.name)
    }
}

pub fn mirrors(facts: &HostFacts) -> Vec<Mirror<'_>> {
    facts
        .arrays
        .iter()
        .filter(|a| a.level.as_deref() == Some("raid1"))
        .filter_map(|array| {
            let uuid = array.uuid.clone()?;
            let short = array
                .md_name
                .as_deref()
                .map(|n| n.rsplit(':').next().unwrap_or(n).to_string());
            let (device, role) = match short {
                Some(n) if !n.is_empty() => (format!("/dev/md/{n}"), n),
                _ => (format!("/dev/{}", array.name), array.name.clone()),
            };
            let mdstat = array.mdstat.as_ref();
            let listed: Vec<(String, bool, bool)> = match mdstat {
                Some(m) if !m.members.is_empty() => m
                    .members
                    .iter()
                    .map(|x| (x.device.clone(), x.faulty, x.spare))
                    .collect(),
                _ => array
                    .members
                    .iter()
                    .map(|m| (m.clone(), false, false))
                    .collect(),
            };
            let members = listed
                .into_iter()
                .map(|(name, faulty, spare)| {
                    let found = facts.find_partition(&name);
                    Member {
                        kernel_name: name,
                        disk: found.map(|(d, _)| d),
                        partition: found.map(|(_, p)| p.number),
                        faulty,
                        spare,
                    }
                })
                .collect();
            let degraded = array.degraded.is_some_and(|d| d > 0)
                || mdstat
                    .and_then(|m| m.status.as_deref())
                    .is_some_and(|s| s.contains('_'));
            Some(Mirror {
                array,
                device,
                role,
                uuid,
                bitmap: mdstat.is_some_and(|m| m.bitmap.is_some()),
                degraded,
                members,
            })
        })
        .collect()
}

/// The same md UUID in blkid's or mdadm's spelling (0.90 superblocks: blkid prints each
/// 32-bit word byte-swapped).
pub fn same_md_uuid(a: &str, b: &str) -> bool {
    let hex = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_hexdigit)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let (a, b) = (hex(a), hex(b));
    if a.len() != 32 || b.len() != 32 {
        return false;
    }
    let swapped: String = a
        .as_bytes()
        .chunks(8)
        .flat_map(|w| w.chunks(2).rev().flatten().copied().collect::<Vec<u8>>())
        .map(char::from)
        .collect();
    a == b || swapped == b
}

/// The situation `replace` found, before any plan.
#[derive(Debug, Clone)]
pub struct Situation<'f> {
    pub mirrors: Vec<Mirror<'f>>,
    /// The disk with a working member in every affected mirror.
    pub healthy: Option<&'f Disk>,
    /// The disk being replaced, when it is still attached.
    pub failed: Option<&'f Disk>,
    /// How the failed disk is named when it is gone.
    pub missing: Option<String>,
    /// A disk that came back: its partitions carry the affected arrays' superblocks.
    pub returning: Option<&'f Disk>,
    /// The mirrors this replacement touches.
    pub affected: Vec<usize>,
    /// Why the situation cannot be handled (with what to do).
    pub problem: Option<(String, String)>,
}

pub fn assess<'f>(facts: &'f HostFacts, intent: &ReplaceIntent) -> Situation<'f> {
    let mirrors = mirrors(facts);
    let mut s = Situation {
        mirrors,
        healthy: None,
        failed: None,
        missing: None,
        returning: None,
        affected: Vec::new(),
        problem: None,
    };
    if s.mirrors.is_empty() {
        s.problem = Some((
            "this host has no RAID1 arrays".into(),
            "`xenraid convert` mirrors a single-disk host first".into(),
        ));
        return s;
    }
    let member_disks = |s: &Situation<'f>| -> Vec<&'f Disk> {
        let mut disks: Vec<&'f Disk> = Vec::new();
        for m in s.mirrors.iter().flat_map(|m| m.members.iter()) {
            if let Some(d) = m.disk {
                if !disks.iter().any(|x| x.name == d.name) {
                    disks.push(d);
                }
            }
        }
        disks
    };
    if let Some(given) = &intent.failed {
        match resolve_target(facts, given) {
            Some(d) if member_disks(&s).iter().any(|m| m.name == d.name) => s.failed = Some(d),
            Some(d) => {
                s.problem = Some((
                    format!("{given} ({}) holds no member of a RAID1 array", d.name),
                    "name a member disk (see `xenraid status`)".into(),
                ));
                return s;
            }
            None => {
                s.problem = Some((
                    format!("{given} is not a disk on this host"),
                    "a disk that is gone needs no --failed: run `xenraid replace` alone".into(),
                ));
                return s;
            }
        }
    } else {
        let with_faulty: Vec<&'f Disk> = member_disks(&s)
            .into_iter()
            .filter(|d| {
                s.mirrors
                    .iter()
                    .any(|m| m.members.iter().any(|x| x.on(d) && x.faulty))
            })
            .collect();
        match with_faulty.as_slice() {
            [] => {}
            [one] => s.failed = Some(one),
            many => {
                let names: Vec<&str> = many.iter().map(|d| d.name.as_str()).collect();
                s.problem = Some((
                    format!("members failed on several disks: {}", names.join(", ")),
                    "replace one disk at a time: name it with --failed".into(),
                ));
                return s;
            }
        }
    }
    s.affected = (0..s.mirrors.len())
        .filter(|&i| {
            let m = &s.mirrors[i];
            match s.failed {
                Some(f) => m.members.iter().any(|x| x.on(f)),
                None => m.degraded || m.members.iter().any(|x| x.disk.is_none()),
            }
        })
        .collect();
    if s.affected.is_empty() && intent.spare {
        // A hot spare joins every mirror of the pair the system runs on.
        s.affected = (0..s.mirrors.len()).collect();
    }
    // md rebuilds one array per disk at a time, in the order members arrive: `/` first.
    let root_dev = facts
        .root_mount()
        .map(|m| format!("{}:{}", m.major, m.minor));
    s.affected
        .sort_by_key(|&i| s.mirrors[i].array.dev.is_none() || s.mirrors[i].array.dev != root_dev);
    let candidates: Vec<&'f Disk> = member_disks(&s)
        .into_iter()
        .filter(|d| s.failed.is_none_or(|f| f.name != d.name))
        .filter(|d| {
            !s.affected.is_empty()
                && s.affected
                    .iter()
                    .all(|&i| s.mirrors[i].members.iter().any(|x| x.on(d) && x.working()))
        })
        .collect();
    s.healthy = candidates.first().copied();
    if s.healthy.is_none() && !s.affected.is_empty() {
        let roles: Vec<&str> = s
            .affected
            .iter()
            .map(|&i| s.mirrors[i].role.as_str())
            .collect();
        s.problem = Some((
            format!(
                "no disk holds a working member of every affected array ({})",
                roles.join(", ")
            ),
            "check `xenraid status` and the kernel log; xenraid never rebuilds from a disk that is not in sync".into(),
        ));
        return s;
    }
    if s.failed.is_none() && !s.affected.is_empty() {
        s.missing = Some(missing_name(facts, intent, &s));
        s.returning = facts.disks.iter().find(|d| {
            !member_disks(&s).iter().any(|m| m.name == d.name)
                && d.partitions.iter().any(|p| {
                    p.fs_type.as_deref() == Some("linux_raid_member")
                        && p.uuid.as_deref().is_some_and(|u| {
                            s.affected
                                .iter()
                                .any(|&i| same_md_uuid(u, &s.mirrors[i].uuid))
                        })
                })
        });
    }
    s
}

/// A gone disk by what the conversion recorded of it, else by the kernel names md still lists.
fn missing_name(facts: &HostFacts, intent: &ReplaceIntent, s: &Situation<'_>) -> String {
    let gone: Vec<&DiskIdentity> = intent
        .known_disks
        .iter()
        .filter(|k| {
            !facts
                .disks
                .iter()
                .any(|d| (k.serial.is_some() && d.serial == k.serial) || d.stable_path() == k.by_id)
        })
        .collect();
    if let [one] = gone.as_slice() {
        return format!(
            "serial {} ({})",
            one.serial.as_deref().unwrap_or("unknown"),
            one.by_id
        );
    }
    let stale: Vec<&str> = s
        .mirrors
        .iter()
        .flat_map(|m| m.members.iter())
        .filter(|x| x.disk.is_none())
        .map(|x| x.kernel_name.as_str())
        .collect();
    if stale.is_empty() {
        "the disk that is no longer attached".into()
    } else {
        format!("the disk that held {}", stale.join(", "))
    }
}

/// Disk named for a person at the machine: serial, stable path, slot.
pub fn describe(disk: &Disk, intent: &ReplaceIntent) -> String {
    let slot = intent
        .slots
        .iter()
        .find(|(n, _)| *n == disk.name)
        .map(|(_, s)| format!(", {s}"))
        .unwrap_or_default();
    format!(
        "{} serial {} ({}{slot})",
        disk.name,
        disk.serial.as_deref().unwrap_or("unknown"),
        disk.stable_path()
    )
}

fn check(name: &str, passed: bool, message: String, fix: &str) -> Check {
    Check {
        name: name.into(),
        passed,
        message,
        fix: if passed { String::new() } else { fix.into() },
    }
}

/// Bytes the new disk needs: the healthy disk's last partition and the GPT backup behind it.
pub fn required_bytes(healthy: &Disk) -> u64 {
    let last = healthy
        .partitions
        .iter()
        .map(|p| p.end_sector())
        .max()
        .unwrap_or(0);
    (last + 1 + 33) * u64::from(healthy.logical_sector_size.max(512))
}

pub fn build_replace_plan(facts: &HostFacts, intent: &ReplaceIntent) -> Plan {
    let s = assess(facts, intent);
    let mut plan = Plan {
        profile: super::layout::detect_profile(facts).ok(),
        source: s.healthy.map(Disk::identity),
        target: None,
        arrays: Vec::new(),
        preflight: Vec::new(),
        phases: Vec::new(),
        notes: Vec::new(),
    };
    if let Some((problem, fix)) = &s.problem {
        plan.preflight
            .push(check("replace-situation", false, problem.clone(), fix));
        return plan;
    }
    let Some(healthy) = s.healthy else {
        plan.preflight.push(check(
            "replace-situation",
            false,
            "every array is complete: no member failed or is missing".into(),
            "to retire a working disk name it with --failed DISK; to add a hot spare use --spare --new DISK",
        ));
        return plan;
    };
    plan.preflight.push(check(
        "healthy-disk",
        true,
        format!(
            "{} holds a working member of {}",
            describe(healthy, intent),
            s.affected
                .iter()
                .map(|&i| s.mirrors[i].device.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "",
    ));
    let new = match (&intent.new, s.returning) {
        (Some(given), _) => match resolve_target(facts, given) {
            Some(d) => Some(d),
            None => {
                plan.preflight.push(check(
                    "new-disk-found",
                    false,
                    format!("{given} is not a disk on this host"),
                    "check the new disk is inserted and seen (`lsblk`), then use its /dev/disk/by-id path",
                ));
                return plan;
            }
        },
        (None, Some(back)) => Some(back),
        (None, None) => None,
    };
    let returning = new.is_some_and(|n| s.returning.is_some_and(|r| r.name == n.name));
    if let Some(new) = new.filter(|_| !returning) {
        new_disk_checks(facts, intent, &s, healthy, new, &mut plan);
        if plan.refused() {
            return plan;
        }
    }
    plan.target = new.map(Disk::identity);
    plan.phases = vec![Phase {
        kind: PhaseKind::Maintenance,
        steps: super::replace_steps::steps(facts, intent, &s, healthy, new, returning),
    }];
    plan.notes = super::replace_steps::notes(facts, intent, &s, new, returning);
    plan
}

fn new_disk_checks(
    facts: &HostFacts,
    intent: &ReplaceIntent,
    s: &Situation<'_>,
    healthy: &Disk,
    new: &Disk,
    plan: &mut Plan,
) {
    if new.name == healthy.name {
        plan.preflight.push(check(
            "new-disk-not-healthy",
            false,
            format!(
                "{} is the healthy disk: it holds the only working copy",
                describe(new, intent)
            ),
            "give the new, empty disk as --new",
        ));
        return;
    }
    if s.failed.is_some_and(|f| f.name == new.name) {
        plan.preflight.push(check(
            "new-disk-not-failed",
            false,
            format!("{} is the disk being replaced", describe(new, intent)),
            "give the new, empty disk as --new",
        ));
        return;
    }
    let member = s
        .mirrors
        .iter()
        .flat_map(|m| m.members.iter())
        .any(|x| x.on(new) && !x.faulty);
    let in_use = if member {
        check(
            "new-disk-not-in-use",
            false,
            format!("{} is a member of a running array", describe(new, intent)),
            "give the new, empty disk as --new",
        )
    } else {
        let mut c = target_not_in_use(facts, new, None);
        c.name = "new-disk-not-in-use".into();
        c
    };
    let busy = !in_use.passed;
    plan.preflight.push(in_use);
    let mut blank = target_blank(new, intent.wipe_target, busy);
    blank.name = "new-disk-blank".into();
    plan.preflight.push(blank);
    let mut size = target_large_enough(new, required_bytes(healthy), healthy);
    size.name = "new-disk-large-enough".into();
    plan.preflight.push(size);
}
