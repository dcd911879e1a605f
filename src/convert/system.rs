//! What the engine needs from the machine, behind one trait: the live host for real runs, a
//! scripted fake for the engine's unit tests. Every command still goes through the one
//! `Runner`.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rustix::fs::{major, minor};

use crate::exec::{Command, CommandOutput, ExecError, Runner};
use crate::host::parse::kv::parse_shell_vars;
use crate::host::parse::mountinfo::{parse_mountinfo, Mount};
use crate::plan::DoneCheck;

use super::journal::{write_atomic, Journal};
use super::ConvertError;

pub const SPEED_LIMIT_MAX: &str = "/proc/sys/dev/raid/speed_limit_max";

pub trait System {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError>;
    /// Runs a long copy, showing progress as the destination fills up.
    fn run_copy(&self, command: &Command, dest: &str) -> Result<(), ConvertError>;
    fn holds(&self, check: &DoneCheck, journal: &Journal) -> Result<bool, ConvertError>;
    fn write_file(&self, path: &str, content: &str) -> Result<(), ConvertError>;
    /// Waits, with progress, until the arrays are in sync.
    fn wait_sync(&self, devices: &[String]) -> Result<(), ConvertError>;
    fn mounts_under(&self, dir: &str) -> Vec<String>;
    /// The md device (kernel name, `md127`) that holds this member partition, if any.
    fn holder_of(&self, member: &str) -> Option<String>;
    /// The device a path resolves to (`/dev/md/root` → `/dev/md127`).
    fn resolve(&self, path: &str) -> Option<String>;
    fn read_value(&self, path: &str) -> Option<String>;
    fn write_value(&self, path: &str, value: &str) -> Result<(), ConvertError>;
    /// Called at every step boundary, before the step is looked at: the program named by
    /// `XENRAID_STEP_HOOK` (if set) runs with the step id and must succeed. Orchestration and
    /// the lab use it (the lab's crash matrix snapshots the disks there).
    fn before_step(&self, _step: &str) -> Result<(), ConvertError> {
        Ok(())
    }
    /// Makes everything written so far durable. The engine calls it after a step ran and
    /// before the journal records it done: a power cut must never leave a "done" step whose
    /// writes were still in the page cache (grub-install's core.img, a copied file, an edit).
    fn flush(&self) {}
}

/// Environment variable naming a program to run before every step (see `System::before_step`).
pub const STEP_HOOK_ENV: &str = "XENRAID_STEP_HOOK";

pub struct LiveSystem<'a> {
    pub runner: &'a dyn Runner,
    pub progress: super::progress::ProgressStyle,
}

