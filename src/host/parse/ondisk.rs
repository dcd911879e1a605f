//! What `blkid -p` tells us, read straight from a block device's bytes: the GPT of a whole
//! disk and the signature (ext2/3/4, swap, vfat, md superblock, LVM2 label) of a partition.
//!
//! Spawning `blkid` costs ~115 ms per device in a lab guest; reading a few KiB costs nothing.
//! These readers answer only when they are sure, and say `Reading::Unsure` otherwise (bytes
//! they do not recognise, a signature that fails its own checksum, several competing
//! signatures, bytes outside the windows they were given): the caller then asks `blkid -p`
//! for that one device. Above all an unknown non-zero signature must never read as "blank":
//! a device is reported empty only when every window libblkid probes is all zeros.
//!
//! Values are formatted exactly as `blkid -p -o export` prints them, so facts are the same
//! whichever way they were read.

use std::cell::RefCell;

use super::blkid::Probe;

#[path = "ondisk_gpt.rs"]
mod gpt;
use gpt::{has_boot_signature, mbr_types};
pub use gpt::{read_gpt, Gpt, GptEntry, GptRead};

/// The blocks read for every device before anything else: MBR, GPT header and entries,
/// the superblocks at the start (ext, md 1.1/1.2, LVM2, swap, vfat, xfs …), the ones at
/// 32 KiB (iso9660, udf, jfs), 64 KiB (btrfs, reiserfs) and 128 KiB (ZFS), and the md 0.90
/// and 1.0 superblocks at the end. Reads are few and small on purpose: in a lab guest every
/// KiB read from a disk nobody holds open costs real time, and the kernel drops that disk's
/// page cache at each last close.
pub fn first_reads(size: u64) -> Vec<(u64, usize)> {
    let mut reads = vec![
        (0, 20 << 10),
        (28 << 10, 8 << 10),
        (60 << 10, 8 << 10),
        (128 << 10, 4 << 10),
    ];
    reads.extend(md090_offset(size).map(|at| (at, 4096)));
    reads.extend(md10_offset(size).map(|at| (at, 4096)));
    reads
}

/// Where libblkid looks for signatures (its magics lie in the first 136 KiB; md 0.90/1.0,
/// the backup GPT and firmware RAID metadata in the last 128 KiB, except Promise's, which
/// can sit up to 3087 sectors before the end; libblkid looks for firmware RAID on whole disks
/// only). A device is called blank only when all of it is zeros.
fn blank_ranges(size: u64, whole_disk: bool) -> Vec<(u64, usize)> {
    // In pieces of at most 64 KiB: larger buffers make musl's malloc map and unmap memory
    // for each, and every system call and page fault is dear in a TCG guest.
    let mut ranges = Vec::new();
    let head = (136u64 << 10).min(size);
    let tail_start = size - (128u64 << 10).min(size);
    for (from, to) in [(0, head), (tail_start, size)] {
        let mut at = from;
        while at < to {
            let len = (to - at).min(64 << 10);
            ranges.push((at, len as usize));
            at += len;
        }
    }
    let promise: &[u64] = if whole_disk {
        &[399, 591, 675, 735, 911, 951, 974, 991, 3087]
    } else {
        &[]
    };
    for back in promise {
        if let Some(at) = size.checked_sub(back * 512) {
            ranges.push((at, 512));
        }
    }
    ranges
}

fn md090_offset(size: u64) -> Option<u64> {
    const RESERVED: u64 = 64 << 10;
    (size > RESERVED).then(|| (size & !(RESERVED - 1)) - RESERVED)
}

fn md10_offset(size: u64) -> Option<u64> {
    let sectors = size / 512;
    (sectors > 16).then(|| ((sectors - 16) & !7) * 512)
}

/// The bytes read so far from one block device of `size` bytes: chunks at known offsets.
/// A reader that needs bytes nobody read yet says `Reading::NeedMore`; `missing()` then tells
/// which, and the caller reads them and asks again.
#[derive(Debug, Default)]
pub struct DeviceBytes {
    pub size: u64,
    chunks: Vec<(u64, Vec<u8>)>,
    missing: RefCell<Vec<(u64, usize)>>,
}

impl DeviceBytes {
    pub fn new(size: u64) -> Self {
        DeviceBytes {
            size,
            ..DeviceBytes::default()
        }
    }

