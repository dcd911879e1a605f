//! Boot loader configurations: GRUB2 `grub.cfg` (XenServer's hand-written one and grub-mkconfig's)
//! and extlinux.conf (XenServer 6.5's Xen `mboot.c32` stanzas), plus the pure text edits the plan
//! makes to them.

use serde::{Deserialize, Serialize};

use super::ParseError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootEntry {
    pub title: String,
    /// 1-based first and last line of the entry in the file.
    pub first_line: usize,
    pub last_line: usize,
    /// Xen when the entry boots through multiboot (`multiboot2 /boot/xen.gz`, `mboot.c32`).
    pub hypervisor: Option<String>,
    pub kernel: Option<String>,
    pub kernel_args: Vec<String>,
    pub initrd: Option<String>,
}

impl BootEntry {
    pub fn root_arg(&self) -> Option<&str> {
        self.kernel_args
            .iter()
            .find_map(|a| a.strip_prefix("root="))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootConfig {
    pub default: Option<String>,
    pub entries: Vec<BootEntry>,
    /// XenServer's grub.cfg one-shot hook (`override_entry` in grubenv).
    pub has_override_entry: bool,
    /// grub-mkconfig's one-shot hook (`next_entry`, used by grub-reboot).
    pub has_next_entry: bool,
    /// `search` lines that find the boot filesystem: (1-based line, value searched for).
    pub searches: Vec<(usize, String)>,
}

pub fn parse_grub_cfg(text: &str) -> Result<BootConfig, ParseError> {
    let mut config = BootConfig::default();
    let mut depth = 0usize;
    let mut current: Option<BootEntry> = None;
    let mut entry_depth = 0usize;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        config.has_override_entry |= line.contains("override_entry");
        config.has_next_entry |= line.contains("next_entry");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("set") if current.is_none() && depth == 0 => {
                // `set default=$override_entry` and friends are the one-shot hooks, not the default.
                let value = words
                    .get(1)
                    .and_then(|w| w.strip_prefix("default="))
                    .map(|v| v.trim_matches(|c| c == '"' || c == '\''))
                    .filter(|v| !v.starts_with('$'));
                if let Some(value) = value {
                    config.default = Some(value.to_string());
                }
            }
            Some("menuentry") => {
                if current.is_some() {
                    return Err(ParseError::line("grub.cfg", line_no, "nested menuentry"));
                }
                current = Some(BootEntry {
                    title: quoted_title(line),
                    first_line: line_no,
                    ..Default::default()
                });
                entry_depth = depth;
            }
            Some("search") => {
                if let Some(value) = words.last().filter(|w| !w.starts_with('-')) {
                    if words.len() > 2 {
                        config.searches.push((line_no, value.to_string()));
                    }
                }
            }
            Some("multiboot2") | Some("multiboot") => {
                if let Some(entry) = current.as_mut() {
                    entry.hypervisor = words.get(1).map(|w| w.to_string());
                }
            }
            Some("module2") | Some("module") | Some("linux") | Some("linux16")
            | Some("linuxefi") => {
                if let Some(entry) = current.as_mut() {
                    let path = words.get(1).map(|w| w.to_string());
                    if entry.kernel.is_none() {
                        entry.kernel = path;
                        entry.kernel_args = words.iter().skip(2).map(|w| w.to_string()).collect();
                    } else if entry.initrd.is_none() && words[0].starts_with("module") {
                        entry.initrd = path;
                    }
                }
            }
            Some("initrd") | Some("initrd16") | Some("initrdefi") => {
                if let Some(entry) = current.as_mut() {
                    entry.initrd = words.get(1).map(|w| w.to_string());
                }
            }
            _ => {}
        }
        depth += line.matches('{').count();
        let closes = line.matches('}').count();
        depth = depth.checked_sub(closes).ok_or_else(|| {
            ParseError::line("grub.cfg", line_no, "closing brace without opening")
        })?;
        if depth <= entry_depth {
            if let Some(mut entry) = current.take() {
                if closes == 0 {
                    // A menuentry whose body did not open on this line yet.
                    current = Some(entry);
                } else {
                    entry.last_line = line_no;
                    config.entries.push(entry);
                }
            }
        }
    }
    if current.is_some() || depth != 0 {
        return Err(ParseError::Format {
            what: "grub.cfg",
            reason: "unbalanced braces at end of file".into(),
        });
    }
    Ok(config)
}

