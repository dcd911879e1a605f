//! The checks: pure functions over `DoctorFacts`, each giving PASS/FAIL/WARN, what was seen and
//! the fix.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::host::facts::{BootMode, InitSystem, InitramfsTool, LoaderKind};
use crate::host::parse::mbr::BootCode;
use crate::host::parse::mdadm::parse_mdadm_conf_arrays;

use super::facts::{
    normalize_uuid, BootDisk, DoctorFacts, InitramfsImage, MonitorState, CONFIG_PATH,
    DRACUT_CONF_PATH, MONITOR_UNIT,
};
use super::fix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    /// The array, disk or file it is about, when there are several of its kind.
    pub subject: Option<String>,
    pub status: Status,
    /// What was seen.
    pub seen: String,
    pub fix: Option<String>,
}

pub(super) fn check(name: &str, subject: Option<&str>, status: Status, seen: String) -> Check {
    Check {
        name: name.to_string(),
        subject: subject.map(str::to_string),
        status,
        seen,
        fix: None,
    }
}

impl Check {
    pub(super) fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

pub const REDUNDANT_LEVELS: [&str; 5] = ["raid1", "raid4", "raid5", "raid6", "raid10"];

pub fn run(facts: &DoctorFacts) -> Vec<Check> {
    let mut out = vec![mdadm_conf(facts)];
    out.extend(initramfs(facts));
    out.push(dracut_conf(facts));
    out.extend(bootloader(facts));
    out.extend(esp_copies(facts));
    out.push(fstab_devices(facts));
    out.push(unique_labels(facts));
    out.push(bitmaps(facts));
    out.push(super::recovery::check(facts));
    out.push(monitor(facts));
    out.push(alert_channel(facts));
    out
}

/// UUIDs of the ARRAY lines in an mdadm.conf, normalised.
pub fn conf_uuids(text: &str) -> Vec<String> {
    parse_mdadm_conf_arrays(text)
        .into_iter()
        .filter_map(|a| a.uuid.as_deref().and_then(normalize_uuid))
        .collect()
}

/// Running arrays whose UUID `text` does not list: (device, uuid).
pub fn arrays_missing_from(facts: &DoctorFacts, text: &str) -> Vec<(String, String)> {
    let listed = conf_uuids(text);
    facts
        .arrays
        .iter()
        .filter_map(|a| Some((a.health.device.clone(), a.uuid.clone()?)))
        .filter(|(_, u)| !listed.contains(u))
        .collect()
}

fn list(items: &[(String, String)]) -> String {
    items
        .iter()
        .map(|(d, u)| format!("{d} (UUID {u})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mdadm_conf(facts: &DoctorFacts) -> Check {
    const NAME: &str = "mdadm-conf";
    if facts.arrays.is_empty() {
        let seen = if facts.md_loaded {
            "no md arrays are running"
        } else {
            "the md driver is not loaded (no /proc/mdstat): no arrays"
        };
        return check(NAME, None, Status::Warn, seen.into());
    }
    let unknown: Vec<&str> = facts
        .arrays
        .iter()
        .filter(|a| a.uuid.is_none())
        .map(|a| a.health.device.as_str())
        .collect();
    let Some(conf) = &facts.mdadm_conf else {
        return check(
            NAME,
            None,
            Status::Fail,
            "neither /etc/mdadm.conf nor /etc/mdadm/mdadm.conf exists".into(),
        )
        .with_fix(
            "`xenraid doctor --fix` writes an ARRAY line per array (`mdadm --detail --brief`)",
        );
    };
    let missing = arrays_missing_from(facts, &conf.text);
    if !missing.is_empty() {
        return check(
            NAME,
            Some(&conf.resolved),
            Status::Fail,
            format!("not listed: {}", list(&missing)),
        )
        .with_fix(format!(
            "append `mdadm --detail --brief` of {} to {}",
            missing
                .iter()
                .map(|(d, _)| format!("/dev/{d}"))
                .collect::<Vec<_>>()
                .join(", "),
            conf.resolved
        ));
    }
    if !unknown.is_empty() {
        return check(
            NAME,
            Some(&conf.resolved),
            Status::Warn,
            format!("the UUID of {} could not be read", unknown.join(", ")),
        );
    }
    check(
        NAME,
        Some(&conf.resolved),
        Status::Pass,
        format!("all {} arrays listed by UUID", facts.arrays.len()),
    )
}

fn initramfs(facts: &DoctorFacts) -> Vec<Check> {
    const NAME: &str = "initramfs";
    if facts.arrays.is_empty() {
        return Vec::new();
    }
    if facts.images.is_empty() {
        return vec![check(
            NAME,
            None,
            Status::Warn,
            "no kernel and initramfs found in /boot".into(),
        )];
    }
    facts
        .images
        .iter()
        .map(|image| {
            let seen = image_problems(facts, image);
            let subject = Some(image.path.as_str());
            match seen {
                Ok(problems) if problems.is_empty() => {
                    let c = image.contents.as_ref().ok();
                    check(
                        NAME,
                        subject,
                        Status::Pass,
                        format!(
                            "{} has every array's UUID and {}",
                            c.and_then(|c| c.mdadm_conf_path.as_deref())
                                .unwrap_or("etc/mdadm.conf"),
                            c.and_then(|c| c.raid1_module.as_deref())
                                .and_then(|m| m.rsplit('/').next())
                                .unwrap_or("raid1")
                        ),
                    )
                }
                Ok(problems) => check(NAME, subject, Status::Fail, problems.join("; ")).with_fix(
                    format!("rebuild it: {}", fix::initramfs_command(facts, image)),
                ),
                Err(why) if image.running && !image_exists(image) => {
                    check(NAME, subject, Status::Fail, why).with_fix(format!(
                        "build it: {}",
                        fix::initramfs_command(facts, image)
                    ))
                }
                Err(why) => check(
                    NAME,
                    subject,
                    Status::Warn,
                    format!("could not look inside: {why}"),
                ),
            }
        })
        .collect()
}

fn image_exists(image: &InitramfsImage) -> bool {
    !matches!(&image.contents, Err(e) if e.starts_with("no initramfs"))
}

/// What is wrong inside an image; Err when it could not be read.
fn image_problems(facts: &DoctorFacts, image: &InitramfsImage) -> Result<Vec<String>, String> {
    let contents = image.contents.as_ref().map_err(Clone::clone)?;
    let mut problems = Vec::new();
    match &contents.mdadm_conf {
        None => problems.push("no etc/mdadm.conf inside".to_string()),
        Some(text) => {
            let missing = arrays_missing_from(facts, text);
            if !missing.is_empty() {
                problems.push(format!("its mdadm.conf does not list {}", list(&missing)));
            }
        }
    }
    if contents.raid1_module.is_none() {
        problems.push("no raid1 module (raid1.ko) inside".into());
    }
    Ok(problems)
}

pub fn uses_dracut(facts: &DoctorFacts) -> bool {
    match facts.initramfs_tool {
        Some(tool) => tool == InitramfsTool::Dracut,
        None => facts.tools.get("dracut").is_some_and(Option::is_some),
    }
}

/// The four settings of `DRACUT_CONF`, each in any of the spellings dracut accepts.
pub fn dracut_conf_problems(text: &str) -> Vec<&'static str> {
    let has = |key: &str, word: &str| {
        text.lines().any(|line| {
            let line = line.split('#').next().unwrap_or_default();
            line.split_once('=').is_some_and(|(k, v)| {
                k.trim().trim_end_matches('+').trim() == key
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|w| w == word)
            })
        })
    };
    let mut out = Vec::new();
    if !has("add_dracutmodules", "mdraid") {
        out.push("the mdraid module is not added");
    }
    if !has("add_drivers", "raid1") {
        out.push("the raid1 driver is not added");
    }
    if !has("mdadmconf", "yes") {
        out.push("mdadmconf=\"yes\" is not set");
    }
    if !has("hostonly_cmdline", "no") {
        out.push("hostonly_cmdline=\"no\" is not set (the initramfs would wait for ever for a missing disk's ESP)");
    }
    out
}

fn dracut_conf(facts: &DoctorFacts) -> Check {
    const NAME: &str = "dracut-conf";
    if facts.arrays.is_empty() {
        return check(
            NAME,
            None,
            Status::Pass,
            "no md arrays: the initramfs needs no md settings".into(),
        );
    }
    if !uses_dracut(facts) {
        return check(
            NAME,
            None,
            Status::Pass,
            "the initramfs is not built by dracut: no dracut conf needed".into(),
        );
    }
    let fix =
        format!("`xenraid doctor --fix` writes {DRACUT_CONF_PATH} (mdraid, raid1, mdadmconf, no host-only cmdline)");
    match &facts.dracut_conf {
        None => check(
            NAME,
            Some(DRACUT_CONF_PATH),
            Status::Fail,
            "missing: an initramfs rebuilt by a kernel update may not assemble the arrays".into(),
        )
        .with_fix(fix),
        Some(text) => {
            let problems = dracut_conf_problems(text);
            if problems.is_empty() {
                check(
                    NAME,
                    Some(DRACUT_CONF_PATH),
                    Status::Pass,
                    "adds mdraid and raid1, mdadmconf=yes, hostonly_cmdline=no".into(),
                )
            } else {
                check(
                    NAME,
                    Some(DRACUT_CONF_PATH),
                    Status::Fail,
                    problems.join("; "),
                )
                .with_fix(fix)
            }
        }
    }
}

/// Whether a disk can start the system on its own, and if not, why.
pub fn disk_boot_problem(facts: &DoctorFacts, disk: &BootDisk) -> Option<String> {
    if facts.boot_mode == BootMode::Uefi {
        return disk
            .esps
            .is_empty()
            .then(|| "no EFI system partition on this disk".to_string());
    }
    let extlinux = facts.loader == Some(LoaderKind::Extlinux);
    match disk.boot_code {
        BootCode::Grub2 if !extlinux => {
            if !disk.gpt {
                return None;
            }
            if disk.bios_boot.is_empty() {
                return Some(
                    "GRUB in the MBR but no BIOS boot partition (ef02) for core.img".into(),
                );
            }
            (!disk.bios_boot.iter().any(|(_, full)| *full)).then(|| {
                format!(
                    "GRUB in the MBR but the BIOS boot partition {} is empty (no core.img)",
                    disk.bios_boot[0].0
                )
            })
        }
        BootCode::SyslinuxGptMbr if disk.gpt => super::gptmbr::start_problem(facts, disk),
        BootCode::SyslinuxMbr if !disk.gpt => None,
        code => Some(format!(
            "the MBR boot code is {} (expected {})",
            match code {
                BootCode::Grub2 => "GRUB's",
                BootCode::SyslinuxGptMbr => "syslinux gptmbr",
                BootCode::SyslinuxMbr => "syslinux mbr",
                BootCode::Empty => "empty",
                BootCode::Unknown => "not one xenraid knows",
            },
            if extlinux {
                "syslinux gptmbr.bin"
            } else {
                "GRUB"
            }
        )),
    }
}

fn bootloader(facts: &DoctorFacts) -> Vec<Check> {
    const NAME: &str = "bootloader";
    if facts.boot_arrays.is_empty() {
        return vec![check(
            NAME,
            None,
            Status::Warn,
            "neither / nor /boot is on an md array: nothing mirrored to boot from".into(),
        )];
    }
    if facts.boot_disks.is_empty() {
        return vec![check(
            NAME,
            None,
            Status::Warn,
            format!(
                "the disks under {} could not be found in sysfs",
                facts.boot_arrays.join(", ")
            ),
        )];
    }
    facts
        .boot_disks
        .iter()
        .map(|disk| match disk_boot_problem(facts, disk) {
            None => check(
                NAME,
                Some(&disk.name),
                Status::Pass,
                match facts.boot_mode {
                    BootMode::Uefi => format!("ESP {}", disk.esps[0].partition),
                    BootMode::Bios => format!(
                        "{:?} boot code{}",
                        disk.boot_code,
                        disk.bios_boot
                            .first()
                            .map(|(p, _)| format!(", core.img in {p}"))
                            .unwrap_or_default()
                    ),
                },
            ),
            Some(problem) if super::gptmbr::waits_for_resync(facts, disk) => {
                check(NAME, Some(&disk.name), Status::Warn, problem).with_fix(
                    "wait for the resync (`xenraid status`), then `xenraid doctor --fix` flags the partition",
                )
            }
            Some(problem) => {
                let c = check(NAME, Some(&disk.name), Status::Fail, problem);
                match fix::bootloader_command(facts, disk) {
                    Some(cmd) => c.with_fix(format!("reinstall: {cmd}")),
                    None => c.with_fix(
                        "copy the partition table from a good member (sgdisk -R), make the ESP \
                         (mkfs.vfat) and copy /boot/efi onto it; doctor does not partition",
                    ),
                }
            }
        })
        .collect()
}

/// UEFI: the ESPs on the boot disks must hold the same files.
fn esp_copies(facts: &DoctorFacts) -> Vec<Check> {
    const NAME: &str = "esp-copies";
    if facts.boot_mode != BootMode::Uefi || facts.boot_arrays.is_empty() {
        return Vec::new();
    }
    let esps: Vec<_> = facts.boot_disks.iter().flat_map(|d| &d.esps).collect();
    if esps.len() < 2 {
        return vec![check(
            NAME,
            None,
            Status::Fail,
            format!(
                "{} ESP on the boot disks: one disk cannot boot alone",
                esps.len()
            ),
        )];
    }
    let Some(reference) = esps
        .iter()
        .find(|e| e.mount_point.as_deref() == Some("/boot/efi"))
        .or_else(|| esps.iter().find(|e| e.tree.is_some()))
    else {
        return vec![check(
            NAME,
            None,
            Status::Warn,
            "no ESP is mounted: not compared".into(),
        )];
    };
    let Some(tree) = &reference.tree else {
        return vec![check(
            NAME,
            Some(&reference.partition),
            Status::Warn,
            "the mounted ESP could not be read: not compared".into(),
        )];
    };
    let sync = |p: &str| fix::esp_sync_summary(facts, p);
    esps.iter()
        .filter(|e| e.partition != reference.partition)
        .map(|e| match &e.tree {
            None => {
                let c = check(
                    NAME,
                    Some(&e.partition),
                    Status::Warn,
                    format!("not mounted, not compared with {}", reference.partition),
                );
                match sync(&e.partition) {
                    Some(s) => c.with_fix(s),
                    None => c,
                }
            }
            Some(other) => {
                let diff = tree_difference(tree, other);
                if diff.is_empty() {
                    check(
                        NAME,
                        Some(&e.partition),
                        Status::Pass,
                        format!("same {} files as {}", tree.len(), reference.partition),
                    )
                } else {
                    let c = check(
                        NAME,
                        Some(&e.partition),
                        Status::Fail,
                        format!("differs from {}: {}", reference.partition, diff.join(", ")),
                    );
                    match sync(&e.partition) {
                        Some(s) => c.with_fix(s),
                        None => c.with_fix("copy the good ESP's files onto this one"),
                    }
                }
            }
        })
        .collect()
}

/// The paths that differ between two ESP trees (at most 5 named).
pub fn tree_difference(
    a: &BTreeMap<String, (u64, u64)>,
    b: &BTreeMap<String, (u64, u64)>,
) -> Vec<String> {
    let mut out: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| {
            if b.contains_key(k) {
                format!("{k} differs")
            } else {
                format!("{k} missing")
            }
        })
        .chain(
            b.keys()
                .filter(|k| !a.contains_key(*k))
                .map(|k| format!("{k} extra")),
        )
        .collect();
    if out.len() > 5 {
        let more = out.len() - 5;
        out.truncate(5);
        out.push(format!("{more} more"));
    }
    out
}

