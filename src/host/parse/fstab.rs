//! `/etc/fstab`, keeping every line so an edit changes only what it must.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FstabEntry {
    /// 1-based line number in the file.
    pub line: usize,
    pub spec: String,
    pub file: String,
    pub vfstype: String,
    pub options: String,
}

/// Comments, blank lines and lines with fewer than 3 fields are not entries (mount ignores them).
pub fn parse_fstab(text: &str) -> Vec<FstabEntry> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            let fields: Vec<&str> = content.split_whitespace().collect();
            if fields.len() < 3 {
                return None;
            }
            Some(FstabEntry {
                line: index + 1,
                spec: super::unescape_octal(fields[0]),
                file: super::unescape_octal(fields[1]),
                vfstype: fields[2].to_string(),
                options: fields.get(3).unwrap_or(&"defaults").to_string(),
            })
        })
        .collect()
}

/// Replaces the first field of line `line` (1-based), keeping the line's spacing.
pub fn replace_spec(text: &str, line: usize, new_spec: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    for (index, original) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let indent = original.len() - original.trim_start().len();
            let body = &original[indent..];
            let spec_end = body.find(char::is_whitespace).unwrap_or(body.len());
            out.push_str(&original[..indent]);
            out.push_str(new_spec);
            out.push_str(&body[spec_end..]);
        } else {
            out.push_str(original);
        }
    }
    out
}

/// Adds `option` to the options field of line `line` unless it is already there.
pub fn add_option(text: &str, line: usize, option: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (index, original) in text.split_inclusive('\n').enumerate() {
        if index + 1 != line {
            out.push_str(original);
            continue;
        }
        let newline = if original.ends_with('\n') { "\n" } else { "" };
        let body = original.trim_end_matches('\n');
        let mut fields: Vec<String> = body.split_whitespace().map(str::to_string).collect();
        match fields.get_mut(3) {
            Some(options) if options.split(',').any(|o| o == option) => {
                out.push_str(original);
                continue;
            }
            Some(options) => options.push_str(&format!(",{option}")),
            None => fields.push(option.to_string()),
        }
        out.push_str(&fields.join("\t"));
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "LABEL=root-ocmtfp    /         ext3     defaults   1  1\nLABEL=swap-ocmtfp          swap      swap   defaults   0  0\nLABEL=logs-ocmtfp    /var/log         ext3     defaults   0  2\n/opt/xensource/packages/iso/XenCenter.iso   /var/xen/xc-install   iso9660   loop,ro   0  0\n";

    #[test]
    fn seed_fstab() {
        let entries = parse_fstab(SEED);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].spec, "LABEL=root-ocmtfp");
        assert_eq!(entries[1].file, "swap");
        assert_eq!(entries[2].line, 3);
        assert_eq!(entries[3].options, "loop,ro");
    }

    #[test]
    fn comments_and_short_lines_are_not_entries() {
        let entries =
            parse_fstab("# /etc/fstab\n\nproc /proc\nUUID=x / ext4 errors=remount-ro 0 1\n");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line, 4);
    }

    #[test]
    fn replace_spec_keeps_spacing() {
        let edited = replace_spec(SEED, 1, "UUID=abcd");
        assert!(edited.starts_with("UUID=abcd    /         ext3"));
        assert_eq!(edited.lines().nth(1), SEED.lines().nth(1));
    }

    #[test]
    fn add_option_once() {
        let text = "LABEL=BOOT-ABC /boot/efi vfat defaults 0 2\n";
        let once = add_option(text, 1, "nofail");
        assert_eq!(
            once,
            "LABEL=BOOT-ABC\t/boot/efi\tvfat\tdefaults,nofail\t0\t2\n"
        );
        assert_eq!(add_option(&once, 1, "nofail"), once);
    }
}