    /// A device whose first `head.len()` and last `tail.len()` bytes are known.
    pub fn windows(size: u64, head: &[u8], tail: &[u8]) -> Self {
        let mut dev = DeviceBytes::new(size);
        dev.add(0, head.to_vec());
        dev.add(size.saturating_sub(tail.len() as u64), tail.to_vec());
        dev
    }

    pub fn add(&mut self, offset: u64, bytes: Vec<u8>) {
        self.chunks.push((offset, bytes));
        self.missing.borrow_mut().clear();
    }

    /// The bytes asked for since the last `add` that no chunk holds: what a `NeedMore` was
    /// for, all of it, so the caller reads them in one go.
    pub fn missing(&self) -> Vec<(u64, usize)> {
        self.missing.borrow().clone()
    }

    /// `len` bytes at `offset`, when one chunk holds them.
    pub fn get(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len as u64)?;
        if end > self.size {
            return None;
        }
        let found = self.chunks.iter().find_map(|(at, bytes)| {
            let from = offset.checked_sub(*at)? as usize;
            bytes.get(from..from + len)
        });
        if found.is_none() {
            self.missing.borrow_mut().push((offset, len));
        }
        found
    }

    /// Whether every place libblkid probes is zeros; `None` until all were read.
    fn blank(&self, whole_disk: bool) -> Option<bool> {
        let mut complete = true;
        for (at, len) in blank_ranges(self.size, whole_disk) {
            match self.get(at, len) {
                Some(bytes) if !is_zero(bytes) => return Some(false),
                Some(_) => {}
                // Go on: every missing range is noted, to be read at once.
                None => complete = false,
            }
        }
        complete.then_some(true)
    }
}

/// Checks 8 bytes at a time: a guest under TCG pays for every instruction.
fn is_zero(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    words
        .by_ref()
        .all(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")) == 0)
        && words.remainder().iter().all(|b| *b == 0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per device, gone as soon as it is read
pub enum Reading {
    /// What `blkid -p` would print, parsed.
    Known(Probe),
    /// The bytes needed lie outside the windows given: read the bigger windows and ask again.
    NeedMore,
    /// Not sure: ask `blkid -p`.
    Unsure(String),
}

fn unsure(why: impl Into<String>) -> Reading {
    Reading::Unsure(why.into())
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The reflected CRC-32 (polynomial 0xEDB88320) register update, without the final inversion:
/// the GPT uses it with initial value !0 and a final inversion, LVM2 with 0xf597a6cf and none.
fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = (crc >> 8) ^ CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

/// One table lookup per byte instead of eight shifts: the GPT's 16 KiB entry array is
/// checksummed on every run, under TCG too.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

pub fn crc32(bytes: &[u8]) -> u32 {
    !crc32_update(!0, bytes)
}

/// A UUID stored as 16 bytes in order (ext, swap, md 1.x), as libblkid prints it.
fn uuid_plain(b: &[u8]) -> Option<String> {
    if b.iter().all(|x| *x == 0) {
        return None;
    }
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    ))
}

/// A GUID as the GPT stores it (first three fields little-endian), lower case.
pub fn guid(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Byte order of the text form: the first three fields are stored little-endian.
    const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut text = String::with_capacity(36);
    for (i, &at) in ORDER.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(HEX[usize::from(b[at] >> 4)] as char);
        text.push(HEX[usize::from(b[at] & 0xf)] as char);
    }
    text
}

/// A fixed-size, NUL-padded label with trailing blanks dropped, as libblkid sets it.
fn label(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|x| *x == 0).unwrap_or(b.len());
    let text = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
    (!text.is_empty()).then_some(text)
}

// ---------------------------------------------------------------------------------------
// Signatures

const MD_MAGIC: u32 = 0xa92b_4efc;

/// md superblocks in libblkid's order: 0.90 (64 KiB-aligned, 64 KiB before the end), then
/// 1.0 (8 KiB before the end, 4 KiB-aligned), 1.1 (at 0), 1.2 (at 4 KiB).
fn md_superblock(dev: &DeviceBytes) -> Option<Reading> {
    if let Some(at) = md090_offset(dev.size) {
        let Some(sb) = dev.get(at, 128) else {
            return Some(Reading::NeedMore);
        };
        if le32(sb, 0) == MD_MAGIC {
            return Some(md090(sb));
        }
    }
    for (minor, at) in [(0u32, md10_offset(dev.size)), (1, Some(0)), (2, Some(4096))] {
        let Some(at) = at else { continue };
        let Some(magic) = dev.get(at, 4) else {
            return Some(Reading::NeedMore);
        };
        if le32(magic, 0) == MD_MAGIC {
            return Some(md1(dev, at, minor));
        }
    }
    None
}

