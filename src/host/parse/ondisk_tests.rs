//! Tests of the on-disk readers (kept apart: the readers alone are long enough).
//! Byte fixtures made on image files with mkfs.ext2/3/4, mkswap, mkfs.vfat and sgdisk
//! (trailing zeros dropped); expected values are what `blkid -p -o export` (util-linux
//! 2.38) printed for the same images. md and LVM structures are built here.
use super::*;

const DISK_HEAD: u64 = 1 << 20;
const DISK_TAIL: u64 = 2 << 20;
const PART_HEAD: u64 = 256 << 10;
const PART_TAIL: u64 = 128 << 10;
const SMALL_HEAD: u64 = 72 << 10;
const SMALL_TAIL: u64 = 128 << 10;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ondisk/");

fn image(name: &str, len: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(format!("{FIX}{name}")).expect("fixture");
    bytes.resize(len, 0);
    bytes
}

/// A device of `size` bytes whose windows are `head` and zeros at the end.
fn known(head: &[u8], size: u64, holds_code: bool) -> Probe {
    let tail = vec![0u8; PART_TAIL.min(size) as usize];
    match identify_partition(&DeviceBytes::windows(size, head, &tail), holds_code) {
        Reading::Known(p) => p,
        other => panic!("not known: {other:?}"),
    }
}

fn fs(p: &Probe) -> (&str, &str, &str, &str, &str) {
    let s = |v: &Option<String>| v.clone().unwrap_or_default().leak() as &str;
    (
        s(&p.fs_type),
        s(&p.label),
        s(&p.uuid),
        s(&p.version),
        s(&p.usage),
    )
}

#[test]
fn ext2_ext3_ext4_as_blkid_names_them() {
    let size = 8 << 20;
    let head = image("ext3.head", PART_HEAD as usize);
    assert_eq!(
        fs(&known(&head, size, false)),
        (
            "ext3",
            "root-abcdef",
            "4401ce5b-1611-4348-91ba-8582b51c5c89",
            "1.0",
            "filesystem"
        )
    );
    let head = image("ext2.head", PART_HEAD as usize);
    assert_eq!(
        fs(&known(&head, size, false)),
        (
            "ext2",
            "small2",
            "11111111-2222-3333-4444-555555555555",
            "1.0",
            "filesystem"
        )
    );
    let head = image("ext4.head", PART_HEAD as usize);
    assert_eq!(
        fs(&known(&head, size, false)),
        (
            "ext4",
            "data4",
            "0e6a1f4c-9d2b-4c1e-8f3a-7b5d9c2e1a00",
            "1.0",
            "filesystem"
        )
    );
}

#[test]
fn swap_v1() {
    let head = image("swap.head", PART_HEAD as usize);
    assert_eq!(
        fs(&known(&head, 4 << 20, false)),
        (
            "swap",
            "swap-abcdef",
            "77d42eee-76ba-4539-8639-647ed312a0de",
            "1",
            "other"
        )
    );
}

#[test]
fn fat16_esp_label_from_the_root_directory() {
    let mut head = image("esp16.head", PART_HEAD as usize);
    let root = std::fs::read(format!("{FIX}esp16.root")).expect("fixture");
    head[133_120..133_120 + root.len()].copy_from_slice(&root);
    assert_eq!(
        fs(&known(&head, 64 << 20, false)),
        ("vfat", "BOOT-ABCDEF", "B331-A232", "FAT16", "filesystem")
    );
    // The root directory outside the windows: ask for more, never guess.
    let zeros = vec![0u8; SMALL_TAIL as usize];
    let dev = DeviceBytes::windows(64 << 20, &head[..SMALL_HEAD as usize], &zeros);
    assert_eq!(signature(&dev), Reading::NeedMore);
    assert_eq!(dev.missing(), vec![(133_120, 512 * 32)]);
}

#[test]
fn fat32_root_beyond_the_windows_is_not_guessed() {
    let head = image("esp32.head", PART_HEAD as usize);
    let tail = vec![0u8; PART_TAIL as usize];
    let dev = DeviceBytes::windows(300 << 20, &head, &tail);
    assert_eq!(identify_partition(&dev, false), Reading::NeedMore);
}

