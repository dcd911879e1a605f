//! Boot loader and initramfs steps, per profile.

use crate::host::{HostFacts, InitramfsTool};

use super::edits::*;
use super::layout::Layout;
use super::model::*;
use super::steps::{in_new_root, run, run_owned, step, writes, Ctx, NEW_ROOT};

/// The image the default boot entry loads and the kernel release it is built for.
pub(crate) fn initramfs_image(facts: &HostFacts) -> (String, String) {
    let kver = facts.product.kernel_release.clone().unwrap_or_default();
    let initrd = facts
        .boot
        .default_entry()
        .and_then(|e| e.initrd.clone())
        .unwrap_or_else(|| format!("/boot/initramfs-{kver}.img"));
    (initrd, kver)
}

/// The host's initramfs tool rebuilding the default image with md assembly and mdadm.conf,
/// inside `chroot` when given.
pub(crate) fn initramfs_argv(facts: &HostFacts, chroot: Option<&str>) -> Vec<String> {
    let (initrd, kver) = initramfs_image(facts);
    let tool: Vec<String> = match facts.boot.initramfs_tool {
        Some(InitramfsTool::Mkinitrd) => vec![
            "mkinitrd".into(),
            "-f".into(),
            "--preload=raid1".into(),
            "--with=raid1".into(),
            initrd,
            kver,
        ],
        Some(InitramfsTool::InitramfsTools) => {
            vec!["update-initramfs".into(), "-u".into(), "-k".into(), kver]
        }
        _ => vec![
            "dracut".into(),
            "--force".into(),
            "--mdadmconf".into(),
            "--add".into(),
            "mdraid".into(),
            "--add-drivers".into(),
            "raid1".into(),
            initrd,
            kver,
        ],
    };
    match chroot {
        Some(root) => ["chroot".to_string(), root.to_string()]
            .into_iter()
            .chain(tool)
            .collect(),
        None => tool,
    }
}

pub(super) fn initramfs_step(ctx: &Ctx<'_>) -> Step {
    step(
        "build-initramfs",
        "an initramfs that assembles the arrays from the copy's mdadm.conf",
        vec![writes(ctx.target)],
        vec![run_owned(initramfs_argv(ctx.facts, Some(NEW_ROOT)))],
        DoneCheck::Journal,
    )
}

pub(super) fn bootloader_target(ctx: &Ctx<'_>) -> Vec<Step> {
    let tgt = ctx.target;
    let mut actions = Vec::new();
    let mut writes_list = vec![writes(tgt)];
    // A firmware boot entry is checkable and must not be created twice on a resume; GRUB's
    // install is re-run every time (its MBR code proves nothing about core.img).
    let mut done = DoneCheck::Journal;
    match (ctx.layout.profile, ctx.layout.esp) {
        (Profile::XenServerUefi, Some(esp)) => {
            if let Some((action, label)) = ctx.efibootmgr(tgt, esp) {
                actions.push(action);
                writes_list.push(Writes::Firmware);
                done = DoneCheck::EfiBootEntry { label };
            }
        }
        (Profile::XenServer65, _) => {
            let gptmbr = gptmbr_path(ctx);
            actions.push(run(&[
                "chroot",
                NEW_ROOT,
                "extlinux",
                "--raid",
                "--install",
                "/boot",
            ]));
            actions.push(run(&[
                "dd",
                &format!("if={}", in_new_root(&gptmbr)),
                &format!("of={}", tgt.stable_path()),
                "bs=440",
                "count=1",
                "conv=notrunc",
            ]));
            let flag = format!("--attributes={}:set:2", root_partition(ctx));
            actions.push(run(&["sgdisk", &flag, &tgt.stable_path()]));
        }
        _ => {
            let install = ctx.tool(&["grub-install", "grub2-install"]);
            if ctx.layout.profile == Profile::PlainGrub2 {
                let mkconfig = ctx.tool(&["grub-mkconfig", "grub2-mkconfig"]);
                let cfg = ctx
                    .facts
                    .boot
                    .config_path
                    .clone()
                    .unwrap_or_else(|| "/boot/grub/grub.cfg".into());
                actions.push(run(&["chroot", NEW_ROOT, mkconfig, "-o", &cfg]));
            }
            actions.push(run(&[
                "chroot",
                NEW_ROOT,
                install,
                "--target=i386-pc",
                &tgt.stable_path(),
            ]));
        }
    }
    vec![step(
        "bootloader-target",
        "make the target bootable on its own, from the copy's /boot on md",
        writes_list,
        actions,
        done,
    )]
}

