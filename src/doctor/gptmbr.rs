//! extlinux hosts (XenServer 6.5): syslinux's gptmbr.bin in the MBR starts the first GPT
//! partition flagged legacy-BIOS-bootable, whose extlinux reads /boot through that one
//! partition. A disk whose first flagged partition is not a member of the array holding /boot
//! boots nothing (a flag left on a partition that is no longer the boot copy, a disk that was
//! partitioned by hand), though its MBR code looks right.

use super::facts::{BootDisk, DoctorFacts};

/// The partitions of this disk that are members of the arrays holding `/` or `/boot`.
fn boot_member_numbers(facts: &DoctorFacts, disk: &BootDisk) -> Vec<u32> {
    let members: Vec<&str> = facts
        .arrays
        .iter()
        .filter(|a| facts.boot_arrays.contains(&a.health.device))
        .flat_map(|a| a.health.members.iter().map(|m| m.device.as_str()))
        .collect();
    disk.partitions
        .iter()
        .filter(|p| members.contains(&p.name.as_str()))
        .map(|p| p.number)
        .collect()
}

/// Why gptmbr.bin on this disk would not start its member of the boot array, if it would not.
pub fn start_problem(facts: &DoctorFacts, disk: &BootDisk) -> Option<String> {
    let members = boot_member_numbers(facts, disk);
    if members.is_empty() {
        // Nothing to judge: the bootloader check names a disk without a member elsewhere.
        return None;
    }
    let Some(first) = disk.partitions.iter().find(|p| p.legacy_bios_bootable) else {
        return Some(
            "gptmbr.bin in the MBR, but no partition is flagged legacy-BIOS-bootable: it has nothing to start"
                .into(),
        );
    };
    (!members.contains(&first.number)).then(|| {
        format!(
            "gptmbr.bin starts {} (the first partition flagged legacy-BIOS-bootable), which holds no member of {}",
            first.name,
            facts.boot_arrays.join(", ")
        )
    })
}

/// Moves the flag to the disk's boot member in one sgdisk write (and off every partition
/// before it in the table, which gptmbr.bin would start instead).
pub fn flag_argv(facts: &DoctorFacts, disk: &BootDisk) -> Option<Vec<String>> {
    start_problem(facts, disk)?;
    let member = *boot_member_numbers(facts, disk).first()?;
    let mut argv = vec!["sgdisk".to_string(), format!("--attributes={member}:set:2")];
    argv.extend(
        disk.partitions
            .iter()
            .filter(|p| p.legacy_bios_bootable && p.number != member)
            .map(|p| format!("--attributes={}:clear:2", p.number)),
    );
    argv.push(format!("/dev/{}", disk.name));
    Some(argv)
}
