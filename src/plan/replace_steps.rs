//! The steps of `xenraid replace`: take the failed disk's members out, give the new disk the
//! healthy disk's partition table, add its members, make it bootable, wait for the resync.

use crate::host::{Disk, HostFacts};

use super::model::*;
use super::replace::{describe, Mirror, ReplaceIntent, Situation};
use super::steps::{efi_label, efibootmgr, run, run_owned, step, writes};

fn affected<'s, 'f>(s: &'s Situation<'f>) -> impl Iterator<Item = &'s Mirror<'f>> {
    s.affected.iter().map(|&i| &s.mirrors[i])
}

/// The partition number of the healthy disk's working member of this mirror.
fn healthy_partition(m: &Mirror<'_>, healthy: &Disk) -> Option<u32> {
    m.members
        .iter()
        .find(|x| x.disk.is_some_and(|d| d.name == healthy.name) && !x.faulty)
        .and_then(|x| x.partition)
}

pub fn steps(
    facts: &HostFacts,
    intent: &ReplaceIntent,
    s: &Situation<'_>,
    healthy: &Disk,
    new: Option<&Disk>,
    returning: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(failed) = s.failed {
        for m in affected(s) {
            for x in m
                .members
                .iter()
                .filter(|x| x.disk.is_some_and(|d| d.name == failed.name))
            {
                let Some(n) = x.partition else { continue };
                let member = failed.partition_path(n);
                steps.push(step(
                    &format!("remove-{}", m.role),
                    &format!(
                        "take {member} out of {}: marked failed, then removed",
                        m.device
                    ),
                    vec![writes(failed)],
                    vec![run(&[
                        "mdadm", &m.device, "--fail", &member, "--remove", &member,
                    ])],
                    DoneCheck::Detached { member },
                ));
            }
        }
    }
    for m in affected(s).filter(|m| m.members.iter().any(|x| x.disk.is_none())) {
        // md keeps a member whose disk vanished as faulty until told to let it go.
        steps.push(step(
            &format!("remove-gone-{}", m.role),
            &format!(
                "{} still lists a member whose disk is gone; let it go",
                m.device
            ),
            vec![Writes::Nothing],
            vec![run(&[
                "mdadm", &m.device, "--fail", "detached", "--remove", "detached",
            ])],
            DoneCheck::Journal,
        ));
    }
    let Some(new) = new else {
        return steps;
    };
    if returning {
        steps.extend(re_add(s, new));
    } else {
        steps.extend(prepare_new(intent, healthy, new));
        // Before any member: grub-install probes /boot's array, and with a fresh member
        // waiting to rebuild GRUB 2.06 failed to find the array at all (lab); with the healthy
        // members alone it installs. The new disk is also bootable before the resync begins.
        steps.extend(bootloader_new(facts, healthy, new));
        for m in affected(s) {
            let Some(n) = healthy_partition(m, healthy) else {
                continue;
            };
            let member = new.partition_path(n);
            let as_what = if intent.spare {
                "as a hot spare"
            } else {
                "resync starts"
            };
            steps.push(step(
                &format!("add-member-{}", m.role),
                &format!("the new disk's partition {n} joins {}; {as_what}", m.device),
                vec![writes(new)],
                vec![run(&["mdadm", &m.device, "--add", &member])],
                DoneCheck::ArrayMember {
                    uuid: m.uuid.clone(),
                    member,
                },
            ));
        }
    }
    if !intent.spare {
        steps.push(super::shared::wait_resync_step(
            affected(s).map(|m| m.device.clone()).collect(),
        ));
        if !returning {
            steps.extend(boot_flag_new(facts, s, healthy, new));
        }
    }
    steps
}

/// 6.5: gptmbr.bin starts the first partition flagged legacy-BIOS-bootable, and extlinux's
/// boot sector sits inside the root member. Flagged before that member is in sync, the new
/// disk would start a boot sector md has not copied yet; unflagged, gptmbr.bin gives up (INT
/// 18h, on which many BIOSes try the next disk). So the flag comes only after the resync.
fn boot_flag_new(facts: &HostFacts, s: &Situation<'_>, healthy: &Disk, new: &Disk) -> Option<Step> {
    if super::layout::detect_profile(facts).ok()? != Profile::XenServer65 {
        return None;
    }
    let dst = new.stable_path();
    let flagged: Vec<u32> = healthy
        .partitions
        .iter()
        .filter(|p| p.legacy_bios_bootable)
        .map(|p| p.number)
        .collect();
    if flagged.is_empty() {
        return None;
    }
    // The arrays whose members those partitions hold: with --no-wait the run stops before
    // this step until they are in sync.
    let devices: Vec<String> = affected(s)
        .filter(|m| healthy_partition(m, healthy).is_some_and(|n| flagged.contains(&n)))
        .map(|m| m.device.clone())
        .collect();
    let mut actions = vec![Action::RequireSync { devices }];
    actions.extend(flagged.iter().map(|n| {
        run_owned(vec![
            "sgdisk".into(),
            format!("--attributes={n}:set:2"),
            dst.clone(),
        ])
    }));
    Some(step(
        "boot-flag-new",
        "the legacy-BIOS-bootable flag on the new disk's root partition, now that it is in sync",
        vec![writes(new)],
        actions,
        DoneCheck::Journal,
    ))
}

