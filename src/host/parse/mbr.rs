//! Recognises the boot code in a disk's first 440 bytes (the MBR code area).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootCode {
    /// GRUB2 boot.img: it carries the strings "GRUB", "Geom", "Hard Disk", "Read", " Error".
    Grub2,
    /// syslinux gptmbr.bin (XenServer 6.5): chain-loads the partition with the
    /// legacy-BIOS-bootable attribute.
    SyslinuxGptMbr,
    /// syslinux mbr.bin (for MBR partition tables).
    SyslinuxMbr,
    /// All zeros: nothing bootable.
    Empty,
    Unknown,
}

pub fn classify_boot_code(first_sector: &[u8]) -> BootCode {
    let code = &first_sector[..first_sector.len().min(440)];
    if code.is_empty() || code.iter().all(|b| *b == 0) {
        return BootCode::Empty;
    }
    let contains = |needle: &[u8]| code.windows(needle.len()).any(|w| w == needle);
    if contains(b"GRUB") && contains(b"Geom") {
        BootCode::Grub2
    } else if contains(b"Missing OS") || (contains(b"Boot error") && contains(b"EFI PART")) {
        BootCode::SyslinuxGptMbr
    } else if contains(b"Missing operating system") {
        BootCode::SyslinuxMbr
    } else {
        BootCode::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector_with(strings: &[(usize, &[u8])]) -> Vec<u8> {
        let mut sector = vec![0u8; 512];
        sector[0] = 0xeb;
        for (offset, s) in strings {
            sector[*offset..offset + s.len()].copy_from_slice(s);
        }
        sector
    }

    #[test]
    fn recognises_grub_and_syslinux() {
        let grub = sector_with(&[(0x180, b"GRUB \0Geom\0Hard Disk\0Read\0 Error\r\n")]);
        assert_eq!(classify_boot_code(&grub), BootCode::Grub2);
        let gptmbr = sector_with(&[(0x150, b"Missing OS\r\n"), (0x160, b"Boot error\r\n")]);
        assert_eq!(classify_boot_code(&gptmbr), BootCode::SyslinuxGptMbr);
        let mbr = sector_with(&[(0x150, b"Missing operating system.\r\n")]);
        assert_eq!(classify_boot_code(&mbr), BootCode::SyslinuxMbr);
        assert_eq!(classify_boot_code(&[0u8; 512]), BootCode::Empty);
        assert_eq!(classify_boot_code(&sector_with(&[])), BootCode::Unknown);
        // Strings past the 440-byte code area (disk signature, table) do not count.
        assert_eq!(
            classify_boot_code(&sector_with(&[(446, b"GRUB Geom")])),
            BootCode::Unknown
        );
    }
}
