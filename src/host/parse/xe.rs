//! `xe <class>-list params=…` record output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Records are separated by blank lines; each line is `name ( RO): value` (`RW`, `MRO`, `MRW`,
/// `SRO` …).
pub fn parse_xe_records(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut records = Vec::new();
    let mut current = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        // The first field of a record is padded: `uuid ( RO)          : value`.
        let Some((head, rest)) = line.split_once(')') else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let Some((name, _access)) = head.rsplit_once('(') else {
            continue;
        };
        current.insert(name.trim().to_string(), value.trim().to_string());
    }
    if !current.is_empty() {
        records.push(current);
    }
    records
}

/// `device-config` maps print as `key: value; key2: value2`.
pub fn parse_xe_map(value: &str) -> BTreeMap<String, String> {
    value
        .split("; ")
        .filter_map(|pair| pair.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageRepository {
    pub uuid: String,
    pub name_label: String,
    pub sr_type: String,
    /// Devices from the SR's PBDs' `device-config:device`.
    pub devices: Vec<String>,
    pub pbd_uuids: Vec<String>,
}

/// Joins `xe sr-list params=uuid,name-label,type` with `xe pbd-list params=uuid,sr-uuid,device-config`.
pub fn join_srs_and_pbds(sr_text: &str, pbd_text: &str) -> Vec<StorageRepository> {
    let pbds = parse_xe_records(pbd_text);
    parse_xe_records(sr_text)
        .into_iter()
        .filter_map(|sr| {
            let uuid = sr.get("uuid")?.clone();
            let mine: Vec<_> = pbds
                .iter()
                .filter(|p| p.get("sr-uuid") == Some(&uuid))
                .collect();
            Some(StorageRepository {
                name_label: sr.get("name-label").cloned().unwrap_or_default(),
                sr_type: sr.get("type").cloned().unwrap_or_default(),
                devices: mine
                    .iter()
                    .filter_map(|p| parse_xe_map(p.get("device-config")?).get("device").cloned())
                    .collect(),
                pbd_uuids: mine.iter().filter_map(|p| p.get("uuid").cloned()).collect(),
                uuid,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRS: &str = "uuid ( RO)                : 7a7c8d2f-1b2c-3d4e-5f60-718293a4b5c6\n          name-label ( RW): Local storage\n                type ( RO): lvm\n\n\nuuid ( RO)                : 0c1d2e3f-0000-1111-2222-333344445555\n          name-label ( RW): DVD drives\n                type ( RO): udev\n\n\n";
    const PBDS: &str = "uuid ( RO)                  : 11111111-2222-3333-4444-555555555555\n              sr-uuid ( RO): 7a7c8d2f-1b2c-3d4e-5f60-718293a4b5c6\n        device-config (MRO): device: /dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part3\n\n\nuuid ( RO)                  : 66666666-7777-8888-9999-000000000000\n              sr-uuid ( RO): 0c1d2e3f-0000-1111-2222-333344445555\n        device-config (MRO): location: /dev/xapi/cd; legacy_mode: true\n";

    #[test]
    fn srs_with_their_devices() {
        let srs = join_srs_and_pbds(SRS, PBDS);
        assert_eq!(srs.len(), 2);
        assert_eq!(srs[0].name_label, "Local storage");
        assert_eq!(srs[0].sr_type, "lvm");
        assert_eq!(
            srs[0].devices,
            vec!["/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part3".to_string()]
        );
        assert_eq!(srs[0].pbd_uuids.len(), 1);
        assert!(srs[1].devices.is_empty());
    }

    #[test]
    fn xe_map() {
        let map = parse_xe_map("location: /dev/xapi/cd; legacy_mode: true");
        assert_eq!(map["legacy_mode"], "true");
    }
}