fn quoted_title(line: &str) -> String {
    let rest = line.trim_start_matches("menuentry").trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"');
    match quote {
        Some(q) => rest[1..].split(q).next().unwrap_or_default().to_string(),
        None => rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// extlinux.conf. XenServer 6.5 boots Xen with `kernel mboot.c32` and
/// `append /boot/xen.gz … --- /boot/vmlinuz-… root=… --- /boot/initrd-….img`.
pub fn parse_extlinux_conf(text: &str) -> Result<BootConfig, ParseError> {
    let mut config = BootConfig::default();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match keyword.to_ascii_lowercase().as_str() {
            "default" => config.default = Some(rest.to_string()),
            "label" => config.entries.push(BootEntry {
                title: rest.to_string(),
                first_line: line_no,
                last_line: line_no,
                ..Default::default()
            }),
            "kernel" | "linux" => {
                let entry = config.entries.last_mut().ok_or_else(|| {
                    ParseError::line("extlinux.conf", line_no, "kernel before any label")
                })?;
                entry.kernel = Some(rest.to_string());
                entry.last_line = line_no;
            }
            "append" => {
                let entry = config.entries.last_mut().ok_or_else(|| {
                    ParseError::line("extlinux.conf", line_no, "append before any label")
                })?;
                entry.last_line = line_no;
                apply_append(entry, rest);
            }
            "initrd" => {
                if let Some(entry) = config.entries.last_mut() {
                    entry.initrd = Some(rest.to_string());
                    entry.last_line = line_no;
                }
            }
            _ => {
                if let Some(entry) = config.entries.last_mut() {
                    if raw.starts_with(char::is_whitespace) {
                        entry.last_line = line_no;
                    }
                }
            }
        }
    }
    Ok(config)
}

fn apply_append(entry: &mut BootEntry, append: &str) {
    let is_mboot = entry
        .kernel
        .as_deref()
        .is_some_and(|k| k.ends_with("mboot.c32"));
    if !is_mboot {
        entry.kernel_args = append.split_whitespace().map(str::to_string).collect();
        return;
    }
    let parts: Vec<&str> = append.split(" --- ").collect();
    entry.hypervisor = parts
        .first()
        .and_then(|p| p.split_whitespace().next())
        .map(str::to_string);
    if let Some(kernel_part) = parts.get(1) {
        let mut words = kernel_part.split_whitespace();
        entry.kernel = words.next().map(str::to_string);
        entry.kernel_args = words.map(str::to_string).collect();
    }
    if let Some(initrd_part) = parts.get(2) {
        entry.initrd = initrd_part.split_whitespace().next().map(str::to_string);
    }
}

/// On every kernel line that passes `root=<old_root>`, points root at `new_root` and appends
/// `extra_args` (once). In an mboot `append … --- kernel … --- initrd` line only the kernel's own
/// segment changes, so Xen's arguments stay intact.
pub fn rewrite_kernel_root(
    text: &str,
    old_roots: &[String],
    new_root: &str,
    extra_args: &[String],
) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let segments: Vec<&str> = body.split(" --- ").collect();
        let mut changed = false;
        let rewritten: Vec<String> = segments
            .iter()
            .map(|segment| {
                let has_old_root = segment.split_whitespace().any(|w| {
                    w.strip_prefix("root=")
                        .is_some_and(|r| old_roots.iter().any(|o| o == r))
                });
                if !has_old_root {
                    return segment.to_string();
                }
                changed = true;
                let indent_len = segment.len() - segment.trim_start().len();
                let mut words: Vec<String> = segment
                    .split_whitespace()
                    .map(|w| {
                        if w.starts_with("root=") {
                            format!("root={new_root}")
                        } else {
                            w.to_string()
                        }
                    })
                    .collect();
                for arg in extra_args {
                    if !words.contains(arg) {
                        words.push(arg.clone());
                    }
                }
                format!("{}{}", &segment[..indent_len], words.join(" "))
            })
            .collect();
        if changed {
            out.push_str(&rewritten.join(" --- "));
        } else {
            out.push_str(body);
        }
        out.push_str(newline);
    }
    out
}

