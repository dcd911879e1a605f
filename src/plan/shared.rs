//! Pieces every plan that writes a member disk needs (convert, replace, add-mirror): md's
//! bitmap granularity, the disk's firmware boot entry, wiping, mdadm.conf's place, the SR.

use crate::host::{Disk, HostFacts};

use super::model::{Action, DoneCheck, Step, Writes};
use super::steps::{run, run_owned, step, ESP_STAGING};

/// md's write-intent bitmap granularity, about 65536 bits per member. A member back after a
/// brief loss resyncs only the chunks written meanwhile: mdadm's default chunk is 64 MiB
/// whatever the size (5% of a 1.2 GiB member per dirty chunk), so small members get small
/// chunks, down to 1 MiB, and members of 4 TiB and more keep 64 MiB, where a finer bitmap
/// would cost writes. In KiB, without a suffix: older mdadm (XenServer 6.5) takes no suffix.
pub(crate) fn bitmap_chunk(member_bytes: u64) -> String {
    let mib = ((member_bytes >> 20) / 65536)
        .max(1)
        .next_power_of_two()
        .min(64);
    format!("--bitmap-chunk={}", mib * 1024)
}

/// The firmware entry's label for this disk: the serial names the physical disk.
pub(crate) fn efi_label(facts: &HostFacts, disk: &Disk) -> String {
    format!(
        "{} (xenraid {})",
        facts.product.brand,
        disk.serial.as_deref().unwrap_or(&disk.name)
    )
}

/// The loader the host boots, as the firmware names it (`\EFI\xenserver\grubx64.efi`).
fn efi_loader(facts: &HostFacts) -> Option<String> {
    let dir = facts
        .boot
        .config_path
        .as_deref()?
        .strip_prefix("/boot/efi")?
        .strip_suffix("/grub.cfg")?
        .replace('/', "\\");
    let loaders = &facts.boot.efi_loaders;
    let file = ["shimx64.efi", "grubx64.efi"]
        .iter()
        .find_map(|want| loaders.iter().find(|l| l.eq_ignore_ascii_case(want)))
        .or(loaders.first())?;
    Some(format!("{dir}\\{file}"))
}

/// A firmware entry for the ESP on this disk, created but not put in BootOrder (see
/// `Action::EfiBootOrderFirst`), and its label.
pub(crate) fn efibootmgr(facts: &HostFacts, disk: &Disk, esp: u32) -> Option<(Action, String)> {
    let label = efi_label(facts, disk);
    let loader = efi_loader(facts)?;
    Some((
        run_owned(vec![
            "efibootmgr".into(),
            // Not --create: that also puts the entry first in BootOrder, a permanent switch
            // to a RAID that has never booted. The first boot goes through BootNext.
            "--create-only".into(),
            "--disk".into(),
            disk.stable_path(),
            "--part".into(),
            esp.to_string(),
            "--label".into(),
            label.clone(),
            "--loader".into(),
            loader,
        ]),
        label,
    ))
}

/// The file mdadm and dracut read: /etc/mdadm.conf wins when it exists (dracut's mdraid
/// module installs it in preference to /etc/mdadm/mdadm.conf).
pub(crate) fn mdadm_conf_path(facts: &HostFacts) -> &'static str {
    if facts.files.contains_key("/etc/mdadm.conf") {
        return "/etc/mdadm.conf";
    }
    if facts.files.contains_key("/etc/mdadm/mdadm.conf") {
        return "/etc/mdadm/mdadm.conf";
    }
    match facts.product.os_id.as_deref() {
        Some("debian") | Some("ubuntu") => "/etc/mdadm/mdadm.conf",
        _ => "/etc/mdadm.conf",
    }
}

