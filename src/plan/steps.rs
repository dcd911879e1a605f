//! The steps of a conversion, phase by phase. Pure: facts and layout in, steps out.

use crate::host::{Disk, HostFacts, InitramfsTool, LoaderKind};

use super::edits::*;
use super::ids::vfat_id;
use super::layout::{Layout, NewPartition};
use super::model::*;
pub(crate) use super::shared::{
    bitmap_chunk, efi_label, efibootmgr, mdadm_conf_path, sr_create_step, wipe_disk_actions,
};

/// Where the RAID root is assembled before the reboot.
pub const NEW_ROOT: &str = "/run/xenraid/newroot";
/// Where the original disk's new ESP is filled after the reboot.
pub(crate) const ESP_STAGING: &str = "/run/xenraid/esp";

pub struct Ctx<'a> {
    pub facts: &'a HostFacts,
    pub layout: &'a Layout<'a>,
    pub target: &'a Disk,
    pub wipe_target: bool,
    pub sr_name: Option<&'a str>,
    /// The running xenraid binary (copied into the new root for the resume unit).
    pub program: &'a str,
}

pub(crate) fn run(argv: &[&str]) -> Action {
    Action::Run {
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) fn run_owned(argv: Vec<String>) -> Action {
    Action::Run { argv }
}

pub(crate) fn writes(disk: &Disk) -> Writes {
    Writes::Disk {
        serial: disk.serial.clone(),
        wwn: disk.wwn.clone(),
        by_id: disk.stable_path(),
    }
}

pub(crate) fn step(
    id: &str,
    why: &str,
    writes: Vec<Writes>,
    actions: Vec<Action>,
    done: DoneCheck,
) -> Step {
    Step {
        id: id.to_string(),
        why: why.to_string(),
        writes,
        actions,
        done_check: done,
    }
}

pub(crate) fn in_new_root(path: &str) -> String {
    format!("{NEW_ROOT}{path}")
}

impl<'a> Ctx<'a> {
    pub(super) fn src(&self) -> &Disk {
        self.layout.source
    }

    /// "/ is on the root array", by its md UUID as well as its name.
    pub(crate) fn root_on_array(&self) -> DoneCheck {
        DoneCheck::RootOn {
            device: self
                .root_array()
                .map(|a| a.device.clone())
                .unwrap_or_default(),
            uuid: self.root_array().map(|a| a.uuid.clone()),
        }
    }

    pub(crate) fn root_array(&self) -> Option<&ArraySpec> {
        self.layout.arrays.iter().find(|a| a.role == "root")
    }

    /// `mdadm --create` for this array with these two members ("missing" for one of them).
    pub(super) fn create_array_argv(
        &self,
        array: &ArraySpec,
        first: &str,
        second: &str,
    ) -> Vec<String> {
        let mut argv: Vec<String> = [
            "mdadm",
            "--create",
            &array.device,
            "--run",
            &format!("--metadata={}", array.metadata),
            "--level=1",
            "--raid-devices=2",
            // mdadm's default changed across versions; a resync after a crash must not read the
            // whole disk.
            "--bitmap=internal",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.push(bitmap_chunk(self.member_bytes(array.partition)));
        if array.metadata != "0.90" {
            // A fixed homehost keeps the name independent of the hostname, which XenServer lets
            // users change; mdadm.conf maps it to /dev/md/<role>.
            argv.push("--homehost=xenraid".into());
            argv.push(format!("--name={}", array.role));
        }
        argv.push(format!("--uuid={}", array.uuid));
        argv.push(first.into());
        argv.push(second.into());
        argv
    }

    /// Filesystem arrays in mount order (parents first).
    fn filesystems(&self) -> Vec<(&ArraySpec, &str)> {
        let mut fs: Vec<(&ArraySpec, &str)> = self
            .layout
            .arrays
            .iter()
            .filter_map(|a| match &a.content {
                Content::Filesystem { mount_point, .. } => Some((a, mount_point.as_str())),
                _ => None,
            })
            .collect();
        fs.sort_by_key(|(_, mp)| (mp.matches('/').count(), mp.len()));
        fs
    }

    fn mkfs_command(&self, array: &ArraySpec) -> Option<Vec<String>> {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match &array.content {
            Content::Filesystem {
                fs_type,
                new_uuid,
                new_label,
                ..
            } => Some(owned(&[
                &format!("mkfs.{fs_type}"),
                "-q",
                "-U",
                new_uuid,
                "-L",
                new_label,
                &array.device,
            ])),
            Content::Swap {
                new_uuid,
                new_label,
                ..
            } => Some(owned(&[
                "mkswap",
                "-U",
                new_uuid,
                "-L",
                new_label,
                &array.device,
            ])),
            _ => None,
        }
    }

    pub(super) fn rd_md_args(&self) -> Vec<String> {
        // dracut 059 assembles nothing without rd.md.uuid (or rd.auto); naming every array keeps
        // the backup and SR arrays from staying inactive, and foreign disks' arrays out.
        if self.facts.boot.initramfs_tool == Some(InitramfsTool::Dracut) {
            self.layout
                .arrays
                .iter()
                .map(|a| format!("rd.md.uuid={}", a.uuid))
                .collect()
        } else {
            Vec::new()
        }
    }

    fn grub_insmods(&self) -> Vec<&'static str> {
        if self.layout.arrays.iter().any(|a| a.metadata == "0.90") {
            vec!["part_gpt", "diskfilter", "mdraid09"]
        } else {
            vec!["part_gpt", "diskfilter", "mdraid1x"]
        }
    }

    pub(super) fn tool(&self, names: &[&'static str]) -> &'static str {
        self.facts.first_tool(names).unwrap_or(names[0])
    }

    /// The boot configuration with root on md, or `None` when there is nothing to rewrite.
    pub(super) fn rewritten_boot_config(&self) -> Option<(String, String)> {
        let path = self.facts.boot.config_path.clone()?;
        let text = self.facts.files.get(&path)?;
        let root = self.root_array()?;
        let Content::Filesystem {
            old_refs, new_uuid, ..
        } = &root.content
        else {
            return None;
        };
        // nash (mkinitrd on 6.5) resolves no UUID= before the array exists; the md node does.
        let new_root = if self.facts.boot.initramfs_tool == Some(InitramfsTool::Mkinitrd) {
            root.device.clone()
        } else {
            format!("UUID={new_uuid}")
        };
        let search_values: Vec<String> = old_refs
            .iter()
            .filter_map(|r| r.strip_prefix("LABEL=").or_else(|| r.strip_prefix("UUID=")))
            .map(str::to_string)
            .collect();
        let insmods = self.grub_insmods();
        let extra = self.rd_md_args();
        let edit = BootEdit {
            old_root_refs: old_refs,
            new_root: &new_root,
            extra_args: &extra,
            grub_search: (self.facts.boot.loader == Some(LoaderKind::Grub2)).then_some((
                search_values.as_slice(),
                new_uuid.as_str(),
                insmods.as_slice(),
            )),
        };
        Some((path, rewrite_boot_config(text, &edit)))
    }

    pub(super) fn partition_shapes(&self) -> Vec<PartitionShape> {
        let mirrored: Vec<u32> = self.layout.arrays.iter().map(|a| a.partition).collect();
        let mut shapes: Vec<PartitionShape> = self
            .src()
            .partitions
            .iter()
            .map(|p| PartitionShape {
                number: p.number,
                start: p.start_sector,
                end: p.end_sector(),
                type_code: if mirrored.contains(&p.number) {
                    "fd00".into()
                } else if p.is_bios_boot() {
                    "ef02".into()
                } else if p.is_esp() {
                    "ef00".into()
                } else {
                    p.type_guid.clone().unwrap_or_default()
                },
            })
            .collect();
        if let Some(NewPartition { number, start, end }) = &self.layout.new_storage {
            shapes.push(PartitionShape {
                number: *number,
                start: *start,
                end: *end,
                type_code: "fd00".into(),
            });
        }
        shapes.sort_by_key(|s| s.number);
        shapes
    }

    pub(super) fn esp_label(&self, disk: &Disk) -> String {
        if disk.name == self.target.name {
            "XRAID-ESP1".into()
        } else {
            "XRAID-ESP2".into()
        }
    }

    pub(super) fn esp_id(&self, disk: &Disk) -> String {
        vfat_id(&format!(
            "{}|esp",
            disk.serial.clone().unwrap_or_else(|| disk.stable_path())
        ))
    }

    /// The size of the member partition an array gets (the same on both disks).
    fn member_bytes(&self, number: u32) -> u64 {
        let sectors = match (self.src().partition(number), &self.layout.new_storage) {
            (Some(p), _) => p.size_sectors,
            (None, Some(n)) if n.number == number => n.end + 1 - n.start,
            _ => 0,
        };
        sectors * u64::from(self.src().logical_sector_size.max(512))
    }

    pub(super) fn efi_label(&self, disk: &Disk) -> String {
        efi_label(self.facts, disk)
    }

    pub(super) fn efibootmgr(&self, disk: &Disk, esp: u32) -> Option<(Action, String)> {
        efibootmgr(self.facts, disk, esp)
    }
}

pub fn build_phases(ctx: &Ctx<'_>) -> Vec<Phase> {
    let mut phases = vec![
        Phase {
            kind: PhaseKind::BeforeReboot,
            steps: before_reboot(ctx),
        },
        Phase {
            kind: PhaseKind::AfterReboot,
            steps: super::fold_in_steps::after_reboot(ctx),
        },
    ];
    let storage = super::fold_in_steps::storage(ctx);
    if !storage.is_empty() {
        phases.push(Phase {
            kind: PhaseKind::Storage,
            steps: storage,
        });
    }
    if let Some(last) = phases.last_mut() {
        last.steps.push(super::lifecycle_steps::finish(ctx));
    }
    phases
}

pub(super) fn partition_commands(ctx: &Ctx<'_>, disk: &Disk, from: &Disk) -> Vec<Action> {
    let dst = disk.stable_path();
    let mut new_guids = vec![
        "sgdisk".to_string(),
        "--randomize-guids".into(),
        "--move-second-header".into(),
    ];
    if disk.name != ctx.target.name {
        // The replica flags root, as the target has it; the original's root is erased, so its
        // flag stays on the interim copy of /boot (XenServer 6.5).
        if let Some(flags) = super::boot_steps::interim_boot_flags(ctx) {
            new_guids.extend(flags);
        }
    }
    new_guids.push(dst.clone());
    let mut actions = vec![
        run(&["sgdisk", &format!("--replicate={dst}"), &from.stable_path()]),
        run_owned(new_guids),
    ];
    if disk.name == ctx.target.name {
        let mut types = vec!["sgdisk".to_string()];
        if let Some(NewPartition { number, start, end }) = &ctx.layout.new_storage {
            types.push(format!("--new={number}:{start}:{end}"));
        }
        for array in &ctx.layout.arrays {
            types.push(format!("--typecode={}:fd00", array.partition));
        }
        types.push(dst.clone());
        actions.push(run_owned(types));
    }
    // BLKRRPART fails with EBUSY on a disk with anything open; partx asks per partition (BLKPG).
    actions.push(run(&["partx", "-u", &dst]));
    actions.push(run(&["udevadm", "settle"]));
    actions
}

fn before_reboot(ctx: &Ctx<'_>) -> Vec<Step> {
    let tgt = ctx.target;
    let tgt_w = || vec![writes(tgt)];
    let mut steps = Vec::new();

    if ctx.wipe_target
        && (!tgt.partitions.is_empty()
            || tgt.probe.pt_type.is_some()
            || tgt.probe.fs_type.is_some())
    {
        steps.push(step(
            "wipe-target",
            "erase the old partitions and signatures found on the target (--wipe-target)",
            tgt_w(),
            wipe_disk_actions(tgt),
            DoneCheck::Journal,
        ));
    }

    steps.push(step(
        "partition-target",
        "give the target the original's partition table, data partitions typed Linux RAID",
        tgt_w(),
        partition_commands(ctx, tgt, ctx.src()),
        DoneCheck::PartitionTable {
            by_id: tgt.stable_path(),
            partitions: ctx.partition_shapes(),
        },
    ));

    let numbers: Vec<u32> = ctx.partition_shapes().iter().map(|s| s.number).collect();
    steps.push(super::shared::clear_signatures_step(
        "clear-target-signatures",
        "old md superblocks and filesystem signatures survive a new partition table; erase them",
        tgt,
        &numbers,
    ));

    for array in &ctx.layout.arrays {
        let member = tgt.partition_path(array.partition);
        let argv = ctx.create_array_argv(array, &member, "missing");
        let later = if array.content.starts_blank() {
            "it holds nothing yet and is made anew on both disks after the reboot"
        } else {
            "the original joins after the reboot"
        };
        steps.push(step(
            &format!("create-array-{}", array.role),
            &format!(
                "degraded RAID1 {} on target partition {} ({later})",
                array.device, array.partition
            ),
            tgt_w(),
            vec![run_owned(argv)],
            DoneCheck::ArrayMember {
                uuid: array.uuid.clone(),
                member,
            },
        ));
    }

    let mut mkfs = Vec::new();
    let mut fs_checks = Vec::new();
    for array in &ctx.layout.arrays {
        if let Some(argv) = ctx.mkfs_command(array) {
            mkfs.push(run_owned(argv));
            if let Content::Filesystem {
                fs_type, new_uuid, ..
            } = &array.content
            {
                fs_checks.push(DoneCheck::Filesystem {
                    device: array.device.clone(),
                    fs_type: fs_type.clone(),
                    uuid: new_uuid.clone(),
                });
            }
        }
    }
    if let Some(esp) = ctx.layout.esp {
        mkfs.push(run_owned(vec![
            "mkfs.vfat".into(),
            "-F".into(),
            "32".into(),
            "-i".into(),
            ctx.esp_id(tgt),
            "-n".into(),
            ctx.esp_label(tgt),
            tgt.partition_path(esp),
        ]));
    }
    steps.push(step(
        "make-filesystems",
        "new filesystems with new UUIDs and distinct labels: never two filesystems with one label",
        tgt_w(),
        mkfs,
        DoneCheck::All { checks: fs_checks },
    ));

    let mut mounts = vec![run(&["mkdir", "-p", NEW_ROOT])];
    let mut copies = Vec::new();
    for (array, mp) in ctx.filesystems() {
        let dst = if mp == "/" {
            NEW_ROOT.to_string()
        } else {
            in_new_root(mp)
        };
        if mp != "/" {
            mounts.push(run(&["mkdir", "-p", &dst]));
        }
        mounts.push(run(&["mount", &array.device, &dst]));
        // `/.` not `/`: cp -ax / dst/ fails; -a keeps hardlinks, xattrs, ACLs, SELinux labels.
        let src = if mp == "/" {
            "/.".to_string()
        } else {
            format!("{mp}/.")
        };
        copies.push(run(&["cp", "-ax", &src, &format!("{dst}/")]));
    }
    if let Some(esp) = ctx.layout.esp {
        let dst = in_new_root("/boot/efi");
        mounts.push(run(&["mkdir", "-p", &dst]));
        mounts.push(run(&["mount", &tgt.partition_path(esp), &dst]));
        // FAT has no owners or links: copy the files and their times only.
        copies.push(run(&[
            "cp",
            "-r",
            "--preserve=timestamps",
            "/boot/efi/.",
            &format!("{dst}/"),
        ]));
    }
    let root_dev = ctx
        .root_array()
        .map(|a| a.device.clone())
        .unwrap_or_default();
    steps.push(step(
        "mount-new-root",
        "mount the arrays where the copy goes",
        vec![Writes::Nothing],
        mounts,
        DoneCheck::Mounted {
            device: root_dev,
            mount_point: NEW_ROOT.into(),
        },
    ));
    steps.push(step(
        "copy-files",
        "copy every mirrored filesystem, one filesystem at a time (nothing from /proc, /sys, /dev, /run)",
        tgt_w(),
        copies,
        DoneCheck::Journal,
    ));

    steps.extend(config_edits(ctx));
    steps.push(super::lifecycle_steps::install_resume(ctx));

    let mut binds = Vec::new();
    for dir in ["/dev", "/proc", "/sys"] {
        binds.push(run(&["mount", "--bind", dir, &in_new_root(dir)]));
    }
    steps.push(step(
        "bind-mounts",
        "the initramfs and boot loader tools run inside the copy and need /dev, /proc, /sys",
        vec![Writes::Nothing],
        binds,
        DoneCheck::Mounted {
            device: "/dev".into(),
            mount_point: in_new_root("/dev"),
        },
    ));
    steps.push(super::boot_steps::initramfs_step(ctx));
    steps.extend(super::boot_steps::bootloader_target(ctx));
    steps.push(super::lifecycle_steps::handoff_journal(ctx));
    // Only after the flush above: the one-shot entry must never point at a copy in flight.
    steps.extend(super::boot_steps::boot_once(ctx));
    steps.push(super::lifecycle_steps::unmount_new_root());
    steps.push(step(
        "reboot",
        "boot into the degraded RAID1 on the target",
        vec![Writes::Nothing],
        vec![run(super::lifecycle_steps::reboot_argv(
            ctx.facts.boot.init,
        ))],
        ctx.root_on_array(),
    ));
    steps
}

fn config_edits(ctx: &Ctx<'_>) -> Vec<Step> {
    let facts = ctx.facts;
    let tgt_w = || vec![writes(ctx.target)];
    let mut steps = Vec::new();

    let fstab = facts.files.get("/etc/fstab").cloned().unwrap_or_default();
    let esp_refs: Vec<String> = ctx
        .layout
        .esp
        .and_then(|n| ctx.src().partition(n))
        .map(|p| {
            let mut refs = vec![format!("/dev/{}", p.name)];
            refs.extend(p.label.as_ref().map(|l| format!("LABEL={l}")));
            refs.extend(p.uuid.as_ref().map(|u| format!("UUID={u}")));
            refs
        })
        .unwrap_or_default();
    let esp_uuid = {
        let id = ctx.esp_id(ctx.target);
        format!("{}-{}", &id[..4], &id[4..])
    };
    let new_fstab = rewrite_fstab(
        &fstab,
        &ctx.layout.arrays,
        ctx.layout
            .esp
            .map(|_| (esp_refs.as_slice(), esp_uuid.as_str())),
    );
    let first_changed = new_fstab
        .lines()
        .find(|l| l.starts_with("UUID=") && !fstab.contains(*l))
        .unwrap_or_default()
        .to_string();
    let path = in_new_root("/etc/fstab");
    steps.push(step(
        "edit-fstab",
        "mount the arrays by filesystem UUID in the copy's fstab",
        tgt_w(),
        vec![edit_action(&path, &fstab, &new_fstab)],
        DoneCheck::FileContains {
            path,
            text: first_changed,
        },
    ));

    let conf_path = mdadm_conf_path(facts);
    let old_conf = facts.files.get(conf_path).cloned().unwrap_or_default();
    let new_conf = mdadm_conf(&old_conf, &ctx.layout.arrays);
    let path = in_new_root(conf_path);
    steps.push(step(
        "write-mdadm-conf",
        "ARRAY lines by UUID so the arrays keep their names instead of md127",
        tgt_w(),
        vec![edit_action(&path, &old_conf, &new_conf)],
        DoneCheck::FileContains {
            path,
            text: ctx
                .layout
                .arrays
                .first()
                .map(mdadm_conf_line)
                .unwrap_or_default(),
        },
    ));

    if facts.boot.initramfs_tool == Some(InitramfsTool::Dracut) {
        let path = in_new_root("/etc/dracut.conf.d/90-xenraid.conf");
        steps.push(step(
            "dracut-config",
            "upgrades keep mdadm.conf but regenerate the initramfs: make md part of every build",
            tgt_w(),
            vec![edit_action(&path, "", DRACUT_CONF)],
            DoneCheck::FileContains {
                path,
                text: "add_dracutmodules+=\" mdraid \"".into(),
            },
        ));
    }

    if let (Some(inventory), Some(backup)) = (
        facts.files.get("/etc/xensource-inventory"),
        ctx.layout.arrays.iter().find(|a| a.role == "backup"),
    ) {
        let new = set_shell_var(inventory, "BACKUP_PARTITION", &backup.device);
        if &new != inventory {
            let path = in_new_root("/etc/xensource-inventory");
            steps.push(step(
                "edit-inventory",
                "host backups must go to the backup array, never to one member behind md's back",
                tgt_w(),
                vec![edit_action(&path, inventory, &new)],
                DoneCheck::FileContains {
                    path,
                    text: format!("BACKUP_PARTITION='{}'", backup.device),
                },
            ));
        }
    }

    if ctx.layout.profile == Profile::PlainGrub2 {
        let extra = ctx.rd_md_args();
        if !extra.is_empty() {
            let old = facts
                .files
                .get("/etc/default/grub")
                .cloned()
                .unwrap_or_default();
            let new = default_grub_with_args(&old, &extra);
            let path = in_new_root("/etc/default/grub");
            steps.push(step(
                "edit-default-grub",
                "grub-mkconfig writes the kernel line: give it rd.md.uuid for dracut",
                tgt_w(),
                vec![edit_action(&path, &old, &new)],
                DoneCheck::FileContains {
                    path,
                    text: extra[0].clone(),
                },
            ));
        }
    } else if let Some((path, new)) = ctx.rewritten_boot_config() {
        let old = facts.files.get(&path).cloned().unwrap_or_default();
        // The kernel line's new root= is what proves the edit is in place.
        let root_arg = new
            .split_whitespace()
            .find(|w| w.starts_with("root=") && !old.contains(*w))
            .unwrap_or_default()
            .to_string();
        let target_path = in_new_root(&path);
        steps.push(step(
            "edit-boot-config",
            "kernel line: root on the array, the arrays named for the initramfs; the boot loader reads /boot from md",
            tgt_w(),
            vec![edit_action(&target_path, &old, &new)],
            DoneCheck::FileContains {
                path: target_path,
                text: root_arg,
            },
        ));
    }
    steps
}