pub(super) fn boot_once(ctx: &Ctx<'_>) -> Vec<Step> {
    if ctx.layout.profile == Profile::XenServerUefi {
        return efi_boot_once(ctx).into_iter().collect();
    }
    let src_w = vec![writes(ctx.src())];
    let Some((path, rewritten)) = ctx.rewritten_boot_config() else {
        return Vec::new();
    };
    let Some(original) = ctx.facts.files.get(&path) else {
        return Vec::new();
    };
    let config = ctx.facts.boot.config.as_ref();
    let backup = format!("{path}.xenraid-backup");
    match ctx.layout.profile {
        // grub-mkconfig's grub.cfg (Debian, RHEL) honours `next_entry` in grubenv, as the
        // XenServer installer's honours `override_entry`.
        Profile::XenServer7Bios | Profile::PlainGrub2 => {
            let var = if config.is_some_and(|c| c.has_override_entry) {
                "override_entry"
            } else if config.is_some_and(|c| c.has_next_entry) {
                "next_entry"
            } else {
                return Vec::new();
            };
            let Some(new) = grub_with_boot_once(original, &rewritten) else {
                return Vec::new();
            };
            let dir = path
                .rsplit_once('/')
                .map(|(d, _)| d)
                .unwrap_or("/boot/grub");
            let editenv = ctx.tool(&["grub-editenv", "grub2-editenv"]);
            vec![step(
                "boot-once",
                "one-shot GRUB entry on the original disk: the next boot tries the RAID, the one after returns to the original unless the RAID came up",
                src_w,
                vec![
                    // --no-clobber: a re-run must never back up the already edited file.
                    run(&["cp", "-a", "--no-clobber", &path, &backup]),
                    edit_action(&path, original, &new),
                    run(&[editenv, &format!("{dir}/grubenv"), "set", &format!("{var}={BOOT_ONCE_TITLE}")]),
                ],
                DoneCheck::All {
                    checks: vec![
                        DoneCheck::FileContains {
                            path: path.clone(),
                            text: BOOT_ONCE_TITLE.into(),
                        },
                        DoneCheck::FileContains {
                            path: format!("{dir}/grubenv"),
                            text: format!("{var}={BOOT_ONCE_TITLE}"),
                        },
                    ],
                },
            )]
        }
        Profile::XenServer65 => {
            let raid_initrd = "/boot/initrd-xenraid.img";
            let Some(initrd) = ctx
                .facts
                .boot
                .default_entry()
                .and_then(|e| e.initrd.clone())
            else {
                return Vec::new();
            };
            let Some(new) = extlinux_with_boot_once(original, &rewritten, raid_initrd) else {
                return Vec::new();
            };
            vec![step(
                "boot-once",
                "one-shot extlinux label on the original disk booting the RAID root (extlinux --once)",
                src_w,
                vec![
                    run(&["cp", "-a", "--no-clobber", &path, &backup]),
                    run(&["cp", &in_new_root(&initrd), raid_initrd]),
                    edit_action(&path, original, &new),
                    run(&["extlinux", &format!("--once={BOOT_ONCE_LABEL}"), "/boot"]),
                ],
                // Not "the label is in extlinux.conf": the boot that uses `--once` spends it
                // (in ldlinux.sys's ADV, which nothing reads back), and the label stays. A
                // `resume --retry-boot` after a RAID boot that was cut short must arm it
                // again, or the retried reboot comes back to the original (crash matrix,
                // xs65, a power cut before `point-of-no-return`). Every action repeats safely.
                DoneCheck::Journal,
            )]
        }
        _ => Vec::new(),
    }
}

