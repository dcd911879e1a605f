//! The scripted machine the engine tests run against, and the lab plans they run: a step's
//! check holds once the step has run; crashes, failures and resyncs on request.
#![allow(dead_code, unused_imports)]

pub use std::cell::{Cell, RefCell};
pub use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

pub use xenraid::convert::journal::{JournalState, StepStatus};
pub use xenraid::convert::system::System;
pub use xenraid::convert::{
    run_plan, ConvertError, Journal, JournalStore, Outcome, ResyncSpeed, RunOptions,
};
pub use xenraid::exec::{Command, CommandOutput, ExecError};
pub use xenraid::host::{discover, HostFacts, HostSource, InitSystem, RootedSource};
pub use xenraid::plan::{build_plan, Action, DoneCheck, Intent, Plan, SrChoice};

pub const TARGET: &str = "/dev/disk/by-id/wwn-0x5000c500a0000002";
pub const SYSTEM: &str = "/dev/disk/by-id/wwn-0x5000c500a0000001";

pub fn lab_plan() -> Plan {
    lab_plan_of("xs7-bios")
}

pub fn lab_plan_of(profile: &str) -> Plan {
    plan_from(&lab_facts(profile))
}

pub fn lab_facts(profile: &str) -> HostFacts {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lab")
        .join(profile);
    let source = RootedSource::captured(&root);
    discover(&source as &dyn HostSource).unwrap()
}

pub fn plan_from(facts: &HostFacts) -> Plan {
    let plan = build_plan(
        facts,
        &Intent {
            target: TARGET.into(),
            wipe_target: false,
            sr: SrChoice::Create {
                name_label: "Local storage".into(),
            },
            program: "/root/xenraid".into(),
        },
    );
    assert!(!plan.refused());
    plan
}

/// A machine where a step's check holds once the step has run: the first question about a
/// check says "not yet", later ones "yes". `already` holds from the start.
#[derive(Default)]
pub struct Scripted {
    pub on_raid: Cell<bool>,
    pub asked: RefCell<HashSet<String>>,
    pub already: HashSet<String>,
    pub commands: RefCell<Vec<Vec<String>>>,
    pub files: RefCell<Vec<String>>,
    pub crash_on: Option<String>,
    /// Fails the command with this text once, with the given stderr, then lets it succeed.
    pub fail_once: RefCell<Option<(String, String)>>,
    pub boundaries: RefCell<Vec<String>>,
    pub hook_fails_at: Option<String>,
    /// Steps, commands and flushes in the order they happened.
    pub events: RefCell<Vec<String>>,
    /// member → the md device holding it.
    pub holders: HashMap<String, String>,
    /// Every array comes back read-auto (assembled at boot, not written since).
    pub read_auto: bool,
    /// member → the md UUID its superblock carries (`mdadm --examine --export`).
    pub superblocks: HashMap<String, String>,
    /// A resync runs: no array is in sync.
    pub resyncing: Cell<bool>,
}

impl Scripted {
    /// Booted on the RAID copy, healthy: every guard of the point of no return holds.
    pub fn on_raid_with_guards_holding(journal: &Journal) -> Scripted {
        let mut sys = Scripted::default();
        sys.on_raid.set(true);
        for step in journal.plan_steps() {
            for action in &step.actions {
                if let Action::Assert { check } = action {
                    sys.already.insert(key(check));
                }
            }
        }
        sys
    }
}

/// Records every step up to and including `last` as done: a run resumed after that step.
pub fn done_through(journal: &mut Journal, last: &str) {
    let ids: Vec<String> = journal.plan_steps().map(|s| s.id.clone()).collect();
    for id in &ids {
        journal.mark(id, StepStatus::Done, None);
        if id == last {
            return;
        }
    }
    panic!("no step {last} in the plan");
}

pub fn key(check: &DoneCheck) -> String {
    serde_json::to_string(check).unwrap()
}