/// The same disk back after a transient loss: each member re-added, so md's write-intent
/// bitmap limits the resync to what changed while it was away.
fn re_add(s: &Situation<'_>, back: &Disk) -> Vec<Step> {
    let mut steps = Vec::new();
    for m in affected(s) {
        let Some(part) = back.partitions.iter().find(|p| {
            p.uuid
                .as_deref()
                .is_some_and(|u| super::replace::same_md_uuid(u, &m.uuid))
        }) else {
            continue;
        };
        let member = back.partition_path(part.number);
        // Without a bitmap md can only rebuild the whole member; --add says so honestly.
        let (flag, why) = if m.bitmap {
            ("--re-add", "bitmap: only what changed is resynced")
        } else {
            ("--add", "no bitmap: the whole member is rebuilt")
        };
        steps.push(step(
            &format!("re-add-{}", m.role),
            &format!("{member} is back: it rejoins {} ({why})", m.device),
            vec![writes(back)],
            vec![run(&["mdadm", &m.device, flag, &member])],
            DoneCheck::ArrayMember {
                uuid: m.uuid.clone(),
                member,
            },
        ));
    }
    steps
}

fn prepare_new(intent: &ReplaceIntent, healthy: &Disk, new: &Disk) -> Vec<Step> {
    let dst = new.stable_path();
    let mut steps = Vec::new();
    let has_data =
        !new.partitions.is_empty() || new.probe.pt_type.is_some() || new.probe.fs_type.is_some();
    if intent.wipe_target && has_data {
        let mut actions: Vec<Action> = new
            .partitions
            .iter()
            .map(|p| run(&["wipefs", "--all", &new.partition_path(p.number)]))
            .collect();
        actions.push(run(&["sgdisk", "--zap-all", &dst]));
        actions.push(run(&["wipefs", "--all", &dst]));
        steps.push(step(
            "wipe-new",
            "erase what the new disk held (--wipe-target)",
            vec![writes(new)],
            actions,
            DoneCheck::Journal,
        ));
    }
    let shapes: Vec<PartitionShape> = healthy
        .partitions
        .iter()
        .map(|p| PartitionShape {
            number: p.number,
            start: p.start_sector,
            end: p.end_sector(),
            type_code: p
                .type_guid
                .as_deref()
                .map(|g| crate::host::gpt_type_code(g).unwrap_or(g).to_string())
                .unwrap_or_default(),
        })
        .collect();
    steps.push(step(
        "partition-new",
        "the healthy disk's partition table on the new disk, with new GUIDs",
        vec![writes(new)],
        vec![
            run(&[
                "sgdisk",
                &format!("--replicate={dst}"),
                &healthy.stable_path(),
            ]),
            run(&["sgdisk", "--randomize-guids", "--move-second-header", &dst]),
            run(&["partx", "-u", &dst]),
            run(&["udevadm", "settle"]),
        ],
        DoneCheck::PartitionTable {
            by_id: dst.clone(),
            partitions: shapes,
        },
    ));
    let numbers: Vec<u32> = healthy.partitions.iter().map(|p| p.number).collect();
    steps.push(super::shared::clear_signatures_step(
        "clear-new-signatures",
        "old superblocks and filesystem signatures survive a new partition table; erase them",
        new,
        &numbers,
    ));
    steps
}

