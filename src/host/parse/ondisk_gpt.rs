//! The primary GPT of a whole disk, read and checked as libblkid does.

use super::super::blkid::PartEntry;
use super::{crc32, guid, le32, le64, DeviceBytes};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub disk_guid: String,
    pub entries: Vec<GptEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptEntry {
    /// 1-based index in the entry array: the kernel's and blkid's partition number.
    pub number: u32,
    pub type_guid: String,
    pub part_guid: String,
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
    pub name: String,
}

impl GptEntry {
    /// The entry as `blkid -p` reports it on the partition (offset and size in 512-byte
    /// sectors, whatever the disk's sector size).
    pub fn part_entry(&self, sector_size: u32) -> PartEntry {
        let per = u64::from(sector_size / 512).max(1);
        PartEntry {
            scheme: Some("gpt".into()),
            name: (!self.name.is_empty()).then(|| self.name.clone()),
            uuid: Some(self.part_guid.clone()),
            type_guid: Some(self.type_guid.clone()),
            number: Some(self.number),
            offset: Some(self.first_lba * per),
            size: Some((self.last_lba + 1).saturating_sub(self.first_lba) * per),
            flags: (self.attributes != 0).then_some(self.attributes),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GptRead {
    /// No protective MBR and no GPT header.
    Absent,
    Valid(Gpt),
    /// Something GPT-like that does not check out (bad CRC, no protective MBR …).
    Invalid(String),
    NeedMore,
}

pub(super) fn has_boot_signature(sector0: &[u8]) -> bool {
    sector0.len() >= 512 && sector0[510] == 0x55 && sector0[511] == 0xAA
}

/// The MBR's partition types, when sector 0 carries the 0x55AA boot signature.
pub(super) fn mbr_types(sector0: &[u8]) -> Vec<u8> {
    if !has_boot_signature(sector0) {
        return Vec::new();
    }
    (0..4).map(|i| sector0[446 + i * 16 + 4]).collect()
}

/// Reads the primary GPT of a whole disk, checking the protective MBR and both CRCs, as
/// libblkid does (it ignores the backup while the primary is good).
pub fn read_gpt(dev: &DeviceBytes, sector_size: u32) -> GptRead {
    let ss = u64::from(sector_size);
    let (Some(mbr), Some(hdr)) = (dev.get(0, 512), dev.get(ss, sector_size as usize)) else {
        return GptRead::NeedMore;
    };
    let protective = mbr_types(mbr).contains(&0xEE);
    let signed = &hdr[..8] == b"EFI PART";
    match (protective, signed) {
        (false, false) => return GptRead::Absent,
        (false, true) => return GptRead::Invalid("GPT header without a protective MBR".into()),
        (true, false) => return GptRead::Invalid("protective MBR without a GPT header".into()),
        (true, true) => {}
    }
    let header_size = le32(hdr, 12) as usize;
    if !(92..=sector_size as usize).contains(&header_size) {
        return GptRead::Invalid(format!("GPT header size {header_size}"));
    }
    let mut copy = hdr[..header_size].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != le32(hdr, 16) {
        return GptRead::Invalid("GPT header CRC mismatch".into());
    }
    if le64(hdr, 24) != 1 {
        return GptRead::Invalid("GPT header not at LBA 1".into());
    }
    let entries_lba = le64(hdr, 72);
    let count = le32(hdr, 80) as usize;
    let entry_size = le32(hdr, 84) as usize;
    if entry_size < 128 || count > 4096 || entry_size > 4096 {
        return GptRead::Invalid(format!("GPT entries {count} x {entry_size}"));
    }
    let Some(array) = entries_lba
        .checked_mul(ss)
        .and_then(|at| dev.get(at, count * entry_size))
    else {
        return GptRead::NeedMore;
    };
    if crc32(array) != le32(hdr, 88) {
        return GptRead::Invalid("GPT entry array CRC mismatch".into());
    }
    let entries = array
        .chunks_exact(entry_size)
        .enumerate()
        .filter(|(_, e)| e[..16].iter().any(|b| *b != 0))
        .map(|(i, e)| GptEntry {
            number: i as u32 + 1,
            type_guid: guid(&e[0..16]),
            part_guid: guid(&e[16..32]),
            first_lba: le64(e, 32),
            last_lba: le64(e, 40),
            attributes: le64(e, 48),
            name: {
                let units: Vec<u16> = e[56..128]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .take_while(|u| *u != 0)
                    .collect();
                String::from_utf16_lossy(&units)
            },
        })
        .collect();
    GptRead::Valid(Gpt {
        disk_guid: guid(&hdr[56..72]),
        entries,
    })
}
