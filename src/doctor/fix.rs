//! `--fix`: the repairs as data (planned from the facts and the failed checks), then run
//! through the one `Runner`. Only what is safe: initramfs, boot code, bitmaps, config files,
//! ESP copies, waking a read-auto array so its rebuild starts. Never mkfs, partitioning or `--zero-superblock`.

use std::path::Path;

use serde::Serialize;

use crate::exec::{Command, Runner};
use crate::host::facts::LoaderKind;
use crate::host::facts::{InitSystem, InitramfsTool};
use crate::plan::edits::DRACUT_CONF;

use super::checks::{self, Check, Status};
use super::facts::{BootDisk, DoctorFacts, InitramfsImage, DRACUT_CONF_PATH, MONITOR_UNIT};

/// Where an unmounted ESP is mounted to be written.
pub const ESP_STAGING: &str = "/run/xenraid/esp";
const DEFAULT_GPTMBR: &str = "/usr/share/syslinux/gptmbr.bin";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FixStep {
    Run {
        argv: Vec<String>,
    },
    /// Writes the whole file.
    WriteFile {
        path: String,
        content: String,
    },
    /// Runs `argv` and appends its output's lines that `path` lacks.
    AppendOutput {
        argv: Vec<String>,
        path: String,
    },
}

impl std::fmt::Display for FixStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixStep::Run { argv } => write!(f, "{}", cmd(argv)),
            FixStep::WriteFile { path, .. } => write!(f, "write {path}"),
            FixStep::AppendOutput { argv, path } => write!(f, "{} >> {path}", cmd(argv)),
        }
    }
}