fn fstab_devices(facts: &DoctorFacts) -> Check {
    const NAME: &str = "fstab-devices";
    let judged: Vec<_> = facts.fstab.iter().filter(|e| e.exists.is_some()).collect();
    let missing: Vec<_> = judged.iter().filter(|e| e.exists == Some(false)).collect();
    let names = |nofail: bool| {
        missing
            .iter()
            .filter(|e| e.nofail == nofail)
            .map(|e| format!("{} ({})", e.spec, e.mount_point))
            .collect::<Vec<_>>()
    };
    let (hard, soft) = (names(false), names(true));
    if !hard.is_empty() {
        return check(
            NAME,
            Some("/etc/fstab"),
            Status::Fail,
            format!(
                "no such device: {}: the boot stops in emergency mode",
                hard.join(", ")
            ),
        )
        .with_fix("point the line at the filesystem's UUID (blkid) or add nofail");
    }
    if !soft.is_empty() {
        return check(
            NAME,
            Some("/etc/fstab"),
            Status::Warn,
            format!("no such device (nofail): {}", soft.join(", ")),
        );
    }
    check(
        NAME,
        Some("/etc/fstab"),
        Status::Pass,
        format!("all {} devices exist", judged.len()),
    )
}

fn unique_labels(facts: &DoctorFacts) -> Check {
    const NAME: &str = "unique-labels";
    let mut by_label: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (label, dev) in &facts.labels {
        by_label.entry(label).or_default().push(dev);
    }
    let shared: Vec<String> = by_label
        .iter()
        .filter(|(_, devs)| devs.len() > 1)
        .map(|(l, devs)| format!("{l} on {}", devs.join(" and ")))
        .collect();
    if shared.is_empty() {
        return check(
            NAME,
            None,
            Status::Pass,
            format!(
                "{} labelled filesystems, no label twice",
                facts.labels.len()
            ),
        );
    }
    check(
        NAME,
        None,
        Status::Fail,
        format!("{}: LABEL= may mount either", shared.join("; ")),
    )
    .with_fix(
        "relabel the copy that is not in use (e2label DEVICE NEW-LABEL; never the mounted one)",
    )
}

