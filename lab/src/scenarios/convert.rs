//! `xenraid convert` end to end on xs7-bios: one command, one reboot it makes itself, the
//! resume unit finishing the job; then each disk alone boots. Also the disk order swapped
//! between the phases, and rollback from the last step before the point of no return.

use super::xenraid::{install, GUEST_BIN};
use super::Ctx;
use crate::guest_state::{mdstat, root_source, wait_all_in_sync, wait_arrays_active};
use crate::images::{blank_disk, Image};
use crate::vm::{Disk, Vm};
use anyhow::{ensure, Context, Result};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
const PROFILE: &str = "xs7-bios";

/// What a converted guest of one seed system looks like.
pub struct Expect {
    pub profile: &'static str,
    /// The array `/` is on.
    pub root: &'static str,
    /// The array the SR is created on; None on a host without XenServer (no `xe`).
    pub sr: Option<&'static str>,
    pub arrays: usize,
    /// The original disk's table afterwards: this many Linux RAID partitions, plus the boot
    /// partition's type, when the profile has one outside md.
    pub raid_partitions: usize,
    pub boot_partition: Option<&'static str>,
}

pub const XS7: Expect = Expect {
    profile: "xs7-bios",
    root: "/dev/md/root",
    sr: Some("/dev/md/sr"),
    arrays: 5,
    raid_partitions: 5,
    boot_partition: Some("EF02"),
};

/// XenServer 6.5: md 0.90 (no names), root p1, backup p2, SR p3, extlinux + gptmbr.bin.
pub const XS65: Expect = Expect {
    profile: "xs65-bios",
    root: "/dev/md0",
    sr: Some("/dev/md2"),
    arrays: 3,
    raid_partitions: 3,
    boot_partition: None,
};

/// XCP-ng 8 on UEFI: an ESP (p4) on each disk, outside md.
pub const XCPNG8: Expect = Expect {
    profile: "xcpng8-uefi",
    root: "/dev/md/root",
    sr: Some("/dev/md/sr"),
    arrays: 5,
    raid_partitions: 5,
    boot_partition: Some("EF00"),
};

/// Plain Debian 12 (GRUB2 by grub-mkconfig, GPT with a BIOS boot partition p1, / on p2,
/// swap on p3): / and swap mirrored, the BIOS boot partition outside md, no SR.
pub const DEBIAN: Expect = Expect {
    profile: "debian-bios",
    root: "/dev/md/root",
    sr: None,
    arrays: 2,
    raid_partitions: 2,
    boot_partition: Some("EF02"),
};

/// Marker files with checksums (a hardlink and a sparse file among them), written before the
/// conversion and verified after it.
pub const WRITE_MARKERS: &str = r#"set -e
mkdir -p /root/markers /var/log/markers
for d in /root/markers /var/log/markers; do
  for i in 1 2 3; do head -c $((i * 65536)) /dev/urandom > "$d/m$i"; done
  ln -f "$d/m1" "$d/hardlink-to-m1"
