//! Everything the checks judge, read from the host through `HostSource` (reads only; the one
//! command is `systemctl is-active` when systemd's run directory does not say, and `blkid` on
//! the md devices).

use std::collections::BTreeMap;

use crate::exec::{Command, ExecError};
use crate::health::md_sysfs::{read_arrays, whole_disk, ArrayHealth};
use crate::host::facts::{BootMode, HostFacts, InitSystem, InitramfsTool, LoaderKind, ProductKind};
use crate::host::facts::{GPT_BIOS_BOOT, GPT_ESP};
use crate::host::parse::blkid::{parse_blkid_export, Probe};
use crate::host::parse::mbr::BootCode;
use crate::host::parse::ondisk::{read_gpt, DeviceBytes, GptRead};
use crate::host::source::HostSource;

use super::initramfs::{self, InitramfsContents};
use super::DoctorError;

pub const MDADM_CONF_PATHS: &[&str] = &["/etc/mdadm.conf", "/etc/mdadm/mdadm.conf"];
pub const DRACUT_CONF_PATH: &str = "/etc/dracut.conf.d/90-xenraid.conf";
pub const CONFIG_PATH: &str = "/etc/xenraid/xenraid.toml";
pub const MONITOR_UNIT: &str = "xenraid-monitor.service";
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Bounds for walking an ESP: it holds a boot loader, not a file system's worth of files.
use super::esp_fat::{content_key, fat_tree, ESP_MAX_DEPTH, ESP_MAX_FILE, ESP_MAX_FILES};

