//! `KEY=value` formats: xensource-inventory, os-release, `blkid -o export`, `mdadm --export`, and
//! the udev database (`E:KEY=value`).

use std::collections::BTreeMap;

/// Parses shell-style assignments (`KEY='v'`, `KEY="v"`, `KEY=v`, backslash escapes), skipping
/// comments and anything that is not an assignment: these files are sourced by shells, so the
/// last assignment wins.
pub fn parse_shell_vars(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        vars.insert(key.to_string(), unquote(raw.trim()));
    }
    vars
}

fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'') | (None, '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (None, '#') if out.is_empty() => break,
            (_, c) => out.push(c),
        }
    }
    out
}

/// The udev database record of one device (`/run/udev/data/b8:0`): only the `E:` properties.
pub fn parse_udev_db(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xensource_inventory() {
        let text = "PRODUCT_BRAND='XenServer'\nPRODUCT_NAME='xenenterprise'\nPRODUCT_VERSION='7.6.0'\nPRODUCT_VERSION_TEXT='7.6'\nPRIMARY_DISK='/dev/disk/by-id/ata-WDC_WD10EZEX-08WN4A0_WD-WCC6Y3KXN0AB'\nBACKUP_PARTITION='/dev/disk/by-id/ata-WDC_WD10EZEX-08WN4A0_WD-WCC6Y3KXN0AB-part2'\nINSTALLATION_UUID='3c8e8b4f-5b7a-4f7e-9a33-0c1d2e3f4a5b'\n";
        let vars = parse_shell_vars(text);
        assert_eq!(vars["PRODUCT_BRAND"], "XenServer");
        assert_eq!(vars["PRODUCT_VERSION"], "7.6.0");
        assert!(vars["BACKUP_PARTITION"].ends_with("-part2"));
    }

    #[test]
    fn os_release_quotes_and_comments() {
        let text = "# comment\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nPRETTY=\"a \\\"b\\\"\"\nnot an assignment\n";
        let vars = parse_shell_vars(text);
        assert_eq!(vars["NAME"], "Debian GNU/Linux");
        assert_eq!(vars["ID"], "debian");
        assert_eq!(vars["PRETTY"], "a \"b\"");
        assert_eq!(vars.len(), 4);
    }

    #[test]
    fn blkid_export_escapes_spaces() {
        let vars = parse_shell_vars("DEVNAME=/dev/sda3\nLABEL=Local\\ storage\n");
        assert_eq!(vars["LABEL"], "Local storage");
    }

    #[test]
    fn udev_db_properties() {
        let text = "S:disk/by-id/ata-QEMU_HARDDISK_QM00001\nW:1\nE:ID_SERIAL=QEMU_HARDDISK_QM00001\nE:ID_SERIAL_SHORT=QM00001\nE:ID_WWN=0x5000c500a1b2c3d4\nG:systemd\n";
        let props = parse_udev_db(text);
        assert_eq!(props["ID_SERIAL_SHORT"], "QM00001");
        assert_eq!(props["ID_WWN"], "0x5000c500a1b2c3d4");
        assert_eq!(props.len(), 3);
    }
}
