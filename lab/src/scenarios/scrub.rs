//! Issue 6's `scrub` on real md, on the cached converted xs7-bios guest: a budgeted check
//! stops part way and checkpoints, the next run goes on from there and finishes with the
//! members agreeing; then one member of the SR array is overwritten underneath md (what a
//! silently corrupting disk does), the next scrub reports the mismatch (exit 1, `MISMATCH`),
//! `status` shows it, and the running monitor raises it as an alert (the `xe` stand-in logs
//! the XAPI message).

use super::convert::{assert_on_raid, converted_pair};
use super::xenraid::{install_with_monitor, GUEST_BIN};
use super::Ctx;
use crate::vm::Vm;
use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
const ARRAY: &str = "md/sr";
/// Disk B's member of the SR array.
const MEMBER_B: &str = "/dev/disk/by-id/wwn-0x5000c500a0000002-part4";

/// One scrub run of the SR array: exit status, the JSON outcome's entry for it, stderr.
fn scrub(vm: &mut Vm, budget: Option<&str>) -> Result<(i32, Value, String)> {
    let budget = budget.map(|b| format!(" --budget {b}")).unwrap_or_default();
    let out = vm.run_status(
        &format!("{GUEST_BIN} scrub --array {ARRAY}{budget} --json"),
        20 * MIN,
    )?;
    let outcome: Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("scrub --json printed: {}{}", out.stdout, out.stderr))?;
    let entry = outcome["arrays"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .with_context(|| format!("scrub checked nothing: {outcome}"))?;
    Ok((out.status, entry, out.stderr))
}

fn sectors(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

pub fn scrub_scenario(ctx: &mut Ctx) -> Result<()> {
    let p = ctx.phase("converted-guest", converted_pair)?;
    ctx.phase("scrub", |c| {
        let mut vm = c.boot("scrubbed", &p.image, &[&p.a, &p.b])?;
        assert_on_raid(&mut vm, "the converted guest")?;
        install_with_monitor(&mut vm, "[alert.xapi]\n")?;
        vm.run("mdadm --wait /dev/md/* ; true", 20 * MIN)?;

        // 1. A budget too short for the array: stopped part way, the position kept.
        let (status, first, _) = scrub(&mut vm, Some("2s"))?;
        let stopped_at = sectors(&first, "to_sector");
        let total = sectors(&first, "total_sectors");
        ensure!(
            status == 0 && first["finished"] == false && stopped_at > 0 && stopped_at < total,
            "a 2 s budget must stop the check part way: exit {status}, {first}"
        );
        let idle = vm.run(&format!("cat /sys/block/$(basename $(readlink -f /dev/{ARRAY}))/md/sync_action"), MIN)?.stdout;
        ensure!(idle.trim() == "idle", "the check must be stopped after the budget, sync_action {idle}");
        println!("SCRUB budget 2 s: checked sectors 0..{stopped_at} of {total}, check stopped, position kept");

        // 2. The next run goes on from there to the end; a healthy mirror agrees.
        let (status, second, _) = scrub(&mut vm, None)?;
        ensure!(
            status == 0
                && sectors(&second, "from_sector") == stopped_at
                && second["finished"] == true
                && second["pass_mismatch_sectors"] == 0,
            "the next run must continue from {stopped_at} and finish clean: exit {status}, {second}"
        );
        println!("SCRUB next run: from sector {stopped_at} to the end, pass finished, 0 mismatched sectors");

        // 3. One member silently corrupted underneath md.
        vm.run(
            &format!(
                "off=$(mdadm --examine {MEMBER_B} | awk '/Data Offset/ {{print $4}}'); \
                 test -n \"$off\"; \
                 dd if=/dev/urandom of={MEMBER_B} bs=512 seek=$((off + 65536)) count=128 oflag=direct conv=notrunc status=none"
            ),
            MIN,
        )?;
        let (status, third, stderr) = scrub(&mut vm, None)?;
        let found = sectors(&third, "mismatch_sectors");
        ensure!(
            status == 1 && found > 0 && stderr.contains("MISMATCH"),
            "scrub must report the corrupted member: exit {status}, {third}, stderr {stderr}"
        );
        let shown = vm.run(&format!("{GUEST_BIN} status --json"), MIN)?.stdout;
        let shown: Value = serde_json::from_str(&shown)?;
        let mismatch = shown["arrays"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == "sr")
            .map(|a| a["mismatch_sectors"].clone());
        ensure!(
            mismatch.as_ref().and_then(Value::as_u64).is_some_and(|m| m > 0),
            "status must show the mismatch, got {mismatch:?}"
        );
        // The monitor saw md's check end with mismatches: one XAPI message (it may still be
        // inside its holdoff when scrub returns).
        let xe = vm
            .run(
                "for i in $(seq 1 30); do grep -q XENRAID_CHECKFINISHED /var/log/xe-standin.log && break; sleep 1; done; grep message-create /var/log/xe-standin.log || true",
                2 * MIN,
            )?
            .stdout;
        ensure!(
            xe.contains("XENRAID_CHECKFINISHED"),
            "the monitor must alert on the mismatch; xe log:\n{xe}\n{}",
            vm.run("journalctl -u xenraid-monitor --no-pager | tail -20", MIN)?.stdout
        );
        println!("SCRUB after 128 sectors of disk B's member overwritten: {found} mismatched sectors, exit 1, MISMATCH printed, status shows it, monitor sent XENRAID_CHECKFINISHED");
        vm.shutdown(5 * MIN)
    })
}
