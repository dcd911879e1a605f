//! Builds `HostFacts` from a `HostSource`. All reading happens here; all interpreting happens in
//! the parsers.

use std::collections::BTreeMap;

use super::discover_system::{read_boot, read_init, read_product};
use super::facts::*;
use super::parse::blkid::{parse_blkid_export, Probe};
use super::parse::fstab::parse_fstab;
use super::parse::kv::parse_udev_db;
use super::parse::lvm::parse_pvs;
use super::parse::mbr::{classify_boot_code, BootCode};
use super::parse::mdadm::parse_mdadm_detail_export;
use super::parse::mdstat::parse_mdstat;
use super::parse::mountinfo::{parse_mountinfo, parse_swaps};
use super::parse::ondisk::{
    first_reads, identify_disk, identify_partition, mdadm_uuid, DeviceBytes, Gpt, Reading,
};
use super::parse::xe::join_srs_and_pbds;
use super::parse::ParseError;
use super::source::{HostSource, ReadPos};
use crate::exec::ExecError;

/// Programs whose presence decides what a plan can do.
pub const TOOLS: &[&str] = &[
    "mdadm",
    "sgdisk",
    "partx",
    "wipefs",
    "blkid",
    "udevadm",
    "mkfs.ext3",
    "mkfs.ext4",
    "mkswap",
    "mkfs.vfat",
    "dracut",
    "mkinitrd",
    "update-initramfs",
    "grub-install",
    "grub2-install",
    "grub-mkconfig",
    "grub2-mkconfig",
    "grub-editenv",
    "grub2-editenv",
    "extlinux",
    "efibootmgr",
    "pvcreate",
    "xe",
];

pub(crate) const TOOL_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/opt/xensource/bin",
];

/// Files a plan may edit, kept verbatim in the facts.
const EDITABLE_FILES: &[&str] = &[
    "/etc/fstab",
    "/etc/mdadm.conf",
    "/etc/mdadm/mdadm.conf",
    "/etc/default/grub",
    "/etc/xensource-inventory",
    // add-mirror writes it only where it is missing or incomplete.
    "/etc/dracut.conf.d/90-xenraid.conf",
    // SysV hosts (6.5's CentOS 5 dom0): the resume entry goes here.
    "/etc/inittab",
];

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: ParseError,
    },
}

fn read_required(src: &dyn HostSource, path: &str) -> Result<String, DiscoveryError> {
    src.read_to_string(path)
        .map_err(|source| DiscoveryError::Read {
            path: path.to_string(),
            source,
        })
}