impl LiveSystem<'_> {
    fn mounts(&self) -> Vec<Mount> {
        fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|t| parse_mountinfo(&t).ok())
            .unwrap_or_default()
    }

    fn rdev(path: &str) -> Option<(u32, u32)> {
        let meta = fs::metadata(path).ok()?;
        if !meta.file_type().is_block_device() {
            return None;
        }
        let rdev = meta.rdev();
        Some((major(rdev) as u32, minor(rdev) as u32))
    }

    fn md_uuid(&self, md: &str) -> Option<String> {
        let out = self
            .runner
            .run(&Command::new(
                "mdadm",
                ["--detail", "--export", &format!("/dev/{md}")],
            ))
            .ok()?;
        parse_shell_vars(&out.stdout).get("MD_UUID").cloned()
    }

    fn sgdisk_shapes(&self, disk: &str) -> Option<Vec<(u32, u64, u64, String)>> {
        let out = self
            .runner
            .run(&Command::new("sgdisk", ["--print", disk]))
            .ok()?;
        Some(parse_sgdisk_print(&out.stdout))
    }

    fn check(&self, check: &DoneCheck, journal: &Journal) -> Result<bool, ConvertError> {
        Ok(match check {
            DoneCheck::Journal => false,
            DoneCheck::JournalRecords { step } => journal.is_done(step),
            DoneCheck::All { checks } => {
                for c in checks {
                    if !self.check(c, journal)? {
                        return Ok(false);
                    }
                }
                !checks.is_empty()
            }
            DoneCheck::Any { checks } => {
                for c in checks {
                    if self.check(c, journal)? {
                        return Ok(true);
                    }
                }
                false
            }
            DoneCheck::PartitionTable { by_id, partitions } => {
                if !Path::new(by_id).exists() {
                    return Ok(false);
                }
                match self.sgdisk_shapes(by_id) {
                    None => partitions.is_empty(),
                    Some(found) => {
                        found.len() == partitions.len()
                            && partitions.iter().all(|p| {
                                found.iter().any(|(n, s, e, code)| {
                                    *n == p.number
                                        && *s == p.start
                                        && *e == p.end
                                        && code.eq_ignore_ascii_case(&p.type_code)
                                })
                            })
                    }
                }
            }
            DoneCheck::ArrayMember { uuid, member } => match self.holder_of(member) {
                Some(md) => {
                    let state = self
                        .read_value(&format!(
                            "/sys/block/{md}/md/dev-{}/state",
                            self.resolve(member)
                                .unwrap_or_default()
                                .trim_start_matches("/dev/")
                        ))
                        .unwrap_or_default();
                    !state.contains("faulty") && self.md_uuid(&md).as_deref() == Some(uuid)
                }
                None => false,
            },
            DoneCheck::Filesystem {
                device,
                fs_type,
                uuid,
            } => {
                if !Path::new(device).exists() {
                    return Ok(false);
                }
                match self
                    .runner
                    .run(&Command::new("blkid", ["-p", "-o", "export", device]))
                {
                    Ok(out) => {
                        let vars = parse_shell_vars(&out.stdout);
                        vars.get("TYPE") == Some(fs_type) && vars.get("UUID") == Some(uuid)
                    }
                    Err(_) => false,
                }
            }
            DoneCheck::Mounted {
                device,
                mount_point,
            } => {
                let want = Self::rdev(device);
                self.mounts().iter().any(|m| {
                    m.mount_point == *mount_point
                        && want.is_none_or(|(maj, min)| m.major == maj && m.minor == min)
                })
            }
            DoneCheck::Unmounted { mount_point } => self.mounts_under(mount_point).is_empty(),
            DoneCheck::RootOn { device, uuid } => {
                let root = self
                    .mounts()
                    .into_iter()
                    .rev()
                    .find(|m| m.mount_point == "/");
                let Some(root) = root else {
                    return Ok(false);
                };
                if Self::rdev(device) == Some((root.major, root.minor)) {
                    return Ok(true);
                }
                // Named otherwise (no /dev/md/ link): the md device under / and its UUID.
                let name = fs::read_link(format!("/sys/dev/block/{}:{}", root.major, root.minor))
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()));
                match (name, uuid) {
                    (Some(md), Some(uuid)) if md.starts_with("md") => {
                        self.md_uuid(&md).as_deref() == Some(uuid.as_str())
                    }
                    _ => false,
                }
            }
            DoneCheck::FileContains { path, text } => fs::read(path)
                .map(|bytes| contains(&bytes, text.as_bytes()))
                .unwrap_or(false),
            DoneCheck::BootCode { by_id, code } => {
                let mut sector = vec![0u8; 512];
                let read = fs::File::open(by_id)
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut sector));
                if read.is_err() {
                    return Ok(false);
                }
                let found = crate::host::parse::mbr::classify_boot_code(&sector);
                serde_json::to_value(found)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    == Some(code.clone())
            }
            DoneCheck::Detached { member } => self.holder_of(member).is_none(),
            DoneCheck::EfiBootEntry { label } => super::efi::read(self)
                .map(|vars| !vars.numbers_of(label).is_empty())
                .unwrap_or(false),
            DoneCheck::EfiBootOrderFirst { labels } => super::efi::read(self)
                .map(|vars| super::efi::order_starts_with(&vars, labels))
                .unwrap_or(false),
            DoneCheck::SrExists { name_label, device } => self.sr_exists(name_label, device),
            DoneCheck::DiskSerial { by_id, serial } => self
                .runner
                .run(&Command::new(
                    "udevadm",
                    ["info", "--query=property", &format!("--name={by_id}")],
                ))
                .map(|o| {
                    let vars = parse_shell_vars(&o.stdout);
                    ["ID_SCSI_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL"]
                        .iter()
                        .any(|k| vars.get(*k) == Some(serial))
                })
                .unwrap_or(false),
            DoneCheck::InitramfsContains { image, path, text } => self
                .runner
                .run(&Command::new("lsinitrd", ["-f", path, image]))
                .map(|o| o.stdout.contains(text.as_str()))
                .unwrap_or(false),
            DoneCheck::InSync { devices } => devices.iter().all(|d| self.in_sync(d)),
        })
    }

    fn sr_exists(&self, name_label: &str, device: &str) -> bool {
        let Ok(list) = self.runner.run(&Command::new(
            "xe",
            [
                "sr-list",
                &format!("name-label={name_label}"),
                "type=lvm",
                "--minimal",
            ],
        )) else {
            return false;
        };
        list.stdout
            .trim()
            .split(',')
            .filter(|u| !u.is_empty())
            .any(|uuid| {
                self.runner
                    .run(&Command::new(
                        "xe",
                        [
                            "pbd-list",
                            &format!("sr-uuid={uuid}"),
                            "params=device-config",
                        ],
                    ))
                    .map(|o| o.stdout.contains(&format!("device: {device}")))
                    .unwrap_or(false)
            })
    }

    pub fn in_sync(&self, device: &str) -> bool {
        let Some(md) = self.resolve(device) else {
            return false;
        };
        let md = md.trim_start_matches("/dev/");
        let action = self
            .read_value(&format!("/sys/block/{md}/md/sync_action"))
            .unwrap_or_default();
        let degraded = self
            .read_value(&format!("/sys/block/{md}/md/degraded"))
            .unwrap_or_default();
        action == "idle" && degraded == "0"
    }
}

