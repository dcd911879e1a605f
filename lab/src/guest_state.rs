//! Reads real state out of a guest: /proc/mdstat, findmnt, mdadm --detail. Assertions in
//! scenarios use these, never the scenario script's own echo.

use crate::vm::Vm;
use anyhow::{bail, Result};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct MdArray {
    pub name: String,
    pub level: String,
    pub members: Vec<String>,
    /// The `[UU]` / `[U_]` field; empty for an inactive array.
    pub health: String,
    pub syncing: bool,
}

/// /proc/mdstat → arrays (only what the lab asserts on).
pub fn parse_mdstat(text: &str) -> Vec<MdArray> {
    let mut out: Vec<MdArray> = Vec::new();
    for line in text.lines() {
        if let Some((name, rest)) = line.split_once(" : ") {
            if name.starts_with("md") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let level = words
                    .iter()
                    .find(|w| w.starts_with("raid"))
                    .unwrap_or(&"")
                    .to_string();
                let members = words
                    .iter()
                    .filter(|w| w.contains('['))
                    .map(|w| w.split('[').next().unwrap_or("").to_string())
                    .collect();
                out.push(MdArray {
                    name: name.trim().to_string(),
                    level,
                    members,
                    health: String::new(),
                    syncing: false,
                });
                continue;
            }
        }
        if let Some(last) = out.last_mut() {
            let t = line.trim();
            if t.contains("blocks") {
                if let Some(h) = t
                    .split_whitespace()
                    .rev()
                    .find(|w| w.starts_with('[') && w.ends_with(']'))
                {
                    last.health = h.to_string();
                }
            }
            if t.contains("resync") || t.contains("recovery") {
                last.syncing = true;
            }
        }
    }
    out
}

pub fn mdstat(vm: &mut Vm) -> Result<Vec<MdArray>> {
    let out = vm.run("cat /proc/mdstat", Duration::from_secs(30))?;
    Ok(parse_mdstat(&out.stdout))
}

/// The device / is mounted from, resolved to its kernel name (/dev/md0, /dev/sda1, …).
pub fn root_source(vm: &mut Vm) -> Result<String> {
    let out = vm.run(
        "readlink -f \"$(findmnt -n -o SOURCE /)\"",
        Duration::from_secs(30),
    )?;
    Ok(out.stdout.trim().to_string())
}

/// The boot finished (running or degraded, not emergency mode); else the failed units.
pub fn assert_boot_finished(vm: &mut Vm, what: &str) -> Result<()> {
    if vm.system_state != "running" && vm.system_state != "degraded" {
        let failed = vm
            .run_status("systemctl --failed --no-legend", Duration::from_secs(60))?
            .stdout;
        let e = anyhow::anyhow!(
            "{what}: system state {:?}; failed units:\n{failed}",
            vm.system_state
        );
        return Err(vm.fail(e));
    }
    Ok(())
}

/// Waits until no array in /proc/mdstat is inactive. Degraded arrays that are not needed
/// for the root filesystem are started by mdadm's last-resort timer, ~30 s into the boot.
pub fn wait_arrays_active(vm: &mut Vm, timeout: Duration) -> Result<Vec<MdArray>> {
    let secs = timeout.as_secs();
    let script = format!(
        "for i in $(seq 1 {secs}); do grep -q inactive /proc/mdstat || exit 0; sleep 1; done; cat /proc/mdstat; exit 1"
    );
    vm.run(&script, timeout + Duration::from_secs(30))
        .map_err(|e| e.context("arrays still inactive"))?;
    mdstat(vm)
}

/// Waits until at least `count` arrays are up with every member in sync (`[UU]`: nothing left
/// to rebuild; a new array's initial sync may still run, as its data is on both disks) and
/// the shell test `also` holds. Polls inside the guest, once a second.
pub fn wait_redundant(vm: &mut Vm, count: usize, also: &str, timeout: Duration) -> Result<()> {
    let script = format!(
        r#"while :; do
  n=$(grep -c '^md' /proc/mdstat || true); bad=$(grep -c '\[[U_]*_[U_]*\]' /proc/mdstat || true)
  [ "$n" -ge {count} ] && [ "$bad" -eq 0 ] && {also} && break
  sleep 1
done"#
    );
    vm.run(&script, timeout)?;
    Ok(())
}

/// Waits until no array is resyncing/recovering, then requires every array `[UU]`.
pub fn wait_all_in_sync(vm: &mut Vm, timeout: Duration) -> Result<Vec<MdArray>> {
    vm.run(
        "for md in /dev/md[0-9]*; do [ -b \"$md\" ] && mdadm --wait \"$md\" || true; done",
        timeout,
    )?;
    let arrays = mdstat(vm)?;
    let bad: Vec<String> = arrays
        .iter()
        .filter(|a| a.health != "[UU]")
        .map(|a| format!("{} {}", a.name, a.health))
        .collect();
    if arrays.is_empty() || !bad.is_empty() {
        let raw = vm.run("cat /proc/mdstat", Duration::from_secs(30))?.stdout;
        bail!("arrays not all [UU]: {bad:?}\n{raw}");
    }
    Ok(arrays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seed_mdstat_during_resync() {
        let text = "Personalities : [raid1] \nmd3 : active raid1 sdb4[1] sda4[0]\n      933114560 blocks super 1.2 [2/2] [UU]\n      [=>...................]  resync =  7.2% (67247616/933114560) finish=136.2min speed=105941K/sec\n      bitmap: 7/7 pages [28KB], 65536KB chunk\n\nmd0 : active raid1 sdb1[0]\n      18857984 blocks super 1.2 [2/1] [U_]\n      \nunused devices: <none>\n";
        let a = parse_mdstat(text);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].name, "md3");
        assert_eq!(a[0].members, vec!["sdb4", "sda4"]);
        assert_eq!(a[0].health, "[UU]");
        assert!(a[0].syncing);
        assert_eq!(a[1].health, "[U_]");
        assert!(!a[1].syncing);
        assert_eq!(a[1].level, "raid1");
    }
}
