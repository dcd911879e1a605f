//! The serialisable picture of a host that planning works from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parse::blkid::Probe;
use super::parse::bootcfg::BootConfig;
use super::parse::fstab::FstabEntry;
use super::parse::lvm::PhysicalVolume;
use super::parse::mbr::BootCode;
use super::parse::mdstat::MdstatArray;
use super::parse::mountinfo::{Mount, Swap};
use super::parse::xe::StorageRepository;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub product: Product,
    pub boot: Boot,
    pub disks: Vec<Disk>,
    pub mounts: Vec<Mount>,
    pub swaps: Vec<Swap>,
    pub fstab: Vec<FstabEntry>,
    pub arrays: Vec<MdArray>,
    pub physical_volumes: Vec<PhysicalVolume>,
    pub storage_repositories: Vec<StorageRepository>,
    pub tools: BTreeMap<String, Option<String>>,
    /// Verbatim content of the configuration files a plan may edit, so diffs are computed from
    /// what is really there.
    pub files: BTreeMap<String, String>,
    /// What discovery could not read; a fact we lack is said, not guessed.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    XenServer,
    XcpNg,
    Linux,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub kind: ProductKind,
    pub brand: String,
    pub version: String,
    pub installation_uuid: Option<String>,
    pub primary_disk: Option<String>,
    pub backup_partition: Option<String>,
    /// `ID` from os-release (debian, centos, rhel …) when there is one.
    pub os_id: Option<String>,
    pub kernel_release: Option<String>,
}

