//! `mdadm --detail --export /dev/mdX` and mdadm.conf.

use serde::{Deserialize, Serialize};

use super::kv::parse_shell_vars;
use super::ParseError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdDetail {
    pub level: Option<String>,
    pub raid_devices: Option<u32>,
    pub metadata: Option<String>,
    pub uuid: Option<String>,
    /// `MD_DEVNAME`: the name under /dev/md/ when there is one.
    pub devname: Option<String>,
    /// `MD_NAME` (1.x only): `homehost:name`.
    pub name: Option<String>,
    pub members: Vec<MdDetailMember>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdDetailMember {
    pub device: String,
    pub role: Option<String>,
}

pub fn parse_mdadm_detail_export(text: &str) -> Result<MdDetail, ParseError> {
    let vars = parse_shell_vars(text);
    if !vars.keys().any(|k| k.starts_with("MD_")) {
        return Err(ParseError::Format {
            what: "mdadm --detail --export",
            reason: "no MD_ variables".into(),
        });
    }
    // Members appear as MD_DEVICE_<mangled>_DEV / _ROLE (mdadm ≥ 4.0); older mdadm omits them and
    // the members then come from sysfs.
    let mut members: Vec<MdDetailMember> = vars
        .iter()
        .filter(|(k, _)| k.starts_with("MD_DEVICE_") && k.ends_with("_DEV"))
        .map(|(k, device)| {
            let stem = &k[..k.len() - "_DEV".len()];
            MdDetailMember {
                device: device.clone(),
                role: vars.get(&format!("{stem}_ROLE")).cloned(),
            }
        })
        .collect();
    members.sort_by(|a, b| a.device.cmp(&b.device));
    Ok(MdDetail {
        level: vars.get("MD_LEVEL").cloned(),
        raid_devices: vars.get("MD_DEVICES").and_then(|v| v.parse().ok()),
        metadata: vars.get("MD_METADATA").cloned(),
        uuid: vars.get("MD_UUID").cloned(),
        devname: vars.get("MD_DEVNAME").cloned(),
        name: vars.get("MD_NAME").cloned(),
        members,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdadmConfArray {
    pub device: String,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub metadata: Option<String>,
}

/// The ARRAY lines of mdadm.conf (continuation lines start with whitespace).
pub fn parse_mdadm_conf_arrays(text: &str) -> Vec<MdadmConfArray> {
    let mut logical: Vec<String> = Vec::new();
    for line in text.lines() {
        let content = line.split('#').next().unwrap_or_default();
        if content.trim().is_empty() {
            continue;
        }
        if content.starts_with(char::is_whitespace) {
            if let Some(last) = logical.last_mut() {
                last.push(' ');
                last.push_str(content.trim());
                continue;
            }
        }
        logical.push(content.trim().to_string());
    }
    logical
        .iter()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if !words.next()?.eq_ignore_ascii_case("ARRAY") {
                return None;
            }
            let mut array = MdadmConfArray::default();
            for word in words {
                match word.split_once('=') {
                    Some((k, v)) if k.eq_ignore_ascii_case("uuid") => {
                        array.uuid = Some(v.to_string())
                    }
                    Some((k, v)) if k.eq_ignore_ascii_case("name") => {
                        array.name = Some(v.to_string())
                    }
                    Some((k, v)) if k.eq_ignore_ascii_case("metadata") => {
                        array.metadata = Some(v.to_string())
                    }
                    Some(_) => {}
                    None if array.device.is_empty() => array.device = word.to_string(),
                    None => {}
                }
            }
            Some(array)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_export_mdadm4() {
        let text = "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_METADATA=1.2\nMD_UUID=b6eafb52:53b1c0ed:03b029cd:ce0fa6bf\nMD_DEVNAME=root\nMD_NAME=xenraid:root\nMD_DEVICE_dev_sdb1_ROLE=0\nMD_DEVICE_dev_sdb1_DEV=/dev/sdb1\nMD_DEVICE_dev_sda1_ROLE=spare\nMD_DEVICE_dev_sda1_DEV=/dev/sda1\n";
        let detail = parse_mdadm_detail_export(text).expect("parses");
        assert_eq!(detail.level.as_deref(), Some("raid1"));
        assert_eq!(detail.raid_devices, Some(2));
        assert_eq!(detail.metadata.as_deref(), Some("1.2"));
        assert_eq!(
            detail.uuid.as_deref(),
            Some("b6eafb52:53b1c0ed:03b029cd:ce0fa6bf")
        );
        assert_eq!(detail.name.as_deref(), Some("xenraid:root"));
        assert_eq!(detail.members.len(), 2);
        assert_eq!(detail.members[0].device, "/dev/sda1");
        assert_eq!(detail.members[0].role.as_deref(), Some("spare"));
    }

    #[test]
    fn detail_export_mdadm3_090() {
        let text = "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_METADATA=0.90\nMD_UUID=3d1ef4a2:9c0b1f77:8a5e2c11:6b7d9e04\n";
        let detail = parse_mdadm_detail_export(text).expect("parses");
        assert_eq!(detail.metadata.as_deref(), Some("0.90"));
        assert!(detail.members.is_empty());
        assert!(parse_mdadm_detail_export("mdadm: cannot open /dev/md9\n").is_err());
    }

    #[test]
    fn mdadm_conf_from_seed() {
        let text = "MAILADDR root\nauto +imsm +1.x -all\nDEVICE /dev/sd*[a-z][1-9]\nARRAY /dev/md0 metadata=1.2 name=xenserver-7:0 UUID=b6eafb52:53b1c0ed:03b029cd:ce0fa6bf\nARRAY /dev/md1 metadata=1.2 name=xenserver-7:1 UUID=7b4bae54:236b1e2f:7f1a7a0e:e4610009\nARRAY /dev/md2 metadata=1.2\n   name=xenserver-7:2 UUID=0c082894:f0f24c6b:43bf4045:0970c253 # trailing\n";
        let arrays = parse_mdadm_conf_arrays(text);
        assert_eq!(arrays.len(), 3);
        assert_eq!(arrays[0].device, "/dev/md0");
        assert_eq!(arrays[0].name.as_deref(), Some("xenserver-7:0"));
        assert_eq!(
            arrays[2].uuid.as_deref(),
            Some("0c082894:f0f24c6b:43bf4045:0970c253")
        );
    }
}
