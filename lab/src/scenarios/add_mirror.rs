//! `add-mirror` on the cached converted xs7-bios guest with two new blank 2G disks (C, D).
//! Bad inputs first — a member disk of the running arrays, the same disk twice, a disk that
//! is not there, a disk with a filesystem and no --wipe-target — each refused (exit 3) with
//! no disk's first MiB changed and no journal started. Then the real run: the new array in
//! sync ([UU]) and the `xe` stand-in's log with `sr-create` on /dev/md/sr2. After a reboot the
//! array comes back under the same name with both members, and `doctor` finds nothing wrong.

use super::convert::{assert_on_raid_as, converted_pair_as, Expect, XCPNG8, XS7};
use super::xenraid::{failed_checks, install_with_monitor, GUEST_BIN};
use super::Ctx;
use crate::images::blank_disk;
use crate::vm::{tail, Disk, Vm};
use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
/// The converted host already has `sr`: the default name is the first free `srN` after it.
const NAME: &str = "sr2";
const JOURNAL: &str = "/var/lib/xenraid/add-mirror.json";

/// sha256 of the first MiB of each disk, read past the page cache.
fn heads(vm: &mut Vm, disks: &[&Disk]) -> Result<String> {
    let script: String = disks
        .iter()
        .map(|d| {
            format!(
                "dd if={} bs=1M count=1 iflag=direct status=none | sha256sum; ",
                d.by_id()
            )
        })
        .collect();
    Ok(vm.run(&script, MIN)?.stdout)
}

/// `add-mirror ARGS` must exit 3, fail `check`, and leave every disk and the journal alone.
fn refused(vm: &mut Vm, what: &str, args: &str, check: &str, disks: &[&Disk]) -> Result<()> {
    let before = heads(vm, disks)?;
    let json = vm.run_status(
        &format!("{GUEST_BIN} add-mirror {args} --yes --json"),
        5 * MIN,
    )?;
    ensure!(
        json.status == 3,
        "{what}: add-mirror exited {} (want 3):\n{}\n{}",
        json.status,
        tail(&json.stdout, 30),
        json.stderr
    );
    let plan: Value = serde_json::from_str(&json.stdout)
        .with_context(|| format!("{what}: --json printed {}", json.stdout))?;
    let failed = failed_checks(&plan);
    ensure!(
        failed.iter().any(|f| f == check),
        "{what}: failed checks {failed:?}, want {check}"
    );
    ensure!(
        plan["phases"].as_array().is_some_and(|p| p.is_empty()),
        "{what}: a refused plan must have no steps"
    );
    let human = vm.run_status(&format!("{GUEST_BIN} add-mirror {args} --yes"), 5 * MIN)?;
    ensure!(
        human.status == 3,
        "{what}: exit {} without --json",
        human.status
    );
    let said: Vec<&str> = human
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("FAIL") || l.trim_start().starts_with("fix:"))
        .collect();
    ensure!(!said.is_empty(), "{what}: no FAIL line:\n{}", human.stdout);
    ensure!(
        heads(vm, disks)? == before,
        "{what}: a disk's first MiB changed although add-mirror refused"
    );
    let journal = vm.run_status(&format!("test -e {JOURNAL}"), MIN)?;
    ensure!(
        journal.status != 0,
        "{what}: a refused add-mirror started {JOURNAL}"
    );
    println!(
        "REFUSED {what} (exit 3, {failed:?}, disks unchanged):\n  {}",
        said.join("\n  ")
    );
    Ok(())
}

/// The new array's kernel name, [UU] in /proc/mdstat, and mdadm's name for it.
fn assert_array(vm: &mut Vm, when: &str) -> Result<String> {
    let md = vm
        .run(&format!("basename $(readlink -f /dev/md/{NAME})"), MIN)?
        .stdout
        .trim()
        .to_string();
    ensure!(md.starts_with("md"), "{when}: /dev/md/{NAME} is {md}");
    let mdstat = vm.run("cat /proc/mdstat", MIN)?.stdout;
    let block: Vec<&str> = mdstat
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{md} ")))
        .take(2)
        .collect();
    ensure!(
        block.len() == 2 && block[0].contains("raid1") && block[1].contains("[2/2] [UU]"),
        "{when}: {md} is not a RAID1 with both members in sync:\n{mdstat}"
    );
    let detail = vm
        .run(&format!("mdadm --detail /dev/md/{NAME}"), MIN)?
        .stdout;
    ensure!(
        detail.contains(&format!("Name : xenraid:{NAME}"))
            && detail.contains("Active Devices : 2")
            && detail.contains("Intent Bitmap : Internal"),
        "{when}: mdadm --detail /dev/md/{NAME}:\n{detail}"
    );
    println!(
        "ARRAY {when}: /dev/md/{NAME} -> {md}, {} {}",
        block[0].trim(),
        block[1].trim()
    );
    Ok(md)
}

pub fn add_mirror(ctx: &mut Ctx) -> Result<()> {
    add_mirror_as(ctx, &XS7)
}

/// The same on a converted XCP-ng 8 UEFI host.
pub fn add_mirror_uefi(ctx: &mut Ctx) -> Result<()> {
    add_mirror_as(ctx, &XCPNG8)
}