/// UEFI: the firmware's own one-shot. BootNext is spent by the boot that uses it, so a RAID
/// boot that fails leaves the next power cycle on the original disk's entry in BootOrder.
fn efi_boot_once(ctx: &Ctx<'_>) -> Option<Step> {
    ctx.layout.esp?;
    ctx.efibootmgr(ctx.target, ctx.layout.esp?)?;
    Some(step(
        "boot-once",
        "one-shot firmware boot (BootNext) of the target's entry: the next boot tries the RAID, the one after returns to the original unless the RAID came up",
        vec![Writes::Firmware],
        vec![Action::EfiBootNext {
            label: ctx.efi_label(ctx.target),
        }],
        DoneCheck::Journal,
    ))
}

/// UEFI, phase 2: a firmware entry for the original disk's new ESP (its old entry named a
/// partition that no longer exists), then both entries first in BootOrder, the target's
/// (the disk that booted this RAID) before the original's.
pub(super) fn efi_entries_both(ctx: &Ctx<'_>) -> Vec<Step> {
    let (Profile::XenServerUefi, Some(esp)) = (ctx.layout.profile, ctx.layout.esp) else {
        return Vec::new();
    };
    let src = ctx.src();
    let Some((create, label)) = ctx.efibootmgr(src, esp) else {
        return Vec::new();
    };
    vec![
        // Its own step so that a resume never creates a second entry.
        step(
            "boot-entry-original",
            "a firmware boot entry for the original disk's ESP",
            vec![Writes::Firmware],
            vec![create],
            DoneCheck::EfiBootEntry {
                label: label.clone(),
            },
        ),
        step(
            "boot-order",
            "both disks' entries first in BootOrder: either disk boots the RAID if the other fails",
            vec![Writes::Firmware],
            vec![Action::EfiBootOrderFirst {
                labels: vec![ctx.efi_label(ctx.target), label.clone()],
            }],
            DoneCheck::EfiBootOrderFirst {
                labels: vec![ctx.efi_label(ctx.target), label],
            },
        ),
    ]
}

pub(super) fn bootloader_both(ctx: &Ctx<'_>) -> Step {
    let src = ctx.src();
    let tgt = ctx.target;
    let mut actions = Vec::new();
    let mut writes_list = vec![writes(src), writes(tgt)];
    match (ctx.layout.profile, ctx.layout.esp) {
        (Profile::XenServerUefi, Some(esp)) => {
            actions = esp_copy_actions(ctx, esp);
            writes_list = vec![writes(src)];
        }
        (Profile::XenServer65, _) => {
            let gptmbr = gptmbr_path(ctx);
            actions.push(run(&["extlinux", "--raid", "--install", "/boot"]));
            let root = root_partition(ctx);
            for disk in [src, tgt] {
                actions.push(run(&[
                    "dd",
                    &format!("if={gptmbr}"),
                    &format!("of={}", disk.stable_path()),
                    "bs=440",
                    "count=1",
                    "conv=notrunc",
                ]));
                let mut flags = vec!["sgdisk".to_string(), format!("--attributes={root}:set:2")];
                let interim = interim_boot_partition(ctx).filter(|_| disk.name == src.name);
                if let Some(interim) = interim {
                    // One sgdisk run: gptmbr.bin boots the first flagged partition, so the
                    // original's flag moves from the interim copy to root in one write.
                    flags.push(format!("--attributes={interim}:clear:2"));
                }
                flags.push(disk.stable_path());
                actions.push(run_owned(flags));
                if let Some(interim) = interim {
                    // Nothing boots it any more; recreate-array-* makes it a member next.
                    actions.push(run(&["wipefs", "--all", &src.partition_path(interim)]));
                }
            }
        }
        _ => {
            let install = ctx.tool(&["grub-install", "grub2-install"]);
            for disk in [src, tgt] {
                actions.push(run(&[install, "--target=i386-pc", &disk.stable_path()]));
            }
        }
    }
    // Reinstalled every time: boot code in the MBR says nothing about the core image behind
    // it (the lab had a target whose MBR was GRUB's and whose BIOS boot partition was empty).
    step(
        "bootloader-both",
        "each disk boots on its own: the boot loader goes on every member disk",
        writes_list,
        actions,
        DoneCheck::Journal,
    )
}