/// Replaces GRUB `search` lines that look for the old boot filesystem with a search by the new
/// filesystem's UUID, preceded by the `insmod` lines GRUB needs to read the array.
pub fn rewrite_grub_search(
    text: &str,
    old_values: &[String],
    new_fs_uuid: &str,
    insmods: &[&str],
) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let is_old_search = words.first() == Some(&"search")
            && words
                .last()
                .is_some_and(|v| old_values.iter().any(|o| o == v));
        if !is_old_search {
            out.push_str(line);
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        for module in insmods {
            out.push_str(&format!("{indent}insmod {module}\n"));
        }
        out.push_str(&format!(
            "{indent}search --no-floppy --fs-uuid --set=root {new_fs_uuid}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const XS7_GRUB: &str = "serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\nset default=0\nset timeout=5\nif [ -s $prefix/grubenv ]; then\n\tload_env\nfi\nif [ -n \"$override_entry\" ]; then\n\tset default=$override_entry\n\tset override_entry=\n\tsave_env override_entry\nfi\nmenuentry 'XenServer' {\n\tsearch --label --set root root-ocmtfp\n\tmultiboot2 /boot/xen.gz dom0_mem=1024M,max:1024M watchdog ucode=scan dom0_max_vcpus=1-16 crashkernel=192M,below=4G console=vga vga=mode-0x0311\n\tmodule2 /boot/vmlinuz-4.4-xen root=LABEL=root-ocmtfp ro nolvm hpet=disable console=hvc0 console=tty0 quiet vga=785 splash plymouth.ignore-serial-consoles\n\tmodule2 /boot/initrd-4.4-xen.img\n}\nmenuentry 'XenServer (Serial)' {\n\tsearch --label --set root root-ocmtfp\n\tmultiboot2 /boot/xen.gz com1=115200,8n1 console=com1,vga dom0_mem=1024M,max:1024M watchdog\n\tmodule2 /boot/vmlinuz-4.4-xen root=LABEL=root-ocmtfp ro nolvm hpet=disable console=tty0 console=hvc0\n\tmodule2 /boot/initrd-4.4-xen.img\n}\n";

    #[test]
    fn xenserver7_grub_cfg() {
        let config = parse_grub_cfg(XS7_GRUB).expect("parses");
        assert_eq!(config.default.as_deref(), Some("0"));
        assert!(config.has_override_entry);
        assert_eq!(config.entries.len(), 2);
        let first = &config.entries[0];
        assert_eq!(first.title, "XenServer");
        assert_eq!(first.hypervisor.as_deref(), Some("/boot/xen.gz"));
        assert_eq!(first.kernel.as_deref(), Some("/boot/vmlinuz-4.4-xen"));
        assert_eq!(first.initrd.as_deref(), Some("/boot/initrd-4.4-xen.img"));
        assert_eq!(first.root_arg(), Some("LABEL=root-ocmtfp"));
        assert_eq!((first.first_line, first.last_line), (14, 19));
        assert_eq!(
            config.searches,
            vec![
                (15, "root-ocmtfp".to_string()),
                (21, "root-ocmtfp".to_string())
            ]
        );
    }

    #[test]
    fn debian_grub_mkconfig_submenu() {
        let text = "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nfi\nmenuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-1a2b' {\n\tinsmod ext2\n\tsearch --no-floppy --fs-uuid --set=root 1a2b\n\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1a2b ro quiet\n\tinitrd\t/boot/initrd.img-6.1.0-18-amd64\n}\nsubmenu 'Advanced options' {\n\tmenuentry 'Debian, recovery' {\n\t\tlinux /boot/vmlinuz-6.1.0-18-amd64 root=UUID=1a2b ro single\n\t}\n}\n";
        let config = parse_grub_cfg(text).expect("parses");
        assert!(config.has_next_entry);
        assert_eq!(config.entries.len(), 2);
        assert_eq!(config.entries[0].root_arg(), Some("UUID=1a2b"));
        assert_eq!(
            config.entries[0].initrd.as_deref(),
            Some("/boot/initrd.img-6.1.0-18-amd64")
        );
        assert!(parse_grub_cfg("menuentry 'x' {\n").is_err());
        assert!(parse_grub_cfg("}\n").is_err());
    }

    pub(crate) const XS65_EXTLINUX: &str = "# location mbr\nserial 0 115200\ndefault xe\nprompt 1\ntimeout 50\n\nlabel xe\n  # XenServer\n  kernel mboot.c32\n  append /boot/xen.gz mem=1024G dom0_max_vcpus=4 dom0_mem=752M,max:752M watchdog cpuid_mask_xsave_eax=0 console=vga vga=mode-0x0311 --- /boot/vmlinuz-2.6-xen root=LABEL=root-vbzwtkpe ro xencons=hvc console=hvc0 console=tty0 quiet vga=785 splash --- /boot/initrd-2.6-xen.img\n\nlabel fallback\n  # XenServer (Xen 4.4.1 / Linux 3.10.0+2)\n  kernel mboot.c32\n  append /boot/xen-4.4.1-xs100346.gz dom0_mem=752M,max:752M --- /boot/vmlinuz-3.10.0+2 root=LABEL=root-vbzwtkpe ro console=tty0 --- /boot/initrd-3.10.0+2.img\n\nlabel safe\n  kernel mboot.c32\n  append /boot/xen.gz nosmp noreboot --- /boot/vmlinuz-2.6-xen nousb root=LABEL=root-vbzwtkpe ro --- /boot/initrd-2.6-xen.img\n";

    #[test]
    fn xenserver65_extlinux() {
        let config = parse_extlinux_conf(XS65_EXTLINUX).expect("parses");
        assert_eq!(config.default.as_deref(), Some("xe"));
        assert_eq!(config.entries.len(), 3);
        let xe = &config.entries[0];
        assert_eq!(xe.title, "xe");
        assert_eq!(xe.hypervisor.as_deref(), Some("/boot/xen.gz"));
        assert_eq!(xe.kernel.as_deref(), Some("/boot/vmlinuz-2.6-xen"));
        assert_eq!(xe.initrd.as_deref(), Some("/boot/initrd-2.6-xen.img"));
        assert_eq!(xe.root_arg(), Some("LABEL=root-vbzwtkpe"));
        assert!(parse_extlinux_conf("append x\n").is_err());
    }

    #[test]
    fn rewrite_root_only_touches_the_kernel_segment() {
        let edited = rewrite_kernel_root(
            XS65_EXTLINUX,
            &["LABEL=root-vbzwtkpe".to_string()],
            "/dev/md0",
            &["rd.md.uuid=1:2:3:4".to_string()],
        );
        let line = edited
            .lines()
            .find(|l| l.contains("mem=1024G"))
            .expect("line");
        assert!(line.starts_with("  append /boot/xen.gz mem=1024G"));
        assert!(line.contains("root=/dev/md0 ro xencons=hvc console=hvc0 console=tty0 quiet vga=785 splash rd.md.uuid=1:2:3:4 --- /boot/initrd-2.6-xen.img"));
        assert!(!edited.contains("root=LABEL"));
    }

    #[test]
    fn rewrite_search_adds_insmod() {
        let edited = rewrite_grub_search(
            XS7_GRUB,
            &["root-ocmtfp".to_string()],
            "aaaa-bbbb",
            &["mdraid1x"],
        );
        assert_eq!(
            edited
                .matches("\tinsmod mdraid1x\n\tsearch --no-floppy --fs-uuid --set=root aaaa-bbbb\n")
                .count(),
            2
        );
        assert!(!edited.contains("--label"));
    }
}
