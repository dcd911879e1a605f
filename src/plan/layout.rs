//! Recognising the source layout: which profile, which disk, which partitions become which arrays.

use crate::host::{BootMode, Disk, HostFacts, LoaderKind, Partition, ProductKind};

use super::ids::{fs_uuid, md_uuid};
use super::model::{ArraySpec, Content, Profile};

/// The source disk: the one holding `/`.
pub fn source_disk(facts: &HostFacts) -> Option<&Disk> {
    let root = facts.root_mount()?;
    let dev = format!("{}:{}", root.major, root.minor);
    facts
        .disks
        .iter()
        .find(|d| d.partitions.iter().any(|p| p.dev == dev))
}

pub fn detect_profile(facts: &HostFacts) -> Result<Profile, String> {
    let loader = facts.boot.loader;
    let seen = format!(
        "product {} {}, boot {:?}, loader {}, config {}",
        facts.product.brand,
        facts.product.version,
        facts.boot.mode,
        loader
            .map(|l| format!("{l:?}"))
            .unwrap_or_else(|| "none".into()),
        facts.boot.config_path.as_deref().unwrap_or("none"),
    );
    let xen = facts.product.kind != ProductKind::Linux;
    let major = facts.product.major_version();
    match (xen, facts.boot.mode, loader, major) {
        (true, BootMode::Bios, Some(LoaderKind::Extlinux), Some(6)) => Ok(Profile::XenServer65),
        (true, BootMode::Bios, Some(LoaderKind::Grub2), Some(7..=8)) => Ok(Profile::XenServer7Bios),
        (true, BootMode::Uefi, Some(LoaderKind::Grub2), Some(7..=8)) => Ok(Profile::XenServerUefi),
        (false, BootMode::Bios, Some(LoaderKind::Grub2), _) => Ok(Profile::PlainGrub2),
        _ => Err(seen),
    }
}

/// The storage partition gets a new GPT entry when the installer made none (no SR at install:
/// the BIOS-boot partition took number 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartition {
    pub number: u32,
    pub start: u64,
    pub end: u64,
}

pub struct Layout<'f> {
    pub profile: Profile,
    pub source: &'f Disk,
    pub arrays: Vec<ArraySpec>,
    pub new_storage: Option<NewPartition>,
    /// Partitions copied but never in md: BIOS boot (grub writes core.img over a superblock) and
    /// ESPs (firmware writes them behind md's back).
    pub bios_boot: Option<u32>,
    pub esp: Option<u32>,
    /// Bytes the target needs.
    pub required_bytes: u64,
    /// SR-bearing partitions (PV or `xe` device) that would have to be mirrored.
    pub busy_storage: Vec<u32>,
}

const ALIGN: u64 = 2048;
/// Below this the free space is not worth an SR.
const MIN_NEW_STORAGE_SECTORS: u64 = 1024 * 1024 * 2;

pub fn metadata_for(profile: Profile) -> &'static str {
    match profile {
        // 0.90 keeps the superblock at the end, so extlinux reads /boot as a plain filesystem.
        Profile::XenServer65 => "0.90",
        _ => "1.2",
    }
}

fn role_of(facts: &HostFacts, part: &Partition, profile: Profile) -> String {
    if let Some(mp) = &part.mount_point {
        return match mp.as_str() {
            "/" => "root".into(),
            "/var/log" => "logs".into(),
            other => other.trim_start_matches('/').replace('/', "-"),
        };
    }
    if part.swap {
        return "swap".into();
    }
    if part.type_guid.as_deref() == Some(crate::host::GPT_LINUX_LVM) {
        return "sr".into();
    }
    let is_backup = facts.product.backup_partition.as_deref().is_some_and(|b| {
        b.ends_with(&format!("-part{}", part.number)) || b.ends_with(&format!("/{}", part.name))
    });
    if is_backup || (profile != Profile::PlainGrub2 && part.number == 2) {
        return "backup".into();
    }
    format!("data{}", part.number)
}

/// Every way fstab or a kernel line may name this partition's filesystem.
fn refs_of(disk: &Disk, part: &Partition) -> Vec<String> {
    let mut refs = vec![format!("/dev/{}", part.name)];
    if let Some(label) = &part.label {
        refs.push(format!("LABEL={label}"));
    }
    if let Some(uuid) = &part.uuid {
        refs.push(format!("UUID={uuid}"));
    }
    if let Some(puuid) = &part.part_uuid {
        refs.push(format!("PARTUUID={puuid}"));
    }
    for name in &disk.by_id {
        refs.push(format!("/dev/disk/by-id/{name}-part{}", part.number));
    }
    refs
}

/// A distinct label for the copy, so no two filesystems ever share one (the seed's e2label bug).
fn new_label(old: Option<&str>, role: &str, max: usize) -> String {
    let candidate = match old {
        Some(old) => format!("md{old}"),
        None => format!("md{role}"),
    };
    candidate.chars().take(max).collect()
}

