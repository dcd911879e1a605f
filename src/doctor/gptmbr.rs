//! extlinux hosts (XenServer 6.5): syslinux's gptmbr.bin in the MBR starts the first GPT
//! partition flagged legacy-BIOS-bootable, whose extlinux reads /boot through that one
//! partition. A disk whose first flagged partition is not a member of the array holding /boot
//! boots nothing (a flag left on a partition that is no longer the boot copy, a disk that was
//! partitioned by hand), though its MBR code looks right.

use super::facts::{BootDisk, DoctorFacts};
use crate::health::MemberRole;

/// The partitions of this disk that are members of the arrays holding `/` or `/boot`: all of
/// them, and those in sync.
fn boot_members(facts: &DoctorFacts, disk: &BootDisk) -> (Vec<u32>, Vec<u32>) {
    let members: Vec<(&str, bool)> = facts
        .arrays
        .iter()
        .filter(|a| facts.boot_arrays.contains(&a.health.device))
        .flat_map(|a| a.health.members.iter())
        .map(|m| (m.device.as_str(), m.role == MemberRole::Active))
        .collect();
    let number = |want_sync: bool| {
        disk.partitions
            .iter()
            .filter(|p| {
                members
                    .iter()
                    .any(|(d, in_sync)| *d == p.name && (*in_sync || !want_sync))
            })
            .map(|p| p.number)
            .collect::<Vec<u32>>()
    };
    (number(false), number(true))
}

/// Why gptmbr.bin on this disk would not start its member of the boot array, if it would not.
pub fn start_problem(facts: &DoctorFacts, disk: &BootDisk) -> Option<String> {
    let (members, in_sync) = boot_members(facts, disk);
    if members.is_empty() {
        // Nothing to judge: the bootloader check names a disk without a member elsewhere.
        return None;
    }
    let arrays = facts.boot_arrays.join(", ");
    let Some(first) = disk.partitions.iter().find(|p| p.legacy_bios_bootable) else {
        if in_sync.is_empty() {
            return Some(format!(
                "gptmbr.bin in the MBR and no partition flagged legacy-BIOS-bootable, as it should be while its member of {arrays} is not in sync: this disk cannot start the system alone until the resync ends"
            ));
        }
        return Some(
            "gptmbr.bin in the MBR, but no partition is flagged legacy-BIOS-bootable: it has nothing to start"
                .into(),
        );
    };
    if in_sync.contains(&first.number) {
        return None;
    }
    Some(if members.contains(&first.number) {
        format!(
            "gptmbr.bin starts {}, whose member of {arrays} is not in sync (rebuilding or a spare): it would start a half-copied boot sector",
            first.name
        )
    } else {
        format!(
            "gptmbr.bin starts {} (the first partition flagged legacy-BIOS-bootable), which holds no member of {arrays}",
            first.name
        )
    })
}

/// An unflagged disk whose boot member is still rebuilding: right as it is, and bootable once
/// the resync ends and the flag is set. Nothing to fix yet.
pub fn waits_for_resync(facts: &DoctorFacts, disk: &BootDisk) -> bool {
    let (members, in_sync) = boot_members(facts, disk);
    !members.is_empty()
        && in_sync.is_empty()
        && !disk.partitions.iter().any(|p| p.legacy_bios_bootable)
}

/// Moves the flag to the disk's boot member in sync in one sgdisk write (and off every
/// partition before it in the table, which gptmbr.bin would start instead). With no member in
/// sync, only takes the flags off.
pub fn flag_argv(facts: &DoctorFacts, disk: &BootDisk) -> Option<Vec<String>> {
    start_problem(facts, disk)?;
    let member = boot_members(facts, disk).1.first().copied();
    let mut argv = vec!["sgdisk".to_string()];
    argv.extend(member.map(|m| format!("--attributes={m}:set:2")));
    argv.extend(
        disk.partitions
            .iter()
            .filter(|p| p.legacy_bios_bootable && Some(p.number) != member)
            .map(|p| format!("--attributes={}:clear:2", p.number)),
    );
    if argv.len() == 1 {
        return None;
    }
    argv.push(format!("/dev/{}", disk.name));
    Some(argv)
}
