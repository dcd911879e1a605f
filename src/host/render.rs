//! `xenraid inspect` for humans: short aligned tables, readable at 3 a.m.

use std::fmt::Write;

use super::facts::{gpt_type_code, HostFacts};

pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Renders rows as columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    out.push_str(&line(header.to_vec()));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_string()
}

pub fn render_facts(facts: &HostFacts) -> String {
    let mut out = String::new();
    let p = &facts.product;
    let _ = writeln!(
        out,
        "Product   {} {} ({:?}), kernel {}",
        p.brand,
        p.version,
        p.kind,
        or_dash(p.kernel_release.as_deref())
    );
    if let Some(uuid) = &p.installation_uuid {
        let _ = writeln!(out, "Host UUID {uuid}");
    }
    let b = &facts.boot;
    let _ = writeln!(
        out,
        "Boot      {:?}, loader {}, config {}, initramfs {}, init {:?}",
        b.mode,
        b.loader
            .map(|l| format!("{l:?}"))
            .unwrap_or_else(|| "unknown".into()),
        or_dash(b.config_path.as_deref()),
        b.initramfs_tool
            .map(|t| format!("{t:?}"))
            .unwrap_or_else(|| "none".into()),
        b.init,
    );
    if let Some(entry) = b.default_entry() {
        let _ = writeln!(
            out,
            "Default   '{}': {} root={}",
            entry.title,
            or_dash(entry.kernel.as_deref()),
            or_dash(entry.root_arg())
        );
    }

    let _ = writeln!(out, "\nDisks");
    let rows: Vec<Vec<String>> = facts
        .disks
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                human_size(d.size_bytes),
                or_dash(d.serial.as_deref()),
                or_dash(d.wwn.as_deref()),
                or_dash(d.model.as_deref()),
                format!("{}/{}", d.logical_sector_size, d.physical_sector_size),
                if d.rotational { "hdd" } else { "ssd" }.to_string(),
                format!("{:?}", d.boot_code).to_lowercase(),
                d.stable_path(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "DISK",
            "SIZE",
            "SERIAL",
            "WWN",
            "MODEL",
            "SECTOR",
            "KIND",
            "MBR CODE",
            "STABLE NAME",
        ],
        &rows,
    ));

    for disk in &facts.disks {
        if disk.partitions.is_empty() {
            let _ = writeln!(
                out,
                "\n{}: no partitions{}",
                disk.name,
                disk.probe
                    .fs_type
                    .as_deref()
                    .map(|t| format!(", whole-disk signature {t}"))
                    .unwrap_or_default()
            );
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} partitions ({})",
            disk.name,
            or_dash(disk.probe.pt_type.as_deref())
        );
        let rows: Vec<Vec<String>> = disk
            .partitions
            .iter()
            .map(|part| {
                let type_code = part
                    .type_guid
                    .as_deref()
                    .map(|g| gpt_type_code(g).unwrap_or(g).to_string());
                let mut used = Vec::new();
                if let Some(mp) = &part.mount_point {
                    used.push(mp.clone());
                }
                if part.swap {
                    used.push("[SWAP]".into());
                }
                for holder in &part.holders {
                    used.push(format!("held by {holder}"));
                }
                vec![
                    part.number.to_string(),
                    part.start_sector.to_string(),
                    human_size(part.size_sectors * 512),
                    or_dash(type_code.as_deref()),
                    or_dash(part.part_name.as_deref()),
                    if part.legacy_bios_bootable { "yes" } else { "" }.to_string(),
                    if part.ambivalent_signatures {
                        "AMBIVALENT".to_string()
                    } else {
                        or_dash(part.fs_type.as_deref())
                    },
                    or_dash(part.label.as_deref()),
                    or_dash(part.uuid.as_deref()),
                    used.join(", "),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "N", "START", "SIZE", "TYPE", "NAME", "LEGACY", "FS", "LABEL", "UUID", "USE",
            ],
            &rows,
        ));
    }

    if !facts.arrays.is_empty() {
        let _ = writeln!(out, "\nmd arrays");
        let rows: Vec<Vec<String>> = facts
            .arrays
            .iter()
            .map(|a| {
                vec![
                    a.name.clone(),
                    or_dash(a.md_name.as_deref()),
                    or_dash(a.level.as_deref()),
                    or_dash(a.metadata.as_deref()),
                    or_dash(a.uuid.as_deref()),
                    or_dash(a.array_state.as_deref()),
                    a.mdstat
                        .as_ref()
                        .and_then(|m| m.status.clone())
                        .unwrap_or_else(|| "-".into()),
                    a.members.join(" "),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "ARRAY", "NAME", "LEVEL", "META", "UUID", "STATE", "MAP", "MEMBERS",
            ],
            &rows,
        ));
    }
    if !facts.physical_volumes.is_empty() {
        let _ = writeln!(out, "\nLVM physical volumes");
        let rows: Vec<Vec<String>> = facts
            .physical_volumes
            .iter()
            .map(|pv| vec![pv.device.clone(), or_dash(pv.vg_name.as_deref())])
            .collect();
        out.push_str(&table(&["PV", "VG"], &rows));
    }
    if !facts.storage_repositories.is_empty() {
        let _ = writeln!(out, "\nStorage repositories");
        let rows: Vec<Vec<String>> = facts
            .storage_repositories
            .iter()
            .map(|sr| {
                vec![
                    sr.uuid.clone(),
                    sr.sr_type.clone(),
                    sr.name_label.clone(),
                    sr.devices.join(" "),
                ]
            })
            .collect();
        out.push_str(&table(&["SR", "TYPE", "NAME", "DEVICE"], &rows));
    }

    let present: Vec<&str> = facts
        .tools
        .iter()
        .filter(|(_, path)| path.is_some())
        .map(|(name, _)| name.as_str())
        .collect();
    let missing: Vec<&str> = facts
        .tools
        .iter()
        .filter(|(_, path)| path.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    let _ = writeln!(out, "\nTools     {}", present.join(" "));
    let _ = writeln!(out, "Absent    {}", missing.join(" "));
    for warning in &facts.warnings {
        let _ = writeln!(out, "WARNING   {warning}");
    }
    out
}