fn md090(sb: &[u8]) -> Reading {
    let (major, minor, patch) = (le32(sb, 4), le32(sb, 8), le32(sb, 12));
    if major != 0 {
        return unsure(format!("md superblock version {major}.{minor}"));
    }
    // The UUID's four words, each printed big-endian (mdadm's a:b:c:d); 0.90 keeps word 0
    // apart from words 1–3.
    let words = if minor >= 90 {
        [le32(sb, 20), le32(sb, 52), le32(sb, 56), le32(sb, 60)]
    } else {
        [le32(sb, 20), 0, 0, 0]
    };
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    Reading::Known(Probe {
        fs_type: Some("linux_raid_member".into()),
        uuid: uuid_plain(&bytes),
        version: Some(format!("{major}.{minor}.{patch}")),
        usage: Some("raid".into()),
        ..Probe::default()
    })
}

fn md1(dev: &DeviceBytes, at: u64, minor: u32) -> Reading {
    let Some(sb) = dev.get(at, 256) else {
        return Reading::NeedMore;
    };
    if le32(sb, 4) != 1 {
        return unsure(format!("md superblock major version {}", le32(sb, 4)));
    }
    if le64(sb, 144) != at / 512 {
        return unsure("md 1.x superblock at the wrong offset");
    }
    let max_dev = le32(sb, 220) as usize;
    if max_dev > 1920 {
        return unsure("md 1.x superblock: absurd max_dev");
    }
    let Some(full) = dev.get(at, 256 + 2 * max_dev) else {
        return Reading::NeedMore;
    };
    // The kernel's calc_sb_1_csum: 32-bit little-endian words with sb_csum as 0, folded.
    let mut sum: u64 = 0;
    let mut words = full.chunks_exact(4);
    for (i, w) in words.by_ref().enumerate() {
        if i != 216 / 4 {
            sum += u64::from(u32::from_le_bytes(w.try_into().expect("4 bytes")));
        }
    }
    if let [a, b] = words.remainder() {
        sum += u64::from(u16::from_le_bytes([*a, *b]));
    }
    let csum = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
    if csum != le32(sb, 216) {
        return unsure("md 1.x superblock checksum mismatch");
    }
    Reading::Known(Probe {
        fs_type: Some("linux_raid_member".into()),
        label: label(&sb[32..64]),
        uuid: uuid_plain(&sb[16..32]),
        uuid_sub: uuid_plain(&sb[168..184]),
        version: Some(format!("1.{minor}")),
        usage: Some("raid".into()),
        ..Probe::default()
    })
}

/// The LVM2 label: "LABELONE" in one of the first four sectors.
fn lvm2(dev: &DeviceBytes) -> Option<Reading> {
    for sector in 0..4u64 {
        let Some(l) = dev.get(sector * 512, 512) else {
            return Some(Reading::NeedMore);
        };
        if &l[..8] != b"LABELONE" {
            continue;
        }
        if &l[24..32] != b"LVM2 001" {
            return Some(unsure(format!(
                "LVM label of type {:?}",
                String::from_utf8_lossy(&l[24..32])
            )));
        }
        if le64(l, 8) != sector {
            return Some(unsure("LVM label in the wrong sector"));
        }
        if crc32_update(0xf597_a6cf, &l[20..]) != le32(l, 16) {
            return Some(unsure("LVM label checksum mismatch"));
        }
        let pv = le32(l, 20) as usize;
        let Some(id) = l.get(pv..pv + 32) else {
            return Some(unsure("LVM label: PV header out of the sector"));
        };
        let id = String::from_utf8_lossy(id);
        let mut uuid = String::new();
        let mut at = 0;
        for len in [6, 4, 4, 4, 4, 4, 6] {
            if at > 0 {
                uuid.push('-');
            }
            uuid.push_str(&id[at..at + len]);
            at += len;
        }
        return Some(Reading::Known(Probe {
            fs_type: Some("LVM2_member".into()),
            uuid: Some(uuid),
            version: Some("LVM2 001".into()),
            usage: Some("raid".into()),
            ..Probe::default()
        }));
    }
    None
}

