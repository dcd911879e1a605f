//! Deterministic identifiers for the arrays and filesystems a plan creates.
//!
//! The plan names every UUID before anything exists (`mdadm --uuid`, `mkfs -U`), so the fstab,
//! mdadm.conf and kernel-line edits are concrete in the printed plan, and re-planning after the
//! reboot yields the same ids. They derive from the two disks' identities, which do not change.

fn fnv1a(seed: u64, data: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for byte in data.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn bytes128(key: &str) -> [u8; 16] {
    let hi = fnv1a(0x5851_f42d_4c95_7f2d, key).to_be_bytes();
    let lo = fnv1a(0x1405_7b7e_f767_814f, &format!("{key}#lo")).to_be_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi);
    out[8..].copy_from_slice(&lo);
    out
}

/// md's colon form: `xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`.
pub fn md_uuid(key: &str) -> String {
    let b = bytes128(&format!("md:{key}"));
    b.chunks(4)
        .map(|c| c.iter().map(|x| format!("{x:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 4122 form with the version-4 and variant bits set, as mkfs expects.
pub fn fs_uuid(key: &str) -> String {
    let mut b = bytes128(&format!("fs:{key}"));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A FAT volume id: `XXXXXXXX` for `mkfs.vfat -i`, shown by blkid as `XXXX-XXXX`.
pub fn vfat_id(key: &str) -> String {
    let b = bytes128(&format!("vfat:{key}"));
    format!("{:02X}{:02X}{:02X}{:02X}", b[0], b[1], b[2], b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_distinct_and_well_formed() {
        assert_eq!(md_uuid("a"), md_uuid("a"));
        assert_ne!(md_uuid("a"), md_uuid("b"));
        let md = md_uuid("x");
        assert_eq!(md.len(), 35);
        assert_eq!(md.matches(':').count(), 3);
        let fs = fs_uuid("x");
        assert_eq!(fs.len(), 36);
        assert_eq!(&fs[14..15], "4");
        assert!("89ab".contains(&fs[19..20]));
        assert_eq!(vfat_id("x").len(), 8);
    }
}