#[derive(Debug, Clone)]
pub struct DoctorFacts {
    pub md_loaded: bool,
    pub arrays: Vec<DoctorArray>,
    /// The mdadm.conf read (the first of MDADM_CONF_PATHS that exists, links followed).
    pub mdadm_conf: Option<ConfFile>,
    pub running_kernel: Option<String>,
    pub images: Vec<InitramfsImage>,
    pub dracut_conf: Option<String>,
    pub product: ProductKind,
    pub boot_mode: BootMode,
    pub loader: Option<LoaderKind>,
    pub initramfs_tool: Option<InitramfsTool>,
    pub tools: BTreeMap<String, Option<String>>,
    pub gptmbr_path: Option<String>,
    /// Arrays holding `/` or `/boot` (kernel names).
    pub boot_arrays: Vec<String>,
    /// The disks under them.
    pub boot_disks: Vec<BootDisk>,
    pub fstab: Vec<FstabDevice>,
    /// (label, device) of every filesystem seen, md members and LVM PVs left out.
    pub labels: Vec<(String, String)>,
    pub monitor: MonitorState,
    /// systemd: the unit file is there; SysV init: inittab has an entry running it.
    pub monitor_unit_installed: bool,
    /// Who keeps the monitor running: a systemd unit, or an inittab entry.
    pub init: InitSystem,
    /// /etc/inittab as read, on a SysV host (what `--fix` appends the monitor's entry to).
    pub inittab: Option<String>,
    pub config: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DoctorArray {
    pub health: ArrayHealth,
    /// The UUID as mdadm writes it (`xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`).
    pub uuid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConfFile {
    /// The path asked for.
    pub path: String,
    /// Where the links led.
    pub resolved: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct InitramfsImage {
    pub path: String,
    pub kernel: String,
    pub running: bool,
    pub contents: Result<InitramfsContents, String>,
}

#[derive(Debug, Clone)]
pub struct BootDisk {
    pub name: String,
    pub boot_code: BootCode,
    pub gpt: bool,
    /// BIOS boot (ef02) partitions: kernel name and whether anything (core.img) is in it.
    pub bios_boot: Vec<(String, bool)>,
    pub esps: Vec<Esp>,
    /// The partition table's entries, in table order.
    pub partitions: Vec<TablePartition>,
}

#[derive(Debug, Clone)]
pub struct TablePartition {
    pub number: u32,
    /// Kernel name: `sda1`.
    pub name: String,
    pub type_guid: String,
    /// GPT attribute bit 2: gptmbr.bin starts the first partition that has it.
    pub legacy_bios_bootable: bool,
}

#[derive(Debug, Clone)]
pub struct Esp {
    pub partition: String,
    pub mount_point: Option<String>,
    /// Relative path → (size, content hash), when mounted and readable.
    pub tree: Option<BTreeMap<String, (u64, u64)>>,
}

#[derive(Debug, Clone)]
pub struct FstabDevice {
    pub spec: String,
    pub mount_point: String,
    pub nofail: bool,
    /// None: not a device this check judges (tmpfs, proc, network).
    pub exists: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorState {
    Active,
    /// What systemctl said (inactive, failed, unknown).
    Inactive(String),
    /// Could not tell.
    Unknown(String),
}

/// Any spelling of an md UUID (mdadm's colons, sysfs' or blkid's dashes, any case) in
/// mdadm's: four groups of eight lower-case hex digits joined by colons.
pub fn normalize_uuid(text: &str) -> Option<String> {
    crate::host::parse::ondisk::mdadm_uuid(&text.trim().replace(':', "").to_ascii_lowercase())
}

/// md sysfs `uuid` → mdadm's form. The kernel prints the superblock's 16 bytes in order; for
/// 0.90 metadata those are four host-endian words, which mdadm prints as numbers, so each
/// word's bytes are reversed (seen on real md: sysfs `b9c79a7b-6430-…` is mdadm's `7b9ac7b9:74ef3064:…`).
pub fn sysfs_uuid_to_mdadm(sysfs: &str, metadata: Option<&str>) -> Option<String> {
    let uuid = normalize_uuid(sysfs)?;
    if !metadata.is_some_and(|m| m.starts_with("0.")) {
        return Some(uuid);
    }
    let swapped: Vec<String> = uuid
        .split(':')
        .map(|w| {
            (0..4)
                .rev()
                .map(|i| &w[i * 2..i * 2 + 2])
                .collect::<String>()
        })
        .collect();
    Some(swapped.join(":"))
}

/// Reads a file following symlinks inside the source's tree (a captured tree's absolute
/// links point into the tree, not at the machine running the tests).
pub fn read_following_links(src: &dyn HostSource, path: &str) -> Option<(String, String)> {
    let current = resolve_links(src, path);
    let text = src.read_to_string(&current).ok()?;
    Some((current, text))
}

/// Where a chain of symlinks leads, inside the source's tree (at most 8 hops).
pub fn resolve_links(src: &dyn HostSource, path: &str) -> String {
    let mut current = path.to_string();
    for _ in 0..8 {
        match src.read_link(&current) {
            Ok(target) if target.starts_with('/') => current = target,
            Ok(target) => {
                let dir = current.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                current = format!("{dir}/{target}");
            }
            Err(_) => break,
        }
    }
    current
}

pub fn gather(src: &dyn HostSource) -> Result<DoctorFacts, DoctorError> {
    let host = crate::host::discover(src)?;
    let mut warnings = host.warnings.clone();
    let health = read_arrays(src);
    let arrays: Vec<DoctorArray> = health
        .into_iter()
        .map(|a| {
            let uuid = a
                .uuid
                .as_deref()
                .and_then(|u| sysfs_uuid_to_mdadm(u, a.metadata.as_deref()))
                .or_else(|| {
                    host.arrays
                        .iter()
                        .find(|h| h.name == a.device)
                        .and_then(|h| h.uuid.as_deref())
                        .and_then(normalize_uuid)
                })
                .or_else(|| uuid_from_links(src, &a.device));
            DoctorArray { health: a, uuid }
        })
        .collect();
    let mdadm_conf = MDADM_CONF_PATHS.iter().find_map(|p| {
        read_following_links(src, p).map(|(resolved, text)| ConfFile {
            path: p.to_string(),
            resolved,
            text,
        })
    });
    let running_kernel = src
        .read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| host.product.kernel_release.clone());
    let images = read_images(src, running_kernel.as_deref());
    let boot_arrays = boot_arrays(&host);
    let boot_disks = boot_disks(src, &host, &arrays, &boot_arrays);
    let md_probes: Vec<(String, Option<Probe>)> = arrays
        .iter()
        .map(|a| (a.health.device.clone(), probe_md(src, &a.health.device)))
        .collect();
    let unprobed: Vec<&str> = md_probes
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(d, _)| d.as_str())
        .collect();
    if !unprobed.is_empty() {
        warnings.push(format!(
            "the filesystems on {} are unknown (blkid gave nothing): their labels are not compared",
            unprobed.join(", ")
        ));
    }
    let labels = labels(&host, &md_probes);
    let fstab = fstab_devices(src, &host, &labels, &md_probes);
    let inittab = host.files.get(super::monitor_sysv::INITTAB).cloned();
    let (monitor, monitor_unit_installed) = match host.boot.init {
        InitSystem::Systemd => monitor(src),
        InitSystem::Sysv => (
            super::monitor_sysv::monitor_running(src),
            inittab
                .as_deref()
                .is_some_and(|t| super::monitor_sysv::monitor_entry(t).is_some()),
        ),
    };
    Ok(DoctorFacts {
        md_loaded: src.exists("/proc/mdstat"),
        arrays,
        mdadm_conf,
        running_kernel,
        images,
        dracut_conf: src.read_to_string(DRACUT_CONF_PATH).ok(),
        product: host.product.kind,
        boot_mode: host.boot.mode,
        loader: host.boot.loader,
        initramfs_tool: host.boot.initramfs_tool,
        tools: host.tools.clone(),
        gptmbr_path: host.boot.gptmbr_path.clone(),
        boot_arrays,
        boot_disks,
        fstab,
        labels,
        monitor,
        monitor_unit_installed,
        init: host.boot.init,
        inittab: inittab.filter(|_| host.boot.init == InitSystem::Sysv),
        config: src.read_to_string(CONFIG_PATH).ok(),
        warnings,
    })
}

/// `/dev/disk/by-id/md-uuid-…` links, which udev makes from mdadm's own answer.
fn uuid_from_links(src: &dyn HostSource, device: &str) -> Option<String> {
    src.list_dir("/dev/disk/by-id")
        .ok()?
        .into_iter()
        .find_map(|link| {
            let uuid = link.strip_prefix("md-uuid-")?;
            let target = src.read_link(&format!("/dev/disk/by-id/{link}")).ok()?;
            (target.rsplit('/').next() == Some(device))
                .then(|| normalize_uuid(uuid))
                .flatten()
        })
}

/// The kernels in /boot (`vmlinuz-KVER`) and the running one, each with the initramfs that
/// exists for it: XenServer's `initrd-KVER.img`, dracut's `initramfs-KVER.img`, Debian's
/// `initrd.img-KVER`.
fn read_images(src: &dyn HostSource, running: Option<&str>) -> Vec<InitramfsImage> {
    // XenServer's `vmlinuz-fallback` and `vmlinuz-4.19-xen` are links to a real kernel (and
    // their initrds to its initrd): each image is judged, and rebuilt, once by its real name.
    let mut kernels: Vec<String> = src
        .list_dir("/boot")
        .unwrap_or_default()
        .into_iter()
        .filter(|n| src.read_link(&format!("/boot/{n}")).is_err())
        .filter_map(|n| n.strip_prefix("vmlinuz-").map(str::to_string))
        .collect();
    if let Some(r) = running {
        if !kernels.iter().any(|k| k == r) {
            kernels.push(r.to_string());
        }
    }
    kernels.sort();
    let mut images = Vec::new();
    for kernel in kernels {
        let candidates = [
            format!("/boot/initrd-{kernel}.img"),
            format!("/boot/initramfs-{kernel}.img"),
            format!("/boot/initrd.img-{kernel}"),
        ];
        let is_running = running == Some(kernel.as_str());
        let Some(path) = candidates.iter().find(|p| src.exists(p)) else {
            if is_running {
                images.push(InitramfsImage {
                    path: candidates[0].clone(),
                    kernel,
                    running: true,
                    contents: Err("no initramfs for the running kernel".into()),
                });
            }
            continue;
        };
        let path = resolve_links(src, path);
        let contents = src
            .open_stream(&path)
            .map_err(|e| e.to_string())
            .and_then(|stream| initramfs::scan(stream).map_err(|e| e.to_string()));
        images.push(InitramfsImage {
            path,
            kernel,
            running: is_running,
            contents,
        });
    }
    images
}

/// Arrays whose filesystem is mounted on `/` or `/boot`.
fn boot_arrays(host: &HostFacts) -> Vec<String> {
    let mut out: Vec<String> = host
        .mounts
        .iter()
        .filter(|m| m.mount_point == "/" || m.mount_point == "/boot")
        .filter_map(|m| {
            let dev = format!("{}:{}", m.major, m.minor);
            host.arrays
                .iter()
                .find(|a| a.dev.as_deref() == Some(dev.as_str()))
                .map(|a| a.name.clone())
                .or_else(|| partitioned_array(&m.source, host))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// XCP-ng's installer RAID: `/` on a partition of a whole-disk array (`/dev/md127p1`).
fn partitioned_array(source: &str, host: &HostFacts) -> Option<String> {
    let name = source.strip_prefix("/dev/")?;
    let (array, part) = name.rsplit_once('p')?;
    let is_partition = !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    (is_partition && array.starts_with("md") && host.arrays.iter().any(|a| a.name == array))
        .then(|| array.to_string())
}

fn boot_disks(
    src: &dyn HostSource,
    host: &HostFacts,
    arrays: &[DoctorArray],
    boot_arrays: &[String],
) -> Vec<BootDisk> {
    let mut names: Vec<String> = arrays
        .iter()
        .filter(|a| boot_arrays.contains(&a.health.device))
        .flat_map(|a| a.health.members.iter().filter_map(|m| m.disk.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| boot_disk(src, host, &name))
        .collect()
}

fn partition_name(src: &dyn HostSource, disk: &str, number: u32) -> String {
    let sys = format!("/sys/block/{disk}");
    src.list_dir(&sys)
        .unwrap_or_default()
        .into_iter()
        .find(|child| {
            child.starts_with(disk)
                && src
                    .read_to_string(&format!("{sys}/{child}/partition"))
                    .is_ok_and(|n| n.trim() == number.to_string())
        })
        .unwrap_or_else(|| {
            if disk.ends_with(|c: char| c.is_ascii_digit()) {
                format!("{disk}p{number}")
            } else {
                format!("{disk}{number}")
            }
        })
}

fn boot_disk(src: &dyn HostSource, host: &HostFacts, name: &str) -> BootDisk {
    let (head, boot_code) = crate::health::disks::read_head(src, name);
    let sys = format!("/sys/block/{name}");
    let number = |p: &str| -> u64 {
        src.read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let sector = match number(&format!("{sys}/queue/logical_block_size")) {
        0 => 512,
        n => n as u32,
    };
    let mut bytes = DeviceBytes::new(number(&format!("{sys}/size")) * 512);
    bytes.add(0, head);
    // The GPT from the disk's head; discovery's partitions (blkid, udev) when it does not read.
    let mut partitions: Vec<TablePartition> = match read_gpt(&bytes, sector) {
        GptRead::Valid(gpt) => gpt
            .entries
            .iter()
            .map(|e| TablePartition {
                number: e.number,
                name: partition_name(src, name, e.number),
                type_guid: e.type_guid.clone(),
                legacy_bios_bootable: e.attributes & 0x4 != 0,
            })
            .collect(),
        _ => Vec::new(),
    };
    let gpt = !partitions.is_empty()
        || host
            .disk(name)
            .is_some_and(|d| d.probe.pt_type.as_deref() == Some("gpt"));
    if partitions.is_empty() {
        partitions = host
            .disk(name)
            .map(|d| {
                d.partitions
                    .iter()
                    .filter_map(|p| {
                        Some(TablePartition {
                            number: p.number,
                            name: p.name.clone(),
                            type_guid: p.type_guid.clone()?,
                            legacy_bios_bootable: p.legacy_bios_bootable,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    let of_type = |t: &'static str| {
        partitions
            .iter()
            .filter(move |p| p.type_guid == t)
            .map(|p| &p.name)
    };
    let bios_boot = of_type(GPT_BIOS_BOOT)
        .map(|part| {
            let code = src
                .read_prefix(&format!("/dev/{part}"), 512)
                .unwrap_or_default();
            (part.clone(), code.iter().any(|b| *b != 0))
        })
        .collect();
    let esps = of_type(GPT_ESP)
        .map(|part| {
            let mount_point = host
                .find_partition(part)
                .and_then(|(_, p)| p.mount_point.clone());
            // The mounted copy through the mount (the page cache may be ahead of the disk),
            // the others as FAT from their partitions.
            let tree = match mount_point.as_deref() {
                Some(mp) => esp_tree(src, mp),
                None => fat_tree(src, &format!("/dev/{part}")),
            };
            Esp {
                partition: part.clone(),
                mount_point,
                tree,
            }
        })
        .collect();
    BootDisk {
        name: name.to_string(),
        boot_code,
        gpt,
        bios_boot,
        esps,
        partitions,
    }
}

/// Every file under a mounted ESP: relative path → (size, hash of the content).
pub fn esp_tree(src: &dyn HostSource, root: &str) -> Option<BTreeMap<String, (u64, u64)>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), 0usize)];
    while let Some((rel, depth)) = stack.pop() {
        let dir = format!("{}/{rel}", root.trim_end_matches('/'));
        for entry in src.list_dir(&dir).ok()? {
            let child = if rel.is_empty() {
                entry.clone()
            } else {
                format!("{rel}/{entry}")
            };
            let path = format!("{}/{child}", root.trim_end_matches('/'));
            if src.list_dir(&path).is_ok() {
                if depth < ESP_MAX_DEPTH {
                    stack.push((child, depth + 1));
                }
                continue;
            }
            let bytes = src.read_prefix(&path, ESP_MAX_FILE).ok()?;
            out.insert(child.to_lowercase(), content_key(&bytes));
            if out.len() > ESP_MAX_FILES {
                return None;
            }
        }
    }
    Some(out)
}

fn probe_md(src: &dyn HostSource, device: &str) -> Option<Probe> {
    let command = Command::new("blkid", ["-p", "-o", "export", &format!("/dev/{device}")]);
    match src.run(&command) {
        Ok(out) => Some(parse_blkid_export(&out.stdout)),
        Err(ExecError::Failed { stdout, .. }) => Some(parse_blkid_export(&stdout)),
        Err(_) => None,
    }
}

fn labels(host: &HostFacts, md_probes: &[(String, Option<Probe>)]) -> Vec<(String, String)> {
    const NOT_FS: &[&str] = &["linux_raid_member", "LVM2_member"];
    let is_fs = |t: Option<&String>| t.is_some_and(|t| !NOT_FS.contains(&t.as_str()));
    let mut out = Vec::new();
    for disk in &host.disks {
        if let Some(label) = disk
            .probe
            .label
            .clone()
            .filter(|_| is_fs(disk.probe.fs_type.as_ref()))
        {
            out.push((label, disk.name.clone()));
        }
        for p in &disk.partitions {
            let in_md = p.holders.iter().any(|h| h.starts_with("md"));
            if let Some(label) = p
                .label
                .clone()
                .filter(|_| is_fs(p.fs_type.as_ref()) && !in_md)
            {
                out.push((label, p.name.clone()));
            }
        }
    }
    for (device, probe) in md_probes {
        if let Some(probe) = probe {
            if let Some(label) = probe
                .label
                .clone()
                .filter(|_| is_fs(probe.fs_type.as_ref()))
            {
                out.push((label, device.clone()));
            }
        }
    }
    out
}

fn fstab_devices(
    src: &dyn HostSource,
    host: &HostFacts,
    labels: &[(String, String)],
    md_probes: &[(String, Option<Probe>)],
) -> Vec<FstabDevice> {
    let fs_uuids: Vec<String> = host
        .disks
        .iter()
        .flat_map(|d| {
            d.partitions
                .iter()
                .filter_map(|p| p.uuid.clone())
                .chain(d.probe.uuid.clone())
        })
        .chain(
            md_probes
                .iter()
                .filter_map(|(_, p)| p.as_ref().and_then(|p| p.uuid.clone())),
        )
        .map(|u| u.to_ascii_lowercase())
        .collect();
    host.fstab
        .iter()
        .map(|e| {
            let spec = e.spec.as_str();
            let exists = if let Some(label) = spec.strip_prefix("LABEL=") {
                let label = label.trim_matches('"');
                Some(
                    labels.iter().any(|(l, _)| l == label)
                        || src.exists(&format!("/dev/disk/by-label/{label}")),
                )
            } else if let Some(uuid) = spec.strip_prefix("UUID=") {
                let uuid = uuid.trim_matches('"').to_ascii_lowercase();
                Some(fs_uuids.contains(&uuid) || src.exists(&format!("/dev/disk/by-uuid/{uuid}")))
            } else if let Some(uuid) = spec.strip_prefix("PARTUUID=") {
                let uuid = uuid.trim_matches('"').to_ascii_lowercase();
                Some(
                    host.disks.iter().any(|d| {
                        d.partitions
                            .iter()
                            .any(|p| p.part_uuid.as_deref() == Some(uuid.as_str()))
                    }) || src.exists(&format!("/dev/disk/by-partuuid/{uuid}")),
                )
            } else if spec.starts_with("/dev/") {
                Some(
                    src.exists(spec) || whole_disk(src, spec.trim_start_matches("/dev/")).is_some(),
                )
            } else if spec.starts_with('/') && e.vfstype == "swap" {
                Some(src.exists(spec))
            } else {
                None
            };
            FstabDevice {
                spec: e.spec.clone(),
                mount_point: e.file.clone(),
                nofail: e.options.split(',').any(|o| o == "nofail"),
                exists,
            }
        })
        .collect()
}

fn monitor(src: &dyn HostSource) -> (MonitorState, bool) {
    let installed = UNIT_DIRS
        .iter()
        .any(|d| src.exists(&format!("{d}/{MONITOR_UNIT}")));
    // systemd ≥ 232 links every running unit's invocation id here; CentOS 7's 219 does not.
    if src.exists(&format!("/run/systemd/units/invocation:{MONITOR_UNIT}")) {
        return (MonitorState::Active, installed);
    }
    let command = Command::new("systemctl", ["is-active", MONITOR_UNIT]);
    let state = match src.run(&command) {
        Ok(out) if out.stdout.trim() == "active" => MonitorState::Active,
        Ok(out) => MonitorState::Inactive(out.stdout.trim().to_string()),
        Err(ExecError::Failed { stdout, .. }) => MonitorState::Inactive(
            Some(stdout.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "inactive".into()),
        ),
        Err(err) => MonitorState::Unknown(err.to_string()),
    };
    (state, installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_spellings_normalise_to_mdadms() {
        let want = Some("51e0ec88:5f2559f9:464c1ba9:2824d939".to_string());
        assert_eq!(normalize_uuid("51e0ec88-5f25-59f9-464c-1ba92824d939"), want);
        assert_eq!(
            normalize_uuid("51E0EC88:5F2559F9:464C1BA9:2824D939\n"),
            want
        );
        assert_eq!(normalize_uuid("51e0ec885f2559f9464c1ba92824d939"), want);
        assert_eq!(normalize_uuid("51e0ec88:5f2559f9:464c1ba9"), None);
        assert_eq!(normalize_uuid("zze0ec88-5f25-59f9-464c-1ba92824d939"), None);
    }

    #[test]
    fn sysfs_uuid_of_090_arrays_has_each_word_reversed() {
        // Captured from one real 0.90 array: sysfs `uuid` and mdadm's `md-uuid-` link.
        assert_eq!(
            sysfs_uuid_to_mdadm("b9c79a7b-6430-ef74-c5fe-0200d1c7a513", Some("0.90")).as_deref(),
            Some("7b9ac7b9:74ef3064:0002fec5:13a5c7d1")
        );
        assert_eq!(
            sysfs_uuid_to_mdadm("51e0ec88-5f25-59f9-464c-1ba92824d939", Some("1.2")).as_deref(),
            Some("51e0ec88:5f2559f9:464c1ba9:2824d939")
        );
    }
}