fn ext(dev: &DeviceBytes) -> Option<Reading> {
    let Some(sb) = dev.get(1024, 1024) else {
        return Some(Reading::NeedMore);
    };
    if le16(sb, 0x38) != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 0x5C);
    let incompat = le32(sb, 0x60);
    let ro_compat = le32(sb, 0x64);
    const JOURNAL_DEV: u32 = 0x8;
    const TEST_FS: u32 = 0x4;
    if incompat & JOURNAL_DEV != 0 {
        return Some(unsure("ext journal device"));
    }
    if le32(sb, 0x160) & TEST_FS != 0 {
        return Some(unsure("ext4dev (test_fs)"));
    }
    // libblkid's rules: ext3 has a journal and only ext3's features; ext2 has no journal
    // and only ext2's; anything else is ext4.
    let has_journal = compat & 0x4 != 0;
    let ro_ext23 = ro_compat & !0x7 == 0;
    let fs_type = if has_journal && ro_ext23 && incompat & !(0x2 | 0x4 | 0x10) == 0 {
        "ext3"
    } else if !has_journal && ro_ext23 && incompat & !(0x2 | 0x10) == 0 {
        "ext2"
    } else {
        "ext4"
    };
    Some(Reading::Known(Probe {
        fs_type: Some(fs_type.into()),
        label: label(&sb[0x78..0x88]),
        uuid: uuid_plain(&sb[0x68..0x78]),
        version: Some(format!("{}.{}", le32(sb, 0x4C), le16(sb, 0x3E))),
        usage: Some("filesystem".into()),
        ..Probe::default()
    }))
}

fn swap(dev: &DeviceBytes) -> Option<Reading> {
    for page in [4096u64, 8192, 16384, 32768, 65536] {
        let Some(magic) = dev.get(page - 10, 10) else {
            return Some(Reading::NeedMore);
        };
        match magic {
            b"SWAPSPACE2" => {}
            b"SWAP-SPACE" => return Some(unsure("swap version 0")),
            m if m.ends_with(b"SUSPEND") || m == b"LINHIB0001" => {
                return Some(unsure("hibernation image in swap"))
            }
            _ => continue,
        }
        let Some(h) = dev.get(1024, 256) else {
            return Some(Reading::NeedMore);
        };
        if (le32(h, 0) != 1 && le32(h, 0).swap_bytes() != 1) || le32(h, 4) == 0 {
            return Some(unsure("swap header version or size"));
        }
        // libblkid trusts UUID and label only when the padding behind them is clean.
        let clean = le32(h, 44 + 32 * 4) == 0 && le32(h, 44 + 33 * 4) == 0;
        return Some(Reading::Known(Probe {
            fs_type: Some("swap".into()),
            label: clean.then(|| label(&h[28..44])).flatten(),
            uuid: clean.then(|| uuid_plain(&h[12..28])).flatten(),
            version: Some("1".into()),
            usage: Some("other".into()),
            ..Probe::default()
        }));
    }
    None
}

