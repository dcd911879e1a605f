//! Issue 6's `doctor` on a converted xs7-bios guest: healthy, it passes every check; then
//! each invariant is broken for real — the initramfs rebuilt without mdadm.conf, GRUB's boot
//! code wiped from disk B, the root array's bitmap removed, md/backup's first sync held back
//! by read-auto — and doctor must name it (exit 4)
//! and `--fix` must repair it (exit 0 after). Last, disk B alone must boot: the repaired boot
//! code is real.

use super::convert::{
    assert_on_raid, assert_on_raid_as, converted_pair, converted_pair_as, XCPNG8,
};
use super::xenraid::{install_with_monitor, GUEST_BIN};
use super::Ctx;
use crate::vm::Vm;
use anyhow::{ensure, Context, Result};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// What a reboot during a made-anew array's first pass leaves (convert makes md/backup anew):
/// md's resync point saved short of the end (set through sysfs while the sync is frozen), the
/// array assembled again by udev's incremental path read-auto, as at boot, where md starts no
/// sync until the first write. md/backup is never mounted, so nothing ever writes it.
const FIRST_SYNC_HELD_BACK: &str = r#"set -e
md=$(basename "$(readlink -f /dev/md/backup)")
members=$(ls -d /sys/block/$md/md/dev-* | sed 's|.*/dev-|/dev/|')
echo frozen > /sys/block/$md/md/sync_action
echo 0 > /sys/block/$md/md/resync_start
mdadm --stop /dev/$md
echo 1 > /sys/module/md_mod/parameters/start_ro
for m in $members; do mdadm --incremental "$m"; done
udevadm settle
md=$(basename "$(readlink -f /dev/md/backup)")
cat /proc/mdstat
test "$(cat /sys/block/$md/md/array_state)" = read-auto
test "$(cat /sys/block/$md/md/resync_start)" != none
"#;

/// Runs doctor; returns its exit status and output.
fn doctor(vm: &mut Vm, args: &str) -> Result<(i32, String)> {
    let out = vm.run_status(&format!("{GUEST_BIN} doctor {args}"), 20 * MIN)?;
    Ok((out.status, format!("{}{}", out.stdout, out.stderr)))
}

/// Breaks one thing, then: doctor fails naming `check`, `--fix` repairs, doctor passes.
fn break_and_fix(vm: &mut Vm, what: &str, breakage: &str, check: &str) -> Result<()> {
    vm.run(breakage, 20 * MIN)
        .with_context(|| format!("breaking: {what}"))?;
    let (status, out) = doctor(vm, "")?;
    let named = out
        .lines()
        .any(|l| l.starts_with("FAIL") && l.contains(check));
    ensure!(
        status == 4 && named,
        "{what}: doctor must fail `{check}` with exit 4, got {status}:\n{out}"
    );
    let (status, fixed) = doctor(vm, "--fix")?;
    ensure!(
        status == 0,
        "{what}: doctor --fix left exit {status}:\n{fixed}"
    );
    let (status, after) = doctor(vm, "")?;
    ensure!(
        status == 0,
        "{what}: after --fix doctor exits {status}:\n{after}"
    );
    println!("DOCTOR {what}: detected (`{check}` FAIL, exit 4), fixed by --fix, passes after");
    Ok(())
}

pub fn doctor_scenario(ctx: &mut Ctx) -> Result<()> {
    let p = ctx.phase("converted-guest", converted_pair)?;
    ctx.phase("break-and-fix", |c| {
        let mut vm = c.boot("doctored", &p.image, &[&p.a, &p.b])?;
        install_with_monitor(&mut vm, "[alert.xapi]\n")?;
        let (status, out) = doctor(&mut vm, "")?;
        ensure!(status == 0, "a freshly converted host must pass doctor, exit {status}:\n{out}");
        println!("DOCTOR converted host: every check passes");

        break_and_fix(
            &mut vm,
            "mdadm.conf (and dracut's mdraid module) left out of the initramfs",
            "kver=$(uname -r); dracut --force --omit mdraid /boot/initrd-$kver.img $kver",
            "initramfs",
        )?;
        break_and_fix(
            &mut vm,
            "GRUB's boot code wiped from disk B",
            "dd if=/dev/zero of=/dev/disk/by-id/wwn-0x5000c500a0000002 bs=440 count=1 conv=notrunc,fsync",
            "bootloader",
        )?;
        break_and_fix(
            &mut vm,
            "the root array's write-intent bitmap removed",
            "mdadm --grow --bitmap=none /dev/md/root",
            "bitmap",
        )?;
        break_and_fix(
            &mut vm,
            "md/backup's first sync held back: reassembled read-auto with its resync pending",
            FIRST_SYNC_HELD_BACK,
            "recovery",
        )?;
        vm.shutdown(5 * MIN)
    })?;
    ctx.phase("boot-disk-b-only", |c| {
        let mut vm = c.boot("disk-b-only", &p.image, &[&p.b])?;
        assert_on_raid(&mut vm, "disk B alone after doctor --fix")?;
        vm.shutdown(5 * MIN)
    })
}

/// Issue 6 on UEFI: the ESP copy on the disk that is not mounted at /boot/efi drifts (a file
/// changed behind xenraid's back); doctor names `esp-copies`, `--fix` copies the good ESP
/// over it; then that disk alone boots.
pub fn doctor_uefi(ctx: &mut Ctx) -> Result<()> {
    let p = ctx.phase("converted-guest", |c| converted_pair_as(c, &XCPNG8))?;
    ctx.phase("break-and-fix", |c| {
        let mut vm = c.boot("doctored", &p.image, &[&p.a, &p.b])?;
        install_with_monitor(&mut vm, "[alert.xapi]\n")?;
        let (status, out) = doctor(&mut vm, "")?;
        ensure!(
            status == 0,
            "a freshly converted UEFI host must pass doctor, exit {status}:\n{out}"
        );
        println!("DOCTOR converted UEFI host: every check passes");
        // The ESP not mounted at /boot/efi: the other disk's.
        let drift = "mounted=$(findmnt -n -o SOURCE /boot/efi); \
            for p in /dev/disk/by-label/XRAID-ESP*; do \
              [ \"$(readlink -f $p)\" = \"$(readlink -f $mounted)\" ] && continue; \
              mkdir -p /mnt/other && mount $p /mnt/other && \
              echo '# changed behind xenraid' >> /mnt/other/EFI/xenserver/grub.cfg && \
              umount /mnt/other && exit 0; \
            done; exit 1";
        break_and_fix(
            &mut vm,
            "the ESP copy on the other disk drifted (grub.cfg edited there only)",
            drift,
            "esp-copies",
        )?;
        vm.shutdown(5 * MIN)
    })?;
    ctx.phase("boot-disk-a-only", |c| {
        let mut vm = c.boot("disk-a-only", &p.image, &[&p.a])?;
        assert_on_raid_as(&mut vm, "disk A alone after doctor --fix", XCPNG8.root)?;
        vm.shutdown(5 * MIN)
    })
}
