//! Reads BootOrder and the boot entries' descriptions from an OVMF variable store file, as
//! the firmware left it. The lab needs this where booting changes what it wants to judge:
//! OVMF rewrites BootOrder from QEMU's `bootindex` list at every boot, so after a power cut
//! the order xenraid wrote is only seen in the store frozen at the cut.
//!
//! Format (edk2 `VariableFormat.h`, authenticated store, as Debian's OVMF_VARS ships it): a
//! firmware-volume header, a 28-byte variable-store header, then variables 4-byte aligned,
//! each a 60-byte header (`0x55AA`, state, attributes, count, time, key index, name size,
//! data size, vendor GUID), its UTF-16 name and its data. A variable is rewritten by appending
//! a new copy and marking the old one deleted, so the live copy is the last one in state
//! `VAR_ADDED`.

use anyhow::{bail, ensure, Context, Result};
use std::path::Path;

/// `gEfiAuthenticatedVariableGuid`, as stored.
const AUTH_STORE: [u8; 16] = [
    0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92,
];
const STORE_HEADER: usize = 28;
const VAR_HEADER: usize = 60;
const VAR_ADDED: u8 = 0x3f;
/// `VAR_ADDED & VAR_IN_DELETED_TRANSITION`: live if no `VAR_ADDED` copy follows (an update
/// cut short by a power loss).
const VAR_IN_TRANSITION: u8 = 0x3e;

struct Variable<'a> {
    state: u8,
    name: String,
    data: &'a [u8],
}

fn u16_at(d: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([d[at], d[at + 1]])
}

fn u32_at(d: &[u8], at: usize) -> usize {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]) as usize
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

fn variables(d: &[u8]) -> Result<Vec<Variable<'_>>> {
    ensure!(
        d.len() > 64 && &d[40..44] == b"_FVH",
        "not a firmware volume"
    );
    let store = u16_at(d, 48) as usize;
    ensure!(
        d.len() > store + STORE_HEADER && d[store..store + 16] == AUTH_STORE,
        "not an authenticated variable store"
    );
    let mut out = Vec::new();
    let mut at = store + STORE_HEADER;
    while at + VAR_HEADER <= d.len() && u16_at(d, at) == 0x55aa {
        let (name_size, data_size) = (u32_at(d, at + 36), u32_at(d, at + 40));
        let name_at = at + VAR_HEADER;
        let data_at = name_at + name_size;
        let end = data_at + data_size;
        if end > d.len() {
            bail!("variable at {at:#x} runs past the store's end");
        }
        out.push(Variable {
            state: d[at + 2],
            name: utf16(&d[name_at..data_at]),
            data: &d[data_at..end],
        });
        at = (end + 3) & !3;
    }
    Ok(out)
}

/// The live value of `name`, if any.
fn live<'a>(vars: &'a [Variable<'a>], name: &str) -> Option<&'a [u8]> {
    let copies = || vars.iter().filter(|v| v.name == name);
    copies()
        .rfind(|v| v.state == VAR_ADDED)
        .or_else(|| copies().rfind(|v| v.state == VAR_IN_TRANSITION))
        .map(|v| v.data)
}

/// BootOrder as `(Boot#### number, description)`, in order.
pub fn boot_order(store: &[u8]) -> Result<Vec<(u16, String)>> {
    let vars = variables(store)?;
    let order = live(&vars, "BootOrder").context("no BootOrder in the store")?;
    order
        .chunks_exact(2)
        .map(|c| {
            let n = u16::from_le_bytes([c[0], c[1]]);
            // EFI_LOAD_OPTION: attributes (4), file path list length (2), description.
            let description = live(&vars, &format!("Boot{n:04X}"))
                .filter(|o| o.len() > 6)
                .map(|o| utf16(&o[6..]))
                .unwrap_or_default();
            Ok((n, description))
        })
        .collect()
}

pub fn boot_order_of_file(path: &Path) -> Result<Vec<(u16, String)>> {
    let store = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    boot_order(&store).with_context(|| format!("reading the variables of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(|u| u.to_le_bytes())
            .collect()
    }

    fn push_var(store: &mut Vec<u8>, state: u8, name: &str, data: &[u8]) {
        let name = utf16z(name);
        let mut h = vec![0u8; VAR_HEADER];
        h[0..2].copy_from_slice(&0x55aau16.to_le_bytes());
        h[2] = state;
        h[36..40].copy_from_slice(&(name.len() as u32).to_le_bytes());
        h[40..44].copy_from_slice(&(data.len() as u32).to_le_bytes());
        store.extend(h);
        store.extend(name);
        store.extend(data);
        while !store.len().is_multiple_of(4) {
            store.push(0xff);
        }
    }

    fn load_option(description: &str) -> Vec<u8> {
        let mut o = vec![1, 0, 0, 0, 4, 0];
        o.extend(utf16z(description));
        o.extend([0x7f, 0xff, 0x04, 0x00]);
        o
    }

    /// A store shaped like OVMF's: FV header (72 bytes), store header, variables, 0xFF.
    fn store_with(vars: &[(u8, &str, Vec<u8>)]) -> Vec<u8> {
        let mut d = vec![0u8; 72];
        d[40..44].copy_from_slice(b"_FVH");
        d[48..50].copy_from_slice(&72u16.to_le_bytes());
        d.extend(AUTH_STORE);
        d.extend([0u8; STORE_HEADER - 16]);
        for (state, name, data) in vars {
            push_var(&mut d, *state, name, data);
        }
        d.resize(d.len() + 256, 0xff);
        d
    }

    #[test]
    fn the_live_boot_order_names_its_entries() {
        let d = store_with(&[
            (0x3c, "BootOrder", vec![1, 0]),
            (VAR_ADDED, "Boot0001", load_option("UEFI QEMU HARDDISK")),
            (
                VAR_ADDED,
                "Boot0004",
                load_option("XCP-ng (xenraid XRLAB-TGT0)"),
            ),
            (
                VAR_ADDED,
                "Boot0005",
                load_option("XCP-ng (xenraid XRLAB-SYS0)"),
            ),
            (VAR_ADDED, "BootOrder", vec![4, 0, 5, 0, 1, 0]),
        ]);
        assert_eq!(
            boot_order(&d).unwrap(),
            [
                (4, "XCP-ng (xenraid XRLAB-TGT0)".to_string()),
                (5, "XCP-ng (xenraid XRLAB-SYS0)".to_string()),
                (1, "UEFI QEMU HARDDISK".to_string()),
            ]
        );
    }

    #[test]
    fn an_update_cut_short_keeps_the_copy_in_transition() {
        let d = store_with(&[
            (VAR_IN_TRANSITION, "BootOrder", vec![2, 0]),
            (VAR_ADDED, "Boot0002", load_option("disk")),
        ]);
        assert_eq!(boot_order(&d).unwrap(), [(2, "disk".to_string())]);
    }

    #[test]
    fn the_shipped_template_parses() {
        // Debian's template (the `ovmf` package scripts/setup.sh installs) holds no live
        // BootOrder; its variables must still parse, the enrolled keys among them.
        let d = std::fs::read("/usr/share/OVMF/OVMF_VARS_4M.ms.fd").unwrap();
        let vars = variables(&d).unwrap();
        assert!(vars.iter().any(|v| v.name == "PK" && v.state == VAR_ADDED));
        assert!(live(&vars, "BootOrder").is_none());
    }
}