/// The new disk boots on its own, as the healthy one does.
fn bootloader_new(facts: &HostFacts, healthy: &Disk, new: &Disk) -> Vec<Step> {
    let dst = new.stable_path();
    let profile = super::layout::detect_profile(facts).ok();
    let mut steps = Vec::new();
    match profile {
        Some(Profile::XenServerUefi) => {
            let Some(esp) = healthy.partitions.iter().find(|p| p.is_esp()) else {
                return steps;
            };
            let part = new.partition_path(esp.number);
            let mut mkfs: Vec<String> = ["mkfs.vfat", "-F", "32", "-n", "XRAID-ESP"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if let Some(id) = orphaned_esp_id(facts) {
                // fstab mounts /boot/efi by the volume id of an ESP that left with the
                // replaced disk: the new ESP takes that id, so /boot/efi mounts again.
                mkfs.extend(["-i".to_string(), id]);
            }
            mkfs.push(part.clone());
            let mut actions = super::shared::esp_copy_actions(mkfs, &part);
            steps.push(step(
                "esp-new",
                "the new disk's ESP: a copy of the one the host boots from",
                vec![writes(new)],
                std::mem::take(&mut actions),
                DoneCheck::Journal,
            ));
            if let Some((create, label)) = efibootmgr(facts, new, esp.number) {
                steps.push(step(
                    "boot-entry-new",
                    "a firmware boot entry for the new disk",
                    vec![Writes::Firmware],
                    vec![create],
                    DoneCheck::EfiBootEntry {
                        label: label.clone(),
                    },
                ));
                steps.push(step(
                    "boot-order",
                    "the healthy and the new disk's entries first in BootOrder",
                    vec![Writes::Firmware],
                    vec![Action::EfiBootOrderFirst {
                        labels: vec![efi_label(facts, healthy), label],
                    }],
                    DoneCheck::Journal,
                ));
            }
        }
        Some(Profile::XenServer65) => {
            let gptmbr = facts
                .boot
                .gptmbr_path
                .clone()
                .unwrap_or_else(|| "/usr/share/syslinux/gptmbr.bin".into());
            // The flag waits for the resync (boot_flag_new): until then gptmbr.bin finds
            // nothing to start on this disk.
            steps.push(step(
                "bootloader-new",
                "gptmbr.bin in the new disk's MBR (extlinux lives in the mirrored /boot; the boot flag follows the resync)",
                vec![writes(new)],
                vec![run(&[
                    "dd",
                    &format!("if={gptmbr}"),
                    &format!("of={dst}"),
                    "bs=440",
                    "count=1",
                    "conv=notrunc",
                ])],
                DoneCheck::Journal,
            ));
        }
        _ if healthy.partitions.iter().any(|p| p.is_bios_boot()) => {
            let install = facts
                .first_tool(&["grub-install", "grub2-install"])
                .unwrap_or("grub-install");
            steps.push(step(
                "bootloader-new",
                "GRUB on the new disk: boot code in its MBR, core.img in its BIOS boot partition",
                vec![writes(new)],
                vec![run(&[install, "--target=i386-pc", &dst])],
                DoneCheck::Journal,
            ));
        }
        _ => {}
    }
    steps
}

/// The volume id (for `mkfs.vfat -i`) of the ESP fstab mounts at /boot/efi, when no
/// attached disk has it any more.
fn orphaned_esp_id(facts: &HostFacts) -> Option<String> {
    let entry = facts.fstab.iter().find(|e| e.file == "/boot/efi")?;
    let uuid = entry.spec.strip_prefix("UUID=")?;
    let present = facts
        .disks
        .iter()
        .flat_map(|d| d.partitions.iter())
        .any(|p| {
            p.uuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
        });
    let id: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
    (!present && id.len() == 8).then_some(id)
}

pub fn notes(
    facts: &HostFacts,
    intent: &ReplaceIntent,
    s: &Situation<'_>,
    new: Option<&Disk>,
    returning: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    let gone = s
        .failed
        .map(|f| describe(f, intent))
        .or_else(|| s.missing.clone());
    match (new, returning, &gone) {
        (None, _, Some(gone)) => {
            notes.push(format!(
                "then pull {gone} and insert the new disk (at least as large as the healthy one)"
            ));
            notes.push(
                "then run `xenraid replace --new /dev/disk/by-id/<new disk>`; `lsblk -o NAME,SIZE,SERIAL` shows it"
                    .into(),
            );
        }
        (Some(_), false, Some(gone)) if s.failed.is_some() => {
            notes.push(format!("once the resync is done, {gone} can be pulled"));
        }
        (Some(back), true, _) => notes.push(format!(
            "{} came back: its members are re-added, not rebuilt from scratch",
            describe(back, intent)
        )),
        _ => {}
    }
    let xs65 = super::layout::detect_profile(facts) == Ok(Profile::XenServer65);
    if intent.spare && new.is_some() && xs65 {
        notes.push(
            "the spare gets gptmbr.bin but not the legacy-BIOS-bootable flag (flagged, it would start a root member not yet in sync); once it has taken over and resynced, `xenraid doctor --fix` flags it"
                .into(),
        );
    }
    notes.push(
        "mdadm.conf names the arrays by UUID: a new member changes nothing in it or in the initramfs"
            .into(),
    );
    notes
}