#[test]
fn gpt_entries_as_blkid_reports_them() {
    let head = image("gpt.head", DISK_HEAD as usize);
    let tail = vec![0u8; DISK_TAIL as usize];
    let dev = DeviceBytes::windows(16 << 20, &head, &tail);
    let (reading, gpt) = identify_disk(&dev, 512);
    let Reading::Known(probe) = reading else {
        panic!("{reading:?}")
    };
    assert_eq!(probe.pt_type.as_deref(), Some("gpt"));
    assert_eq!(probe.fs_type, None);
    let gpt = gpt.expect("gpt");
    assert_eq!(gpt.disk_guid, "5adb15aa-e380-4606-b028-8685bad696b5");
    assert_eq!(gpt.entries.len(), 2);
    let bios = gpt.entries[0].part_entry(512);
    assert_eq!(bios.type_guid.as_deref(), Some(crate::host::GPT_BIOS_BOOT));
    assert_eq!(bios.name.as_deref(), Some("BIOS boot"));
    assert_eq!(
        (bios.number, bios.offset, bios.size),
        (Some(1), Some(2048), Some(8192))
    );
    assert!(bios.legacy_bios_bootable());
    let raid = gpt.entries[1].part_entry(512);
    assert_eq!(
        raid.uuid.as_deref(),
        Some("8f5a0c1e-2b3d-4e5f-9a8b-7c6d5e4f3a21")
    );
    assert_eq!(raid.type_guid.as_deref(), Some(crate::host::GPT_LINUX_RAID));
    assert_eq!((raid.name, raid.flags), (None, None));

    // One flipped bit in the entry array: not sure any more.
    let mut bad = head.clone();
    bad[1024 + 40] ^= 1;
    let dev = DeviceBytes::windows(dev.size, &bad, &tail);
    assert!(matches!(identify_disk(&dev, 512).0, Reading::Unsure(_)));
}

#[test]
fn blank_only_when_every_window_is_zero() {
    let head = vec![0u8; DISK_HEAD as usize];
    let tail = vec![0u8; DISK_TAIL as usize];
    let size = 4 << 30;
    let dev = DeviceBytes::windows(size, &head, &tail);
    assert_eq!(identify_disk(&dev, 512).0, Reading::Known(Probe::default()));
    // Small windows cannot prove a disk blank.
    let small = DeviceBytes::windows(
        size,
        &head[..SMALL_HEAD as usize],
        &tail[..SMALL_TAIL as usize],
    );
    assert_eq!(identify_disk(&small, 512).0, Reading::NeedMore);
    // A Promise FastTrack signature 3087 sectors before the end: unknown, not blank.
    let mut promise = tail.clone();
    let at = promise.len() - 3087 * 512;
    promise[at..at + 24].copy_from_slice(b"Promise Technology, Inc.");
    let dev = DeviceBytes::windows(size, &head, &promise);
    assert!(matches!(identify_disk(&dev, 512).0, Reading::Unsure(_)));
    // An xfs superblock: blkid names it.
    let mut xfs = head.clone();
    xfs[..4].copy_from_slice(b"XFSB");
    let dev = DeviceBytes::windows(size, &xfs, &tail);
    assert!(matches!(identify_disk(&dev, 512).0, Reading::Unsure(_)));
}

fn md1_superblock(minor_offset: u64, size: u64) -> Vec<u8> {
    let mut sb = vec![0u8; 256 + 2 * 4];
    sb[0..4].copy_from_slice(&MD_MAGIC.to_le_bytes());
    sb[4..8].copy_from_slice(&1u32.to_le_bytes());
    sb[16..32].copy_from_slice(&[
        0xb6, 0xea, 0xfb, 0x52, 0x53, 0xb1, 0xc0, 0xed, 0x03, 0xb0, 0x29, 0xcd, 0xce, 0x0f, 0xa6,
        0xbf,
    ]);
    sb[32..44].copy_from_slice(b"xenraid:root");
    sb[144..152].copy_from_slice(&(minor_offset / 512).to_le_bytes());
    sb[168..184].copy_from_slice(&[0xaa; 16]);
    sb[220..224].copy_from_slice(&4u32.to_le_bytes());
    let _ = size;
    let mut sum: u64 = 0;
    for w in sb.chunks_exact(4) {
        sum += u64::from(u32::from_le_bytes(w.try_into().expect("4")));
    }
    let csum = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
    sb[216..220].copy_from_slice(&csum.to_le_bytes());
    sb
}

