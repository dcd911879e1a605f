//! Phase 2 and after: on the RAID, the original disk is folded in (its table, members, boot
//! loader, the rebuild), the arrays that hold nothing are made anew, then the SR.

use super::model::*;
use super::shared::sr_create_step;
use super::steps::{partition_commands, run, step, writes, Ctx};

pub(super) fn after_reboot(ctx: &Ctx<'_>) -> Vec<Step> {
    let src = ctx.src();
    let tgt = ctx.target;
    let src_w = || vec![writes(src)];
    let mut steps = Vec::new();

    steps.push(super::lifecycle_steps::point_of_no_return(ctx));

    if let Some(early) = super::boot_steps::bootloader_original_early(ctx) {
        steps.push(early);
    }
    if let Some(early) = super::boot_steps::efi_target_first_early(ctx) {
        steps.push(early);
    }
    // The BIOS boot partition keeps its core.img: until the boot loader is reinstalled at the
    // end, the original disk boots the RAID through it. No zap: the replicated table below
    // rewrites the GPT in place and keeps the MBR's boot code.
    let bios_boot = ctx.layout.bios_boot;
    // UEFI: bootloader-original made the ESP a copy that boots the RAID; it stays.
    let esp_kept = ctx
        .layout
        .esp
        .filter(|_| ctx.layout.profile == Profile::XenServerUefi);
    // XenServer 6.5: the original boots the RAID from the interim copy of /boot.
    let interim = super::boot_steps::interim_boot_partition(ctx);
    let kept = |n: u32| Some(n) == bios_boot || Some(n) == esp_kept || Some(n) == interim;
    let wipe: Vec<Action> = src
        .partitions
        .iter()
        .filter(|p| !kept(p.number))
        .map(|p| run(&["wipefs", "--all", &src.partition_path(p.number)]))
        .collect();
    steps.push(step(
        "wipe-original",
        "erase the original's filesystems: their labels would collide with the arrays'",
        src_w(),
        wipe,
        DoneCheck::Journal,
    ));
    steps.push(step(
        "partition-original",
        "copy the target's partition table to the original, with new GUIDs",
        src_w(),
        partition_commands(ctx, src, tgt),
        DoneCheck::PartitionTable {
            by_id: src.stable_path(),
            partitions: ctx.partition_shapes(),
        },
    ));
    let mut clear: Vec<Action> = ctx
        .partition_shapes()
        .iter()
        .filter(|s| !kept(s.number))
        .map(|s| run(&["wipefs", "--all", &src.partition_path(s.number)]))
        .collect();
    clear.push(run(&["udevadm", "settle"]));
    steps.push(step(
        "clear-original-signatures",
        "no stale signature may sit under a new member",
        src_w(),
        clear,
        DoneCheck::Journal,
    ));
    let (blank, with_data): (Vec<&ArraySpec>, Vec<&ArraySpec>) = ctx
        .layout
        .arrays
        .iter()
        .partition(|a| a.content.starts_blank());
    for array in &with_data {
        let member = src.partition_path(array.partition);
        steps.push(step(
            &format!("add-member-{}", array.role),
            &format!(
                "the original's partition {} joins {}; resync starts",
                array.partition, array.device
            ),
            src_w(),
            vec![run(&["mdadm", "--add", &array.device, &member])],
            DoneCheck::ArrayMember {
                uuid: array.uuid.clone(),
                member,
            },
        ));
    }

    if interim.is_none() {
        steps.push(super::boot_steps::bootloader_both(ctx));
    }
    steps.extend(super::boot_steps::efi_entries_both(ctx));
    steps.push(super::shared::wait_resync_step(
        with_data.iter().map(|a| a.device.clone()).collect(),
    ));
    if interim.is_some() {
        // extlinux reads root's filesystem through one member: the original's boots only
        // once it is in sync, and the BIOS boots the original. So the flag moves only then:
        // with --no-wait the run stops here until the rebuild is done (the engine's gate).
        let mut both = super::boot_steps::bootloader_both(ctx);
        if let Some(root) = ctx.root_array() {
            both.actions.insert(
                0,
                Action::RequireSync {
                    devices: vec![root.device.clone()],
                },
            );
        }
        steps.push(both);
    }
    // After the rebuilds above: md syncs one array at a time per disk, and the arrays holding
    // data come first.
    for array in blank {
        steps.push(recreate_blank_array(ctx, array));
    }
    steps
}

/// An array that holds nothing yet is made anew with both members instead of rebuilding the
/// target's empty member onto the original (a full copy of nothing, during which the array
/// survives the loss of one disk only). Made anew, every block written to it lands on both
/// disks from the start; md's initial sync of the never-written space runs in the background,
/// reading one member only until it passes (reads stay consistent).
fn recreate_blank_array(ctx: &Ctx<'_>, array: &ArraySpec) -> Step {
    let tgt_member = ctx.target.partition_path(array.partition);
    let src_member = ctx.src().partition_path(array.partition);
    step(
        &format!("recreate-array-{}", array.role),
        &format!(
            "{} holds nothing yet: made anew on partition {} of both disks, mirrored from its first write",
            array.device, array.partition
        ),
        vec![writes(ctx.target), writes(ctx.src())],
        vec![
            Action::RecreateArray {
                device: array.device.clone(),
                members: vec![tgt_member.clone(), src_member.clone()],
                create: ctx.create_array_argv(array, &tgt_member, &src_member),
            },
            run(&["udevadm", "settle"]),
        ],
        DoneCheck::All {
            checks: vec![
                DoneCheck::ArrayMember {
                    uuid: array.uuid.clone(),
                    member: tgt_member,
                },
                DoneCheck::ArrayMember {
                    uuid: array.uuid.clone(),
                    member: src_member,
                },
            ],
        },
    )
}

pub(super) fn storage(ctx: &Ctx<'_>) -> Vec<Step> {
    let (Some(name), Some(array)) = (
        ctx.sr_name,
        ctx.layout
            .arrays
            .iter()
            .find(|a| a.content == Content::Storage),
    ) else {
        return Vec::new();
    };
    if !ctx.facts.has_tool("xe") {
        return Vec::new();
    }
    vec![sr_create_step(
        ctx.facts,
        &array.device,
        name,
        vec![writes(ctx.src()), writes(ctx.target)],
    )]
}
