//! `/proc/self/mountinfo` and `/proc/swaps`.

use serde::{Deserialize, Serialize};

use super::{unescape_octal, ParseError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub major: u32,
    pub minor: u32,
    /// The root of the mount inside its filesystem (not `/` for bind mounts).
    pub fs_root: String,
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
}

pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut mounts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: &str| ParseError::line("mountinfo", index + 1, reason);
        let (before, after) = line
            .split_once(" - ")
            .ok_or_else(|| err("no ' - ' separator"))?;
        let fields: Vec<&str> = before.split_whitespace().collect();
        if fields.len() < 6 {
            return Err(err("fewer than 6 fields before the separator"));
        }
        let (major, minor) = fields[2]
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| err("bad major:minor"))?;
        let mut tail = after.split_whitespace();
        let fs_type = tail.next().ok_or_else(|| err("no filesystem type"))?;
        let source = tail.next().unwrap_or("none");
        mounts.push(Mount {
            major,
            minor,
            fs_root: unescape_octal(fields[3]),
            mount_point: unescape_octal(fields[4]),
            fs_type: fs_type.to_string(),
            source: unescape_octal(source),
        });
    }
    Ok(mounts)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    pub path: String,
    pub kind: String,
    pub size_kib: u64,
}

pub fn parse_swaps(text: &str) -> Result<Vec<Swap>, ParseError> {
    let mut swaps = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if index == 0 && line.starts_with("Filename") {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(ParseError::line("swaps", index + 1, "fewer than 3 fields"));
        }
        swaps.push(Swap {
            path: unescape_octal(fields[0]),
            kind: fields[1].to_string(),
            size_kib: fields[2]
                .parse()
                .map_err(|_| ParseError::line("swaps", index + 1, "bad size"))?,
        });
    }
    Ok(swaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XS7: &str = "18 23 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw\n19 23 0:3 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n23 1 8:1 / / rw,relatime shared:1 - ext3 /dev/sda1 rw,data=ordered\n40 23 8:5 / /var/log rw,relatime shared:23 - ext3 /dev/sda5 rw,data=ordered\n45 23 7:0 / /var/xen/xc-install ro,relatime shared:25 - iso9660 /dev/loop0 ro\n50 23 0:40 / /mnt/with\\040space rw - tmpfs none rw\n";

    #[test]
    fn xenserver7_mounts() {
        let mounts = parse_mountinfo(XS7).expect("parses");
        assert_eq!(mounts.len(), 6);
        let root = mounts.iter().find(|m| m.mount_point == "/").expect("root");
        assert_eq!((root.major, root.minor), (8, 1));
        assert_eq!(root.fs_type, "ext3");
        assert_eq!(root.source, "/dev/sda1");
        assert_eq!(mounts[5].mount_point, "/mnt/with space");
        assert!(parse_mountinfo("1 2 3\n").is_err());
    }

    #[test]
    fn swaps_partition_and_file() {
        let text = "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n/dev/sda6                               partition\t1048572\t0\t-1\n/var/swap/swapfile                      file\t524284\t0\t-2\n";
        let swaps = parse_swaps(text).expect("parses");
        assert_eq!(swaps.len(), 2);
        assert_eq!(swaps[0].path, "/dev/sda6");
        assert_eq!(swaps[0].kind, "partition");
        assert_eq!(swaps[1].size_kib, 524284);
        assert!(parse_swaps("Filename Type\n/dev/x\n").is_err());
    }
}
