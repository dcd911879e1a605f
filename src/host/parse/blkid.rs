//! `blkid -p -o export DEV`: low-level probe of signatures and the partition-table entry.
//!
//! libblkid reads the GPT entry itself (PART_ENTRY_*), so one probe per partition gives type GUID,
//! name, partition GUID and attribute flags without opening the raw disk from Rust.

use serde::{Deserialize, Serialize};

use super::kv::parse_shell_vars;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Filesystem or other signature: ext3, swap, vfat, linux_raid_member, LVM2_member …
    pub fs_type: Option<String>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    /// md members: the member's own UUID (the array UUID is `uuid`).
    pub uuid_sub: Option<String>,
    pub version: Option<String>,
    pub usage: Option<String>,
    /// Whole disks: gpt / dos.
    pub pt_type: Option<String>,
    pub entry: Option<PartEntry>,
    /// blkid exits 8 when several signatures compete ("ambivalent result"): a reused disk.
    pub ambivalent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    pub scheme: Option<String>,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub type_guid: Option<String>,
    pub number: Option<u32>,
    pub offset: Option<u64>,
    pub size: Option<u64>,
    /// GPT attribute bits (bit 2 = legacy BIOS bootable).
    pub flags: Option<u64>,
}

impl PartEntry {
    pub fn legacy_bios_bootable(&self) -> bool {
        self.flags.is_some_and(|f| f & 0x4 != 0)
    }
}

pub fn parse_blkid_export(text: &str) -> Probe {
    let vars = parse_shell_vars(text);
    let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
    let has_entry = vars.keys().any(|k| k.starts_with("PART_ENTRY_"));
    Probe {
        fs_type: get("TYPE"),
        label: get("LABEL"),
        uuid: get("UUID"),
        uuid_sub: get("UUID_SUB"),
        version: get("VERSION"),
        usage: get("USAGE"),
        pt_type: get("PTTYPE"),
        entry: has_entry.then(|| PartEntry {
            scheme: get("PART_ENTRY_SCHEME"),
            name: get("PART_ENTRY_NAME"),
            uuid: get("PART_ENTRY_UUID"),
            type_guid: get("PART_ENTRY_TYPE").map(|t| t.to_ascii_lowercase()),
            number: get("PART_ENTRY_NUMBER").and_then(|v| v.parse().ok()),
            offset: get("PART_ENTRY_OFFSET").and_then(|v| v.parse().ok()),
            size: get("PART_ENTRY_SIZE").and_then(|v| v.parse().ok()),
            flags: get("PART_ENTRY_FLAGS").and_then(|v| parse_hex_or_dec(&v)),
        }),
        ambivalent: false,
    }
}

fn parse_hex_or_dec(value: &str) -> Option<u64> {
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xenserver7_root_partition() {
        let text = "DEVNAME=/dev/sda1\nLABEL=root-ocmtfp\nUUID=2f0e5a34-5d87-4c8e-9b1a-7c3e6d2b9f10\nSEC_TYPE=ext2\nVERSION=1.0\nTYPE=ext3\nUSAGE=filesystem\nPART_ENTRY_SCHEME=gpt\nPART_ENTRY_UUID=8f5a0c1e-2b3d-4e5f-9a8b-7c6d5e4f3a21\nPART_ENTRY_TYPE=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nPART_ENTRY_NUMBER=1\nPART_ENTRY_OFFSET=46139392\nPART_ENTRY_SIZE=37748736\nPART_ENTRY_DISK=8:0\n";
        let probe = parse_blkid_export(text);
        assert_eq!(probe.fs_type.as_deref(), Some("ext3"));
        assert_eq!(probe.label.as_deref(), Some("root-ocmtfp"));
        let entry = probe.entry.expect("entry");
        assert_eq!(
            entry.type_guid.as_deref(),
            Some("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7")
        );
        assert_eq!(entry.number, Some(1));
        assert_eq!(entry.offset, Some(46139392));
        assert!(!entry.legacy_bios_bootable());
    }

    #[test]
    fn legacy_bootable_flag_and_md_member() {
        let text = "DEVNAME=/dev/sdb1\nUUID=3d1ef4a2-9c0b-1f77-8a5e-2c116b7d9e04\nUUID_SUB=aa11bb22-cc33-dd44-ee55-ff6677889900\nLABEL=xenraid:root\nTYPE=linux_raid_member\nUSAGE=raid\nPART_ENTRY_SCHEME=gpt\nPART_ENTRY_NAME=Linux\\x20RAID\nPART_ENTRY_TYPE=a19d880f-05fc-4d3b-a006-743f0f84911e\nPART_ENTRY_FLAGS=0x4\nPART_ENTRY_NUMBER=1\n";
        let probe = parse_blkid_export(text);
        assert_eq!(probe.fs_type.as_deref(), Some("linux_raid_member"));
        assert_eq!(probe.usage.as_deref(), Some("raid"));
        assert!(probe.entry.expect("entry").legacy_bios_bootable());
    }

    #[test]
    fn whole_disk_and_empty() {
        let probe = parse_blkid_export("DEVNAME=/dev/sda\nPTTYPE=gpt\n");
        assert_eq!(probe.pt_type.as_deref(), Some("gpt"));
        assert!(probe.entry.is_none());
        assert_eq!(parse_blkid_export(""), Probe::default());
    }
}
