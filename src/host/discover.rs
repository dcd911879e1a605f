//! Builds `HostFacts` from a `HostSource`. All reading happens here; all interpreting happens in
//! the parsers.

use std::collections::BTreeMap;

use super::facts::*;
use super::parse::blkid::{parse_blkid_export, Probe};
use super::parse::bootcfg::{parse_extlinux_conf, parse_grub_cfg};
use super::parse::fstab::parse_fstab;
use super::parse::kv::{parse_shell_vars, parse_udev_db};
use super::parse::lvm::parse_pvs;
use super::parse::mbr::{classify_boot_code, BootCode};
use super::parse::mdadm::parse_mdadm_detail_export;
use super::parse::mdstat::parse_mdstat;
use super::parse::mountinfo::{parse_mountinfo, parse_swaps};
use super::parse::xe::join_srs_and_pbds;
use super::parse::ParseError;
use super::source::HostSource;
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
];

const GRUB_BIOS_CONFIGS: &[&str] = &["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

const GPTMBR_PATHS: &[&str] = &[
    "/usr/share/syslinux/gptmbr.bin",
    "/usr/lib/syslinux/mbr/gptmbr.bin",
    "/usr/lib/syslinux/gptmbr.bin",
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

fn read_trimmed(src: &dyn HostSource, path: &str) -> Option<String> {
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

pub fn discover(src: &dyn HostSource) -> Result<HostFacts, DiscoveryError> {
    let mut warnings = Vec::new();
    let tools = find_tools(src);

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

    let arrays = read_arrays(src, &mut warnings);
    let physical_volumes = if tools.get("pvcreate").is_some_and(Option::is_some) {
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
    let storage_repositories = if tools.get("xe").is_some_and(Option::is_some) {
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

    let product = read_product(src, &files);
    let boot = read_boot(src, &disks, &tools, &mut warnings)?;
    if let Some(path) = &boot.config_path {
        if let Ok(text) = src.read_to_string(path) {
            files.insert(path.clone(), text);
        }
    }

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

fn find_tools(src: &dyn HostSource) -> BTreeMap<String, Option<String>> {
    TOOLS
        .iter()
        .map(|tool| {
            let found = TOOL_DIRS
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
    // ID_SCSI_SERIAL is the unit serial (VPD page 0x80, what the drive's label says); on a
    // SCSI/SAS disk with an NAA identifier ID_SERIAL_SHORT is only the WWN again (lab capture).
    let serial = udev
        .get("ID_SCSI_SERIAL")
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
        });
    let wwn = udev
        .get("ID_WWN_WITH_EXTENSION")
        .or_else(|| udev.get("ID_WWN"))
        .cloned()
        .or_else(|| read_trimmed(src, &format!("{sys}/wwid")))
        .or_else(|| read_trimmed(src, &format!("{sys}/device/wwid")));
    let mut partitions = Vec::new();
    for child in src.list_dir(&sys).unwrap_or_default() {
        if !child.starts_with(name) || !src.exists(&format!("{sys}/{child}/partition")) {
            continue;
        }
        partitions.push(read_partition(src, &sys, &child, mounts, swap_names));
    }
    partitions.sort_by_key(|p| p.number);
    let boot_code = src
        .read_prefix(&format!("/dev/{name}"), 512)
        .map(|bytes| classify_boot_code(&bytes))
        .unwrap_or(BootCode::Unknown);
    Disk {
        name: name.to_string(),
        dev,
        by_id: by_id.get(name).cloned().unwrap_or_default(),
        serial,
        wwn,
        model: read_trimmed(src, &format!("{sys}/device/model")),
        size_bytes: read_number(src, &format!("{sys}/size")).unwrap_or(0) * 512,
        logical_sector_size: read_number(src, &format!("{sys}/queue/logical_block_size"))
            .unwrap_or(512) as u32,
        physical_sector_size: read_number(src, &format!("{sys}/queue/physical_block_size"))
            .unwrap_or(512) as u32,
        rotational: read_number(src, &format!("{sys}/queue/rotational")) == Some(1),
        probe: probe(src, &format!("/dev/{name}")),
        boot_code,
        holders: src.list_dir(&format!("{sys}/holders")).unwrap_or_default(),
        partitions,
    }
}

fn read_partition(
    src: &dyn HostSource,
    sys: &str,
    name: &str,
    mounts: &[super::parse::mountinfo::Mount],
    swap_names: &[String],
) -> Partition {
    let dir = format!("{sys}/{name}");
    let dev = read_trimmed(src, &format!("{dir}/dev")).unwrap_or_default();
    let probe = probe(src, &format!("/dev/{name}"));
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

fn read_arrays(src: &dyn HostSource, warnings: &mut Vec<String>) -> Vec<MdArray> {
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
        let detail = src
            .run(&probes::mdadm_detail(&format!("/dev/{name}")))
            .ok()
            .and_then(|o| parse_mdadm_detail_export(&o.stdout).ok());
        arrays.push(MdArray {
            dev: read_trimmed(src, &format!("/sys/block/{name}/dev")),
            uuid: detail.as_ref().and_then(|d| d.uuid.clone()),
            md_name: detail.as_ref().and_then(|d| d.name.clone()),
            level: read_trimmed(src, &format!("{md}/level"))
                .or_else(|| detail.as_ref().and_then(|d| d.level.clone())),
            metadata: read_trimmed(src, &format!("{md}/metadata_version"))
                .or_else(|| detail.as_ref().and_then(|d| d.metadata.clone())),
            array_state: read_trimmed(src, &format!("{md}/array_state")),
            degraded: read_number(src, &format!("{md}/degraded")).map(|n| n as u32),
            sync_action: read_trimmed(src, &format!("{md}/sync_action")),
            members: src
                .list_dir(&format!("/sys/block/{name}/slaves"))
                .unwrap_or_default(),
            mdstat: mdstat.arrays.iter().find(|a| a.name == name).cloned(),
            name,
        });
    }
    arrays
}

fn read_product(src: &dyn HostSource, files: &BTreeMap<String, String>) -> Product {
    let os = src
        .read_to_string("/etc/os-release")
        .map(|t| parse_shell_vars(&t))
        .unwrap_or_default();
    let kernel_release = read_trimmed(src, "/proc/sys/kernel/osrelease");
    if let Some(inventory) = files.get("/etc/xensource-inventory") {
        let vars = parse_shell_vars(inventory);
        let brand = vars.get("PRODUCT_BRAND").cloned().unwrap_or_default();
        let kind = if brand.to_ascii_lowercase().contains("xcp") {
            ProductKind::XcpNg
        } else {
            ProductKind::XenServer
        };
        return Product {
            kind,
            version: vars
                .get("PRODUCT_VERSION")
                .or_else(|| vars.get("PLATFORM_VERSION"))
                .cloned()
                .unwrap_or_default(),
            brand,
            installation_uuid: vars.get("INSTALLATION_UUID").cloned(),
            primary_disk: vars.get("PRIMARY_DISK").cloned(),
            backup_partition: vars.get("BACKUP_PARTITION").cloned(),
            os_id: os.get("ID").cloned(),
            kernel_release,
        };
    }
    Product {
        kind: ProductKind::Linux,
        brand: os
            .get("NAME")
            .cloned()
            .unwrap_or_else(|| "Linux".to_string()),
        version: os.get("VERSION_ID").cloned().unwrap_or_default(),
        installation_uuid: None,
        primary_disk: None,
        backup_partition: None,
        os_id: os.get("ID").cloned(),
        kernel_release,
    }
}

fn read_boot(
    src: &dyn HostSource,
    disks: &[Disk],
    tools: &BTreeMap<String, Option<String>>,
    warnings: &mut Vec<String>,
) -> Result<Boot, DiscoveryError> {
    let has = |t: &str| tools.get(t).is_some_and(Option::is_some);
    let mode = if src.exists("/sys/firmware/efi") {
        BootMode::Uefi
    } else {
        BootMode::Bios
    };
    // The MBR code says which loader the firmware really starts on a BIOS host; a stale
    // extlinux.conf left by an upgrade from 6.5 must not win over GRUB in the MBR.
    let syslinux_in_mbr = disks
        .iter()
        .any(|d| d.boot_code == BootCode::SyslinuxGptMbr || d.boot_code == BootCode::SyslinuxMbr);
    let mut candidates: Vec<(LoaderKind, String)> = Vec::new();
    if mode == BootMode::Uefi {
        for vendor in src.list_dir("/boot/efi/EFI").unwrap_or_default() {
            let path = format!("/boot/efi/EFI/{vendor}/grub.cfg");
            if src.exists(&path) {
                candidates.push((LoaderKind::Grub2, path));
            }
        }
        // XenServer's own directory first: other vendors' stubs only chain to /boot/grub.
        candidates.sort_by_key(|(_, p)| !p.contains("/xenserver/"));
    }
    if mode == BootMode::Bios
        && (syslinux_in_mbr || !GRUB_BIOS_CONFIGS.iter().any(|p| src.exists(p)))
    {
        candidates.push((LoaderKind::Extlinux, "/boot/extlinux.conf".to_string()));
    }
    for path in GRUB_BIOS_CONFIGS {
        candidates.push((LoaderKind::Grub2, path.to_string()));
    }
    let mut boot = Boot {
        mode,
        loader: None,
        config_path: None,
        config: None,
        initramfs_tool: if has("dracut") {
            Some(InitramfsTool::Dracut)
        } else if has("update-initramfs") {
            Some(InitramfsTool::InitramfsTools)
        } else if has("mkinitrd") {
            Some(InitramfsTool::Mkinitrd)
        } else {
            None
        },
        efi_loaders: Vec::new(),
        gptmbr_path: GPTMBR_PATHS
            .iter()
            .find(|p| src.exists(p))
            .map(|p| p.to_string()),
        cmdline: read_trimmed(src, "/proc/cmdline"),
    };
    for (kind, path) in candidates {
        let Ok(text) = src.read_to_string(&path) else {
            continue;
        };
        let parsed = match kind {
            LoaderKind::Grub2 => parse_grub_cfg(&text),
            LoaderKind::Extlinux => parse_extlinux_conf(&text),
        };
        match parsed {
            Ok(config) => {
                if let Some(dir) = path
                    .strip_suffix("/grub.cfg")
                    .filter(|_| mode == BootMode::Uefi)
                {
                    boot.efi_loaders = src
                        .list_dir(dir)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|f| f.to_ascii_lowercase().ends_with(".efi"))
                        .collect();
                }
                boot.loader = Some(kind);
                boot.config = Some(config);
                boot.config_path = Some(path);
                return Ok(boot);
            }
            Err(err) => warnings.push(format!("{path} not understood: {err}")),
        }
    }
    warnings.push("no boot loader configuration found".to_string());
    Ok(boot)
}
