//! Issue 7's `replace` on a converted xs7-bios guest.
//! 1. A member disk unplugged for a few seconds of writes and plugged back: `replace` re-adds
//!    it, and the bytes QEMU saw written to it until the arrays are in sync are measured,
//!    with the bitmap and, as a control, without.
//! 2. Disk A pulled (QMP device_del): `replace` names it by serial and lets its members go;
//!    bad new disks are refused with nothing written; a blank disk hot-added; `replace --new`
//!    brings every array back to [UU]; doctor passes; the new disk alone boots.

use super::convert::{
    assert_on_raid_as, converted_pair_as, efi_current_label, Expect, CHECK_MARKERS, XCPNG8, XS65,
    XS7,
};
use super::xenraid::{install_with_monitor, GUEST_BIN};
use super::Ctx;
use crate::guest_state::{mdstat, wait_all_in_sync, wait_arrays_active};
use crate::images::blank_disk;
use crate::vm::{Disk, Vm};
use anyhow::{ensure, Context, Result};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
const A_ID: &str = "/dev/disk/by-id/wwn-0x5000c500a0000001";
const B_ID: &str = "/dev/disk/by-id/wwn-0x5000c500a0000002";

fn wait_gone(vm: &mut Vm, by_id: &str) -> Result<()> {
    vm.run(
        &format!("for i in $(seq 1 600); do [ -e {by_id} ] || exit 0; sleep 0.1; done; exit 1"),
        MIN,
    )
    .with_context(|| format!("{by_id} still there after the unplug"))?;
    Ok(())
}

fn wait_present(vm: &mut Vm, by_id: &str) -> Result<()> {
    vm.run(
        &format!("udevadm settle; for i in $(seq 1 600); do [ -e {by_id} ] && exit 0; sleep 0.1; done; exit 1"),
        MIN,
    )
    .with_context(|| format!("{by_id} did not appear after the plug"))?;
    Ok(())
}

/// Sum of the arrays' sizes: what one member disk holds of them.
fn member_bytes(vm: &mut Vm) -> Result<u64> {
    let out = vm.run("cat /sys/block/md*/size", MIN)?.stdout;
    Ok(out
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum::<u64>()
        * 512)
}

/// Disk B (config index `index`) away during 8 MiB of writes to /, then back; `replace`
/// re-adds it. Returns the bytes written to B from its return until every array is in sync,
/// and B's new index.
fn transient_round(vm: &mut Vm, b: &Disk, index: usize, what: &str) -> Result<(u64, usize)> {
    vm.unplug_disk(index)?;
    wait_gone(vm, B_ID)?;
    vm.release_unplugged(index)?;
    vm.run(
        &format!(
            "dd if=/dev/urandom of=/root/away-{index} bs=1M count=8 conv=fsync status=none; sync"
        ),
        MIN,
    )?;
    vm.plug_disk(b.clone())?;
    let back = vm.block_stats()?.len() - 1;
    let before = vm.block_stats()?[back].1;
    wait_present(vm, B_ID)?;
    let out = vm.run_status(&format!("{GUEST_BIN} replace --yes"), 10 * MIN)?;
    let all = format!("{}{}", out.stdout, out.stderr);
    ensure!(
        out.status == 0 || all.contains("every array is complete"),
        "{what}: replace after the disk came back exited {}:\n{all}",
        out.status
    );
    let readded = all.contains("--re-add");
    wait_all_in_sync(vm, 30 * MIN)?;
    let degraded: Vec<_> = mdstat(vm)?
        .into_iter()
        .filter(|a| a.health != "[UU]")
        .collect();
    ensure!(
        degraded.is_empty(),
        "{what}: not back to [UU]: {degraded:?}"
    );
    let written = vm.block_stats()?[back].1 - before;
    println!(
        "REPLACE transient loss ({what}): {} by xenraid replace{}",
        if readded {
            "re-added (--re-add)"
        } else {
            "added (--add)"
        },
        if out.status != 0 {
            " (arrays already complete: udev re-added)"
        } else {
            ""
        }
    );
    Ok((written, back))
}

