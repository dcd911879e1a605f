//! Proves the driver's own abilities on a real guest: in-place reboot, hot-unplug and
//! hot-add of a disk (QMP), power cut, and booting with the disks in the other order.

use super::Ctx;
use crate::images::blank_disk;
use anyhow::{ensure, Result};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// Kernel names of the disks the guest sees, with their serials: "sda:XRLAB-SYS0 …".
const DISKS: &str = "lsblk -dno NAME,SERIAL | awk '$2!=\"\"{printf \"%s:%s \", $1, $2}'";

pub fn driver(ctx: &mut Ctx) -> Result<()> {
    let image = ctx.phase("image", |c| c.image("xs7-bios"))?;
    let a = image.system_disk(&ctx.dir.join("disk-a.qcow2"))?;
    let b = blank_disk(
        &ctx.dir.join("disk-b.qcow2"),
        "1G",
        "XRLAB-TGT0",
        0x5000c500a0000002,
    )?;
    let c = blank_disk(
        &ctx.dir.join("disk-c.qcow2"),
        "1G",
        "XRLAB-TGT1",
        0x5000c500a0000003,
    )?;

    ctx.phase("reboot-unplug-plug", |cx| {
        let mut vm = cx.boot("boot1", &image, &[&a, &b])?;
        let seen = vm.run(DISKS, MIN)?.stdout;
        ensure!(
            seen.trim() == "sda:XRLAB-SYS0 sdb:XRLAB-TGT0",
            "disks at boot: {seen}"
        );
        let out = vm.run(
            "echo hello > /root/driver-file && sync && cat /root/driver-file",
            MIN,
        )?;
        ensure!(out.stdout.trim() == "hello", "run output: {out:?}");
        let failing = vm.run_status("echo to-stderr >&2; exit 7", MIN)?;
        ensure!(
            failing.status == 7 && failing.stderr.trim() == "to-stderr",
            "status/stderr: {failing:?}"
        );
        // a few MB of binary data through the agent channel
        let binary = image.dir.join("vmlinuz");
        vm.copy_in(&binary, "/root/copied", 0o755)?;
        let sums = vm
            .run("sha256sum < /root/copied | cut -d' ' -f1", MIN)?
            .stdout;
        ensure!(sums.trim() == sha256_file(&binary)?, "copied file differs");

        let took = vm.reboot(10 * MIN)?;
        eprintln!("  in-place reboot took {:.0} s", took.as_secs_f64());

        vm.unplug_disk(1)?;
        wait_for(
            &mut vm,
            "! lsblk -dno SERIAL | grep -q XRLAB-TGT0",
            "disk B to disappear",
        )?;
        vm.plug_disk(c.clone())?;
        wait_for(
            &mut vm,
            "lsblk -dno SERIAL | grep -q XRLAB-TGT1",
            "disk C to appear",
        )?;
        vm.power_cut()
    })?;
    ctx.phase("swapped-order", |cx| {
        // B first on the bus (the kernel names it sda), the firmware still boots A
        let mut vm = cx.boot_from("boot2-swapped", &image, &[&b, &a], 1)?;
        let seen = vm.run(DISKS, MIN)?.stdout;
        ensure!(
            seen.trim() == "sda:XRLAB-TGT0 sdb:XRLAB-SYS0",
            "disks after swapping the order: {seen}"
        );
        // root is found by label, so the system still comes up from disk A, now sdb
        let root = vm
            .run("readlink -f \"$(findmnt -n -o SOURCE /)\"", MIN)?
            .stdout;
        ensure!(root.trim() == "/dev/sdb1", "root after swap: {root}");
        let file = vm.run("cat /root/driver-file", MIN)?.stdout;
        ensure!(
            file.trim() == "hello",
            "file written before the power cut: {file:?}"
        );
        vm.shutdown(5 * MIN)
    })
}

fn wait_for(vm: &mut crate::vm::Vm, check: &str, what: &str) -> Result<()> {
    let script =
        format!("for i in $(seq 1 60); do if {check}; then exit 0; fi; sleep 1; done; exit 1");
    vm.run(&script, 2 * MIN)
        .map_err(|e| e.context(format!("waiting for {what}")))?;
    Ok(())
}

fn sha256_file(p: &std::path::Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    Ok(hex::encode(Sha256::digest(std::fs::read(p)?)))
}
