//! `/proc/mdstat`.

use serde::{Deserialize, Serialize};

use super::ParseError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mdstat {
    pub personalities: Vec<String>,
    pub arrays: Vec<MdstatArray>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdstatArray {
    pub name: String,
    pub active: bool,
    pub read_only: bool,
    pub level: Option<String>,
    pub members: Vec<MdstatMember>,
    pub blocks: Option<u64>,
    /// `None` when mdstat prints no `super` (0.90 arrays).
    pub superblock: Option<String>,
    pub raid_disks: Option<u32>,
    pub working_disks: Option<u32>,
    /// The `[UU]` / `[U_]` map.
    pub status: Option<String>,
    pub sync: Option<SyncProgress>,
    pub bitmap: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdstatMember {
    pub device: String,
    pub slot: Option<u32>,
    pub faulty: bool,
    pub spare: bool,
    pub write_mostly: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Eq)]
pub struct SyncProgress {
    /// resync, recovery, check, repair, reshape.
    pub action: String,
    /// Per mille, to keep the type `Eq` and exact to mdstat's one decimal.
    pub permille: Option<u32>,
    pub done_blocks: Option<u64>,
    pub total_blocks: Option<u64>,
    pub finish: Option<String>,
    pub speed: Option<String>,
    pub delayed: bool,
}

pub fn parse_mdstat(text: &str) -> Result<Mdstat, ParseError> {
    let mut mdstat = Mdstat::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("unused devices") {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("Personalities :") {
            mdstat.personalities = rest
                .split_whitespace()
                .map(|p| p.trim_matches(|c| c == '[' || c == ']').to_string())
                .collect();
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            if let Some((name, rest)) = trimmed.split_once(" : ") {
                mdstat
                    .arrays
                    .push(parse_header(name.trim(), rest, line_no)?);
                continue;
            }
            return Err(ParseError::line("mdstat", line_no, "unexpected line"));
        }
        let Some(array) = mdstat.arrays.last_mut() else {
            return Err(ParseError::line(
                "mdstat",
                line_no,
                "detail line before any array",
            ));
        };
        parse_detail(array, trimmed, line_no)?;
    }
    Ok(mdstat)
}

fn parse_header(name: &str, rest: &str, line_no: usize) -> Result<MdstatArray, ParseError> {
    let mut array = MdstatArray {
        name: name.to_string(),
        ..Default::default()
    };
    let mut words = rest.split_whitespace().peekable();
    match words.next() {
        Some("active") => array.active = true,
        Some("inactive") => array.active = false,
        other => {
            return Err(ParseError::line(
                "mdstat",
                line_no,
                format!("expected active/inactive, found {other:?}"),
            ))
        }
    }
    while let Some(word) = words.peek() {
        if word.starts_with('(') {
            if word.contains("read-only") {
                array.read_only = true;
            }
            words.next();
        } else {
            break;
        }
    }
    for word in words {
        if word.contains('[') {
            array.members.push(parse_member(word, line_no)?);
        } else if array.level.is_none() && array.active {
            array.level = Some(word.to_string());
        } else {
            array.members.push(parse_member(word, line_no)?);
        }
    }
    Ok(array)
}

fn parse_member(word: &str, line_no: usize) -> Result<MdstatMember, ParseError> {
    let (device, rest) = match word.find('[') {
        Some(i) => (&word[..i], &word[i..]),
        None => (word, ""),
    };
    let mut member = MdstatMember {
        device: device.to_string(),
        ..Default::default()
    };
    if let Some(after) = rest.strip_prefix('[') {
        let (slot, flags) = after.split_once(']').ok_or_else(|| {
            ParseError::line("mdstat", line_no, format!("unclosed slot in {word}"))
        })?;
        member.slot = Some(
            slot.parse()
                .map_err(|_| ParseError::line("mdstat", line_no, format!("bad slot in {word}")))?,
        );
        member.faulty = flags.contains("(F)");
        member.spare = flags.contains("(S)");
        member.write_mostly = flags.contains("(W)");
    }
    Ok(member)
}

fn parse_detail(array: &mut MdstatArray, line: &str, line_no: usize) -> Result<(), ParseError> {
    if let Some(rest) = line.strip_prefix("bitmap:") {
        array.bitmap = Some(rest.trim().to_string());
        return Ok(());
    }
    if line.contains("blocks") {
        let mut words = line.split_whitespace().peekable();
        array.blocks = words.next().and_then(|w| w.parse().ok());
        while let Some(word) = words.next() {
            if word == "super" {
                array.superblock = words.next().map(str::to_string);
            } else if let Some(counts) = word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
                if let Some((total, working)) = counts.split_once('/') {
                    array.raid_disks = total.parse().ok();
                    array.working_disks = working.parse().ok();
                } else if counts.chars().all(|c| c == 'U' || c == '_') {
                    array.status = Some(counts.to_string());
                }
            }
        }
        return Ok(());
    }
    for action in ["resync", "recovery", "check", "repair", "reshape"] {
        if let Some(sync) = parse_sync(line, action) {
            array.sync = Some(sync);
            return Ok(());
        }
    }
    // Other detail lines (chunk sizes of other levels, "unused devices") carry nothing we use;
    // failing on them would make discovery brittle across kernels.
    let _ = line_no;
    Ok(())
}

