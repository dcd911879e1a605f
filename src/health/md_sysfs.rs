//! Arrays and members from `/sys/block/md*/md/` (the kernel's own view, the same files
//! node_exporter's md collector and mdadm read).

use serde::Serialize;

use crate::host::parse::mdstat::{parse_mdstat, MdstatArray};
use crate::host::source::HostSource;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayHealth {
    /// Kernel name: `md127`.
    pub device: String,
    /// The stable name from `/dev/md/NAME`, when udev made one.
    pub name: Option<String>,
    pub level: String,
    /// `array_state`: clean, active, active-idle, read-auto, readonly, inactive, …
    pub state: String,
    pub raid_disks: u32,
    /// Members missing from the array (`degraded`).
    pub missing: u32,
    /// `sync_action`: idle, resync, recover, check, repair, reshape, frozen.
    pub sync_action: String,
    pub sync: Option<SyncState>,
    /// A resync/recovery/check is due but waits: md runs one at a time per physical disk.
    pub sync_delayed: bool,
    /// A read-auto array whose resync waits for its first write (`resync_start` is not
    /// `none`): md starts no sync on an array assembled at boot until something writes to it.
    pub resync_pending: bool,
    /// The write-intent bitmap, `internal, 65536 KiB chunk` (or `file, …`); None when there is none.
    pub bitmap: Option<String>,
    /// Sectors found to differ by the last check or repair.
    pub mismatch_sectors: Option<u64>,
    pub metadata: Option<String>,
    pub uuid: Option<String>,
    pub size_bytes: u64,
    pub members: Vec<MemberHealth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncState {
    pub done_sectors: u64,
    pub total_sectors: u64,
    /// KiB/s now.
    pub speed_kib: Option<u64>,
    pub eta_seconds: Option<u64>,
}

impl SyncState {
    pub fn percent(&self) -> f64 {
        if self.total_sectors == 0 {
            return 0.0;
        }
        self.done_sectors as f64 * 100.0 / self.total_sectors as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// In sync, serving reads.
    Active,
    /// Has a slot but is not in sync yet (recovery).
    Rebuilding,
    Spare,
    Faulty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberHealth {
    /// Kernel name of the member: `sdb1`.
    pub device: String,
    /// The whole disk it is on: `sdb`.
    pub disk: Option<String>,
    pub role: MemberRole,
    pub slot: Option<u32>,
    /// The kernel's flags: in_sync, faulty, write_mostly, spare, blocked, want_replacement …
    pub flags: Vec<String>,
    /// Read errors corrected on this member.
    pub errors: u64,
}

/// Every md array the kernel knows, sorted by kernel name, each attribute from sysfs.
pub fn read_arrays(src: &dyn HostSource) -> Vec<ArrayHealth> {
    read_all(src, &[])
}

/// The same, for a one-off report (`status` is a Nagios check, run every minute): what
/// /proc/mdstat says of an active array (level, disk counts, size, metadata, whether a sync
/// runs, whether there is a bitmap) is taken from that one read, so an idle array costs five
/// sysfs reads instead of eleven. What mdstat does not say, or says ambiguously (member
/// slots and flags, array state, progress while a sync runs), still comes from sysfs.
pub fn read_arrays_quick(src: &dyn HostSource) -> Vec<ArrayHealth> {
    let mdstat = src
        .read_to_string("/proc/mdstat")
        .ok()
        .and_then(|t| parse_mdstat(&t).ok())
        .map(|m| m.arrays)
        .unwrap_or_default();
    read_all(src, &mdstat)
}

fn read_all(src: &dyn HostSource, mdstat: &[MdstatArray]) -> Vec<ArrayHealth> {
    let names = stable_names(src);
    let blocks = src.list_dir("/sys/block").unwrap_or_default();
    let mut arrays: Vec<ArrayHealth> = blocks
        .iter()
        .filter(|d| d.starts_with("md"))
        .filter_map(|d| {
            let hint = mdstat.iter().find(|m| m.name == *d).filter(|m| {
                m.active && m.level.is_some() && m.raid_disks.is_some() && m.blocks.is_some()
            });
            if hint.is_none() && !src.exists(&format!("/sys/block/{d}/md")) {
                return None;
            }
            read_array(src, d, &names, hint, &blocks)
        })
        .collect();
    arrays.sort_by_key(|a| natural_key(&a.device));
    arrays
}

fn natural_key(name: &str) -> (String, u64) {
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    (
        name[..name.len() - digits.len()].to_string(),
        digits.parse().unwrap_or(0),
    )
}

/// `/dev/md/NAME` → kernel name.
fn stable_names(src: &dyn HostSource) -> Vec<(String, String)> {
    src.list_dir("/dev/md")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| {
            let target = src.read_link(&format!("/dev/md/{n}")).ok()?;
            Some((target.rsplit('/').next()?.to_string(), n))
        })
        .collect()
}

fn read(src: &dyn HostSource, path: &str) -> Option<String> {
    let text = src.read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn number(src: &dyn HostSource, path: &str) -> Option<u64> {
    read(src, path)?.parse().ok()
}

fn read_array(
    src: &dyn HostSource,
    device: &str,
    names: &[(String, String)],
    hint: Option<&MdstatArray>,
    blocks: &[String],
) -> Option<ArrayHealth> {
    let md = format!("/sys/block/{device}/md");
    let level = match hint.and_then(|h| h.level.clone()) {
        Some(level) => level,
        None => read(src, &format!("{md}/level")).unwrap_or_default(),
    };
    let state = read(src, &format!("{md}/array_state")).unwrap_or_else(|| "unknown".into());
    // An array being assembled or stopped has no level yet: not an array to report on.
    if level.is_empty() && state == "clear" {
        return None;
    }
    // mdstat prints a line for every sync, running or delayed: without one the array is idle.
    let sync_action = if hint.is_some_and(|h| h.sync.is_none()) {
        "idle".to_string()
    } else {
        read(src, &format!("{md}/sync_action")).unwrap_or_else(|| "idle".into())
    };
    // Progress only means something while a sync runs (two reads per array saved when idle).
    let syncing = sync_action != "idle";
    let speed_kib = syncing
        .then(|| number(src, &format!("{md}/sync_speed")))
        .flatten();
    let completed = syncing
        .then(|| read(src, &format!("{md}/sync_completed")))
        .flatten();
    let sync_delayed = sync_action != "idle" && completed.as_deref() == Some("delayed");
    let sync = completed
        .and_then(|t| parse_sync_completed(&t))
        .filter(|_| sync_action != "idle")
        .map(|(done, total)| SyncState {
            done_sectors: done,
            total_sectors: total,
            speed_kib,
            eta_seconds: speed_kib
                .filter(|s| *s > 0)
                .map(|s| total.saturating_sub(done) / 2 / s),
        });
    // Only a read-auto array can hold a resync back; one more read for those alone.
    let resync_pending = state == "read-auto"
        && read(src, &format!("{md}/resync_start")).is_some_and(|s| s != "none");
    let bitmap = match hint {
        Some(h) => h.bitmap.as_deref().map(bitmap_from_mdstat),
        None => bitmap_from_sysfs(src, &md),
    };
    // mdstat lists every member the kernel holds (`dev-*` in sysfs), faulty and spare too.
    let member_names: Vec<String> = match hint {
        Some(h) => h.members.iter().map(|m| m.device.clone()).collect(),
        None => src
            .list_dir(&md)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.strip_prefix("dev-").map(str::to_string))
            .collect(),
    };
    let mut members: Vec<MemberHealth> = member_names
        .iter()
        .map(|m| read_member(src, &md, m, blocks))
        .collect();
    members.sort_by_key(|m| (m.slot.unwrap_or(u32::MAX), m.device.clone()));
    Some(ArrayHealth {
        device: device.to_string(),
        name: names
            .iter()
            .find(|(k, _)| k == device)
            .map(|(_, n)| n.clone()),
        level,
        state,
        raid_disks: match hint.and_then(|h| h.raid_disks) {
            Some(n) => n,
            None => number(src, &format!("{md}/raid_disks")).unwrap_or(0) as u32,
        },
        missing: match hint.and_then(|h| Some(h.raid_disks?.saturating_sub(h.working_disks?))) {
            Some(n) => n,
            None => number(src, &format!("{md}/degraded")).unwrap_or(0) as u32,
        },
        sync_action,
        sync,
        sync_delayed,
        resync_pending,
        bitmap,
        mismatch_sectors: number(src, &format!("{md}/mismatch_cnt")),
        // mdstat prints no `super` for 0.90, the one format without a version word.
        metadata: match hint {
            Some(h) => Some(h.superblock.clone().unwrap_or_else(|| "0.90".into())),
            None => read(src, &format!("{md}/metadata_version")),
        },
        uuid: read(src, &format!("{md}/uuid")),
        size_bytes: match hint.and_then(|h| h.blocks) {
            Some(kib) => kib * 1024,
            None => number(src, &format!("/sys/block/{device}/size")).unwrap_or(0) * 512,
        },
        members,
    })
}

/// The bitmap as both reads describe it: `internal` or `file`, and its chunk.
fn bitmap_text(kind: &str, chunk_kib: Option<u64>) -> String {
    match chunk_kib {
        Some(kib) => format!("{kind}, {kib} KiB chunk"),
        None => kind.to_string(),
    }
}

/// From mdstat's `bitmap: 0/1 pages [0KB], 65536KB chunk[, file: /path]`.
fn bitmap_from_mdstat(line: &str) -> String {
    let kind = if line.contains("file:") {
        "file"
    } else {
        "internal"
    };
    let chunk = line
        .split(',')
        .find_map(|part| part.trim().strip_suffix("KB chunk")?.trim().parse().ok());
    bitmap_text(kind, chunk)
}

/// From `bitmap/location` (`+8` internal, `file`, `none`) and `bitmap/chunksize` (bytes).
fn bitmap_from_sysfs(src: &dyn HostSource, md: &str) -> Option<String> {
    let location = read(src, &format!("{md}/bitmap/location")).filter(|l| l != "none")?;
    let kind = if location == "file" {
        "file"
    } else {
        "internal"
    };
    let chunk = number(src, &format!("{md}/bitmap/chunksize")).map(|b| b / 1024);
    Some(bitmap_text(kind, chunk))
}

/// `sync_completed`: "done / total" in sectors, or "none".
pub fn parse_sync_completed(text: &str) -> Option<(u64, u64)> {
    let (done, total) = text.split_once('/')?;
    Some((done.trim().parse().ok()?, total.trim().parse().ok()?))
}

fn read_member(src: &dyn HostSource, md: &str, device: &str, blocks: &[String]) -> MemberHealth {
    let dir = format!("{md}/dev-{device}");
    let flags: Vec<String> = read(src, &format!("{dir}/state"))
        .unwrap_or_default()
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let slot = read(src, &format!("{dir}/slot")).and_then(|s| s.parse().ok());
    let has = |f: &str| flags.iter().any(|x| x == f);
    let role = if has("faulty") {
        MemberRole::Faulty
    } else if has("in_sync") {
        MemberRole::Active
    } else if slot.is_some() {
        MemberRole::Rebuilding
    } else {
        MemberRole::Spare
    };
    MemberHealth {
        disk: whole_disk_among(src, device, blocks),
        device: device.to_string(),
        role,
        slot,
        flags,
        errors: number(src, &format!("{dir}/errors")).unwrap_or(0),
    }
}

/// `whole_disk`, knowing the names in /sys/block already: a member that is a whole disk needs
/// no lookup.
fn whole_disk_among(src: &dyn HostSource, device: &str, blocks: &[String]) -> Option<String> {
    if blocks.iter().any(|b| b == device) {
        return Some(device.to_string());
    }
    // A block device that is not a whole disk is a partition: when the name's stem is a
    // disk in /sys/block, that is its disk, with no lookup (under TCG each one costs).
    if let Some(stem) = partition_stem(device).filter(|s| blocks.iter().any(|b| b == s)) {
        return Some(stem.to_string());
    }
    whole_disk(src, device)
}

/// `sdb1` → `sdb`, `nvme0n1p2` → `nvme0n1`; None for a name without a partition number.
fn partition_stem(device: &str) -> Option<&str> {
    let disk = device.trim_end_matches(|c: char| c.is_ascii_digit());
    if disk.len() == device.len() || disk.is_empty() {
        return None;
    }
    Some(
        disk.strip_suffix('p')
            .filter(|s| s.ends_with(|c: char| c.is_ascii_digit()))
            .unwrap_or(disk),
    )
}

/// The disk a partition is on (`sdb1` → `sdb`, `nvme0n1p2` → `nvme0n1`), or the device itself
/// when it is a whole disk.
pub fn whole_disk(src: &dyn HostSource, device: &str) -> Option<String> {
    // The partition case first: members are partitions, one lookup each.
    if let Some(disk) = partition_stem(device) {
        if src.exists(&format!("/sys/block/{disk}/{device}")) {
            return Some(disk.to_string());
        }
    }
    src.exists(&format!("/sys/block/{device}"))
        .then(|| device.to_string())
}

#[cfg(test)]
mod tests {
    use super::{bitmap_from_mdstat, partition_stem};

    #[test]
    fn a_partition_names_its_disk() {
        assert_eq!(partition_stem("sdb12"), Some("sdb"));
        assert_eq!(partition_stem("nvme0n1p2"), Some("nvme0n1"));
        assert_eq!(partition_stem("mmcblk0p1"), Some("mmcblk0"));
        assert_eq!(partition_stem("md127p1"), Some("md127"));
        assert_eq!(partition_stem("sda"), None);
        assert_eq!(partition_stem("123"), None);
    }

    #[test]
    fn the_bitmap_line_of_mdstat_gives_kind_and_chunk() {
        assert_eq!(
            bitmap_from_mdstat("7/7 pages [28KB], 65536KB chunk"),
            "internal, 65536 KiB chunk"
        );
        assert_eq!(
            bitmap_from_mdstat("0/4 pages [0KB], 1024KB chunk, file: /var/md0.bitmap"),
            "file, 1024 KiB chunk"
        );
    }
}