fn vfat(dev: &DeviceBytes) -> Option<Reading> {
    let Some(bs) = dev.get(0, 512) else {
        return Some(Reading::NeedMore);
    };
    let magic = |at: usize, m: &[u8]| bs[at..at + m.len()] == *m;
    let named = magic(0x52, b"MSWIN")
        || magic(0x52, b"FAT32   ")
        || magic(0x36, b"MSDOS")
        || magic(0x36, b"FAT16   ")
        || magic(0x36, b"FAT12   ")
        || magic(0x36, b"FAT     ");
    let jump = (bs[0] == 0xEB || bs[0] == 0xE9) && has_boot_signature(bs);
    if !named && !jump {
        return None;
    }
    let sector_size = u64::from(le16(bs, 11));
    let cluster = u64::from(bs[13]);
    let reserved = u64::from(le16(bs, 14));
    let fats = u64::from(bs[16]);
    let dir_entries = u64::from(le16(bs, 17));
    let media = bs[21];
    let valid = [512, 1024, 2048, 4096].contains(&sector_size)
        && cluster.is_power_of_two()
        && reserved > 0
        && fats > 0
        && (media == 0xF0 || media >= 0xF8);
    if !valid {
        // Not a FAT BPB (libblkid says the same): an MBR, a VBR such as extlinux's …
        return None;
    }
    let fat_len16 = u64::from(le16(bs, 22));
    let fat_len = if fat_len16 != 0 {
        fat_len16
    } else {
        u64::from(le32(bs, 36))
    };
    let total = match le16(bs, 19) {
        0 => u64::from(le32(bs, 32)),
        n => u64::from(n),
    };
    let dir_sectors = (dir_entries * 32).div_ceil(sector_size);
    let data_start = reserved + fats * fat_len + dir_sectors;
    let clusters = total.saturating_sub(data_start) / cluster;
    let fat32 = fat_len16 == 0;
    let version = if fat32 {
        "FAT32"
    } else if clusters < 0xFF5 {
        "FAT12"
    } else if clusters < 0xFFF5 {
        "FAT16"
    } else {
        return Some(unsure("FAT: cluster count does not fit its FAT size"));
    };
    let (serial_at, label_at) = if fat32 { (0x43, 0x47) } else { (0x27, 0x2B) };
    // The volume label lives in the root directory; the boot sector's copy is the fallback.
    let (dir_at, dir_len) = if fat32 {
        let root_cluster = u64::from(le32(bs, 44));
        (
            (data_start + root_cluster.saturating_sub(2) * cluster) * sector_size,
            cluster * sector_size,
        )
    } else {
        (
            (reserved + fats * fat_len) * sector_size,
            dir_sectors * sector_size,
        )
    };
    let Some(dir) = dev.get(dir_at, dir_len as usize) else {
        return Some(Reading::NeedMore);
    };
    let mut vol_label = None;
    let mut ended = false;
    for e in dir.chunks_exact(32) {
        if e[0] == 0 {
            ended = true;
            break;
        }
        if e[0] == 0xE5 || e[11] == 0x0F || e[11] & 0x08 == 0 {
            continue;
        }
        vol_label = Some(&e[..11]);
        break;
    }
    if vol_label.is_none() && fat32 && !ended {
        return Some(unsure("FAT32 root directory spans clusters"));
    }
    let boot_label = &bs[label_at..label_at + 11];
    let chosen = match vol_label {
        Some(l) if l != b"NO NAME    " => Some(l),
        Some(_) => None,
        None if boot_label != b"NO NAME    " => Some(boot_label),
        None => None,
    };
    let s = &bs[serial_at..serial_at + 4];
    Some(Reading::Known(Probe {
        fs_type: Some("vfat".into()),
        label: chosen.and_then(label),
        uuid: Some(format!("{:02X}{:02X}-{:02X}{:02X}", s[3], s[2], s[1], s[0])),
        version: Some(version.into()),
        usage: Some("filesystem".into()),
        ..Probe::default()
    }))
}

/// Magics of the other signatures libblkid knows that a XenServer host might carry: seeing
/// one, we let blkid name it rather than call the device empty.
const OTHER_MAGICS: &[(u64, &[u8], &str)] = &[
    (0, b"XFSB", "xfs"),
    (0x10040, b"_BHRfS_M", "btrfs"),
    (3, b"NTFS    ", "ntfs"),
    (3, b"EXFAT   ", "exfat"),
    (3, b"-FVE-FS-", "BitLocker"),
    (0x8001, b"CD001", "iso9660"),
    (0x8001, b"BEA01", "udf"),
    (0x8000, b"JFS1", "jfs"),
    (0x10034, b"ReIsEr", "reiserfs"),
    (0x2034, b"ReIsEr", "reiserfs"),
    (0, b"LUKS\xba\xbe", "crypto_LUKS"),
    (0, b"SKUL\xba\xbe", "crypto_LUKS"),
    (0, b"hsqs", "squashfs"),
    (0, b"E=\xcd\x28", "cramfs"),
    (0x400, b"\x10\x20\xf5\xf2", "f2fs"),
    (0x406, b"\x34\x34", "nilfs2"),
    (0x400, b"H+", "hfsplus"),
    (0x400, b"HX", "hfsplus"),
    (0x400, b"BD", "hfs"),
    (
        0x1018,
        b"\xc6\x85\x73\xf6\x4e\x1a\x45\xca\x82\x65\xf5\x7f\x48\xba\x6d\x81",
        "bcache",
    ),
    (0x20000, b"\x0c\xb1\xba\x00", "zfs_member"),
    (0x20000, b"\x00\xba\xb1\x0c", "zfs_member"),
    (0, b"dmvdo001", "vdo"),
    (0, b"verity\0\0", "DM_verity_hash"),
    (0, b"integrt\0", "DM_integrity"),
    (0, b"LVM1", "LVM1_member"),
    (512, b"EFI PART", "a nested GPT"),
];

