//! `pvs --noheadings --nameprefixes -o pv_name,vg_name,pv_uuid` (lvm2 2.02 on CentOS 7 has it).

use serde::{Deserialize, Serialize};

use super::kv::parse_shell_vars;
use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhysicalVolume {
    pub device: String,
    pub vg_name: Option<String>,
    pub uuid: Option<String>,
}

impl PhysicalVolume {
    /// XenServer names an LVM SR's volume group `VG_XenStorage-<SR uuid>`.
    pub fn xen_sr_uuid(&self) -> Option<&str> {
        self.vg_name.as_deref()?.strip_prefix("VG_XenStorage-")
    }
}

pub fn parse_pvs(text: &str) -> Result<Vec<PhysicalVolume>, ParseError> {
    let mut pvs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // Each line is a row of shell assignments separated by spaces.
        let vars = parse_shell_vars(&line.split("' ").collect::<Vec<_>>().join("'\n"));
        let device = vars
            .get("LVM2_PV_NAME")
            .cloned()
            .ok_or_else(|| ParseError::line("pvs", index + 1, "no LVM2_PV_NAME"))?;
        pvs.push(PhysicalVolume {
            device,
            vg_name: vars.get("LVM2_VG_NAME").filter(|v| !v.is_empty()).cloned(),
            uuid: vars.get("LVM2_PV_UUID").filter(|v| !v.is_empty()).cloned(),
        });
    }
    Ok(pvs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvs_with_sr_and_orphan() {
        let text = "  LVM2_PV_NAME='/dev/sda3' LVM2_VG_NAME='VG_XenStorage-7a7c8d2f-1b2c-3d4e-5f60-718293a4b5c6' LVM2_PV_UUID='Xy1234-abcd-EFGH-ijkl-MNOP-qrst-UVwxyz'\n  LVM2_PV_NAME='/dev/sdb' LVM2_VG_NAME='' LVM2_PV_UUID='Ab1234-abcd-EFGH-ijkl-MNOP-qrst-UVwxyz'\n";
        let pvs = parse_pvs(text).expect("parses");
        assert_eq!(pvs.len(), 2);
        assert_eq!(pvs[0].device, "/dev/sda3");
        assert_eq!(
            pvs[0].xen_sr_uuid(),
            Some("7a7c8d2f-1b2c-3d4e-5f60-718293a4b5c6")
        );
        assert_eq!(pvs[1].vg_name, None);
        assert!(parse_pvs("  garbage\n").is_err());
    }
}
