//! The steps that carry a conversion across its reboot and close it: the resume unit, the
//! journal handed to the new root, the guards of the point of no return, the resync wait and
//! the finish.

use crate::host::{Disk, InitSystem, InitramfsTool};

use super::model::*;
use super::steps::{in_new_root, run, step, writes, Ctx, NEW_ROOT};

/// Where the journal lives on whichever root is running.
pub const JOURNAL_DIR: &str = "/var/lib/xenraid";
pub const JOURNAL_FILE: &str = "/var/lib/xenraid/convert.json";
/// The copy of xenraid the resume unit runs: independent of where the user ran it from.
pub const RESUME_PROGRAM: &str = "/var/lib/xenraid/xenraid";
pub const RESUME_UNIT: &str = "/etc/systemd/system/xenraid-resume.service";
pub const RESUME_UNIT_LINK: &str =
    "/etc/systemd/system/multi-user.target.wants/xenraid-resume.service";

/// SysV hosts: init starts the resume from this inittab entry once the boot scripts are done
/// (`once`: in the background, so a resync of hours holds up no login). Being in the
/// background, it waits for the resync even after `convert --no-wait`: nobody has to run
/// `resume` again for the steps that must wait for it (6.5's boot flag).
pub const INITTAB: &str = "/etc/inittab";
pub const INITTAB_ENTRY: &str = "xr:2345:once:/var/lib/xenraid/xenraid resume --yes --wait";
const INITTAB_COMMENT: &str =
    "# xenraid: finish the RAID1 conversion after its reboot (removed when it finishes)";

/// The host's inittab with the resume entry appended last, after the `wait` entry of the
/// runlevel's rc scripts: init starts it only once they have run (xapi is up by then).
pub fn inittab_with_resume(inittab: &str) -> String {
    super::edits::with_lines_appended(inittab, &[INITTAB_COMMENT, INITTAB_ENTRY])
}

/// How the plan reboots the host.
pub fn reboot_argv(init: InitSystem) -> &'static [&'static str] {
    match init {
        InitSystem::Systemd => &["systemctl", "reboot"],
        InitSystem::Sysv => &["reboot"],
    }
}