fn parse_sync(line: &str, action: &str) -> Option<SyncProgress> {
    let at = line.find(action)?;
    let after = line[at + action.len()..].trim_start();
    if let Some(rest) = after.strip_prefix('=') {
        let rest = rest.trim_start();
        if rest.starts_with("DELAYED") || rest.starts_with("PENDING") {
            return Some(SyncProgress {
                action: action.to_string(),
                delayed: true,
                ..Default::default()
            });
        }
        let mut sync = SyncProgress {
            action: action.to_string(),
            ..Default::default()
        };
        let mut words = rest.split_whitespace();
        if let Some(percent) = words.next().and_then(|w| w.strip_suffix('%')) {
            sync.permille = parse_permille(percent);
        }
        for word in words {
            if let Some(pair) = word.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
                if let Some((done, total)) = pair.split_once('/') {
                    sync.done_blocks = done.parse().ok();
                    sync.total_blocks = total.parse().ok();
                }
            } else if let Some(finish) = word.strip_prefix("finish=") {
                sync.finish = Some(finish.to_string());
            } else if let Some(speed) = word.strip_prefix("speed=") {
                sync.speed = Some(speed.to_string());
            }
        }
        return Some(sync);
    }
    None
}

fn parse_permille(percent: &str) -> Option<u32> {
    let (whole, frac) = percent.split_once('.').unwrap_or((percent, "0"));
    let whole: u32 = whole.parse().ok()?;
    let tenth: u32 = frac.chars().next()?.to_digit(10)?;
    Some(whole * 10 + tenth)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEGRADED_SEED: &str = "Personalities : [raid1] \nmd5 : active raid1 sdb6[0]\n      1047552 blocks super 1.2 [2/1] [U_]\n      \nmd4 : active raid1 sdb5[0]\n      4190208 blocks super 1.2 [2/1] [U_]\n      \nmd2 : active raid1 sdb3[0]\n      523712 blocks super 1.2 [2/1] [U_]\n      \nmd1 : active raid1 sdb2[0]\n      18857984 blocks super 1.2 [2/1] [U_]\n      \nmd0 : active raid1 sdb1[0]\n      18857984 blocks super 1.2 [2/1] [U_]\n      \nunused devices: <none>\n";

    const RESYNC_SEED: &str = "Personalities : [raid1] \nmd3 : active raid1 sdb4[1] sda4[0]\n      933114560 blocks super 1.2 [2/2] [UU]\n      [=>...................]  resync =  7.2% (67247616/933114560) finish=136.2min speed=105941K/sec\n      bitmap: 7/7 pages [28KB], 65536KB chunk\n\nmd1 : active raid1 sda2[2] sdb2[0]\n      18857984 blocks super 1.2 [2/2] [UU]\n      \nunused devices: <none>\n";

    #[test]
    fn seed_degraded_arrays() {
        let mdstat = parse_mdstat(DEGRADED_SEED).expect("parses");
        assert_eq!(mdstat.personalities, vec!["raid1"]);
        assert_eq!(mdstat.arrays.len(), 5);
        let md5 = &mdstat.arrays[0];
        assert_eq!(md5.name, "md5");
        assert!(md5.active);
        assert_eq!(md5.level.as_deref(), Some("raid1"));
        assert_eq!(md5.members[0].device, "sdb6");
        assert_eq!(md5.members[0].slot, Some(0));
        assert_eq!(md5.blocks, Some(1047552));
        assert_eq!(md5.superblock.as_deref(), Some("1.2"));
        assert_eq!((md5.raid_disks, md5.working_disks), (Some(2), Some(1)));
        assert_eq!(md5.status.as_deref(), Some("U_"));
    }

    #[test]
    fn seed_resync_with_bitmap() {
        let mdstat = parse_mdstat(RESYNC_SEED).expect("parses");
        let md3 = &mdstat.arrays[0];
        let sync = md3.sync.as_ref().expect("sync line");
        assert_eq!(sync.action, "resync");
        assert_eq!(sync.permille, Some(72));
        assert_eq!(sync.done_blocks, Some(67247616));
        assert_eq!(sync.total_blocks, Some(933114560));
        assert_eq!(sync.finish.as_deref(), Some("136.2min"));
        assert_eq!(sync.speed.as_deref(), Some("105941K/sec"));
        assert_eq!(
            md3.bitmap.as_deref(),
            Some("7/7 pages [28KB], 65536KB chunk")
        );
        assert_eq!(mdstat.arrays[1].members[0].slot, Some(2));
    }

    #[test]
    fn inactive_faulty_readonly_and_090() {
        let text = "Personalities : [raid1] [linear]\nmd127 : inactive sdc1[0](S)\n      1047552 blocks super 1.2\n       \nmd0 : active (auto-read-only) raid1 sda1[1](F) sdb1[0]\n      4194240 blocks [2/1] [U_]\n      \tresync=PENDING\n\nmd9 : active raid1 sdd1[2] sde1[0]\n      1000 blocks super 1.0 [2/1] [U_]\n      [>....................]  recovery =  0.3% (3/1000) finish=1.0min speed=1K/sec\n\nunused devices: <none>\n";
        let mdstat = parse_mdstat(text).expect("parses");
        let md127 = &mdstat.arrays[0];
        assert!(!md127.active);
        assert_eq!(md127.level, None);
        assert!(md127.members[0].spare);
        let md0 = &mdstat.arrays[1];
        assert!(md0.read_only);
        assert!(md0.members[0].faulty);
        assert_eq!(md0.superblock, None);
        assert!(md0.sync.as_ref().expect("pending").delayed);
        let md9 = &mdstat.arrays[2];
        assert_eq!(md9.sync.as_ref().expect("recovery").action, "recovery");
        assert_eq!(md9.sync.as_ref().expect("recovery").permille, Some(3));
    }

    #[test]
    fn empty_and_garbage() {
        assert_eq!(
            parse_mdstat("Personalities : \nunused devices: <none>\n")
                .expect("empty")
                .arrays
                .len(),
            0
        );
        assert!(parse_mdstat("   orphan detail\n").is_err());
        assert!(parse_mdstat("md0 : sleeping raid1\n").is_err());
    }
}