/// The signature on a device, in libblkid's order: RAID members first (they win over a stale
/// filesystem underneath), then the filesystems, which must not compete.
fn signature(dev: &DeviceBytes) -> Reading {
    if let Some(raid) = md_superblock(dev).or_else(|| lvm2(dev)) {
        return raid;
    }
    let mut found = Vec::new();
    for fs in [ext(dev), swap(dev), vfat(dev)].into_iter().flatten() {
        match fs {
            Reading::Known(p) => found.push(p),
            other => return other,
        }
    }
    for (at, magic, name) in OTHER_MAGICS {
        match dev.get(*at, magic.len()) {
            Some(bytes) if bytes == *magic => {
                return unsure(format!("a {name} signature"));
            }
            Some(_) => {}
            None if *at + magic.len() as u64 > dev.size => {}
            None => return Reading::NeedMore,
        }
    }
    match found.len() {
        0 => Reading::Known(Probe::default()),
        1 => Reading::Known(found.remove(0)),
        _ => unsure("competing filesystem signatures"),
    }
}

/// A whole disk: its partition table, or a signature on the whole disk, or blank.
pub fn identify_disk(dev: &DeviceBytes, sector_size: u32) -> (Reading, Option<Gpt>) {
    match read_gpt(dev, sector_size) {
        GptRead::NeedMore => (Reading::NeedMore, None),
        GptRead::Invalid(why) => (Reading::Unsure(why), None),
        GptRead::Valid(gpt) => {
            // md 0.90/1.0 at the end of a partitioned disk: libblkid ignores it only when a
            // partition covers it; we let blkid decide.
            let at_end = md_superblock(dev);
            if let Some(Reading::NeedMore) = at_end {
                return (Reading::NeedMore, Some(gpt));
            }
            if let Some(Reading::Known(_) | Reading::Unsure(_)) = at_end {
                let per = u64::from(sector_size);
                let last = gpt.entries.iter().map(|e| (e.last_lba + 1) * per).max();
                let uncovered = match last {
                    Some(end) => end + (128 << 10) < dev.size,
                    None => true,
                };
                if uncovered {
                    return (unsure("md superblock at the end of a GPT disk"), Some(gpt));
                }
            }
            let probe = Probe {
                pt_type: Some("gpt".into()),
                ..Probe::default()
            };
            (Reading::Known(probe), Some(gpt))
        }
        GptRead::Absent => {
            let Some(mbr) = dev.get(0, 512) else {
                return (Reading::NeedMore, None);
            };
            let reading = match signature(dev) {
                Reading::Known(p) if p.fs_type.is_some() => Reading::Known(p),
                Reading::Known(_) if mbr_types(mbr).iter().any(|t| *t != 0) => {
                    unsure("a DOS partition table")
                }
                Reading::Known(p) => match dev.blank(true) {
                    None => Reading::NeedMore,
                    Some(true) => Reading::Known(p),
                    Some(false) => unsure("bytes no signature explains"),
                },
                other => other,
            };
            (reading, None)
        }
    }
}

/// A partition's signature. `holds_code`: a BIOS boot partition, whose bytes are GRUB's
/// core image, not a filesystem; any other partition is called empty only when it is zeros.
pub fn identify_partition(dev: &DeviceBytes, holds_code: bool) -> Reading {
    match signature(dev) {
        Reading::Known(p) if p.fs_type.is_some() || holds_code => Reading::Known(p),
        Reading::Known(p) => match dev.blank(false) {
            None => Reading::NeedMore,
            Some(true) => Reading::Known(p),
            Some(false) => unsure("bytes no signature explains"),
        },
        other => other,
    }
}

/// md's UUID as mdadm prints it (`b6eafb52:53b1c0ed:03b029cd:ce0fa6bf`) from blkid's form.
pub fn mdadm_uuid(blkid_uuid: &str) -> Option<String> {
    let hex: String = blkid_uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(
        (0..4)
            .map(|i| &hex[i * 8..i * 8 + 8])
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[cfg(test)]
#[path = "ondisk_tests.rs"]
mod tests;