pub fn build_layout<'f>(
    facts: &'f HostFacts,
    target: &Disk,
    want_sr: bool,
) -> Result<Layout<'f>, String> {
    let profile = detect_profile(facts)?;
    let source = source_disk(facts).ok_or("no disk holds the root filesystem")?;
    if source.probe.pt_type.as_deref() != Some("gpt") {
        return Err(format!(
            "{} has a {} partition table; only GPT is handled",
            source.name,
            source.probe.pt_type.as_deref().unwrap_or("unknown")
        ));
    }
    let metadata = metadata_for(profile);
    let key = format!(
        "{}|{}",
        source.identity().serial.unwrap_or(source.stable_path()),
        target.identity().serial.unwrap_or(target.stable_path())
    );
    let mut arrays = Vec::new();
    let mut bios_boot = None;
    let mut esp = None;
    let mut busy_storage = Vec::new();
    for part in &source.partitions {
        if part.is_bios_boot() {
            bios_boot = Some(part.number);
            continue;
        }
        if part.is_esp() {
            esp = Some(part.number);
            continue;
        }
        let role = role_of(facts, part, profile);
        if role == "sr" && holds_sr(facts, source, part) {
            busy_storage.push(part.number);
        }
        if role == "sr" && !want_sr {
            continue;
        }
        let fs_key = format!("{key}|{role}");
        let content = match (part.fs_type.as_deref(), &part.mount_point) {
            (_, Some(mp)) => Content::Filesystem {
                fs_type: part.fs_type.clone().unwrap_or_else(|| "ext3".into()),
                mount_point: mp.clone(),
                old_refs: refs_of(source, part),
                new_uuid: fs_uuid(&fs_key),
                new_label: new_label(part.label.as_deref(), &role, 16),
            },
            (Some("swap"), None) => Content::Swap {
                old_refs: refs_of(source, part),
                new_uuid: fs_uuid(&fs_key),
                new_label: new_label(part.label.as_deref(), &role, 15),
            },
            _ if role == "sr" => Content::Storage,
            _ => Content::Unused,
        };
        arrays.push((role, part.number, content));
    }
    let last_end = source
        .partitions
        .iter()
        .map(Partition::end_sector)
        .max()
        .unwrap_or(0);
    let source_sectors = source.size_bytes / 512;
    let mut new_storage = None;
    let has_storage = arrays.iter().any(|(r, _, _)| r == "sr");
    if want_sr && !has_storage && profile != Profile::PlainGrub2 {
        let start = (last_end + 1).div_ceil(ALIGN) * ALIGN;
        let end = (source_sectors.saturating_sub(34) / ALIGN) * ALIGN - 1;
        if end > start + MIN_NEW_STORAGE_SECTORS {
            let number = (1..=128)
                .find(|n| source.partition(*n).is_none())
                .unwrap_or(128);
            new_storage = Some(NewPartition { number, start, end });
            arrays.push(("sr".into(), number, Content::Storage));
        }
    }
    // Mount order: parents before children; the array device names follow partition order.
    arrays.sort_by_key(|(_, number, _)| *number);
    let arrays = arrays
        .into_iter()
        .enumerate()
        .map(|(index, (role, partition, content))| ArraySpec {
            device: if metadata == "0.90" {
                format!("/dev/md{index}")
            } else {
                format!("/dev/md/{role}")
            },
            metadata: metadata.to_string(),
            uuid: md_uuid(&format!("{key}|{role}")),
            role,
            partition,
            content,
        })
        .collect();
    let required_sectors = match &new_storage {
        Some(_) => source_sectors,
        None => last_end + 1 + 33,
    };
    Ok(Layout {
        profile,
        source,
        arrays,
        new_storage,
        bios_boot,
        esp,
        required_bytes: required_sectors * 512,
        busy_storage,
    })
}

/// True when the partition carries an LVM PV or is an SR's device.
pub fn holds_sr(facts: &HostFacts, disk: &Disk, part: &Partition) -> bool {
    let names = partition_names(disk, part);
    let pv = facts
        .physical_volumes
        .iter()
        .any(|pv| names.contains(&pv.device));
    let sr = facts
        .storage_repositories
        .iter()
        .any(|sr| sr.devices.iter().any(|d| names.contains(d)));
    pv || sr || part.fs_type.as_deref() == Some("LVM2_member")
}

pub fn partition_names(disk: &Disk, part: &Partition) -> Vec<String> {
    let mut names = vec![format!("/dev/{}", part.name)];
    names.extend(
        disk.by_id
            .iter()
            .map(|id| format!("/dev/disk/by-id/{id}-part{}", part.number)),
    );
    names
}