/// GRUB BIOS hosts: the original disk is the one the firmware boots, and the one-shot entry
/// is spent. Before its filesystems go, its boot loader is pointed at the RAID, so a crash at
/// any later instant still boots the RAID (and resumes) from whichever disk the firmware picks.
pub(super) fn bootloader_original_early(ctx: &Ctx<'_>) -> Option<Step> {
    // UEFI: the original's ESP becomes a copy of the running one (the target's, whose grub.cfg
    // boots the RAID). Firmware that starts the original disk (its entry, or its removable
    // path when BootOrder is rewritten, as OVMF does from QEMU's boot order) then boots the
    // RAID; wipe-original and clear-original-signatures leave that ESP alone.
    if let (Profile::XenServerUefi, Some(esp)) = (ctx.layout.profile, ctx.layout.esp) {
        return Some(step(
            "bootloader-original",
            "the original disk's ESP boots the RAID from now on, before its filesystems are erased",
            vec![writes(ctx.src())],
            esp_copy_actions(ctx, esp),
            DoneCheck::Journal,
        ));
    }
    if let Some(interim) = interim_boot_partition(ctx) {
        return Some(interim_boot_step(ctx, interim));
    }
    if !matches!(
        ctx.layout.profile,
        Profile::XenServer7Bios | Profile::PlainGrub2
    ) || ctx.layout.bios_boot.is_none()
    {
        return None;
    }
    let src = ctx.src();
    let install = ctx.tool(&["grub-install", "grub2-install"]);
    Some(step(
        "bootloader-original",
        "the original disk boots the RAID from now on, before its filesystems are erased",
        vec![writes(src)],
        vec![run(&[install, "--target=i386-pc", &src.stable_path()])],
        DoneCheck::Journal,
    ))
}

/// XenServer 6.5: the partition the original disk boots the RAID from between the point of no
/// return and the end of its root member's rebuild (its backup partition, which holds nothing
/// until it is made anew after that rebuild).
///
/// gptmbr.bin starts the first partition flagged legacy-BIOS-bootable, and the BIOS boots one
/// disk: SeaBIOS, like most, never tries the second after gptmbr.bin gives up (INT 18h). In
/// that window the original's root partition holds nothing extlinux can read (its filesystem
/// erased, then half rebuilt from the target's), so a power cut there hung at the original's
/// extlinux (crash matrix, xs65). GRUB profiles need none: core.img sits outside md.
pub(crate) fn interim_boot_partition(ctx: &Ctx<'_>) -> Option<u32> {
    interim_boot_array(ctx.layout).map(|a| a.partition)
}

pub(crate) fn interim_boot_array<'a>(layout: &'a Layout<'_>) -> Option<&'a ArraySpec> {
    if layout.profile != Profile::XenServer65 {
        return None;
    }
    layout
        .arrays
        .iter()
        .find(|a| a.content == Content::Unused && a.role != "root")
}

/// extlinux's partition: the one holding /boot (root on every 6.5 host).
fn root_partition(ctx: &Ctx<'_>) -> u32 {
    ctx.root_array().map_or(1, |a| a.partition)
}

/// The sgdisk arguments that make gptmbr.bin start the interim copy instead of root.
pub(super) fn interim_boot_flags(ctx: &Ctx<'_>) -> Option<[String; 2]> {
    let interim = interim_boot_partition(ctx)?;
    Some([
        format!("--attributes={}:clear:2", root_partition(ctx)),
        format!("--attributes={interim}:set:2"),
    ])
}