fn bitmaps(facts: &DoctorFacts) -> Check {
    const NAME: &str = "bitmap";
    let redundant: Vec<_> = facts
        .arrays
        .iter()
        .filter(|a| REDUNDANT_LEVELS.contains(&a.health.level.as_str()))
        .collect();
    let without: Vec<&str> = redundant
        .iter()
        .filter(|a| a.health.bitmap.is_none())
        .map(|a| a.health.device.as_str())
        .collect();
    if without.is_empty() {
        return check(
            NAME,
            None,
            Status::Pass,
            format!(
                "{} redundant arrays, each with a write-intent bitmap",
                redundant.len()
            ),
        );
    }
    check(
        NAME,
        None,
        Status::Fail,
        format!(
            "no write-intent bitmap on {} (a crash means a full resync)",
            without.join(", ")
        ),
    )
    .with_fix(
        without
            .iter()
            .map(|d| format!("mdadm --grow --bitmap=internal /dev/{d}"))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn monitor(facts: &DoctorFacts) -> Check {
    const NAME: &str = "monitor";
    if facts.init == InitSystem::Sysv {
        return super::monitor_sysv::check_monitor(facts);
    }
    let fix = if facts.monitor_unit_installed {
        format!("systemctl enable --now {MONITOR_UNIT}")
    } else {
        format!("install and start {MONITOR_UNIT} (xenraid's monitor)")
    };
    match &facts.monitor {
        MonitorState::Active => check(NAME, None, Status::Pass, format!("{MONITOR_UNIT} active")),
        MonitorState::Inactive(state) => {
            check(NAME, None, Status::Fail, format!("{MONITOR_UNIT} {state}")).with_fix(fix)
        }
        MonitorState::Unknown(why) => check(
            NAME,
            None,
            Status::Warn,
            format!("cannot tell whether {MONITOR_UNIT} runs: {why}"),
        ),
    }
}

fn alert_channel(facts: &DoctorFacts) -> Check {
    const NAME: &str = "alert-channel";
    let fix =
        format!("add an [alert.mail], [alert.xapi] or [alert.webhook] section to {CONFIG_PATH}");
    match &facts.config {
        None => check(
            NAME,
            Some(CONFIG_PATH),
            Status::Fail,
            "missing: nobody hears of a failed disk".into(),
        )
        .with_fix(fix),
        Some(text) => match crate::config::Config::parse(text, std::path::Path::new(CONFIG_PATH)) {
            Err(e) => check(NAME, Some(CONFIG_PATH), Status::Fail, e.to_string())
                .with_fix(format!("correct {CONFIG_PATH}, then `xenraid alert-test`")),
            Ok(config) if config.alert.any() => {
                let mut channels = Vec::new();
                if config.alert.mail.is_some() {
                    channels.push("mail");
                }
                if config.alert.xapi.as_ref().is_some_and(|x| x.enabled) {
                    channels.push("xapi");
                }
                if config.alert.webhook.is_some() {
                    channels.push("webhook");
                }
                check(
                    NAME,
                    Some(CONFIG_PATH),
                    Status::Pass,
                    format!(
                        "alerts go to {} (`xenraid alert-test` sends a test through each)",
                        channels.join(", ")
                    ),
                )
            }
            Ok(_) => check(
                NAME,
                Some(CONFIG_PATH),
                Status::Fail,
                "no alert channel configured: alerts reach the journal only".into(),
            )
            .with_fix(fix),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dracut_conf_settings_in_any_spelling() {
        assert!(dracut_conf_problems(crate::plan::edits::DRACUT_CONF).is_empty());
        assert!(dracut_conf_problems(
            "add_dracutmodules+=\" lvm mdraid \"\nadd_drivers += \"raid1 raid10\"\nmdadmconf=yes\nhostonly_cmdline=no\n"
        )
        .is_empty());
        assert_eq!(
            dracut_conf_problems("# add_dracutmodules+=\" mdraid \"\nadd_drivers+=\" raid10 \"\n"),
            [
                "the mdraid module is not added",
                "the raid1 driver is not added",
                "mdadmconf=\"yes\" is not set",
                "hostonly_cmdline=\"no\" is not set (the initramfs would wait for ever for a missing disk's ESP)"
            ]
        );
    }

    #[test]
    fn esp_trees_differ_by_content_missing_and_extra_files() {
        let a: BTreeMap<String, (u64, u64)> =
            [("a".to_string(), (1, 1)), ("b".to_string(), (1, 2))].into();
        let b: BTreeMap<String, (u64, u64)> =
            [("a".to_string(), (1, 9)), ("c".to_string(), (1, 2))].into();
        assert_eq!(
            tree_difference(&a, &b),
            ["a differs", "b missing", "c extra"]
        );
        assert!(tree_difference(&a, &a).is_empty());
    }
}