fn add_mirror_as(ctx: &mut Ctx, want: &Expect) -> Result<()> {
    let p = ctx.phase("converted-guest", |c| converted_pair_as(c, want))?;
    let c = blank_disk(
        &ctx.dir.join("new1.qcow2"),
        "2G",
        "XRLAB-NEW1",
        0x5000c500a00000c1,
    )?;
    let d = blank_disk(
        &ctx.dir.join("new2.qcow2"),
        "2G",
        "XRLAB-NEW2",
        0x5000c500a00000c2,
    )?;
    let mut vm = ctx.phase("boot", |cx| {
        let mut vm = cx.boot("add-mirror", &p.image, &[&p.a, &p.b, &c, &d])?;
        assert_on_raid_as(&mut vm, "the converted guest with two new disks", want.root)?;
        install_with_monitor(&mut vm, "[alert.xapi]\n")?;
        Ok(vm)
    })?;
    let all = [&p.a, &c, &d];

    ctx.phase("bad-inputs", |_| {
        refused(
            &mut vm,
            "a member disk of the running arrays",
            &format!("--disks {},{}", p.a.by_id(), c.by_id()),
            "disks-not-in-use",
            &all,
        )?;
        refused(
            &mut vm,
            "the same disk twice (by-id and kernel name)",
            &format!("--disks {},$(readlink -f {})", c.by_id(), c.by_id()),
            "disks-distinct",
            &all,
        )?;
        refused(
            &mut vm,
            "a disk that is not there",
            &format!(
                "--disks {},/dev/disk/by-id/wwn-0x5000c500a00000cf",
                c.by_id()
            ),
            "disks-found",
            &all,
        )?;
        vm.run(&format!("mkfs.ext4 -q -F {}", d.by_id()), 5 * MIN)?;
        refused(
            &mut vm,
            "a disk with a filesystem, without --wipe-target",
            &format!("--disks {},{}", c.by_id(), d.by_id()),
            "disks-blank",
            &all,
        )
    })?;

    ctx.phase("add-mirror", |_| {
        // D holds the ext4 made above: erasing it is what --wipe-target is for.
        let out = vm.run_status(
            &format!(
                "{GUEST_BIN} add-mirror --disks {},{} --sr-name 'Mirror 2' --wipe-target --yes",
                c.by_id(),
                d.by_id()
            ),
            40 * MIN,
        )?;
        ensure!(
            out.status == 0,
            "add-mirror exited {}:\n{}\n{}",
            out.status,
            tail(&out.stdout, 60),
            tail(&out.stderr, 30)
        );
        println!("ADD-MIRROR ran:\n{}", tail(&out.stdout, 14));
        let journal = vm.run(&format!("cat {JOURNAL}"), MIN)?.stdout;
        ensure!(
            journal.contains("\"state\": \"complete\""),
            "the add-mirror journal is not complete:\n{}",
            tail(&journal, 30)
        );
        assert_array(&mut vm, "after add-mirror")?;
        let xe = vm
            .run("grep sr-create /var/log/xe-standin.log", MIN)?
            .stdout;
        let ours: Vec<&str> = xe
            .lines()
            .filter(|l| l.contains(&format!("device-config:device=/dev/md/{NAME}")))
            .collect();
        ensure!(
            ours.len() == 1 && ours[0].contains("Mirror"),
            "the xe stand-in must log one sr-create on /dev/md/{NAME}:\n{xe}"
        );
        println!("XE {}", ours[0]);
        // Which image the rebuild wrote, seen before the reboot: a wrong path shows here.
        let before = vm.run_status(
            &format!("ls -l --time-style=+%T /boot/*.img /boot/efi/EFI/*/grub.cfg; findmnt /boot/efi; {GUEST_BIN} doctor | grep -E 'initramfs|FAIL'"),
            20 * MIN,
        )?;
        println!("BEFORE the reboot:\n{}", tail(&before.stdout, 20));
        Ok(())
    })?;

    ctx.phase("reboot", |_| {
        let took = vm.reboot(30 * MIN)?;
        println!("REBOOT in {:.1} s", took.as_secs_f64());
        assert_on_raid_as(&mut vm, "after the reboot", want.root)?;
        let md = assert_array(&mut vm, "after the reboot")?;
        let out = vm.run_status(&format!("{GUEST_BIN} doctor"), 20 * MIN)?;
        let text = format!("{}{}", out.stdout, out.stderr);
        let about_ours: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("FAIL") || l.starts_with("WARN"))
            .filter(|l| {
                let check = l.split_whitespace().nth(1).unwrap_or_default();
                ["mdadm-conf", "initramfs", "dracut-conf", "bitmap"].contains(&check)
                    || l.contains(&format!("md/{NAME}"))
                    || l.contains(&format!("{md} "))
            })
            .collect();
        ensure!(
            out.status == 0 && about_ours.is_empty(),
            "doctor after add-mirror and a reboot: exit {}, {about_ours:?}\n{text}",
            out.status
        );
        println!("DOCTOR after the reboot: exit 0, mdadm.conf and initramfs list the new array");
        Ok(())
    })?;
    vm.shutdown(5 * MIN)
}