pub fn replace_scenario(ctx: &mut Ctx) -> Result<()> {
    replace_as(ctx, &XS7)
}

/// Issue 7 on UEFI: the same, the new disk booting through its own entry.
pub fn replace_uefi(ctx: &mut Ctx) -> Result<()> {
    replace_as(ctx, &XCPNG8)
}

/// Issue 5 on 6.5: the same with md 0.90 arrays (no names) and gptmbr.bin, the new disk's
/// legacy-BIOS-bootable flag set only once its root member is in sync.
pub fn replace_xs65(ctx: &mut Ctx) -> Result<()> {
    replace_as(ctx, &XS65)
}

fn replace_as(ctx: &mut Ctx, want: &Expect) -> Result<()> {
    let p = ctx.phase("converted-guest", |c| converted_pair_as(c, want))?;
    let new = blank_disk(
        &ctx.dir.join("new.qcow2"),
        "4G",
        "XRLAB-NEW0",
        0x5000c500a0000010,
    )?;
    let small = blank_disk(
        &ctx.dir.join("small.qcow2"),
        "2G",
        "XRLAB-SMALL0",
        0x5000c500a0000011,
    )?;
    ctx.phase("transient-loss", |c| {
    let mut vm = c.boot("transient", &p.image, &[&p.a, &p.b])?;
    install_with_monitor(&mut vm, "[alert.xapi]\n")?;
    let member = member_bytes(&mut vm)?;
    let (with_bitmap, back) = transient_round(&mut vm, &p.b, 1, "bitmap")?;
    vm.run(
        "for md in /sys/block/md*; do mdadm --grow --bitmap=none /dev/${md##*/}; done; sysctl -q dev.raid.speed_limit_min=500000",
        MIN,
    )?;
    let (without, _) = transient_round(&mut vm, &p.b, back, "no bitmap")?;
    vm.run(
        "for md in /sys/block/md*; do mdadm --grow --bitmap=internal --bitmap-chunk=1024 /dev/${md##*/}; done",
        5 * MIN,
    )?;
    let pct = |b: u64| b as f64 * 100.0 / member as f64;
    println!(
        "REPLACE resync after a brief loss, bytes written to the member: bitmap {:.1} MiB ({:.2}% of {:.0} MiB), no bitmap {:.1} MiB ({:.1}%)",
        with_bitmap as f64 / 1048576.0,
        pct(with_bitmap),
        member as f64 / 1048576.0,
        without as f64 / 1048576.0,
        pct(without)
    );
    ensure!(
        pct(with_bitmap) <= 2.0,
        "with the bitmap the resync must stay within 2% of the member"
    );
    vm.run(CHECK_MARKERS, MIN)?;
    vm.shutdown(5 * MIN)
})?;
    ctx.phase("pull-disk-a", |c| {
        let mut vm = c.boot("pulled", &p.image, &[&p.a, &p.b])?;
        install_with_monitor(&mut vm, "[alert.xapi]\n")?;
        vm.unplug_disk(0)?;
        wait_gone(&mut vm, A_ID)?;
        let out = vm.run_status(&format!("{GUEST_BIN} replace --yes"), 5 * MIN)?;
        ensure!(
            out.status == 0
                && out.stdout.contains("XRLAB-SYS0")
                && out.stdout.contains("replace --new"),
            "replace with disk A gone must name it and say what next, exit {}:\n{}{}",
            out.status,
            out.stdout,
            out.stderr
        );
        println!(
            "REPLACE disk A pulled: {}",
            out.stdout
                .lines()
                .filter(|l| l.starts_with("next:"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
        refuse_bad_new_disks(&mut vm, &small)?;
        vm.plug_disk(new.clone())?;
        wait_present(&mut vm, &new.by_id())?;
        let out = vm.run_status(
            &format!(
                "{GUEST_BIN} replace --new {} --yes --resync-speed max",
                new.by_id()
            ),
            30 * MIN,
        )?;
        ensure!(
            out.status == 0,
            "replace --new exited {}:\n{}{}",
            out.status,
            out.stdout,
            out.stderr
        );
        let arrays = wait_all_in_sync(&mut vm, 30 * MIN)?;
        ensure!(
            arrays.len() == want.arrays && arrays.iter().all(|a| a.health == "[UU]"),
            "after replace every array must be [UU]: {arrays:?}"
        );
        let on_new = vm
            .run(
                &format!("lsblk -rno TYPE {} | grep -c raid1", new.by_id()),
                MIN,
            )?
            .stdout;
        ensure!(
            on_new.trim() == want.arrays.to_string(),
            "the new disk should hold a member of all {} arrays, holds {on_new}",
            want.arrays
        );
        let doctor = vm.run_status(&format!("{GUEST_BIN} doctor"), 10 * MIN)?;
        ensure!(
            doctor.status == 0,
            "doctor after replace exited {}:\n{}",
            doctor.status,
            doctor.stdout
        );
        println!(
            "REPLACE new disk: every array [UU], a member of each on XRLAB-NEW0, doctor passes"
        );
        vm.shutdown(5 * MIN)
    })?;
    ctx.phase("boot-new-disk-only", |c| {
        let mut vm = c.boot("new-disk-only", &p.image, &[&new])?;
        assert_on_raid_as(&mut vm, "the new disk alone", want.root)?;
        let arrays = wait_arrays_active(&mut vm, 3 * MIN)?;
        ensure!(
            arrays.len() == want.arrays,
            "{} arrays expected: {arrays:?}",
            want.arrays
        );
        if p.image.is_uefi() {
            let current = efi_current_label(&mut vm)?;
            ensure!(
                current.ends_with("(xenraid XRLAB-NEW0)"),
                "the new disk booted through '{current}', not its own entry"
            );
            println!("REPLACE the firmware booted the new disk's own entry '{current}'");
        }
        println!("REPLACE the new disk alone boots the RAID root, markers intact");
        vm.shutdown(5 * MIN)
    })
}

/// Each refused with exit 3, the disk's content unchanged.
fn refuse_bad_new_disks(vm: &mut Vm, small: &Disk) -> Result<()> {
    let fingerprint = |vm: &mut Vm, id: &str| -> Result<String> {
        Ok(vm
            .run(
                // Signatures and partitions as on disk (sgdisk -p makes up a new disk GUID
                // for a disk without GPT at every call).
                &format!(
                    "wipefs --no-act {id}; partx -g -o NR,START,END,TYPE {id} 2>/dev/null || true"
                ),
                MIN,
            )?
            .stdout)
    };
    let refused = |vm: &mut Vm, args: &str, want: &str| -> Result<()> {
        let out = vm.run_status(&format!("{GUEST_BIN} replace {args} --yes"), 5 * MIN)?;
        let all = format!("{}{}", out.stdout, out.stderr);
        ensure!(
            out.status == 3 && all.contains(want),
            "replace {args} must be refused (exit 3, '{want}'), exit {}:\n{all}",
            out.status
        );
        println!("REPLACE refused: replace {args} -> exit 3, '{want}'");
        Ok(())
    };
    let before = fingerprint(vm, B_ID)?;
    refused(vm, &format!("--new {B_ID}"), "only working copy")?;
    ensure!(fingerprint(vm, B_ID)? == before, "the healthy disk changed");

    vm.plug_disk(small.clone())?;
    let id = small.by_id();
    wait_present(vm, &id)?;
    let zeros = "cmp -n 1048576 /dev/zero";
    refused(vm, &format!("--new {id}"), "too small")?;
    vm.run(&format!("{zeros} {id}"), MIN)
        .context("the small disk was written")?;

    vm.run(
        &format!("mkfs.ext4 -q -F {id} && mkdir -p /mnt/busy && mount {id} /mnt/busy"),
        MIN,
    )?;
    let before = fingerprint(vm, &id)?;
    refused(vm, &format!("--new {id} --wipe-target"), "mounted")?;
    ensure!(fingerprint(vm, &id)? == before, "the disk in use changed");
    vm.run("umount /mnt/busy", MIN)?;
    Ok(())
}
