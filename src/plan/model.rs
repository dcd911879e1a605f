//! The plan as data: what will be written, where, why, and how to tell it is already done.

use serde::{Deserialize, Serialize};

use crate::host::DiskIdentity;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// `/dev/sdX` or a `/dev/disk/by-id/…` path, as typed.
    pub target: String,
    pub wipe_target: bool,
    pub sr: SrChoice,
    /// The running xenraid binary: copied into the new root so the resume unit finds it.
    #[serde(default = "default_program")]
    pub program: String,
}

pub const DEFAULT_PROGRAM: &str = "/usr/sbin/xenraid";

fn default_program() -> String {
    DEFAULT_PROGRAM.into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SrChoice {
    Create { name_label: String },
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// XenServer 7.x / XCP-ng 8.x booting BIOS through GRUB2.
    XenServer7Bios,
    /// XenServer 6.5: extlinux, gptmbr.bin, legacy-BIOS-bootable attribute, md 0.90.
    XenServer65,
    /// XenServer / XCP-ng 8.x booting UEFI.
    XenServerUefi,
    /// Debian/RHEL-style host with grub-mkconfig.
    PlainGrub2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub profile: Option<Profile>,
    pub source: Option<DiskIdentity>,
    pub target: Option<DiskIdentity>,
    pub arrays: Vec<ArraySpec>,
    pub preflight: Vec<Check>,
    /// Empty when preflight refused: a refused plan has nothing to run.
    pub phases: Vec<Phase>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn refused(&self) -> bool {
        self.preflight.iter().any(|c| !c.passed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArraySpec {
    pub role: String,
    /// Partition number on both disks.
    pub partition: u32,
    pub device: String,
    pub metadata: String,
    /// mdadm's colon form.
    pub uuid: String,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Content {
    Filesystem {
        fs_type: String,
        mount_point: String,
        /// How fstab and the kernel line referred to the old filesystem.
        old_refs: Vec<String>,
        new_uuid: String,
        new_label: String,
    },
    Swap {
        old_refs: Vec<String>,
        new_uuid: String,
        new_label: String,
    },
    /// Mirrored but not copied: XenServer's backup partition is written only by the installer.
    Unused,
    /// The local SR's physical volume.
    Storage,
}

impl Content {
    /// Nothing on it is carried over: after the reboot the array is made anew on both disks,
    /// not rebuilt from the target's empty member.
    pub fn starts_blank(&self) -> bool {
        matches!(self, Content::Unused | Content::Storage)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub message: String,
    /// What to do about a failure (empty when passed).
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Writes only the target disk (and a reversible, backed-up boot-once entry on the original).
    BeforeReboot,
    /// Running on the RAID: the original disk is folded in.
    AfterReboot,
    /// The local SR on the mirrored storage array.
    Storage,
    /// A change to a running mirrored host (replace a disk, add a mirror): no reboot.
    Maintenance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub kind: PhaseKind,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Stable across re-planning: the journal refers to steps by id.
    pub id: String,
    pub why: String,
    pub writes: Vec<Writes>,
    pub actions: Vec<Action>,
    pub done_check: DoneCheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Writes {
    Nothing,
    Disk {
        serial: Option<String>,
        wwn: Option<String>,
        by_id: String,
    },
    Firmware,
    /// A file on the running root (not on a disk the plan partitions).
    HostFile {
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    Run {
        argv: Vec<String>,
    },
    EditFile {
        path: String,
        /// Unified diff from the file's current content (empty old side for a new file).
        diff: String,
        new_content: String,
    },
    /// Stop unless this holds: the guards before the point of no return.
    Assert {
        check: DoneCheck,
    },
    /// Write the journal (fsynced) under this root as well: resume reads it there after the
    /// reboot.
    SaveJournal {
        root: String,
    },
    /// Wait, with progress, until these arrays are in sync (skipped with `--no-wait`).
    WaitSync {
        devices: Vec<String>,
    },
    /// What follows needs these arrays in sync (6.5's boot flag on a member still rebuilding
    /// would start half a copy): waits for them, even with `--no-wait`, where the run stops
    /// here instead and the same command continues once they are.
    RequireSync {
        devices: Vec<String>,
    },
    /// Boot the firmware entry with this label once, at the next boot only (UEFI BootNext):
    /// its number is known only on the host, so the engine looks it up.
    EfiBootNext {
        label: String,
    },
    /// Put the firmware entries with these labels first in BootOrder, in this order; the
    /// other entries follow in their old order.
    EfiBootOrderFirst {
        labels: Vec<String>,
    },
    /// Stop whatever array holds any of these members (the kernel may have named it md127;
    /// nothing to stop on a resume that finds none) and run `create` in its place, with udev's
    /// event queue held from before the stop to after the create.
    RecreateArray {
        device: String,
        members: Vec<String>,
        create: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DoneCheck {
    /// Only the journal can tell (the step is safe to repeat).
    Journal,
    PartitionTable {
        by_id: String,
        partitions: Vec<PartitionShape>,
    },
    ArrayMember {
        uuid: String,
        member: String,
    },
    Filesystem {
        device: String,
        fs_type: String,
        uuid: String,
    },
    Mounted {
        device: String,
        mount_point: String,
    },
    FileContains {
        path: String,
        text: String,
    },
    BootCode {
        by_id: String,
        code: String,
    },
    EfiBootEntry {
        label: String,
    },
    /// BootOrder starts with these labels' entries, in this order.
    EfiBootOrderFirst {
        labels: Vec<String>,
    },
    RootOn {
        device: String,
        /// The array's md UUID: what identifies it when its /dev/md/ name is missing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uuid: Option<String>,
    },
    SrExists {
        name_label: String,
        device: String,
    },
    All {
        checks: Vec<DoneCheck>,
    },
    Any {
        checks: Vec<DoneCheck>,
    },
    /// Nothing is mounted at or below this directory.
    Unmounted {
        mount_point: String,
    },
    /// The journal records this step as done (proves, e.g., that the copy finished).
    JournalRecords {
        step: String,
    },
    /// The stable path still names the disk with this serial: never trust a kernel name.
    DiskSerial {
        by_id: String,
        serial: String,
    },
    /// The initramfs image holds a file containing this text.
    InitramfsContains {
        image: String,
        path: String,
        text: String,
    },
    /// This member belongs to no array any more (failed and removed, or gone with its disk).
    Detached {
        member: String,
    },
    /// Every listed array is in sync (no resync or recovery pending).
    InSync {
        devices: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionShape {
    pub number: u32,
    pub start: u64,
    pub end: u64,
    pub type_code: String,
}