impl System for Scripted {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        self.commands.borrow_mut().push(command.argv());
        self.events.borrow_mut().push(format!("run {command}"));
        let failing = self
            .fail_once
            .borrow()
            .as_ref()
            .filter(|(c, _)| *c == command.to_string())
            .map(|(_, stderr)| stderr.clone());
        if let Some(stderr) = failing {
            *self.fail_once.borrow_mut() = None;
            return Err(ExecError::Failed {
                command: command.clone(),
                status: 1,
                stderr_tail: stderr,
                stdout: String::new(),
            });
        }
        if self.crash_on.as_deref() == Some(command.to_string().as_str()) {
            return Err(ExecError::Killed {
                command: command.clone(),
                stderr_tail: "power cut".into(),
            });
        }
        let argv = command.argv();
        if argv.len() == 4 && argv[1..3] == ["--examine", "--export"] {
            if let Some(uuid) = self.superblocks.get(&argv[3]) {
                return Ok(CommandOutput {
                    status: 0,
                    stdout: format!("MD_LEVEL=raid1\nMD_UUID={uuid}\n"),
                    stderr: String::new(),
                });
            }
        }
        let stdout = if command.program == "xe" {
            "4f1c-sr-uuid\n"
        } else if command.argv() == ["efibootmgr"] {
            // what OVMF leaves after a boot: the booted disk's entry and its own first
            "BootCurrent: 0005\nBootOrder: 0005,0001,0004\n\
             Boot0001* UEFI QEMU QEMU HARDDISK \tPciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x0,0x0)\n\
             Boot0004* XCP-ng (xenraid XRLAB-TGT0)\tHD(4,GPT,0f00eb5b-d340-448a-8483-8dd10d4263b1,0x540800,0x20000)/File(\\EFI\\xenserver\\grubx64.efi)\n\
             Boot0005* XCP-ng (xenraid XRLAB-SYS0)\tHD(4,GPT,9be87be7-e4be-450e-94c1-f51a12ca0dac,0x540800,0x20000)/File(\\EFI\\xenserver\\grubx64.efi)\n"
        } else {
            ""
        };
        Ok(CommandOutput {
            status: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        })
    }
    fn run_copy(&self, command: &Command, _dest: &str) -> Result<(), ConvertError> {
        self.run(command).map(|_| ()).map_err(Into::into)
    }
    fn holds(&self, check: &DoneCheck, journal: &Journal) -> Result<bool, ConvertError> {
        Ok(match check {
            DoneCheck::Journal => false,
            DoneCheck::RootOn { .. } => self.on_raid.get(),
            DoneCheck::JournalRecords { step } => journal.is_done(step),
            DoneCheck::InSync { .. } if self.resyncing.get() => {
                // Asked once already: in sync as soon as the resync ends.
                self.asked.borrow_mut().insert(key(check));
                false
            }
            c if self.already.contains(&key(c)) => true,
            c => !self.asked.borrow_mut().insert(key(c)),
        })
    }
    fn write_file(&self, path: &str, _content: &str) -> Result<(), ConvertError> {
        self.files.borrow_mut().push(path.into());
        Ok(())
    }
    fn wait_sync(&self, _devices: &[String]) -> Result<(), ConvertError> {
        Ok(())
    }
    fn mounts_under(&self, _dir: &str) -> Vec<String> {
        Vec::new()
    }
    fn holder_of(&self, member: &str) -> Option<String> {
        self.holders.get(member).cloned()
    }
    fn resolve(&self, path: &str) -> Option<String> {
        Some(path.into())
    }
    fn read_value(&self, path: &str) -> Option<String> {
        if self.read_auto && path.ends_with("/array_state") {
            return Some("read-auto".into());
        }
        Some("200000".into())
    }
    fn write_value(&self, path: &str, value: &str) -> Result<(), ConvertError> {
        self.files.borrow_mut().push(format!("{path}={value}"));
        Ok(())
    }
    fn flush(&self) {
        self.events.borrow_mut().push("flush".into());
    }
    fn before_step(&self, step: &str) -> Result<(), ConvertError> {
        self.boundaries.borrow_mut().push(step.into());
        self.events.borrow_mut().push(format!("step {step}"));
        if self.hook_fails_at.as_deref() == Some(step) {
            return Err(ConvertError::Exec(ExecError::Killed {
                command: Command::new("hook", [step]),
                stderr_tail: "hook said no".into(),
            }));
        }
        Ok(())
    }
}

pub fn options() -> RunOptions {
    RunOptions {
        no_wait: false,
        resync_speed: ResyncSpeed::Max,
        stop_before: None,
    }
}

pub fn quiet(_: &str) {}

pub fn phase1_ids(plan: &Plan) -> Vec<String> {
    plan.phases[0].steps.iter().map(|s| s.id.clone()).collect()
}