pub(super) fn read_trimmed(src: &dyn HostSource, path: &str) -> Option<String> {
    src.read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn read_number(src: &dyn HostSource, path: &str) -> Option<u64> {
    read_trimmed(src, path)?.parse().ok()
}

/// The probes discovery runs, defined once: `prefetch` starts the same argv ahead of time.
pub(crate) mod probes {
    use crate::exec::Command;

    pub fn blkid(device: &str) -> Command {
        Command::new("blkid", ["-p", "-o", "export", device])
    }
    pub fn mdadm_detail(device: &str) -> Command {
        Command::new("mdadm", ["--detail", "--export", device])
    }
    pub fn pvs() -> Command {
        Command::new(
            "pvs",
            [
                "--noheadings",
                "--nameprefixes",
                "-o",
                "pv_name,vg_name,pv_uuid",
            ],
        )
    }
    pub fn xe_sr_list() -> Command {
        Command::new("xe", ["sr-list", "params=uuid,name-label,type"])
    }
    pub fn xe_pbd_list() -> Command {
        Command::new("xe", ["pbd-list", "params=uuid,sr-uuid,device-config"])
    }
}

/// Some probes report facts through their exit status: blkid exits 2 when it finds nothing and 8
/// when signatures compete; those are answers, not failures.
fn probe(src: &dyn HostSource, device: &str) -> Probe {
    let command = probes::blkid(device);
    match src.run(&command) {
        Ok(out) => parse_blkid_export(&out.stdout),
        Err(ExecError::Failed {
            status: 8, stdout, ..
        }) => Probe {
            ambivalent: true,
            ..parse_blkid_export(&stdout)
        },
        Err(ExecError::Failed { stdout, .. }) => parse_blkid_export(&stdout),
        Err(err) => {
            tracing::debug!(%err, device, "blkid gave nothing");
            Probe::default()
        }
    }
}

/// Reads `ranges` of a device of `size` bytes, widened to whole blocks; ranges in the second
/// half are addressed from the end, which is what a captured tree keeps there.
fn read_blocks(
    src: &dyn HostSource,
    path: &str,
    size: u64,
    ranges: &[(u64, usize)],
) -> Option<Vec<(u64, Vec<u8>)>> {
    let mut blocks: Vec<(u64, usize)> = ranges
        .iter()
        .map(|(at, len)| {
            // Whole sectors near the end (a device's size need not be a multiple of 4 KiB,
            // and a captured tree keeps exactly its last bytes).
            let align = if *at >= size / 2 { 512 } else { 4096 };
            let start = at - at % align;
            let end = (at + *len as u64).next_multiple_of(align).min(size);
            (start, end.saturating_sub(start) as usize)
        })
        .collect();
    // Neighbouring ranges (up to 64 KiB apart) in one read: every request to an emulated
    // disk is dear, a few more KiB in the same request are not.
    const GAP: u64 = 64 << 10;
    blocks.sort();
    let mut merged: Vec<(u64, usize)> = Vec::with_capacity(blocks.len());
    for (start, len) in blocks {
        match merged.last_mut() {
            Some((s, l))
                if start <= *s + *l as u64 + GAP && (start >= size / 2) == (*s >= size / 2) =>
            {
                *l = (*l as u64).max(start + len as u64 - *s) as usize;
            }
            _ => merged.push((start, len)),
        }
    }
    let blocks = merged;
    let positions: Vec<(ReadPos, usize)> = blocks
        .iter()
        .map(|(start, len)| {
            let pos = if *start >= size / 2 {
                ReadPos::FromEnd(size - start)
            } else {
                ReadPos::Start(*start)
            };
            (pos, *len)
        })
        .collect();
    let bytes = src.read_ranges(path, &positions).ok()?;
    Some(blocks.iter().map(|(start, _)| *start).zip(bytes).collect())
}

/// Reads what `blkid -p` would report straight from the device: a few blocks first, then
/// whatever else the reader asks for. `None` when the reader is not sure or the bytes cannot
/// be read (a captured tree without them): then blkid answers.
fn read_direct<T: Default>(
    src: &dyn HostSource,
    path: &str,
    size: u64,
    identify: impl Fn(&DeviceBytes) -> (Reading, T),
) -> (Option<Probe>, T) {
    if size == 0 {
        return (None, T::default());
    }
    let mut dev = DeviceBytes::new(size);
    let mut wanted = first_reads(size);
    let mut asked = wanted.clone();
    let mut extra = T::default();
    // Each reader asks for a handful of blocks at most; the bound only guards against a
    // reader that keeps asking.
    for _ in 0..32 {
        let Some(chunks) = read_blocks(src, path, size, &wanted) else {
            tracing::debug!(path, "device bytes unreadable, asking blkid");
            break;
        };
        for (at, bytes) in chunks {
            dev.add(at, bytes);
        }
        let (reading, found) = identify(&dev);
        extra = found;
        match reading {
            Reading::Known(probe) => return (Some(probe), extra),
            Reading::NeedMore => {
                let missing = dev.missing();
                if missing.is_empty() || missing.iter().any(|m| asked.contains(m)) {
                    break;
                }
                asked.extend(missing.iter().copied());
                wanted = missing;
            }
            Reading::Unsure(why) => {
                tracing::debug!(path, why, "direct read not sure, asking blkid");
                break;
            }
        }
    }
    (None, extra)
}

pub fn discover(src: &dyn HostSource) -> Result<HostFacts, DiscoveryError> {
    if let Some(facts) = src.settled_facts() {
        return Ok(facts);
    }
    tracing::debug!("discovery: start");
    let mut warnings = Vec::new();
    let tools = find_tools(src);
    tracing::debug!("discovery: tools found");

    let mounts =
        parse_mountinfo(&read_required(src, "/proc/self/mountinfo")?).map_err(|source| {
            DiscoveryError::Parse {
                path: "/proc/self/mountinfo".into(),
                source,
            }
        })?;
    let swaps = match src.read_to_string("/proc/swaps") {
        Ok(text) => parse_swaps(&text).map_err(|source| DiscoveryError::Parse {
            path: "/proc/swaps".into(),
            source,
        })?,
        Err(_) => Vec::new(),
    };
    let mut files = BTreeMap::new();
    for path in EDITABLE_FILES {
        if let Ok(text) = src.read_to_string(path) {
            files.insert(path.to_string(), text);
        }
    }
    let fstab = files
        .get("/etc/fstab")
        .map(|t| parse_fstab(t))
        .unwrap_or_default();

    let by_id = read_by_id(src);
    let swap_names: Vec<String> = swaps
        .iter()
        .filter_map(|s| s.path.strip_prefix("/dev/").map(str::to_string))
        .collect();
    let mut disks = Vec::new();
    for name in src.list_dir("/sys/block").unwrap_or_default() {
        if is_virtual_block(&name) {
            continue;
        }
        disks.push(read_disk(src, &name, &by_id, &mounts, &swap_names));
    }
    if disks.is_empty() {
        warnings.push("no disks found under /sys/block".to_string());
    }
    tracing::debug!(disks = disks.len(), "discovery: disks read");

    let arrays = read_arrays(src, &disks, &mut warnings);
    // `pvs` and `xe` cost a third of a second each in a lab guest, and only matter when a
    // local SR may exist: XenServer's local SRs (lvm, ext) are LVM volume groups, so with no
    // physical volume anywhere there is no local SR to protect or mirror. They run only when
    // an LVM2 label was seen (or LVM may be in use where we do not look), or a signature or
    // mount that another SR driver (XCP-ng's xfs, zfs, btrfs, file SRs) leaves; then the
    // slow answer is the right one.
    let lvm_seen = lvm_maybe_in_use(src, &disks, &arrays);
    let sr_seen = lvm_seen || other_sr_maybe(&disks, &mounts);
    let physical_volumes = if sr_seen && tools.get("pvcreate").is_some_and(Option::is_some) {
        let command = probes::pvs();
        match src.run(&command).map(|o| parse_pvs(&o.stdout)) {
            Ok(Ok(pvs)) => pvs,
            Ok(Err(err)) => {
                warnings.push(format!("pvs output not understood: {err}"));
                Vec::new()
            }
            Err(err) => {
                warnings.push(format!("LVM physical volumes unknown: {err}"));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let storage_repositories = if sr_seen && tools.get("xe").is_some_and(Option::is_some) {
        let srs = src.run(&probes::xe_sr_list());
        let pbds = src.run(&probes::xe_pbd_list());
        match (srs, pbds) {
            (Ok(srs), Ok(pbds)) => join_srs_and_pbds(&srs.stdout, &pbds.stdout),
            (Err(err), _) | (_, Err(err)) => {
                warnings.push(format!("storage repositories unknown: {err}"));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };

    tracing::debug!("discovery: arrays, LVM, SRs read");
    let product = read_product(src, &files);
    let mut boot = read_boot(src, &disks, &tools, &mut warnings)?;
    boot.init = read_init(src, &files);
    if let Some(path) = &boot.config_path {
        if let Ok(text) = src.read_to_string(path) {
            files.insert(path.clone(), text);
        }
    }

    tracing::debug!("discovery: done");
    Ok(HostFacts {
        product,
        boot,
        disks,
        mounts,
        swaps,
        fstab,
        arrays,
        physical_volumes,
        storage_repositories,
        tools,
        files,
        warnings,
    })
}

pub(crate) fn is_virtual_block(name: &str) -> bool {
    [
        "loop", "ram", "sr", "md", "dm-", "zram", "nbd", "fd", "tdx", "td",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// A lookup per tool and directory, in TOOL_DIRS order, until found: a few dozen failed
/// lookups cost less than listing /usr/bin (thousands of names on a real host).
fn find_tools(src: &dyn HostSource) -> BTreeMap<String, Option<String>> {
    // Merged-/usr hosts (XenServer 7+, Debian) have /bin and /sbin as links into /usr:
    // a directory that is a link to one looked in before holds nothing new.
    let mut dirs: Vec<&str> = Vec::with_capacity(TOOL_DIRS.len());
    for (i, dir) in TOOL_DIRS.iter().enumerate() {
        let earlier = src.read_link(dir).ok().is_some_and(|target| {
            let target = if target.starts_with('/') {
                target
            } else {
                format!("/{target}")
            };
            TOOL_DIRS[..i].contains(&target.trim_end_matches('/'))
        });
        if !earlier {
            dirs.push(dir);
        }
    }
    TOOLS
        .iter()
        .map(|tool| {
            let found = dirs
                .iter()
                .map(|dir| format!("{dir}/{tool}"))
                .find(|path| src.exists(path));
            (tool.to_string(), found)
        })
        .collect()
}

/// kernel name → by-id names pointing at it.
fn read_by_id(src: &dyn HostSource) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for link in src.list_dir("/dev/disk/by-id").unwrap_or_default() {
        if let Ok(target) = src.read_link(&format!("/dev/disk/by-id/{link}")) {
            let kernel_name = target.rsplit('/').next().unwrap_or_default().to_string();
            map.entry(kernel_name).or_default().push(link);
        }
    }
    map
}

/// The disk's own serial (what its label says), from udev's database, else sysfs.
pub(crate) fn disk_serial(
    src: &dyn HostSource,
    sys: &str,
    udev: &BTreeMap<String, String>,
) -> Option<String> {
    // ID_SCSI_SERIAL is the unit serial (VPD page 0x80, what the drive's label says); on a
    // SCSI/SAS disk with an NAA identifier ID_SERIAL_SHORT is only the WWN again (lab capture).
    udev.get("ID_SCSI_SERIAL")
        .or_else(|| udev.get("ID_SERIAL_SHORT"))
        .cloned()
        .or_else(|| read_trimmed(src, &format!("{sys}/device/serial")))
        .or_else(|| read_trimmed(src, &format!("{sys}/serial")))
        .or_else(|| {
            // SCSI unit serial number VPD page: 4-byte header, then the serial.
            let vpd = src
                .read_prefix(&format!("{sys}/device/vpd_pg80"), 256)
                .ok()?;
            let text = String::from_utf8_lossy(vpd.get(4..)?).trim().to_string();
            (!text.is_empty()).then_some(text)
        })
}

fn read_disk(
    src: &dyn HostSource,
    name: &str,
    by_id: &BTreeMap<String, Vec<String>>,
    mounts: &[super::parse::mountinfo::Mount],
    swap_names: &[String],
) -> Disk {
    let sys = format!("/sys/block/{name}");
    let dev = read_trimmed(src, &format!("{sys}/dev")).unwrap_or_default();
    let udev = src
        .read_to_string(&format!("/run/udev/data/b{dev}"))
        .map(|t| parse_udev_db(&t))
        .unwrap_or_default();
    let serial = disk_serial(src, &sys, &udev);
    let wwn = udev
        .get("ID_WWN_WITH_EXTENSION")
        .or_else(|| udev.get("ID_WWN"))
        .cloned()
        .or_else(|| read_trimmed(src, &format!("{sys}/wwid")))
        .or_else(|| read_trimmed(src, &format!("{sys}/device/wwid")));
    let size_bytes = read_number(src, &format!("{sys}/size")).unwrap_or(0) * 512;
    let logical_sector_size =
        read_number(src, &format!("{sys}/queue/logical_block_size")).unwrap_or(512) as u32;
    let dev_path = format!("/dev/{name}");
    let (direct, (gpt, boot_code)) = read_direct(src, &dev_path, size_bytes, |d| {
        let (reading, gpt) = identify_disk(d, logical_sector_size);
        (reading, (gpt, d.get(0, 512).map(classify_boot_code)))
    });
    let probe = direct.unwrap_or_else(|| probe(src, &dev_path));
    let mut partitions = Vec::new();
    for child in src.list_dir(&sys).unwrap_or_default() {
        if !child.starts_with(name) || !src.exists(&format!("{sys}/{child}/partition")) {
            continue;
        }
        let table = gpt.as_ref().map(|g| (g, logical_sector_size));
        partitions.push(read_partition(src, &sys, &child, table, mounts, swap_names));
    }
    partitions.sort_by_key(|p| p.number);
    let boot_code = boot_code.unwrap_or_else(|| {
        src.read_prefix(&dev_path, 512)
            .map(|bytes| classify_boot_code(&bytes))
            .unwrap_or(BootCode::Unknown)
    });
    Disk {
        name: name.to_string(),
        dev,
        by_id: by_id.get(name).cloned().unwrap_or_default(),
        serial,
        wwn,
        model: read_trimmed(src, &format!("{sys}/device/model")),
        size_bytes,
        logical_sector_size,
        physical_sector_size: read_number(src, &format!("{sys}/queue/physical_block_size"))
            .unwrap_or(512) as u32,
        rotational: read_number(src, &format!("{sys}/queue/rotational")) == Some(1),
        probe,
        boot_code,
        holders: src.list_dir(&format!("{sys}/holders")).unwrap_or_default(),
        partitions,
    }
}

/// A partition's probe read directly: its entry from the disk's GPT (matched by number and
/// start sector, or blkid answers), its signature from its own bytes.
fn read_partition_direct(
    src: &dyn HostSource,
    dir: &str,
    name: &str,
    table: Option<(&Gpt, u32)>,
) -> Option<Probe> {
    let (gpt, sector_size) = table?;
    let number = read_number(src, &format!("{dir}/partition"))?;
    let start = read_number(src, &format!("{dir}/start"))?;
    let size = read_number(src, &format!("{dir}/size"))? * 512;
    let entry = gpt
        .entries
        .iter()
        .map(|e| e.part_entry(sector_size))
        .find(|e| e.number == Some(number as u32) && e.offset == Some(start));
    let Some(entry) = entry else {
        tracing::debug!(name, "no GPT entry matches sysfs, asking blkid");
        return None;
    };
    let holds_code = entry.type_guid.as_deref() == Some(GPT_BIOS_BOOT);
    let (probe, ()) = read_direct(src, &format!("/dev/{name}"), size, |d| {
        (identify_partition(d, holds_code), ())
    });
    Some(Probe {
        entry: Some(entry),
        ..probe?
    })
}

fn read_partition(
    src: &dyn HostSource,
    sys: &str,
    name: &str,
    table: Option<(&Gpt, u32)>,
    mounts: &[super::parse::mountinfo::Mount],
    swap_names: &[String],
) -> Partition {
    let dir = format!("{sys}/{name}");
    let dev = read_trimmed(src, &format!("{dir}/dev")).unwrap_or_default();
    let probe = read_partition_direct(src, &dir, name, table)
        .unwrap_or_else(|| probe(src, &format!("/dev/{name}")));
    // udev's database has the same GPT entry (it probes with libblkid too): the fallback when
    // blkid printed nothing for this partition.
    let entry = probe.entry.clone().unwrap_or_else(|| {
        let udev = src
            .read_to_string(&format!("/run/udev/data/b{dev}"))
            .map(|t| parse_udev_db(&t))
            .unwrap_or_default();
        let udev_text: String = udev
            .iter()
            .filter_map(|(k, v)| Some(format!("{}={v}\n", k.strip_prefix("ID_")?)))
            .collect();
        parse_blkid_export(&udev_text).entry.unwrap_or_default()
    });
    let mount_point = mounts
        .iter()
        .filter(|m| format!("{}:{}", m.major, m.minor) == dev && m.fs_root == "/")
        .map(|m| m.mount_point.clone())
        .min_by_key(|p| p.len());
    Partition {
        name: name.to_string(),
        number: read_number(src, &format!("{dir}/partition"))
            .map(|n| n as u32)
            .or(entry.number)
            .unwrap_or(0),
        dev,
        start_sector: read_number(src, &format!("{dir}/start")).unwrap_or(0),
        size_sectors: read_number(src, &format!("{dir}/size")).unwrap_or(0),
        legacy_bios_bootable: entry.legacy_bios_bootable(),
        type_guid: entry.type_guid,
        part_name: entry.name,
        part_uuid: entry.uuid,
        fs_type: probe.fs_type,
        label: probe.label,
        uuid: probe.uuid,
        ambivalent_signatures: probe.ambivalent,
        mount_point,
        swap: swap_names.iter().any(|s| s == name),
        holders: src.list_dir(&format!("{dir}/holders")).unwrap_or_default(),
    }
}

/// Whether LVM may hold something on this host: an LVM2 label on a disk, a partition or an
/// md array, or device-mapper devices that LVM made. Unreadable means maybe.
fn lvm_maybe_in_use(src: &dyn HostSource, disks: &[Disk], arrays: &[MdArray]) -> bool {
    const LVM: Option<&str> = Some("LVM2_member");
    let on_disks = disks.iter().any(|d| {
        d.probe.fs_type.as_deref() == LVM
            || d.partitions.iter().any(|p| p.fs_type.as_deref() == LVM)
    });
    let on_arrays = arrays.iter().any(|a| {
        let udev = a
            .dev
            .as_ref()
            .and_then(|dev| src.read_to_string(&format!("/run/udev/data/b{dev}")).ok())
            .map(|t| parse_udev_db(&t))
            .unwrap_or_default();
        if let Some(fs) = udev.get("ID_FS_TYPE") {
            return Some(fs.as_str()) == LVM;
        }
        if matches!(a.array_state.as_deref(), Some("inactive" | "clear")) {
            return false;
        }
        // The LVM2 label sits in one of the first four sectors.
        match src.read_prefix(&format!("/dev/{}", a.name), 2048) {
            Ok(head) if head.len() == 2048 => {
                head.chunks_exact(512).any(|s| s.starts_with(b"LABELONE"))
            }
            _ => true,
        }
    });
    let lvm_volumes = src
        .list_dir("/sys/block")
        .unwrap_or_default()
        .iter()
        .filter(|n| n.starts_with("dm-"))
        .any(|n| {
            read_trimmed(src, &format!("/sys/block/{n}/dm/uuid"))
                .is_some_and(|u| u.starts_with("LVM-"))
        });
    on_disks || on_arrays || lvm_volumes
}

/// Traces of a local SR that is not LVM: a filesystem only an SR driver would make, or
/// something mounted where XAPI mounts SRs.
fn other_sr_maybe(disks: &[Disk], mounts: &[super::parse::mountinfo::Mount]) -> bool {
    const SR_FILESYSTEMS: &[&str] = &["xfs", "zfs_member", "btrfs"];
    let signatures = disks
        .iter()
        .flat_map(|d| {
            std::iter::once(d.probe.fs_type.as_deref())
                .chain(d.partitions.iter().map(|p| p.fs_type.as_deref()))
        })
        .flatten()
        .any(|fs| SR_FILESYSTEMS.contains(&fs));
    let mounted = mounts.iter().any(|m| {
        m.mount_point.starts_with("/run/sr-mount/")
            || m.mount_point.starts_with("/var/run/sr-mount/")
    });
    signatures || mounted
}

/// An array's UUID and name without `mdadm`: from the udev database (mdadm's udev rule
/// stores MD_UUID and, for 1.x metadata, MD_NAME), else from a member's superblock as read
/// into its probe.
fn array_identity(
    src: &dyn HostSource,
    name: &str,
    dev: Option<&str>,
    metadata: Option<&str>,
    members: &[String],
    disks: &[Disk],
) -> Option<(String, Option<String>)> {
    let named = !metadata.is_some_and(|m| m.starts_with("0."));
    // External metadata (IMSM, DDF) keeps its identity elsewhere: mdadm knows.
    match metadata {
        None => return None,
        Some(m) if m.starts_with("external:") => return None,
        Some(_) => {}
    }
    if let Some(dev) = dev {
        let udev = src
            .read_to_string(&format!("/run/udev/data/b{dev}"))
            .map(|t| parse_udev_db(&t))
            .unwrap_or_default();
        if let Some(uuid) = udev.get("MD_UUID") {
            match udev.get("MD_NAME") {
                Some(md_name) => return Some((uuid.clone(), Some(md_name.clone()))),
                None if !named => return Some((uuid.clone(), None)),
                None => {}
            }
        }
    }
    let superblocks: Vec<(Option<&String>, Option<&String>)> = members
        .iter()
        .filter_map(|m| {
            disks.iter().find_map(|d| {
                if d.name == *m {
                    return Some((
                        d.probe.fs_type.as_ref(),
                        d.probe.uuid.as_ref(),
                        d.probe.label.as_ref(),
                    ));
                }
                d.partitions
                    .iter()
                    .find(|p| p.name == *m)
                    .map(|p| (p.fs_type.as_ref(), p.uuid.as_ref(), p.label.as_ref()))
            })
        })
        .filter(|(fs, _, _)| fs.map(String::as_str) == Some("linux_raid_member"))
        .map(|(_, uuid, label)| (uuid, label))
        .collect();
    let first = superblocks.first()?;
    let (uuid, label) = first;
    if superblocks.iter().any(|s| s != first) {
        tracing::debug!(name, "members disagree on the array's identity");
        return None;
    }
    let uuid = mdadm_uuid(uuid.as_ref()?)?;
    Some((uuid, if named { label.cloned() } else { None }))
}

fn read_arrays(src: &dyn HostSource, disks: &[Disk], warnings: &mut Vec<String>) -> Vec<MdArray> {
    let mdstat = match src.read_to_string("/proc/mdstat").map(|t| parse_mdstat(&t)) {
        Ok(Ok(m)) => m,
        Ok(Err(err)) => {
            warnings.push(format!("/proc/mdstat not understood: {err}"));
            Default::default()
        }
        // No md driver loaded: no arrays.
        Err(_) => Default::default(),
    };
    let mut arrays = Vec::new();
    for name in src.list_dir("/sys/block").unwrap_or_default() {
        if !name.starts_with("md") {
            continue;
        }
        let md = format!("/sys/block/{name}/md");
        let dev = read_trimmed(src, &format!("/sys/block/{name}/dev"));
        let level = read_trimmed(src, &format!("{md}/level"));
        let metadata = read_trimmed(src, &format!("{md}/metadata_version"));
        let members = src
            .list_dir(&format!("/sys/block/{name}/slaves"))
            .unwrap_or_default();
        // sysfs has the rest; mdadm only when neither udev nor a member superblock says
        // which array this is.
        let known = array_identity(
            src,
            &name,
            dev.as_deref(),
            metadata.as_deref(),
            &members,
            disks,
        )
        .filter(|_| level.is_some() && metadata.is_some());
        let detail = match &known {
            Some(_) => None,
            None => src
                .run(&probes::mdadm_detail(&format!("/dev/{name}")))
                .ok()
                .and_then(|o| parse_mdadm_detail_export(&o.stdout).ok()),
        };
        let (uuid, md_name) = match known {
            Some((uuid, md_name)) => (Some(uuid), md_name),
            None => (
                detail.as_ref().and_then(|d| d.uuid.clone()),
                detail.as_ref().and_then(|d| d.name.clone()),
            ),
        };
        arrays.push(MdArray {
            dev,
            uuid,
            md_name,
            level: level.or_else(|| detail.as_ref().and_then(|d| d.level.clone())),
            metadata: metadata.or_else(|| detail.as_ref().and_then(|d| d.metadata.clone())),
            array_state: read_trimmed(src, &format!("{md}/array_state")),
            degraded: read_number(src, &format!("{md}/degraded")).map(|n| n as u32),
            sync_action: read_trimmed(src, &format!("{md}/sync_action")),
            members,
            mdstat: mdstat.arrays.iter().find(|a| a.name == name).cloned(),
            name,
        });
    }
    arrays
}
