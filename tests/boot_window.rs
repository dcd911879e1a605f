//! XenServer 6.5: the BIOS boots the original disk only (SeaBIOS, like most BIOSes, never tries
//! the second disk when gptmbr.bin gives up), and gptmbr.bin starts the first partition
//! flagged legacy-BIOS-bootable. This walks the plan's actions on the original disk and checks
//! that at every step boundary from the point of no return on (where a power cut may land),
//! that partition holds something extlinux boots: the untouched original root (which leads
//! back to the RAID by `resume --retry-boot`), the interim copy of /boot, or a root member in
//! sync. The lab's crash matrix proves the same on a real BIOS; this pins the order.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use xenraid::plan::model::{Action, Plan};
use xenraid::plan::{build_plan, Intent, SrChoice};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    OriginalRoot,
    Untouched,
    Erased,
    FreshFilesystem,
    InterimBoot,
    Rebuilding,
    InSync,
    BlankMember,
}

impl Content {
    fn boots(self) -> bool {
        matches!(self, Self::OriginalRoot | Self::InterimBoot | Self::InSync)
    }
}

struct OriginalDisk {
    path: String,
    target: String,
    flags: BTreeSet<u32>,
    target_flags: BTreeSet<u32>,
    parts: BTreeMap<u32, Content>,
    mounted: BTreeMap<String, u32>,
}

impl OriginalDisk {
    fn partition(&self, path: &str) -> Option<u32> {
        path.strip_prefix(&format!("{}-part", self.path))?
            .parse()
            .ok()
    }

    fn apply(&mut self, action: &Action) {
        match action {
            Action::Run { argv } => self.run(argv),
            Action::WaitSync { .. } => {
                for c in self.parts.values_mut() {
                    if *c == Content::Rebuilding {
                        *c = Content::InSync;
                    }
                }
            }
            Action::RecreateArray { members, .. } => {
                for m in members {
                    if let Some(n) = self.partition(m) {
                        self.parts.insert(n, Content::BlankMember);
                    }
                }
            }
            _ => {}
        }
    }

    fn run(&mut self, argv: &[String]) {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let last = args.last().copied().unwrap_or_default();
        match args.first().copied() {
            Some("sgdisk") => {
                if let Some(dst) = args.iter().find_map(|a| a.strip_prefix("--replicate=")) {
                    // The replica takes the source's flags with its table.
                    if dst == self.path {
                        self.flags = self.target_flags.clone();
                    } else {
                        self.target_flags = self.flags.clone();
                    }
                    return;
                }
                let flags = if last == self.path {
                    &mut self.flags
                } else if last == self.target {
                    &mut self.target_flags
                } else {
                    return;
                };
                for arg in &args {
                    let Some(spec) = arg.strip_prefix("--attributes=") else {
                        continue;
                    };
                    let fields: Vec<&str> = spec.split(':').collect();
                    let n: u32 = fields[0].parse().expect("partition number");
                    assert_eq!(fields[2], "2", "only the legacy-BIOS-bootable bit");
                    match fields[1] {
                        "set" => flags.insert(n),
                        "clear" => flags.remove(&n),
                        other => panic!("sgdisk attribute op {other}"),
                    };
                }
            }
            Some("wipefs") => {
                if let Some(n) = self.partition(last) {
                    self.parts.insert(n, Content::Erased);
                }
            }
            Some(mkfs) if mkfs.starts_with("mkfs") => {
                if let Some(n) = self.partition(last) {
                    self.parts.insert(n, Content::FreshFilesystem);
                }
            }
            Some("mount") => {
                if let Some(n) = self.partition(args[1]) {
                    self.mounted.insert(args[2].to_string(), n);
                }
            }
            Some("umount") => {
                self.mounted.remove(last);
            }
            Some("extlinux") if args.contains(&"--install") => {
                let dir = last.trim_end_matches("/boot");
                if let Some(&n) = self.mounted.get(dir) {
                    assert_eq!(self.parts[&n], Content::FreshFilesystem);
                    self.parts.insert(n, Content::InterimBoot);
                }
            }
            Some("mdadm") if args.get(1) == Some(&"--add") => {
                if let Some(n) = self.partition(last) {
                    self.parts.insert(n, Content::Rebuilding);
                }
            }
            _ => {}
        }
    }

    /// What gptmbr.bin starts: the first flagged partition.
    fn booted(&self) -> Option<(u32, Content)> {
        let n = *self.flags.iter().next()?;
        Some((n, self.parts.get(&n).copied().unwrap_or(Content::Erased)))
    }
}

fn xs65_plan() -> Plan {
    let facts = common::facts("xs65-bios");
    build_plan(
        &facts,
        &Intent {
            target: "/dev/sdb".into(),
            wipe_target: false,
            sr: SrChoice::Create {
                name_label: "Local storage".into(),
            },
            program: xenraid::plan::DEFAULT_PROGRAM.into(),
        },
    )
}

#[test]
fn a_power_cut_at_any_step_boundary_after_the_point_of_no_return_leaves_the_original_disk_bootable()
{
    let plan = xs65_plan();
    assert!(!plan.refused());
    let path = plan.source.as_ref().expect("source").by_id.clone();
    let target = plan.target.as_ref().expect("target").by_id.clone();
    let mut disk = OriginalDisk {
        path,
        target,
        flags: BTreeSet::from([1]),
        target_flags: BTreeSet::new(),
        parts: BTreeMap::from([
            (1, Content::OriginalRoot),
            (2, Content::Untouched),
            (3, Content::Untouched),
        ]),
        mounted: BTreeMap::new(),
    };
    let mut past_no_return = false;
    let mut boundaries = Vec::new();
    for step in plan.phases.iter().flat_map(|p| &p.steps) {
        for action in &step.actions {
            disk.apply(action);
        }
        past_no_return |= step.id == "point-of-no-return";
        if past_no_return {
            let booted = disk.booted();
            assert!(
                booted.is_some_and(|(_, c)| c.boots()),
                "a power cut after {} boots {booted:?} on the original disk",
                step.id
            );
            boundaries.push((step.id.clone(), booted.map(|(_, c)| c)));
        }
    }
    assert!(past_no_return);
    // The interim copy carries the original through its root's erasure and rebuild, and is
    // given up only for the member in sync.
    let interim = boundaries
        .iter()
        .filter(|(_, c)| *c == Some(Content::InterimBoot))
        .map(|(id, _)| id.as_str())
        .collect::<Vec<_>>();
    assert_eq!(interim.first(), Some(&"bootloader-original"));
    assert!(interim.contains(&"add-member-root"));
    assert!(interim.contains(&"wait-resync"));
    assert_eq!(disk.booted(), Some((1, Content::InSync)));
    assert_eq!(disk.flags, BTreeSet::from([1]));
}