#[test]
fn md_1_2_member_and_array_uuid_for_mdadm() {
    let mut head = vec![0u8; PART_HEAD as usize];
    let sb = md1_superblock(4096, 1 << 30);
    head[4096..4096 + sb.len()].copy_from_slice(&sb);
    // A stale ext4 underneath: the RAID member wins, as in libblkid.
    head[1024..1024 + 2108 - 1024].copy_from_slice(&image("ext4.head", 2108)[1024..]);
    let p = known(&head, 1 << 30, false);
    assert_eq!(
        fs(&p),
        (
            "linux_raid_member",
            "xenraid:root",
            "b6eafb52-53b1-c0ed-03b0-29cdce0fa6bf",
            "1.2",
            "raid"
        )
    );
    assert_eq!(
        p.uuid_sub.as_deref(),
        Some("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa")
    );
    assert_eq!(
        mdadm_uuid(p.uuid.as_deref().expect("uuid")).as_deref(),
        Some("b6eafb52:53b1c0ed:03b029cd:ce0fa6bf")
    );
    // A bad checksum: not sure.
    head[4096 + 40] ^= 1;
    let tail = vec![0u8; PART_TAIL as usize];
    let dev = DeviceBytes::windows(1 << 30, &head, &tail);
    assert!(matches!(
        identify_partition(&dev, false),
        Reading::Unsure(_)
    ));
}

#[test]
fn md_1_0_and_0_90_at_the_end() {
    let size: u64 = (256 << 20) + 3 * 512;
    let mut tail = vec![0u8; PART_TAIL as usize];
    let tail_start = size - tail.len() as u64;
    let at = ((size / 512 - 16) & !7) * 512;
    let sb = md1_superblock(at, size);
    let o = (at - tail_start) as usize;
    tail[o..o + sb.len()].copy_from_slice(&sb);
    let head = vec![0u8; PART_HEAD as usize];
    let dev = DeviceBytes::windows(size, &head, &tail);
    let Reading::Known(p) = identify_partition(&dev, false) else {
        panic!()
    };
    assert_eq!(p.version.as_deref(), Some("1.0"));

    let mut tail = vec![0u8; PART_TAIL as usize];
    let at = (size & !0xffff) - 0x10000;
    let o = (at - tail_start) as usize;
    tail[o..o + 4].copy_from_slice(&MD_MAGIC.to_le_bytes());
    tail[o + 8..o + 12].copy_from_slice(&90u32.to_le_bytes());
    tail[o + 20..o + 24].copy_from_slice(&0x3d1e_f4a2u32.to_le_bytes());
    tail[o + 52..o + 56].copy_from_slice(&0x9c0b_1f77u32.to_le_bytes());
    tail[o + 56..o + 60].copy_from_slice(&0x8a5e_2c11u32.to_le_bytes());
    tail[o + 60..o + 64].copy_from_slice(&0x6b7d_9e04u32.to_le_bytes());
    let dev = DeviceBytes::windows(size, &head, &tail);
    let Reading::Known(p) = identify_partition(&dev, false) else {
        panic!()
    };
    assert_eq!(p.version.as_deref(), Some("0.90.0"));
    assert_eq!(
        mdadm_uuid(p.uuid.as_deref().expect("uuid")).as_deref(),
        Some("3d1ef4a2:9c0b1f77:8a5e2c11:6b7d9e04")
    );
}

#[test]
fn lvm2_label() {
    let mut head = vec![0u8; PART_HEAD as usize];
    let l = &mut head[512..1024];
    l[..8].copy_from_slice(b"LABELONE");
    l[8..16].copy_from_slice(&1u64.to_le_bytes());
    l[20..24].copy_from_slice(&32u32.to_le_bytes());
    l[24..32].copy_from_slice(b"LVM2 001");
    l[32..64].copy_from_slice(b"AbCdEf1234567890GhIjKlMnOpQrStUv");
    let crc = crc32_update(0xf597_a6cf, &l[20..]);
    l[16..20].copy_from_slice(&crc.to_le_bytes());
    let p = known(&head, 4 << 30, false);
    assert_eq!(
        fs(&p),
        (
            "LVM2_member",
            "",
            "AbCdEf-1234-5678-90Gh-IjKl-MnOp-QrStUv",
            "LVM2 001",
            "raid"
        )
    );
    // The whole disk as a PV (no partition table): not blank.
    let tail = vec![0u8; DISK_TAIL as usize];
    head.resize(DISK_HEAD as usize, 0);
    let dev = DeviceBytes::windows(4 << 30, &head, &tail);
    let Reading::Known(p) = identify_disk(&dev, 512).0 else {
        panic!()
    };
    assert_eq!(p.fs_type.as_deref(), Some("LVM2_member"));
}

#[test]
fn unexplained_bytes_are_unsure_except_boot_code() {
    let mut head = vec![0u8; PART_HEAD as usize];
    head[100..200].fill(0x90);
    let tail = vec![0u8; PART_TAIL as usize];
    let dev = DeviceBytes::windows(1 << 20, &head, &tail);
    assert!(matches!(
        identify_partition(&dev, false),
        Reading::Unsure(_)
    ));
    assert_eq!(
        identify_partition(&dev, true),
        Reading::Known(Probe::default())
    );
}

#[test]
fn crc32_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
