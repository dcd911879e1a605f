//! File edits as data: the new content and a unified diff from what is on the host now.

use crate::host::parse::bootcfg::{
    parse_extlinux_conf, parse_grub_cfg, rewrite_grub_search, rewrite_kernel_root, BootConfig,
};
use crate::host::parse::fstab::{add_option, parse_fstab, replace_spec};
use crate::host::parse::mdadm::parse_mdadm_conf_arrays;

use super::model::{Action, ArraySpec, Content};

pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}

pub fn edit_action(path: &str, old: &str, new: &str) -> Action {
    Action::EditFile {
        path: path.to_string(),
        diff: unified_diff(path, old, new),
        new_content: new.to_string(),
    }
}

/// `text` with `lines` appended, each on its own line (a last line without its newline first
/// gets one).
pub fn with_lines_appended(text: &str, lines: &[&str]) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Points every fstab line naming a mirrored filesystem or swap at the array's new UUID.
/// `esp` is (old refs, new UUID) of the ESP, mounted `nofail` so a lost disk does not stop boot.
pub fn rewrite_fstab(text: &str, arrays: &[ArraySpec], esp: Option<(&[String], &str)>) -> String {
    let mut out = text.to_string();
    for entry in parse_fstab(text) {
        for array in arrays {
            let (refs, uuid) = match &array.content {
                Content::Filesystem {
                    old_refs, new_uuid, ..
                }
                | Content::Swap {
                    old_refs, new_uuid, ..
                } => (old_refs, new_uuid),
                _ => continue,
            };
            if refs.contains(&entry.spec) {
                out = replace_spec(&out, entry.line, &format!("UUID={uuid}"));
            }
        }
        if let Some((refs, uuid)) = esp {
            if refs.iter().any(|r| r == &entry.spec) {
                out = replace_spec(&out, entry.line, &format!("UUID={uuid}"));
                out = add_option(&out, entry.line, "nofail");
            }
        }
    }
    out
}

const MDADM_CONF_HEADER: &str = "# xenraid: arrays are assembled by UUID, never by scanning";

pub fn mdadm_conf(existing: &str, arrays: &[ArraySpec]) -> String {
    let ours: Vec<&str> = arrays.iter().map(|a| a.uuid.as_str()).collect();
    let stale: Vec<String> = parse_mdadm_conf_arrays(existing)
        .into_iter()
        .filter_map(|a| a.uuid.filter(|u| ours.contains(&u.as_str())))
        .collect();
    let mut out: String = existing
        .lines()
        .filter(|l| !stale.iter().any(|u| l.contains(u.as_str())))
        .map(|l| format!("{l}\n"))
        .collect();
    // A second xenraid edit (add-mirror on a converted host) appends under the first header.
    if !existing.lines().any(|l| l == MDADM_CONF_HEADER) {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(MDADM_CONF_HEADER);
        out.push('\n');
    }
    if !existing
        .lines()
        .any(|l| l.trim_start().starts_with("MAILADDR"))
    {
        out.push_str("MAILADDR root\n");
    }
    for array in arrays {
        out.push_str(&mdadm_conf_line(array));
        out.push('\n');
    }
    out
}

pub fn mdadm_conf_line(array: &ArraySpec) -> String {
    if array.metadata == "0.90" {
        format!("ARRAY {} metadata=0.90 UUID={}", array.device, array.uuid)
    } else {
        format!(
            "ARRAY {} metadata={} UUID={} name=xenraid:{}",
            array.device, array.metadata, array.uuid, array.role
        )
    }
}

pub const DRACUT_CONF: &str =
    "# xenraid: every initramfs must assemble the md arrays, also the ones
# an upgrade or a kernel update regenerates.
add_dracutmodules+=\" mdraid \"
add_drivers+=\" raid1 \"
mdadmconf=\"yes\"
# Host-only dracut waits at boot, without a time limit, for every device mounted when the
# image was built: /boot/efi is one disk's ESP, and a host that lost that disk must boot.
# The kernel line names the root; mdadm.conf names the arrays.
hostonly_cmdline=\"no\"
";

/// The kernel-line and GRUB `search` edits for the root on md.
pub struct BootEdit<'a> {
    pub old_root_refs: &'a [String],
    pub new_root: &'a str,
    pub extra_args: &'a [String],
    /// (values GRUB searched for, new fs UUID, insmod list); `None` for extlinux.
    pub grub_search: Option<(&'a [String], &'a str, &'a [&'a str])>,
}

pub fn rewrite_boot_config(text: &str, edit: &BootEdit<'_>) -> String {
    let text = rewrite_kernel_root(text, edit.old_root_refs, edit.new_root, edit.extra_args);
    match edit.grub_search {
        Some((old, uuid, insmods)) => rewrite_grub_search(&text, old, uuid, insmods),
        None => text,
    }
}