pub fn resume_unit_text() -> String {
    format!(
        "# Installed by `xenraid convert`; removed when the conversion finishes.\n\
         [Unit]\n\
         Description=xenraid: finish the RAID1 conversion after its reboot\n\
         After=local-fs.target xapi.service\n\
         ConditionPathExists={JOURNAL_FILE}\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={RESUME_PROGRAM} resume --yes\n\
         # A resync of a large disk takes hours; 0 = no start timeout (systemd 219 and later).\n\
         TimeoutStartSec=0\n\
         StandardOutput=journal+console\n\
         StandardError=journal+console\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// Phase 1: the copy gets what resumes the conversion when it boots: a one-shot unit under
/// systemd, an inittab entry under SysV init.
pub(super) fn install_resume(ctx: &Ctx<'_>) -> Step {
    let program = run(&[
        "install",
        "-D",
        "-m",
        "0755",
        ctx.program,
        &in_new_root(RESUME_PROGRAM),
    ]);
    let program_there = DoneCheck::FileContains {
        path: in_new_root(RESUME_PROGRAM),
        text: String::new(),
    };
    if ctx.facts.boot.init == InitSystem::Sysv {
        let inittab = in_new_root(INITTAB);
        let old = ctx.facts.files.get(INITTAB).cloned().unwrap_or_default();
        let new = inittab_with_resume(&old);
        return step(
            "install-resume",
            "the copy resumes the conversion by itself when it boots (an inittab entry the finish removes)",
            vec![writes(ctx.target)],
            vec![
                program,
                super::edits::edit_action(&inittab, &old, &new),
            ],
            DoneCheck::All {
                checks: vec![
                    DoneCheck::FileContains {
                        path: inittab,
                        text: INITTAB_ENTRY.into(),
                    },
                    program_there,
                ],
            },
        );
    }
    let unit = in_new_root(RESUME_UNIT);
    let link = in_new_root(RESUME_UNIT_LINK);
    let link_dir = link.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
    step(
        "install-resume",
        "the copy resumes the conversion by itself when it boots (a one-shot unit the finish removes)",
        vec![writes(ctx.target)],
        vec![
            program,
            Action::EditFile {
                path: unit.clone(),
                diff: super::edits::unified_diff(&unit, "", &resume_unit_text()),
                new_content: resume_unit_text(),
            },
            run(&["mkdir", "-p", link_dir]),
            run(&["ln", "-sfn", "../xenraid-resume.service", &link]),
        ],
        DoneCheck::All {
            checks: vec![
                DoneCheck::FileContains {
                    path: unit,
                    text: "resume --yes".into(),
                },
                program_there,
            ],
        },
    )
}

/// Phase 1, after everything is written to the copy: the journal goes with it.
pub(super) fn handoff_journal(ctx: &Ctx<'_>) -> Step {
    step(
        "handoff-journal",
        "flush the copy, then record the journal in it: after the reboot it proves the copy finished",
        vec![writes(ctx.target)],
        vec![
            run(&["sync"]),
            Action::SaveJournal {
                root: NEW_ROOT.into(),
            },
        ],
        DoneCheck::Journal,
    )
}

pub(super) fn unmount_new_root() -> Step {
    step(
        "unmount-new-root",
        "release the copy before the reboot",
        vec![Writes::Nothing],
        vec![run(&["umount", "--recursive", NEW_ROOT])],
        DoneCheck::Unmounted {
            mount_point: NEW_ROOT.into(),
        },
    )
}

/// Phase 2's first step: every guard before the original disk is touched.
pub(super) fn point_of_no_return(ctx: &Ctx<'_>) -> Step {
    let src = ctx.layout.source;
    let tgt = ctx.target;
    let mut guards = vec![Action::Assert {
        check: ctx.root_on_array(),
    }];
    for array in &ctx.layout.arrays {
        guards.push(Action::Assert {
            check: DoneCheck::ArrayMember {
                uuid: array.uuid.clone(),
                member: tgt.partition_path(array.partition),
            },
        });
    }
    for done in ["copy-files", "build-initramfs"] {
        guards.push(Action::Assert {
            check: DoneCheck::JournalRecords { step: done.into() },
        });
    }
    if ctx.facts.boot.initramfs_tool == Some(InitramfsTool::Dracut) {
        if let (Some(image), Some(root)) = (
            ctx.facts
                .boot
                .default_entry()
                .and_then(|e| e.initrd.clone()),
            ctx.root_array(),
        ) {
            guards.push(Action::Assert {
                check: DoneCheck::InitramfsContains {
                    image,
                    path: "etc/mdadm.conf".into(),
                    text: root.uuid.clone(),
                },
            });
        }
    }
    for disk in [src, tgt] {
        if let Some(check) = disk_serial_check(disk) {
            guards.push(Action::Assert { check });
        }
    }
    step(
        "point-of-no-return",
        "before the original disk (found by serial/WWN, never by kernel name) is touched: / is on md, every array runs on the target, the copy and the initramfs were finished",
        vec![Writes::Nothing],
        guards,
        DoneCheck::Journal,
    )
}

fn disk_serial_check(disk: &Disk) -> Option<DoneCheck> {
    disk.serial.as_ref().map(|serial| DoneCheck::DiskSerial {
        by_id: disk.stable_path(),
        serial: serial.clone(),
    })
}

/// The last step: what resumed the conversion goes; the journal stays as the record of what
/// was done.
pub(super) fn finish(ctx: &Ctx<'_>) -> Step {
    if ctx.facts.boot.init == InitSystem::Sysv {
        // The running root is the copy: its inittab is the original's plus the entry.
        let old = ctx.facts.files.get(INITTAB).cloned().unwrap_or_default();
        let with_entry = inittab_with_resume(&old);
        return step(
            "finish",
            "the conversion is complete: remove the inittab entry and the copy of xenraid it ran",
            vec![Writes::Nothing],
            vec![
                super::edits::edit_action(INITTAB, &with_entry, &old),
                run(&["rm", "-f", RESUME_PROGRAM]),
            ],
            DoneCheck::Journal,
        );
    }
    step(
        "finish",
        "the conversion is complete: remove the resume unit and its copy of xenraid",
        vec![Writes::Nothing],
        vec![run(&[
            "rm",
            "-f",
            RESUME_UNIT_LINK,
            RESUME_UNIT,
            RESUME_PROGRAM,
        ])],
        DoneCheck::Journal,
    )
}