/// XenServer 6.5: a copy of the running /boot (the RAID's kernel, initrd and extlinux.conf,
/// whose default entry boots the RAID root) on the original disk's interim partition, with
/// its own extlinux, and the original disk's flag moved to it. Until the last action the
/// original's own root (untouched before wipe-original) keeps the flag, so a cut anywhere in
/// the step boots the original, as before the step (`resume --retry-boot`).
fn interim_boot_step(ctx: &Ctx<'_>, interim: u32) -> Step {
    let src = ctx.src();
    let part = src.partition_path(interim);
    let disk = src.stable_path();
    let [clear_root, set_interim] = interim_boot_flags(ctx).expect("an interim partition");
    let set_root = format!("--attributes={}:set:2", root_partition(ctx));
    let clear_interim = format!("--attributes={interim}:clear:2");
    step(
        "bootloader-original",
        &format!(
            "the original disk boots the RAID from a copy of /boot on its partition {interim} until its root member is in sync: its own root is erased next"
        ),
        vec![writes(src)],
        vec![
            // A repeat after a cut: the copy is remade, so the flag goes back to root first.
            run(&["sgdisk", &set_root, &clear_interim, &disk]),
            run(&["wipefs", "--all", &part]),
            run(&["mkfs.ext3", "-q", "-L", INTERIM_BOOT_LABEL, &part]),
            run(&["mkdir", "-p", INTERIM_BOOT]),
            run(&["mount", &part, INTERIM_BOOT]),
            run(&["cp", "-a", "/boot", &format!("{INTERIM_BOOT}/")]),
            run(&["extlinux", "--install", &format!("{INTERIM_BOOT}/boot")]),
            run(&["umount", INTERIM_BOOT]),
            run(&["sgdisk", &clear_root, &set_interim, &disk]),
        ],
        DoneCheck::Journal,
    )
}

/// Where the interim copy of /boot is filled.
const INTERIM_BOOT: &str = "/run/xenraid/interim-boot";
/// Distinct from every array's label (never two filesystems with one label).
const INTERIM_BOOT_LABEL: &str = "xenraid-boot";

/// UEFI: the one-shot BootNext is spent and BootOrder still starts with the original disk's
/// entry, which names the ESP partition by a GUID that partition-original replaces. The
/// target's entry (the disk that just booted the RAID) goes first, so a crash at any later
/// instant boots the RAID (and resumes) through a real entry, not a fallback path.
pub(super) fn efi_target_first_early(ctx: &Ctx<'_>) -> Option<Step> {
    if ctx.layout.profile != Profile::XenServerUefi {
        return None;
    }
    ctx.layout.esp?;
    Some(step(
        "boot-order-target",
        "the target's firmware entry first in BootOrder: the original's names a partition GUID about to change",
        vec![Writes::Firmware],
        vec![Action::EfiBootOrderFirst {
            labels: vec![ctx.efi_label(ctx.target)],
        }],
        DoneCheck::Journal,
    ))
}

/// A fresh FAT on the original disk's ESP (its own volume id and label) holding a copy of the
/// mounted ESP: the RAID's boot loader and grub.cfg.
fn esp_copy_actions(ctx: &Ctx<'_>, esp: u32) -> Vec<Action> {
    let src = ctx.src();
    let part = src.partition_path(esp);
    let mkfs = vec![
        "mkfs.vfat".into(),
        "-F".into(),
        "32".into(),
        "-i".into(),
        ctx.esp_id(src),
        "-n".into(),
        ctx.esp_label(src),
        part.clone(),
    ];
    super::shared::esp_copy_actions(mkfs, &part)
}

/// Where this host's syslinux keeps gptmbr.bin (CentOS 5/6: /usr/share/syslinux).
fn gptmbr_path(ctx: &Ctx<'_>) -> String {
    ctx.facts
        .boot
        .gptmbr_path
        .clone()
        .unwrap_or_else(|| "/usr/share/syslinux/gptmbr.bin".into())
}