impl System for LiveSystem<'_> {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        self.runner.run(command)
    }

    fn flush(&self) {
        rustix::fs::sync();
    }

    fn before_step(&self, step: &str) -> Result<(), ConvertError> {
        match std::env::var(STEP_HOOK_ENV) {
            Ok(hook) if !hook.is_empty() => {
                self.runner.run(&Command::new(&hook, [step]))?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn run_copy(&self, command: &Command, dest: &str) -> Result<(), ConvertError> {
        super::progress::run_copy(self, command, dest)
    }

    fn holds(&self, check: &DoneCheck, journal: &Journal) -> Result<bool, ConvertError> {
        self.check(check, journal)
    }

    fn write_file(&self, path: &str, content: &str) -> Result<(), ConvertError> {
        let path = &follow_symlink(path);
        write_atomic(Path::new(path), content.as_bytes()).map_err(|source| ConvertError::Io {
            what: format!("writing {path}"),
            source,
        })
    }

    fn wait_sync(&self, devices: &[String]) -> Result<(), ConvertError> {
        super::progress::wait_sync(self, devices)
    }

    fn mounts_under(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.mounts()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|mp| mp == dir || mp.starts_with(&prefix))
            .collect()
    }

    fn holder_of(&self, member: &str) -> Option<String> {
        let name = self.resolve(member)?;
        let name = name.trim_start_matches("/dev/");
        fs::read_dir(format!("/sys/class/block/{name}/holders"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .find(|h| h.starts_with("md"))
    }

    fn resolve(&self, path: &str) -> Option<String> {
        fs::canonicalize(path)
            .ok()
            .map(|p| p.to_string_lossy().to_string())
    }

    fn read_value(&self, path: &str) -> Option<String> {
        fs::read_to_string(path).ok().map(|s| s.trim().to_string())
    }

    fn write_value(&self, path: &str, value: &str) -> Result<(), ConvertError> {
        fs::write(path, value).map_err(|source| ConvertError::Io {
            what: format!("writing {value} to {path}"),
            source,
        })
    }
}

/// A symlinked config file (/etc/mdadm/mdadm.conf → ../mdadm.conf) is edited where it
/// points: replacing the link would leave the file the tools read unchanged. An absolute
/// target inside the copy is taken relative to the copy's root, never the running system's.
pub fn follow_symlink(path: &str) -> String {
    let Ok(target) = fs::read_link(path) else {
        return path.to_string();
    };
    let target = target.to_string_lossy().to_string();
    let new_root = crate::plan::steps::NEW_ROOT;
    if target.starts_with('/') {
        if path.starts_with(&format!("{new_root}/")) {
            format!("{new_root}{target}")
        } else {
            target
        }
    } else {
        let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
        dir.join(target).to_string_lossy().to_string()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// `sgdisk --print` table rows: number, first sector, last sector, type code.
pub fn parse_sgdisk_print(text: &str) -> Vec<(u32, u64, u64, String)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.trim_start().starts_with("Number") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        if let (Ok(n), Ok(s), Ok(e)) = (f[0].parse(), f[1].parse(), f[2].parse()) {
            rows.push((n, s, e, f[5].to_string()));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgdisk_print_rows() {
        let text = "Disk /dev/sdb: 8388608 sectors, 4.0 GiB\nModel: QEMU HARDDISK\nSector size (logical/physical): 512/512 bytes\nDisk identifier (GUID): 0F0B...\nPartition table holds up to 128 entries\nMain partition table begins at sector 2 and ends at sector 33\nFirst usable sector is 34, last usable sector is 8388574\nPartitions will be aligned on 2048-sector boundaries\nTotal free space is 2014 sectors (1007.0 KiB)\n\nNumber  Start (sector)    End (sector)  Size       Code  Name\n   1         2885632         5507071   1.2 GiB     FD00  \n   3         5507072         5638143   64.0 MiB    EF02  \n   5            2048          264191   128.0 MiB   FD00  logs\n";
        let rows = parse_sgdisk_print(text);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], (1, 2885632, 5507071, "FD00".to_string()));
        assert_eq!(rows[2].0, 5);
    }

    #[test]
    fn edits_go_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("mdadm.conf");
        fs::write(&real, "old").unwrap();
        fs::create_dir(dir.path().join("mdadm")).unwrap();
        let link = dir.path().join("mdadm/mdadm.conf");
        std::os::unix::fs::symlink("../mdadm.conf", &link).unwrap();
        let resolved = follow_symlink(link.to_str().unwrap());
        write_atomic(Path::new(&resolved), b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(
            follow_symlink("/run/xenraid/newroot/nonexistent"),
            "/run/xenraid/newroot/nonexistent"
        );
    }

    #[test]
    fn dev_numbers() {
        // 9:127 (md127) and 259:65536 (a large minor) as glibc encodes them.
        assert_eq!((major(0x97f), minor(0x97f)), (9, 127));
        let (ma, mi) = (259u64, 65536u64);
        let dev: u64 = ((ma & 0xfff) << 8) | (mi & 0xff) | ((mi & !0xff) << 12);
        assert_eq!((major(dev), minor(dev)), (259, 65536));
    }
}