/// Erases a disk's partitions' signatures, then its partition tables and its own signatures.
pub(crate) fn wipe_disk_actions(disk: &Disk) -> Vec<Action> {
    let mut actions: Vec<Action> = disk
        .partitions
        .iter()
        .map(|p| run(&["wipefs", "--all", &disk.partition_path(p.number)]))
        .collect();
    actions.push(run(&["sgdisk", "--zap-all", &disk.stable_path()]));
    actions.push(run(&["wipefs", "--all", &disk.stable_path()]));
    actions
}

/// `pvcreate` and `xe sr-create` of a local LVM SR on an array.
pub(crate) fn sr_create_step(
    facts: &HostFacts,
    device: &str,
    name: &str,
    writes: Vec<Writes>,
) -> Step {
    let mut sr_create = vec![
        "xe".to_string(),
        "sr-create".into(),
        "type=lvm".into(),
        "content-type=user".into(),
        "shared=false".into(),
        format!("device-config:device={device}"),
        format!("name-label={name}"),
    ];
    if let Some(host) = &facts.product.installation_uuid {
        sr_create.push(format!("host-uuid={host}"));
    }
    step(
        "create-sr",
        "the local SR on the mirrored storage array",
        writes,
        vec![
            // dom0's lvm.conf may be read-only for metadata; override for this one command only.
            run(&[
                "pvcreate",
                "--config",
                "global{metadata_read_only=0}",
                device,
            ]),
            run_owned(sr_create),
        ],
        DoneCheck::SrExists {
            name_label: name.to_string(),
            device: device.to_string(),
        },
    )
}

/// Waits, with progress, until these arrays are in sync: the mirror protects nothing before.
pub(crate) fn wait_resync_step(devices: Vec<String>) -> Step {
    step(
        "wait-resync",
        "the mirror protects nothing until every array is in sync",
        vec![Writes::Nothing],
        vec![Action::WaitSync {
            devices: devices.clone(),
        }],
        DoneCheck::InSync { devices },
    )
}

/// Old md superblocks and filesystem signatures survive a new partition table: erase them on
/// each of these partitions of `disk`, then let udev catch up.
pub(crate) fn clear_signatures_step(id: &str, why: &str, disk: &Disk, numbers: &[u32]) -> Step {
    let mut wipe: Vec<Action> = numbers
        .iter()
        .map(|n| run(&["wipefs", "--all", &disk.partition_path(*n)]))
        .collect();
    wipe.push(run(&["udevadm", "settle"]));
    step(
        id,
        why,
        vec![super::steps::writes(disk)],
        wipe,
        DoneCheck::Journal,
    )
}

/// A fresh FAT on `part` (made by `mkfs`, the full argv ending in `part`) holding a copy of
/// the mounted ESP: how convert and replace give a disk its own ESP.
pub(crate) fn esp_copy_actions(mkfs: Vec<String>, part: &str) -> Vec<Action> {
    vec![
        run_owned(mkfs),
        run(&["mkdir", "-p", ESP_STAGING]),
        run(&["mount", part, ESP_STAGING]),
        run(&[
            "cp",
            "-r",
            "--preserve=timestamps",
            "/boot/efi/.",
            &format!("{ESP_STAGING}/"),
        ]),
        run(&["umount", ESP_STAGING]),
    ]
}

#[cfg(test)]
mod tests {
    use super::bitmap_chunk;

    #[test]
    fn bitmap_chunks_grow_with_the_member_from_1_to_64_mib() {
        let gib = 1u64 << 30;
        assert_eq!(bitmap_chunk(128 << 20), "--bitmap-chunk=1024");
        assert_eq!(bitmap_chunk(gib + gib / 4), "--bitmap-chunk=1024");
        assert_eq!(bitmap_chunk(100 * gib), "--bitmap-chunk=1024");
        assert_eq!(bitmap_chunk(200 * gib), "--bitmap-chunk=4096");
        assert_eq!(bitmap_chunk(1024 * gib), "--bitmap-chunk=16384");
        assert_eq!(bitmap_chunk(16 * 1024 * gib), "--bitmap-chunk=65536");
    }
}
