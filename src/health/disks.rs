//! The disks under the arrays: which arrays each serves and whether it can boot on its own.

use serde::Serialize;

use crate::host::discover::disk_serial;
use crate::host::facts::GPT_ESP;
use crate::host::parse::kv::parse_udev_db;
use crate::host::parse::mbr::{classify_boot_code, BootCode};
use crate::host::parse::ondisk::{read_gpt, DeviceBytes, GptRead};
use crate::host::source::HostSource;

use super::md_sysfs::{ArrayHealth, MemberRole};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskHealth {
    /// Kernel name: `sdb`.
    pub name: String,
    pub serial: Option<String>,
    /// The stable name to use for it (`wwn-…` first).
    pub by_id: Option<String>,
    /// `md/root (active)`, … one per member it holds.
    pub serves: Vec<String>,
    pub boot_code: BootCode,
    pub has_esp: bool,
    /// Firmware could start the system from this disk alone: BIOS boot code or an ESP.
    pub bootable: bool,
}

/// Bytes read from the head of each disk: the MBR, the GPT header and 128 entries.
const HEAD_BYTES: usize = 34 * 512;

pub fn read_disks(src: &dyn HostSource, arrays: &[ArrayHealth]) -> Vec<DiskHealth> {
    let mut names: Vec<String> = arrays
        .iter()
        .flat_map(|a| a.members.iter().filter_map(|m| m.disk.clone()))
        .collect();
    names.sort();
    names.dedup();
    // udev's database names each disk's links ("S:" lines); the whole /dev/disk/by-id
    // directory (a readlink per partition too) is read only when it does not.
    let scanned = std::cell::OnceCell::new();
    let links = || scanned.get_or_init(|| by_id_links(src)).clone();
    names
        .into_iter()
        .map(|name| {
            let serves = arrays
                .iter()
                .flat_map(|a| {
                    a.members
                        .iter()
                        .filter(|m| m.disk.as_deref() == Some(name.as_str()))
                        .map(move |m| format!("{} ({})", display_name(a), role_word(m.role)))
                })
                .collect();
            read_disk(src, &name, serves, &links)
        })
        .collect()
}

pub fn display_name(a: &ArrayHealth) -> String {
    a.name
        .as_ref()
        .map(|n| format!("md/{n}"))
        .unwrap_or_else(|| a.device.clone())
}

pub fn role_word(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Active => "active",
        MemberRole::Rebuilding => "rebuilding",
        MemberRole::Spare => "spare",
        MemberRole::Faulty => "faulty",
    }
}

/// The disk's `by-id` name from its udev database entry, `wwn-` first.
fn udev_by_id(db: &str) -> Option<String> {
    let mut ids: Vec<&str> = db
        .lines()
        .filter_map(|l| l.strip_prefix("S:disk/by-id/"))
        .collect();
    ids.sort_by_key(|l| (!l.starts_with("wwn-"), *l));
    ids.first().map(|l| l.to_string())
}

/// kernel name → its `/dev/disk/by-id` names, `wwn-` first.
fn by_id_links(src: &dyn HostSource) -> Vec<(String, String)> {
    let mut links: Vec<(String, String)> = src
        .list_dir("/dev/disk/by-id")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|link| {
            let target = src.read_link(&format!("/dev/disk/by-id/{link}")).ok()?;
            Some((target.rsplit('/').next()?.to_string(), link))
        })
        .collect();
    links.sort_by_key(|(_, l)| (!l.starts_with("wwn-"), l.clone()));
    links
}

/// A disk's first 34 sectors (MBR + GPT) and what its boot code is.
pub fn read_head(src: &dyn HostSource, name: &str) -> (Vec<u8>, BootCode) {
    let head = src
        .read_prefix(&format!("/dev/{name}"), HEAD_BYTES)
        .unwrap_or_default();
    let boot_code = if head.len() >= 512 {
        classify_boot_code(&head[..512])
    } else {
        BootCode::Unknown
    };
    (head, boot_code)
}

fn read_disk(
    src: &dyn HostSource,
    name: &str,
    serves: Vec<String>,
    links: &dyn Fn() -> Vec<(String, String)>,
) -> DiskHealth {
    let sys = format!("/sys/block/{name}");
    let dev = src
        .read_to_string(&format!("{sys}/dev"))
        .map(|d| d.trim().to_string())
        .unwrap_or_default();
    let udev_text = src
        .read_to_string(&format!("/run/udev/data/b{dev}"))
        .unwrap_or_default();
    let udev = parse_udev_db(&udev_text);
    let (head, boot_code) = read_head(src, name);
    let has_esp = has_esp(src, &sys, head);
    DiskHealth {
        name: name.to_string(),
        serial: disk_serial(src, &sys, &udev),
        by_id: udev_by_id(&udev_text)
            .or_else(|| {
                links()
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, l)| l.clone())
            })
            .map(|l| format!("/dev/disk/by-id/{l}")),
        serves,
        boot_code,
        has_esp,
        bootable: has_esp || matches!(boot_code, BootCode::Grub2 | BootCode::SyslinuxGptMbr),
    }
}

fn has_esp(src: &dyn HostSource, sys: &str, head: Vec<u8>) -> bool {
    let sector = src
        .read_to_string(&format!("{sys}/queue/logical_block_size"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(512);
    let size = src
        .read_to_string(&format!("{sys}/size"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 512;
    let mut bytes = DeviceBytes::new(size);
    bytes.add(0, head);
    match read_gpt(&bytes, sector) {
        GptRead::Valid(gpt) => gpt.entries.iter().any(|e| e.type_guid == GPT_ESP),
        _ => false,
    }
}