/// No spaces: XenServer's grub.cfg expands `set default=$override_entry` unquoted, so a title
/// with spaces splits into words and GRUB falls back to entry 0 (seen in the lab).
pub const BOOT_ONCE_TITLE: &str = "xenraid-first-raid1-boot";
pub const BOOT_ONCE_LABEL: &str = "xenraid-raid1";

/// A copy of the default entry of an already rewritten GRUB config, retitled, appended to
/// `original`: the boot-once entry on the original disk.
pub fn grub_with_boot_once(original: &str, rewritten: &str) -> Option<String> {
    let config: BootConfig = parse_grub_cfg(rewritten).ok()?;
    let entry = default_entry(&config)?;
    let lines: Vec<&str> = rewritten.lines().collect();
    let block = lines.get(entry.first_line - 1..entry.last_line)?;
    let mut out = original.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("# xenraid: one-shot entry, chosen once through grubenv\n");
    for (i, line) in block.iter().enumerate() {
        if i == 0 {
            out.push_str(&with_entry_id(
                &line.replacen(&entry.title, BOOT_ONCE_TITLE, 1),
                BOOT_ONCE_TITLE,
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Some(out)
}

/// grub-mkconfig gives each entry an id (`$menuentry_id_option 'gnulinux-simple-UUID'`), and a
/// `default` may name an entry by id: the copied entry gets its own, not the original's.
fn with_entry_id(line: &str, id: &str) -> String {
    const OPTION: &str = "$menuentry_id_option '";
    let Some(start) = line.find(OPTION).map(|i| i + OPTION.len()) else {
        return line.to_string();
    };
    let Some(len) = line[start..].find('\'') else {
        return line.to_string();
    };
    format!("{}{id}{}", &line[..start], &line[start + len..])
}

/// The extlinux equivalent: a label booting the rewritten default stanza with the RAID initrd
/// copied next to the original one.
pub fn extlinux_with_boot_once(
    original: &str,
    rewritten: &str,
    raid_initrd: &str,
) -> Option<String> {
    let config = parse_extlinux_conf(rewritten).ok()?;
    let entry = default_entry(&config)?;
    let old_initrd = entry.initrd.clone()?;
    let lines: Vec<&str> = rewritten.lines().collect();
    let block = lines.get(entry.first_line - 1..entry.last_line)?;
    let mut out = original.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!(
        "\nlabel {BOOT_ONCE_LABEL}\n  # xenraid: one-shot entry (extlinux --once)\n"
    ));
    for line in block.iter().skip(1) {
        out.push_str(&line.replace(&old_initrd, raid_initrd));
        out.push('\n');
    }
    Some(out)
}

fn default_entry(config: &BootConfig) -> Option<&crate::host::parse::bootcfg::BootEntry> {
    let by_default = config
        .default
        .as_ref()
        .and_then(|d| match d.parse::<usize>() {
            Ok(i) => config.entries.get(i),
            Err(_) => config.entries.iter().find(|e| &e.title == d),
        });
    by_default.or_else(|| config.entries.first())
}

/// `KEY='value'` line replacement for xensource-inventory.
pub fn set_shell_var(text: &str, key: &str, value: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if line.starts_with(&format!("{key}=")) {
                format!("{key}='{value}'\n")
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// Appends arguments to `GRUB_CMDLINE_LINUX` in /etc/default/grub (once each).
pub fn default_grub_with_args(text: &str, args: &[String]) -> String {
    let mut found = false;
    let mut out: String = text
        .split_inclusive('\n')
        .map(|line| {
            let Some(value) = line.trim_end().strip_prefix("GRUB_CMDLINE_LINUX=") else {
                return line.to_string();
            };
            found = true;
            let inner = value.trim_matches('"');
            let mut words: Vec<String> = inner.split_whitespace().map(str::to_string).collect();
            for arg in args {
                if !words.contains(arg) {
                    words.push(arg.clone());
                }
            }
            format!("GRUB_CMDLINE_LINUX=\"{}\"\n", words.join(" "))
        })
        .collect();
    if !found {
        out.push_str(&format!("GRUB_CMDLINE_LINUX=\"{}\"\n", args.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grub_args_added_once() {
        let text = "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n";
        let args = vec!["rd.md.uuid=1".to_string()];
        let once = default_grub_with_args(text, &args);
        assert_eq!(
            once,
            "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"console=ttyS0 rd.md.uuid=1\"\n"
        );
        assert_eq!(default_grub_with_args(&once, &args), once);
    }

    #[test]
    fn inventory_var() {
        let text = "A='1'\nBACKUP_PARTITION='/dev/sda2'\n";
        assert_eq!(
            set_shell_var(text, "BACKUP_PARTITION", "/dev/md/backup"),
            "A='1'\nBACKUP_PARTITION='/dev/md/backup'\n"
        );
    }

    #[test]
    fn diff_is_unified() {
        let diff = unified_diff("/etc/x", "a\nb\n", "a\nc\n");
        assert!(diff.contains("--- a/etc/x"));
        assert!(diff.contains("-b\n+c\n"));
    }
}