done
truncate -s 64M /root/markers/sparse; echo tail >> /root/markers/sparse
setfattr -n user.xenraid -v kept /root/markers/m2 2>/dev/null || true
sha256sum /root/markers/* /var/log/markers/* > /root/markers.sha256
sync
"#;
pub const CHECK_MARKERS: &str = "sha256sum -c --quiet /root/markers.sha256 && \
    [ \"$(stat -c %h /root/markers/m1)\" = 2 ] && \
    [ \"$(du -k /root/markers/sparse | cut -f1)\" -lt 1024 ]";

pub struct Pair {
    pub image: Image,
    pub a: Disk,
    pub b: Disk,
}

pub fn pair(ctx: &Ctx) -> Result<Pair> {
    pair_of(ctx, PROFILE)
}

pub fn pair_of(ctx: &Ctx, profile: &str) -> Result<Pair> {
    pair_named(ctx, profile, "disk")
}

/// The same, with disk files named `{prefix}-a.qcow2` / `{prefix}-b.qcow2` (several
/// machines in one run).
pub fn pair_named(ctx: &Ctx, profile: &str, prefix: &str) -> Result<Pair> {
    let image = ctx.image(profile)?;
    let a = image.system_disk(&ctx.dir.join(format!("{prefix}-a.qcow2")))?;
    let b = blank_disk(
        &ctx.dir.join(format!("{prefix}-b.qcow2")),
        "4G",
        "XRLAB-TGT0",
        0x5000c500a0000002,
    )?;
    Ok(Pair { image, a, b })
}

/// Boots the original with both disks, writes markers, installs xenraid, starts `convert`
/// detached (it reboots the guest itself).
pub fn start_convert(vm: &mut Vm, b: &Disk, extra: &str) -> Result<()> {
    start_convert_with(vm, b, &format!("--sr-name 'Local storage' {extra}"))
}

/// The same with exactly these options (a host without an SR takes no `--sr-name`).
pub fn start_convert_with(vm: &mut Vm, b: &Disk, extra: &str) -> Result<()> {
    vm.run(WRITE_MARKERS, MIN)?;
    install(vm)?;
    // A convert that fails powers the guest off, so the lab sees it at once (with the error
    // on the console) instead of waiting for a reboot that never comes.
    vm.spawn(&format!(
        "{GUEST_BIN} convert --target {} --yes {extra} || {{ echo XENRAID-CONVERT-FAILED; poweroff; }}",
        b.by_id()
    ))
}

/// / on the root array, the markers intact, the system not in emergency mode.
pub fn assert_on_raid(vm: &mut Vm, what: &str) -> Result<()> {
    assert_on_raid_as(vm, what, XS7.root)
}

pub(super) fn assert_on_raid_as(vm: &mut Vm, what: &str, root_array: &str) -> Result<()> {
    let root = root_source(vm)?;
    let md_root = vm
        .run(&format!("readlink -f {root_array}"), MIN)?
        .stdout
        .trim()
        .to_string();
    if root != md_root || !root.starts_with("/dev/md") {
        let e = anyhow::anyhow!("{what}: / is on {root}, {root_array} is {md_root}");
        return Err(vm.fail(e));
    }
    crate::guest_state::assert_boot_finished(vm, what)?;
    vm.run(CHECK_MARKERS, MIN)
        .with_context(|| format!("{what}: marker files"))?;
    Ok(())
}

/// After the resume unit finished: complete journal, every array [UU], SR through xe, unit
/// gone, the original disk (by serial) repartitioned as the target.
pub(super) fn assert_converted_as(
    vm: &mut Vm,
    image: &Image,
    a: &Disk,
    want: &Expect,
) -> Result<()> {
    assert_converted_with(vm, image, a, want, BootOrderSeen::Live)
}

/// Where a UEFI run's BootOrder is judged. OVMF rewrites BootOrder from QEMU's `bootindex`
/// list at every boot (real firmware that honours BootOrder keeps it): after a power cut that
/// came when xenraid had already set the order, the order xenraid left is in the variable
/// store frozen at the cut, not in the one the replay's boot rewrote.
pub(super) enum BootOrderSeen<'a> {
    Live,
    Frozen(&'a std::path::Path),
}

pub(super) fn assert_converted_with(
    vm: &mut Vm,
    image: &Image,
    a: &Disk,
    want: &Expect,
    boot_order: BootOrderSeen<'_>,
) -> Result<()> {
    assert_on_raid_as(vm, "after the automatic resume", want.root)?;
    let status = vm.run_status("systemctl status xenraid-resume.service --no-pager; journalctl -b -u xenraid-resume --no-pager | tail -40", MIN)?;
    let journal = vm.run("cat /var/lib/xenraid/convert.json", MIN)?.stdout;
    ensure!(
        journal.contains("\"state\": \"complete\""),
        "journal not complete:\n{}\n{}",
        status.stdout,
        crate::vm::tail(&journal, 40)
    );
    let arrays = wait_all_in_sync(vm, 30 * MIN)?;
    ensure!(
        arrays.len() == want.arrays,
        "expected {} arrays: {arrays:?}",
        want.arrays
    );
    if let Some(sr) = want.sr {
        let xe = vm.run("cat /var/log/xe-standin.log", MIN)?.stdout;
        let host = image.fact("INSTALL_UUID");
        for want in [
            "sr-create",
            "type=lvm",
            "content-type=user",
            &format!("device-config:device={sr}"),
            "name-label=Local\\ storage",
            &format!("host-uuid={host}"),
        ] {
            ensure!(xe.contains(want), "xe sr-create lacks {want}:\n{xe}");
        }
    }
    vm.run(
        "! test -e /etc/systemd/system/xenraid-resume.service && ! test -e /var/lib/xenraid/xenraid",
        MIN,
    )
    .context("the resume unit must be gone after the finish")?;
    if image.is_uefi() {
        match boot_order {
            BootOrderSeen::Live => assert_boot_order_starts_with_both(vm)?,
            BootOrderSeen::Frozen(store) => assert_frozen_boot_order_starts_with_both(store)?,
        }
    }
    let table = vm.run(&format!("sgdisk -p {}", a.by_id()), MIN)?.stdout;
    ensure!(
        table.matches("FD00").count() == want.raid_partitions
            && want.boot_partition.is_none_or(|t| table.contains(t)),
        "the original disk was not repartitioned like the target:\n{table}"
    );
    Ok(())
}

/// Each disk alone, through the firmware: BIOS boots the only disk's boot code, UEFI the
/// boot entry xenraid made for that disk (the variable store is the run's own).
pub(super) fn boot_each_disk_alone_as(ctx: &mut Ctx, p: &Pair, want: &Expect) -> Result<()> {
    // OVMF deletes boot entries whose disk is absent (QemuBootOrderLib prunes unmatched HD()
    // entries); real firmware keeps them. Each lone boot starts from the converted store.
    let vars = ctx.dir.join("uefi-vars.fd");
    let converted_vars = ctx.dir.join("uefi-vars-converted.fd");
    if p.image.is_uefi() {
        std::fs::copy(&vars, &converted_vars)?;
    }
    for (name, disk) in [("boot-disk-a-only", &p.a), ("boot-disk-b-only", &p.b)] {
        ctx.phase(name, |c| {
            if p.image.is_uefi() {
                std::fs::copy(&converted_vars, &vars)?;
            }
            let mut vm = c.boot(name, &p.image, &[disk])?;
            assert_on_raid_as(&mut vm, name, want.root)?;
            if p.image.is_uefi() {
                let current = efi_current_label(&mut vm)?;
                ensure!(
                    current.ends_with(&format!("(xenraid {})", disk.serial)),
                    "{name}: the firmware booted '{current}', not the disk's own xenraid entry"
                );
            }
            let arrays = wait_arrays_active(&mut vm, 3 * MIN)?;
            ensure!(
                arrays.len() == want.arrays
                    && arrays
                        .iter()
                        .all(|x| x.health == "[U_]" || x.health == "[_U]"),
                "{name}: expected {} arrays on one member: {arrays:?}",
                want.arrays
            );
            vm.shutdown(5 * MIN)
        })?;
    }
    Ok(())
}

pub fn convert(ctx: &mut Ctx) -> Result<()> {
    convert_as(ctx, &XS7)
}

/// Issue 5: the same end-to-end proof on XenServer 6.5 (md 0.90, extlinux).
pub fn convert_xs65(ctx: &mut Ctx) -> Result<()> {
    convert_as(ctx, &XS65)
}

/// Issue 5: the same end-to-end proof on XCP-ng 8 (UEFI, an ESP and a boot entry per disk).
pub fn convert_uefi(ctx: &mut Ctx) -> Result<()> {
    convert_as(ctx, &XCPNG8)
}

/// Issue 5: plain Debian 12 with GRUB2 (grub-mkconfig) and dracut, no XenServer.
pub fn convert_debian(ctx: &mut Ctx) -> Result<()> {
    convert_as(ctx, &DEBIAN)
}

fn convert_as(ctx: &mut Ctx, want: &Expect) -> Result<()> {
    let p = ctx.phase("image", |c| pair_of(c, want.profile))?;
    ctx.phase("convert-reboot-resume", |c| {
        let mut vm = c.boot("original", &p.image, &[&p.a, &p.b])?;
        // What an admin sees: the host, the plan (writes nothing), then the mirror.
        install(&mut vm)?;
        show(&mut vm, &format!("{GUEST_BIN} inspect"))?;
        show(
            &mut vm,
            &format!("{GUEST_BIN} plan --target {}", p.b.by_id()),
        )?;
        match want.sr {
            Some(_) => start_convert(&mut vm, &p.b, "--resync-speed max")?,
            None => start_convert_with(&mut vm, &p.b, "--resync-speed max")?,
        }
        vm.wait_booted(60 * MIN)?;
        assert_converted_as(&mut vm, &p.image, &p.a, want)?;
        show(&mut vm, &format!("{GUEST_BIN} status"))?;
        let again = vm.run(&format!("{GUEST_BIN} resume"), MIN)?.stdout;
        ensure!(again.contains("complete"), "resume after the end: {again}");
        vm.shutdown(5 * MIN)
    })?;
    boot_each_disk_alone_as(ctx, &p, want)
}

/// Prints a command's output as the guest's admin would see it.
fn show(vm: &mut Vm, command: &str) -> Result<()> {
    let out = vm.run_status(command, MIN)?;
    println!("\n[guest]# {command}\n{}{}", out.stdout, out.stderr);
    Ok(())
}

/// The seed zaps "/dev/sda" after the reboot; here the VM swaps the disks' order between the
/// phases, so the original is sdb: xenraid must still repartition the original (by serial).
pub fn convert_swapped(ctx: &mut Ctx) -> Result<()> {
    convert_swapped_as(ctx, &XS7)
}

/// Issue 5: the swapped order on XenServer 6.5 (extlinux, md 0.90).
pub fn convert_swapped_xs65(ctx: &mut Ctx) -> Result<()> {
    convert_swapped_as(ctx, &XS65)
}

/// Issue 5: the swapped order on XCP-ng 8 (UEFI: BootNext names the target's entry).
pub fn convert_swapped_uefi(ctx: &mut Ctx) -> Result<()> {
    convert_swapped_as(ctx, &XCPNG8)
}

/// Issue 5: the swapped order on plain Debian.
pub fn convert_swapped_debian(ctx: &mut Ctx) -> Result<()> {
    convert_swapped_as(ctx, &DEBIAN)
}

fn convert_swapped_as(ctx: &mut Ctx, want: &Expect) -> Result<()> {
    let p = ctx.phase("image", |c| pair_of(c, want.profile))?;
    ctx.phase("phase-1", |c| {
        let mut vm = c.boot("original", &p.image, &[&p.a, &p.b])?;
        let stop = "--stop-before reboot";
        match want.sr {
            Some(_) => start_convert(&mut vm, &p.b, stop)?,
            None => start_convert_with(&mut vm, &p.b, stop)?,
        }
        let done = "for i in $(seq 1 3600); do grep -q '\"stop_before\": \"reboot\"' /var/lib/xenraid/convert.json 2>/dev/null && ! pgrep -x xenraid >/dev/null && exit 0; sleep 1; done; exit 1";
        vm.run(done, 61 * MIN)?;
        vm.shutdown(5 * MIN)
    })?;
    ctx.phase("phase-2-swapped", |c| swapped_boot(c, &p, want))?;
    boot_each_disk_alone_as(ctx, &p, want)
}

/// B first on the bus (scsi-id 0), the firmware still booting A, the original. The guest
/// kernel names disks in the order their SCSI probes finish, not in bus order (seen: id 0
/// became sdb), so a boot that left the names unswapped proves nothing about the swap. It runs
/// on overlays with a copy of the variable store: such a boot is thrown away and tried again
/// from the same state; the one that swapped is committed into A and B.
fn swapped_boot(c: &mut Ctx, p: &Pair, want: &Expect) -> Result<()> {
    const TRIES: usize = 4;
    let vars = c.dir.join("uefi-vars.fd");
    let vars_before = c.dir.join("uefi-vars-before-phase-2.fd");
    if vars.exists() {
        std::fs::copy(&vars, &vars_before)?;
    }
    for attempt in 1..=TRIES {
        let over = |d: &Disk, tag: &str| -> Result<Disk> {
            let path = c.dir.join(format!("{tag}-try{attempt}.qcow2"));
            crate::images::overlay(&d.path, "qcow2", &path)?;
            Ok(Disk::new(path, &d.serial, d.wwn))
        };
        let (a, b) = (over(&p.a, "a")?, over(&p.b, "b")?);
        let mut vm = c.boot_from(&format!("swapped-{attempt}"), &p.image, &[&b, &a], 1)?;
        let names = vm
            .run("readlink -f /dev/disk/by-id/wwn-0x5000c500a0000001", MIN)?
            .stdout;
        if names.trim() != "/dev/sdb" {
            eprintln!(
                "[convert]   boot {attempt}: the kernel named the original {} (probe order), not sdb: thrown away, booting again",
                names.trim()
            );
            vm.power_cut()?;
            for d in [&a, &b] {
                std::fs::remove_file(&d.path)?;
            }
            if vars_before.exists() {
                std::fs::copy(&vars_before, &vars)?;
            }
            continue;
        }
        assert_converted_as(&mut vm, &p.image, &a, want)?;
        vm.shutdown(5 * MIN)?;
        for d in [&a, &b] {
            crate::images::qemu_img(&["commit", "-q", &d.path.display().to_string()])?;
            std::fs::remove_file(&d.path)?;
        }
        return Ok(());
    }
    anyhow::bail!("{TRIES} boots in a row named the disks unswapped: the swap was never tested")
}

/// The label of the firmware entry this boot came through (efibootmgr's BootCurrent).
pub(super) fn efi_current_label(vm: &mut Vm) -> Result<String> {
    let out = vm.run("efibootmgr", MIN)?.stdout;
    let current = out
        .lines()
        .find_map(|l| l.strip_prefix("BootCurrent:"))
        .map(str::trim)
        .context("efibootmgr shows no BootCurrent")?;
    let prefix = format!("Boot{current}");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|l| l.trim_start_matches('*').trim().to_string())
        .with_context(|| format!("no entry {current}:\n{out}"))
}

/// BootOrder starts with the two entries xenraid made, the disk that booted the RAID first.
fn assert_boot_order_starts_with_both(vm: &mut Vm) -> Result<()> {
    let out = vm.run("efibootmgr", MIN)?.stdout;
    let order: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("BootOrder:"))
        .map(|o| o.trim().split(',').collect())
        .unwrap_or_default();
    let label = |n: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("Boot{n}")))
            .map(|l| l.trim_start_matches('*').trim().to_string())
            .unwrap_or_default()
    };
    let first: Vec<String> = order.iter().take(2).map(|n| label(n)).collect();
    ensure!(
        starts_with_both_entries(&first),
        "BootOrder should start with both xenraid entries, is {first:?}:\n{out}"
    );
    eprintln!("[convert]   BootOrder: {}", first.join(", "));
    Ok(())
}

fn starts_with_both_entries(first: &[String]) -> bool {
    first.len() == 2
        && first[0].ends_with("(xenraid XRLAB-TGT0)")
        && first[1].ends_with("(xenraid XRLAB-SYS0)")
}

/// The same, read from a variable store file.
fn assert_frozen_boot_order_starts_with_both(store: &std::path::Path) -> Result<()> {
    let order = crate::efivars::boot_order_of_file(store)?;
    let first: Vec<String> = order.iter().take(2).map(|(_, d)| d.clone()).collect();
    ensure!(
        starts_with_both_entries(&first),
        "BootOrder in the store frozen at the power cut should start with both xenraid entries, is {order:?}"
    );
    eprintln!(
        "[convert]   BootOrder (frozen at the cut): {}",
        first.join(", ")
    );
    Ok(())
}

/// What a rollback must give back, measured in the original system before and after.
const ORIGINAL_STATE: &str = r#"A=/dev/disk/by-id/wwn-0x5000c500a0000001
{ dd if=$A bs=1M count=1 status=none; dd if=$A bs=512 skip=$(( $(blockdev --getsz $A) - 33 )) status=none; } | sha256sum
sha256sum /boot/grub/grub.cfg
ls /boot/grub/ /var/lib/ /etc/systemd/system/
"#;

pub fn rollback(ctx: &mut Ctx) -> Result<()> {
    let p = ctx.phase("image", |c| pair(c))?;
    let before = ctx.phase("convert-stop-before-point-of-no-return", |c| {
        let mut vm = c.boot("original", &p.image, &[&p.a, &p.b])?;
        let before = vm.run(ORIGINAL_STATE, MIN)?.stdout;
        start_convert(&mut vm, &p.b, "--stop-before point-of-no-return")?;
        vm.wait_booted(60 * MIN)?;
        assert_on_raid(&mut vm, "the one-shot RAID boot")?;
        let journal = vm.run("cat /var/lib/xenraid/convert.json", MIN)?.stdout;
        ensure!(
            journal.contains("\"state\": \"in_progress\""),
            "the resume unit must stop before the point of no return"
        );
        let refused = vm.run_status(&format!("{GUEST_BIN} rollback --yes"), MIN)?;
        ensure!(
            refused.status == 3 && refused.stderr.contains("reboot"),
            "rollback on the RAID copy must send the user to the original: {refused:?}"
        );
        // The next boot is the original system: the one-shot entry was used.
        vm.reboot(20 * MIN)?;
        let root = root_source(&mut vm)?;
        ensure!(
            !root.starts_with("/dev/md"),
            "the second boot should be the original, / is {root}"
        );
        vm.shutdown(5 * MIN)?;
        Ok(before)
    })?;
    ctx.phase("rollback", |c| {
        let mut vm = c.boot("original-again", &p.image, &[&p.a, &p.b])?;
        let out = vm.run(&format!("{GUEST_BIN} rollback --yes"), 10 * MIN)?;
        eprintln!("{}", out.stdout.trim());
        let after = vm.run(ORIGINAL_STATE, MIN)?.stdout;
        ensure!(
            after == before,
            "the original disk's partition table/boot code, grub.cfg or its files changed:\nbefore:\n{before}after:\n{after}"
        );
        let b = p.b.by_id();
        let blank = vm.run(&format!("wipefs --no-act {b}; blkid -p {b} || true; sgdisk -p {b} | sed -n '/^Number/,$p' | tail -n +2"), MIN)?.stdout;
        ensure!(blank.trim().is_empty(), "the target is not blank:\n{blank}");
        ensure!(mdstat(&mut vm)?.is_empty(), "arrays left running");
        vm.reboot(20 * MIN)?;
        let root = root_source(&mut vm)?;
        ensure!(root == "/dev/sda1", "after rollback the host boots its original root, / is {root}");
        vm.run(CHECK_MARKERS, MIN).context("markers after rollback")?;
        vm.shutdown(5 * MIN)
    })
}

/// A converted xs7-bios pair (both disks, every array in sync, SR created) for scenarios that
/// start from a mirrored host. The converted disks are cached beside the image, keyed by it:
/// the first use converts (~7 min under TCG), later uses overlay the cached pair.
/// Bumped when what `convert` leaves on the disks changes (v2: bitmap chunk sized to the
/// member; v3: dracut without host-only cmdline), so the cached converted pair is made again.
const CONVERTED_FORMAT: &str = "v3";

pub fn converted_pair(ctx: &mut Ctx) -> Result<Pair> {
    converted_pair_as(ctx, &XS7)
}

/// A converted pair of `want.profile`, made once by `convert` and cached (with the UEFI
/// variable store, which holds the boot entries); each run gets overlays over the cache.
pub fn converted_pair_as(ctx: &mut Ctx, want: &Expect) -> Result<Pair> {
    let image = ctx.image(want.profile)?;
    let key = image
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cache = ctx
        .lab
        .dir
        .join("images")
        .join(format!("converted-{CONVERTED_FORMAT}-{key}"));
    let (ca, cb) = (cache.join("disk-a.qcow2"), cache.join("disk-b.qcow2"));
    let vars = "uefi-vars.fd";
    if !(ca.exists() && cb.exists()) {
        let fresh = pair_of(ctx, want.profile)?;
        ctx.phase("convert-once-for-the-cache", |c| {
            let mut vm = c.boot("original", &fresh.image, &[&fresh.a, &fresh.b])?;
            start_convert(&mut vm, &fresh.b, "--resync-speed max")?;
            vm.wait_booted(60 * MIN)?;
            assert_converted_as(&mut vm, &fresh.image, &fresh.a, want)?;
            vm.shutdown(5 * MIN)
        })?;
        let tmp = cache.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        // Disk A is an overlay over the cached image (the backing path is absolute and stays
        // valid); B is a standalone qcow2.
        std::fs::copy(&fresh.a.path, tmp.join("disk-a.qcow2"))?;
        std::fs::copy(&fresh.b.path, tmp.join("disk-b.qcow2"))?;
        if image.is_uefi() {
            std::fs::copy(ctx.dir.join(vars), tmp.join(vars))?;
        }
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::rename(&tmp, &cache)?;
    }
    if image.is_uefi() {
        std::fs::copy(cache.join(vars), ctx.dir.join(vars))?;
    }
    let a = ctx.dir.join("converted-a.qcow2");
    let b = ctx.dir.join("converted-b.qcow2");
    crate::images::overlay(&ca, "qcow2", &a)?;
    crate::images::overlay(&cb, "qcow2", &b)?;
    Ok(Pair {
        image,
        a: Disk::new(a, crate::images::SYSTEM_SERIAL, crate::images::SYSTEM_WWN),
        b: Disk::new(b, "XRLAB-TGT0", 0x5000c500a0000002),
    })
}
