//! Named checks that decide whether a plan may run. Each says what it saw and what to do.

use crate::host::render::human_size;
use crate::host::{Disk, HostFacts};

use super::layout::{holds_sr, partition_names, Layout};
use super::model::{Check, Profile};

pub(crate) fn pass(name: &str, message: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        passed: true,
        message: message.into(),
        fix: String::new(),
    }
}

pub(crate) fn fail(name: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        passed: false,
        message: message.into(),
        fix: fix.into(),
    }
}

/// Finds the target by kernel path or by-id path.
pub fn resolve_target<'f>(facts: &'f HostFacts, given: &str) -> Option<&'f Disk> {
    if let Some(id) = given.strip_prefix("/dev/disk/by-id/") {
        return facts.disks.iter().find(|d| d.by_id.iter().any(|b| b == id));
    }
    let name = given.strip_prefix("/dev/").unwrap_or(given);
    facts.disk(name)
}

pub fn target_found(given: &str, target: Option<&Disk>, facts: &HostFacts) -> Check {
    match target {
        Some(disk) => pass(
            "target-found",
            format!(
                "{given} is {} (serial {}, {})",
                disk.name,
                disk.serial.as_deref().unwrap_or("unknown"),
                disk.stable_path()
            ),
        ),
        None => fail(
            "target-found",
            format!("{given} is not a disk on this host"),
            format!(
                "pick one of: {}",
                facts
                    .disks
                    .iter()
                    .map(|d| format!("/dev/{} ({})", d.name, d.stable_path()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

/// A holder in words: an md array by its name too, so "member of the root array" shows.
fn holder_text(facts: &HostFacts, holder: &str) -> String {
    match facts
        .arrays
        .iter()
        .find(|a| a.name == holder)
        .and_then(|a| a.md_name.as_deref())
    {
        Some(name) => format!("{holder} (array {name})"),
        None => holder.to_string(),
    }
}

/// Everything that uses a disk right now, in words.
pub(crate) fn target_users(facts: &HostFacts, target: &Disk) -> Vec<String> {
    let mut users = Vec::new();
    for holder in &target.holders {
        users.push(format!(
            "{} is held by {}",
            target.name,
            holder_text(facts, holder)
        ));
    }
    let whole = format!("/dev/{}", target.name);
    if facts.swaps.iter().any(|s| s.path == whole) {
        users.push(format!("{} is in use as swap", target.name));
    }
    for pv in facts
        .physical_volumes
        .iter()
        .filter(|pv| pv.device == whole)
    {
        if let Some(vg) = &pv.vg_name {
            users.push(format!("{} is an LVM physical volume of {vg}", target.name));
        }
    }
    let stable = target.stable_path();
    for sr in facts
        .storage_repositories
        .iter()
        .filter(|sr| sr.devices.iter().any(|d| d == &whole || d == &stable))
    {
        users.push(format!(
            "{} is the device of SR {} ({})",
            target.name, sr.name_label, sr.uuid
        ));
    }
    for part in &target.partitions {
        if let Some(mp) = &part.mount_point {
            users.push(format!("{} is mounted on {mp}", part.name));
        }
        if part.swap {
            users.push(format!("{} is in use as swap", part.name));
        }
        for holder in &part.holders {
            users.push(format!(
                "{} is held by {}",
                part.name,
                holder_text(facts, holder)
            ));
        }
        let names = partition_names(target, part);
        for pv in facts
            .physical_volumes
            .iter()
            .filter(|pv| names.contains(&pv.device))
        {
            if let Some(vg) = &pv.vg_name {
                users.push(format!("{} is an LVM physical volume of {vg}", part.name));
            }
        }
    }
    for mount in &facts.mounts {
        if format!("{}:{}", mount.major, mount.minor) == target.dev {
            users.push(format!(
                "{} is mounted on {}",
                target.name, mount.mount_point
            ));
        }
    }
    users
}

pub fn target_not_in_use(facts: &HostFacts, target: &Disk, layout_source: Option<&Disk>) -> Check {
    const NAME: &str = "target-not-in-use";
    if layout_source.is_some_and(|s| s.name == target.name) {
        return fail(
            NAME,
            format!("{} holds the running root filesystem /", target.name),
            "choose the second, empty disk as --target",
        );
    }
    let users = target_users(facts, target);
    if users.is_empty() {
        pass(
            NAME,
            format!("nothing mounted, swapped on or held on {}", target.name),
        )
    } else {
        fail(
            NAME,
            users.join("; "),
            "unmount, swapoff, stop the md array or deactivate the volume group first (xenraid never wipes a disk in use)",
        )
    }
}

pub fn target_large_enough(target: &Disk, required: u64, source: &Disk) -> Check {
    const NAME: &str = "target-large-enough";
    if target.logical_sector_size != source.logical_sector_size {
        return fail(
            NAME,
            format!(
                "{} has {}-byte sectors, {} has {}-byte sectors",
                target.name, target.logical_sector_size, source.name, source.logical_sector_size
            ),
            "use a target with the same logical sector size",
        );
    }
    if target.size_bytes >= required {
        pass(
            NAME,
            format!(
                "{} has {} ({} bytes), the layout needs {} bytes",
                target.name,
                human_size(target.size_bytes),
                target.size_bytes,
                required
            ),
        )
    } else {
        let short = required - target.size_bytes;
        fail(
            NAME,
            format!(
                "{} is {} bytes ({}) too small: it has {} bytes, the layout needs {}",
                target.name,
                short,
                human_size(short),
                target.size_bytes,
                required
            ),
            format!(
                "use a disk of at least {} ({required} bytes)",
                human_size(required)
            ),
        )
    }
}

pub fn target_blank(target: &Disk, wipe: bool, in_use: bool) -> Check {
    const NAME: &str = "target-blank";
    let mut found = Vec::new();
    if let Some(pt) = &target.probe.pt_type {
        found.push(format!("a {pt} partition table"));
    }
    if let Some(fs) = &target.probe.fs_type {
        found.push(format!("a whole-disk {fs} signature"));
    }
    for part in &target.partitions {
        let what = match (&part.fs_type, part.ambivalent_signatures) {
            (_, true) => "several competing signatures".to_string(),
            (Some(fs), _) => format!("{fs} signature"),
            (None, _) => "no signature".to_string(),
        };
        found.push(format!("partition {} ({what})", part.number));
    }
    if found.is_empty() {
        return pass(
            NAME,
            format!("{} has no partitions and no signatures", target.name),
        );
    }
    let seen = found.join(", ");
    if wipe && !in_use {
        pass(NAME, format!("will be wiped (--wipe-target): {seen}"))
    } else if wipe {
        fail(
            NAME,
            format!("{} is in use, refusing to wipe: {seen}", target.name),
            "see target-not-in-use",
        )
    } else {
        fail(
            NAME,
            format!("{} is not blank: {seen}", target.name),
            "check it is the right disk, then add --wipe-target to erase it",
        )
    }
}

pub fn source_layout(result: &Result<Layout<'_>, String>) -> Check {
    const NAME: &str = "source-layout";
    match result {
        Ok(layout) => pass(
            NAME,
            format!(
                "{:?} on {}: {} arrays ({})",
                layout.profile,
                layout.source.name,
                layout.arrays.len(),
                layout
                    .arrays
                    .iter()
                    .map(|a| format!("p{}→{}", a.partition, a.role))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(seen) => fail(
            NAME,
            format!("layout not recognised: {seen}"),
            "xenraid knows XenServer 6.5 (extlinux), XenServer 7.x/XCP-ng 8.x (GRUB2, BIOS or UEFI) and plain GRUB2 BIOS hosts on GPT; report this layout",
        ),
    }
}

pub fn required_tools(
    profile: Profile,
    facts: &HostFacts,
    layout: &Layout<'_>,
    want_sr: bool,
) -> Vec<Vec<&'static str>> {
    let mut needed: Vec<Vec<&'static str>> = vec![
        vec!["mdadm"],
        vec!["sgdisk"],
        vec!["partx"],
        vec!["wipefs"],
        vec!["udevadm"],
    ];
    for array in &layout.arrays {
        match &array.content {
            super::model::Content::Filesystem { fs_type, .. } => match fs_type.as_str() {
                "ext3" => needed.push(vec!["mkfs.ext3"]),
                "ext4" => needed.push(vec!["mkfs.ext4"]),
                _ => {}
            },
            super::model::Content::Swap { .. } => needed.push(vec!["mkswap"]),
            super::model::Content::Storage
                if want_sr && facts.product.kind != crate::host::ProductKind::Linux =>
            {
                needed.push(vec!["pvcreate"]);
                needed.push(vec!["xe"]);
            }
            _ => {}
        }
    }
    needed.push(vec!["dracut", "mkinitrd", "update-initramfs"]);
    match profile {
        Profile::XenServer65 => needed.push(vec!["extlinux"]),
        Profile::XenServerUefi => {
            needed.push(vec!["efibootmgr"]);
            needed.push(vec!["mkfs.vfat"]);
        }
        Profile::PlainGrub2 => {
            needed.push(vec!["grub-install", "grub2-install"]);
            needed.push(vec!["grub-mkconfig", "grub2-mkconfig"]);
        }
        Profile::XenServer7Bios => needed.push(vec!["grub-install", "grub2-install"]),
    }
    needed
}

pub fn tools_present(facts: &HostFacts, needed: &[Vec<&'static str>]) -> Check {
    const NAME: &str = "tools-present";
    let missing: Vec<String> = needed
        .iter()
        .filter(|alternatives| !alternatives.iter().any(|t| facts.has_tool(t)))
        .map(|alternatives| alternatives.join(" or "))
        .collect();
    if missing.is_empty() {
        pass(NAME, "every tool the plan runs is installed")
    } else {
        fail(
            NAME,
            format!("missing: {}", missing.join(", ")),
            "install them (on dom0: yum --enablerepo=base install <package>; the mdadm, gdisk, util-linux packages)",
        )
    }
}

pub fn not_converted(facts: &HostFacts, layout: &Layout<'_>, target: &Disk) -> Check {
    const NAME: &str = "not-already-converted";
    if let Some(root) = facts.root_mount() {
        if root.major == 9 || root.source.starts_with("/dev/md") {
            return fail(
                NAME,
                format!("/ is already on {} (md)", root.source),
                "run `xenraid resume` to finish a conversion, or `xenraid status` to see the arrays",
            );
        }
    }
    let ours: Vec<&str> = layout.arrays.iter().map(|a| a.uuid.as_str()).collect();
    let mut state = Vec::new();
    for array in &facts.arrays {
        if array.uuid.as_deref().is_some_and(|u| ours.contains(&u)) {
            state.push(format!(
                "array {} ({}) exists",
                array.name,
                array.md_name.as_deref().unwrap_or("-")
            ));
        } else if array
            .md_name
            .as_deref()
            .is_some_and(|n| n.starts_with("xenraid:"))
        {
            state.push(format!(
                "array {} named {} exists",
                array.name,
                array.md_name.as_deref().unwrap_or("")
            ));
        }
    }
    for part in &target.partitions {
        if part.fs_type.as_deref() == Some("linux_raid_member") {
            let ours = part.uuid.as_deref().is_some_and(|u| {
                ours.iter()
                    .any(|o| o.replace(':', "") == u.replace(['-', ':'], ""))
            });
            if ours
                || part
                    .label
                    .as_deref()
                    .is_some_and(|l| l.starts_with("xenraid:"))
            {
                state.push(format!(
                    "{} is already a member of a xenraid array",
                    part.name
                ));
            }
        }
    }
    if state.is_empty() {
        pass(NAME, "no xenraid arrays on this host yet")
    } else {
        fail(
            NAME,
            format!("half converted: {}", state.join("; ")),
            "run `xenraid resume` to continue the conversion (or `xenraid rollback` before the point of no return)",
        )
    }
}

pub fn sr_not_on_mirrored_partition(facts: &HostFacts, layout: &Layout<'_>) -> Check {
    const NAME: &str = "sr-not-on-mirrored-partition";
    if layout.busy_storage.is_empty() {
        return pass(
            NAME,
            "no SR or LVM volume on a partition that must be mirrored",
        );
    }
    let mut fix = vec!["the SR's data cannot be kept while its partition becomes a RAID member. Move or export its VDIs, then:".to_string()];
    let mut seen = Vec::new();
    for number in &layout.busy_storage {
        let Some(part) = layout.source.partition(*number) else {
            continue;
        };
        let names = partition_names(layout.source, part);
        let mut sr_uuids: Vec<String> = facts
            .storage_repositories
            .iter()
            .filter(|sr| sr.devices.iter().any(|d| names.contains(d)))
            .map(|sr| sr.uuid.clone())
            .collect();
        for pv in facts
            .physical_volumes
            .iter()
            .filter(|pv| names.contains(&pv.device))
        {
            if let Some(uuid) = pv.xen_sr_uuid() {
                if !sr_uuids.iter().any(|u| u == uuid) {
                    sr_uuids.push(uuid.to_string());
                }
            }
        }
        seen.push(format!(
            "partition {} holds {}",
            part.number,
            if sr_uuids.is_empty() {
                "an LVM physical volume".to_string()
            } else {
                format!("SR {}", sr_uuids.join(", "))
            }
        ));
        for uuid in &sr_uuids {
            fix.push(format!(
                "  xe vdi-list sr-uuid={uuid} params=uuid,name-label   # must be empty"
            ));
            let pbds: Vec<String> = facts
                .storage_repositories
                .iter()
                .filter(|sr| &sr.uuid == uuid)
                .flat_map(|sr| sr.pbd_uuids.clone())
                .collect();
            for pbd in pbds {
                fix.push(format!("  xe pbd-unplug uuid={pbd}"));
            }
            fix.push(format!("  xe sr-destroy uuid={uuid}"));
        }
        if sr_uuids.is_empty() || !holds_sr(facts, layout.source, part) {
            fix.push(format!(
                "  wipefs --all {}",
                layout.source.partition_path(part.number)
            ));
        }
    }
    fail(NAME, seen.join("; "), fix.join("\n"))
}