fn cmd(argv: &[String]) -> String {
    Command::from_argv(argv)
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// One repair: its steps stop at the first that fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixAction {
    /// The check it repairs.
    pub check: String,
    pub subject: Option<String>,
    pub steps: Vec<FixStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixOutcome {
    pub check: String,
    pub subject: Option<String>,
    pub ok: bool,
    /// What was done, or the error.
    pub detail: String,
}

fn run(argv: &[&str]) -> FixStep {
    FixStep::Run {
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

fn argv_of(argv: Vec<String>) -> FixStep {
    FixStep::Run { argv }
}

/// The command that rebuilds one image, with the convert plan's arguments.
pub fn initramfs_argv(facts: &DoctorFacts, image: &InitramfsImage) -> Vec<String> {
    let tool = facts.initramfs_tool.or_else(|| {
        let has = |t: &str| facts.tools.get(t).is_some_and(Option::is_some);
        if has("dracut") {
            Some(InitramfsTool::Dracut)
        } else if has("mkinitrd") {
            Some(InitramfsTool::Mkinitrd)
        } else if has("update-initramfs") {
            Some(InitramfsTool::InitramfsTools)
        } else {
            None
        }
    });
    let (path, kver) = (image.path.clone(), image.kernel.clone());
    let words: Vec<&str> = match tool {
        Some(InitramfsTool::Mkinitrd) => vec!["mkinitrd", "-f", "--preload=raid1", "--with=raid1"],
        Some(InitramfsTool::InitramfsTools) => {
            return ["update-initramfs", "-u", "-k", &kver]
                .iter()
                .map(|s| s.to_string())
                .collect()
        }
        _ => vec![
            "dracut",
            "--force",
            "--mdadmconf",
            "--add",
            "mdraid",
            "--add-drivers",
            "raid1",
        ],
    };
    words
        .into_iter()
        .map(str::to_string)
        .chain([path, kver])
        .collect()
}

pub fn initramfs_command(facts: &DoctorFacts, image: &InitramfsImage) -> String {
    cmd(&initramfs_argv(facts, image))
}

/// Reinstalls the BIOS boot code on a disk (extlinux: gptmbr.bin, and the legacy-BIOS-bootable
/// flag when it is on the wrong partition); empty for UEFI (an ESP is not made here).
pub fn bootloader_argvs(facts: &DoctorFacts, disk: &BootDisk) -> Vec<Vec<String>> {
    if facts.boot_mode == crate::host::facts::BootMode::Uefi {
        return Vec::new();
    }
    let dev = format!("/dev/{}", disk.name);
    if facts.loader == Some(LoaderKind::Extlinux) {
        let gptmbr = facts.gptmbr_path.as_deref().unwrap_or(DEFAULT_GPTMBR);
        let dd = [
            "dd",
            &format!("if={gptmbr}"),
            &format!("of={dev}"),
            "bs=440",
            "count=1",
            "conv=notrunc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        return std::iter::once(dd)
            .chain(super::gptmbr::flag_argv(facts, disk))
            .collect();
    }
    let install = ["grub-install", "grub2-install"]
        .into_iter()
        .find(|t| facts.tools.get(*t).is_some_and(Option::is_some))
        .unwrap_or("grub-install");
    vec![vec![install.into(), "--target=i386-pc".into(), dev]]
}

pub fn bootloader_command(facts: &DoctorFacts, disk: &BootDisk) -> Option<String> {
    let argvs = bootloader_argvs(facts, disk);
    (!argvs.is_empty()).then(|| {
        argvs
            .into_iter()
            .map(|a| cmd(&a))
            .collect::<Vec<_>>()
            .join(" && ")
    })
}

/// Copies the ESP mounted on /boot/efi onto `partition`: only when one copy clearly is it.
pub fn esp_sync_steps(facts: &DoctorFacts, partition: &str) -> Option<Vec<FixStep>> {
    let esps: Vec<_> = facts.boot_disks.iter().flat_map(|d| &d.esps).collect();
    let source = esps
        .iter()
        .filter(|e| e.mount_point.as_deref() == Some("/boot/efi"))
        .collect::<Vec<_>>();
    let [source] = source.as_slice() else {
        return None;
    };
    let target = esps.iter().find(|e| e.partition == partition)?;
    if target.partition == source.partition {
        return None;
    }
    let copy = |to: &str| {
        run(&[
            "cp",
            "-r",
            "--preserve=timestamps",
            "/boot/efi/.",
            &format!("{to}/"),
        ])
    };
    Some(match &target.mount_point {
        Some(mp) => vec![copy(mp)],
        None => vec![
            run(&["mkdir", "-p", ESP_STAGING]),
            run(&["mount", &format!("/dev/{partition}"), ESP_STAGING]),
            copy(ESP_STAGING),
            run(&["umount", ESP_STAGING]),
        ],
    })
}

pub fn esp_sync_summary(facts: &DoctorFacts, partition: &str) -> Option<String> {
    let steps = esp_sync_steps(facts, partition)?;
    Some(format!(
        "copy /boot/efi onto it: {}",
        steps
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

fn failed<'a>(checks: &'a [Check], name: &str) -> impl Iterator<Item = &'a Check> {
    let name = name.to_string();
    checks
        .iter()
        .filter(move |c| c.name == name && c.status == Status::Fail)
}

/// The repairs for the failed checks, in the order they must run: configuration first, the
/// initramfs after it (it packs mdadm.conf), then boot code, ESPs, the monitor.
pub fn plan(facts: &DoctorFacts, checks: &[Check]) -> Vec<FixAction> {
    let mut out = Vec::new();
    let action = |check: &str, subject: Option<String>, steps: Vec<FixStep>| FixAction {
        check: check.into(),
        subject,
        steps,
    };
    let conf_failed = failed(checks, "mdadm-conf").next().is_some();
    if conf_failed {
        let path = facts
            .mdadm_conf
            .as_ref()
            .map(|c| c.resolved.clone())
            .unwrap_or_else(|| {
                if facts.product == crate::host::facts::ProductKind::Linux
                    && facts
                        .tools
                        .get("update-initramfs")
                        .is_some_and(Option::is_some)
                {
                    "/etc/mdadm/mdadm.conf".into()
                } else {
                    "/etc/mdadm.conf".into()
                }
            });
        let text = facts
            .mdadm_conf
            .as_ref()
            .map(|c| c.text.as_str())
            .unwrap_or("");
        for (device, _) in checks::arrays_missing_from(facts, text) {
            out.push(action(
                "mdadm-conf",
                Some(device.clone()),
                vec![FixStep::AppendOutput {
                    argv: ["mdadm", "--detail", "--brief", &format!("/dev/{device}")]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    path: path.clone(),
                }],
            ));
        }
    }
    let dracut_failed = failed(checks, "dracut-conf").next().is_some();
    if dracut_failed {
        out.push(action(
            "dracut-conf",
            Some(DRACUT_CONF_PATH.into()),
            vec![FixStep::WriteFile {
                path: DRACUT_CONF_PATH.into(),
                content: DRACUT_CONF.into(),
            }],
        ));
    }
    if failed(checks, "bitmap").next().is_some() {
        for a in &facts.arrays {
            if checks::REDUNDANT_LEVELS.contains(&a.health.level.as_str())
                && a.health.bitmap.is_none()
            {
                let dev = format!("/dev/{}", a.health.device);
                // The chunk convert picks for this size (member size = array size in RAID1).
                let chunk = crate::plan::shared::bitmap_chunk(a.health.size_bytes);
                out.push(action(
                    "bitmap",
                    Some(a.health.device.clone()),
                    vec![run(&["mdadm", "--grow", "--bitmap=internal", &chunk, &dev])],
                ));
            }
        }
    }
    if failed(checks, super::recovery::NAME).next().is_some() {
        for a in facts
            .arrays
            .iter()
            .filter(|a| super::recovery::stalled(&a.health))
        {
            let dev = format!("/dev/{}", a.health.device);
            out.push(action(
                super::recovery::NAME,
                Some(a.health.device.clone()),
                vec![run(&["mdadm", "--readwrite", &dev])],
            ));
        }
    }
    // A changed mdadm.conf is only read at boot from the initramfs: every image is rebuilt.
    for image in &facts.images {
        let image_failed =
            failed(checks, "initramfs").any(|c| c.subject.as_deref() == Some(&image.path));
        let exists = !matches!(&image.contents, Err(e) if e.starts_with("no initramfs"));
        if image_failed || (conf_failed && exists) {
            out.push(action(
                "initramfs",
                Some(image.path.clone()),
                vec![argv_of(initramfs_argv(facts, image))],
            ));
        }
    }
    for c in failed(checks, "bootloader") {
        let disk = facts
            .boot_disks
            .iter()
            .find(|d| Some(d.name.as_str()) == c.subject.as_deref());
        let argvs = disk.map(|d| bootloader_argvs(facts, d)).unwrap_or_default();
        if !argvs.is_empty() {
            let steps = argvs.into_iter().map(argv_of).collect();
            out.push(action("bootloader", c.subject.clone(), steps));
        }
    }
    for c in checks
        .iter()
        .filter(|c| c.name == "esp-copies" && c.status != Status::Pass)
    {
        if let Some(steps) = c.subject.as_deref().and_then(|p| esp_sync_steps(facts, p)) {
            out.push(action("esp-copies", c.subject.clone(), steps));
        }
    }
    if facts.init == InitSystem::Sysv {
        let needs = checks
            .iter()
            .any(|c| c.name == "monitor" && c.status != Status::Pass && c.fix.is_some());
        if needs {
            out.push(action("monitor", None, monitor_sysv_steps(facts)));
        }
    } else if failed(checks, "monitor").next().is_some() && facts.monitor_unit_installed {
        out.push(action(
            "monitor",
            None,
            vec![run(&["systemctl", "enable", "--now", MONITOR_UNIT])],
        ));
    }
    out
}

/// SysV init: the entry goes into inittab where it lacks, then init reads inittab again and
/// starts what it now lists.
fn monitor_sysv_steps(facts: &DoctorFacts) -> Vec<FixStep> {
    let mut steps = Vec::new();
    let inittab = facts.inittab.clone().unwrap_or_default();
    if super::monitor_sysv::monitor_entry(&inittab).is_none() {
        steps.push(FixStep::WriteFile {
            path: super::monitor_sysv::INITTAB.into(),
            content: super::monitor_sysv::with_monitor_entry(&inittab),
        });
    }
    steps.push(run(&["telinit", "q"]));
    steps
}

/// Runs the actions; files are written under `root` (`/` on the host).
pub fn execute(actions: &[FixAction], runner: &dyn Runner, root: &Path) -> Vec<FixOutcome> {
    actions
        .iter()
        .map(|a| {
            let mut done = Vec::new();
            let mut result = Ok(());
            for step in &a.steps {
                result = execute_step(step, runner, root);
                if result.is_err() {
                    break;
                }
                done.push(step.to_string());
            }
            FixOutcome {
                check: a.check.clone(),
                subject: a.subject.clone(),
                ok: result.is_ok(),
                detail: match result {
                    Ok(()) => done.join("; "),
                    Err(err) => err,
                },
            }
        })
        .collect()
}

fn under(root: &Path, path: &str) -> std::path::PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn execute_step(step: &FixStep, runner: &dyn Runner, root: &Path) -> Result<(), String> {
    match step {
        FixStep::Run { argv } => {
            let command = Command::from_argv(argv).ok_or("empty command")?;
            runner.run(&command).map(drop).map_err(|e| e.to_string())
        }
        FixStep::WriteFile { path, content } => {
            let target = under(root, path);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{path}: {e}"))?;
            }
            std::fs::write(&target, content).map_err(|e| format!("{path}: {e}"))
        }
        FixStep::AppendOutput { argv, path } => {
            let command = Command::from_argv(argv).ok_or("empty command")?;
            let output = runner.run(&command).map_err(|e| e.to_string())?;
            let target = under(root, path);
            let mut text = std::fs::read_to_string(&target).unwrap_or_default();
            let mut added = false;
            for line in output.stdout.lines().filter(|l| !l.trim().is_empty()) {
                if !text.lines().any(|l| l == line) {
                    if !text.is_empty() && !text.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push_str(line);
                    text.push('\n');
                    added = true;
                }
            }
            if !added {
                return Ok(());
            }
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{path}: {e}"))?;
            }
            std::fs::write(&target, text).map_err(|e| format!("{path}: {e}"))
        }
    }
}