impl Product {
    pub fn major_version(&self) -> Option<u32> {
        self.version.split('.').next()?.parse().ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootMode {
    Bios,
    Uefi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoaderKind {
    Grub2,
    Extlinux,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitSystem {
    #[default]
    Systemd,
    /// SysV init driven by /etc/inittab (XenServer 6.5's CentOS 5 dom0).
    Sysv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitramfsTool {
    Dracut,
    Mkinitrd,
    InitramfsTools,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    pub mode: BootMode,
    pub loader: Option<LoaderKind>,
    pub config_path: Option<String>,
    pub config: Option<BootConfig>,
    pub initramfs_tool: Option<InitramfsTool>,
    /// UEFI: the boot loader binaries next to grub.cfg in the ESP (`\EFI\xenserver\grubx64.efi`).
    pub efi_loaders: Vec<String>,
    /// syslinux's gptmbr.bin on this host, when present.
    pub gptmbr_path: Option<String>,
    pub cmdline: Option<String>,
    /// What starts services after the boot: it decides how the conversion resumes itself.
    #[serde(default)]
    pub init: InitSystem,
}

impl Boot {
    pub fn default_entry(&self) -> Option<&super::parse::bootcfg::BootEntry> {
        let config = self.config.as_ref()?;
        let by_default = config
            .default
            .as_ref()
            .and_then(|d| match d.parse::<usize>() {
                Ok(index) => config.entries.get(index),
                Err(_) => config.entries.iter().find(|e| &e.title == d),
            });
        by_default.or_else(|| config.entries.first())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub name: String,
    /// `major:minor`.
    pub dev: String,
    pub by_id: Vec<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub size_bytes: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub rotational: bool,
    pub probe: Probe,
    pub boot_code: BootCode,
    pub holders: Vec<String>,
    pub partitions: Vec<Partition>,
}

impl Disk {
    /// The `/dev/disk/by-id` name that will still mean this disk after a reboot: WWN first, then
    /// a name carrying the serial, then any.
    pub fn stable_path(&self) -> String {
        let pick = |prefixes: &[&str]| {
            self.by_id
                .iter()
                .find(|n| prefixes.iter().any(|p| n.starts_with(p)))
        };
        pick(&["wwn-"])
            .or_else(|| pick(&["ata-", "nvme-", "scsi-", "virtio-", "usb-"]))
            .or(self.by_id.first())
            .map(|n| format!("/dev/disk/by-id/{n}"))
            .unwrap_or_else(|| format!("/dev/{}", self.name))
    }

    /// How a human and the journal name this disk: serial and WWN, not the kernel name.
    pub fn identity(&self) -> DiskIdentity {
        DiskIdentity {
            serial: self.serial.clone(),
            wwn: self.wwn.clone(),
            by_id: self.stable_path(),
            model: self.model.clone(),
            size_bytes: self.size_bytes,
        }
    }

    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }

    /// The by-id path of partition `number` on this disk, as udev names it.
    pub fn partition_path(&self, number: u32) -> String {
        let base = self.stable_path();
        if base.starts_with("/dev/disk/by-id/") {
            format!("{base}-part{number}")
        } else if self.name.ends_with(|c: char| c.is_ascii_digit()) {
            format!("{base}p{number}")
        } else {
            format!("{base}{number}")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskIdentity {
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub by_id: String,
    pub model: Option<String>,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub name: String,
    pub number: u32,
    pub dev: String,
    /// In 512-byte sectors, as sysfs counts.
    pub start_sector: u64,
    pub size_sectors: u64,
    pub type_guid: Option<String>,
    pub part_name: Option<String>,
    pub part_uuid: Option<String>,
    pub legacy_bios_bootable: bool,
    pub fs_type: Option<String>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    pub ambivalent_signatures: bool,
    pub mount_point: Option<String>,
    pub swap: bool,
    pub holders: Vec<String>,
}

pub const GPT_BIOS_BOOT: &str = "21686148-6449-6e6f-744e-656564454649";
pub const GPT_ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
pub const GPT_LINUX_RAID: &str = "a19d880f-05fc-4d3b-a006-743f0f84911e";
pub const GPT_LINUX_LVM: &str = "e6d6d379-f507-44c2-a23c-238f2a3df928";

/// sgdisk's short code for a GPT type GUID, for humans.
pub fn gpt_type_code(guid: &str) -> Option<&'static str> {
    Some(match guid {
        GPT_BIOS_BOOT => "ef02",
        GPT_ESP => "ef00",
        GPT_LINUX_RAID => "fd00",
        GPT_LINUX_LVM => "8e00",
        "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7" => "0700",
        "0fc63daf-8483-4772-8e79-3d69d8477de4" => "8300",
        "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f" => "8200",
        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709" => "8304",
        _ => return None,
    })
}

impl Partition {
    pub fn end_sector(&self) -> u64 {
        self.start_sector + self.size_sectors.saturating_sub(1)
    }

    pub fn is_bios_boot(&self) -> bool {
        self.type_guid.as_deref() == Some(GPT_BIOS_BOOT)
    }

    pub fn is_esp(&self) -> bool {
        self.type_guid.as_deref() == Some(GPT_ESP)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdArray {
    /// Kernel name: md0, md127.
    pub name: String,
    pub dev: Option<String>,
    pub uuid: Option<String>,
    /// `homehost:name` for 1.x metadata.
    pub md_name: Option<String>,
    pub level: Option<String>,
    pub metadata: Option<String>,
    pub array_state: Option<String>,
    pub degraded: Option<u32>,
    pub sync_action: Option<String>,
    /// Member kernel names (sysfs `slaves/`).
    pub members: Vec<String>,
    pub mdstat: Option<MdstatArray>,
}

impl HostFacts {
    pub fn disk(&self, name: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.name == name)
    }

    /// The disk and partition holding a block device given by kernel name.
    pub fn find_partition(&self, name: &str) -> Option<(&Disk, &Partition)> {
        self.disks
            .iter()
            .find_map(|d| d.partitions.iter().find(|p| p.name == name).map(|p| (d, p)))
    }

    pub fn mount_of_dev(&self, dev: &str) -> Option<&Mount> {
        self.mounts
            .iter()
            .find(|m| format!("{}:{}", m.major, m.minor) == dev && m.fs_root == "/")
    }

    pub fn root_mount(&self) -> Option<&Mount> {
        self.mounts.iter().rev().find(|m| m.mount_point == "/")
    }

    pub fn has_tool(&self, name: &str) -> bool {
        self.tools.get(name).is_some_and(Option::is_some)
    }

    /// The first of `names` that is installed.
    pub fn first_tool<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        names.iter().copied().find(|n| self.has_tool(n))
    }
}
