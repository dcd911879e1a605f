//! The seeds' own manual procedures, run in the lab: proof that the lab can show md, boot
//! and disk-loss behaviour, and the baseline xenraid is measured against.

use super::Ctx;
use crate::guest_state::{root_source, wait_all_in_sync, wait_arrays_active};
use crate::images::blank_disk;
use crate::vm::{Disk, Vm};
use anyhow::{ensure, Context, Result};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
const TARGET_SERIAL: &str = "XRLAB-TGT0";
const TARGET_WWN: u64 = 0x5000c500a0000002;

/// Marker files with checksums, written before a conversion and verified after it.
const WRITE_MARKERS: &str = r#"set -e
mkdir -p /root/markers /var/log/markers
for d in /root/markers /var/log/markers; do
  for i in 1 2 3; do head -c $((i * 65536)) /dev/urandom > "$d/m$i"; done
  ln -f "$d/m1" "$d/hardlink-to-m1"
done
sha256sum /root/markers/* /var/log/markers/* > /root/markers.sha256
sync
"#;
const CHECK_MARKERS: &str = "sha256sum -c --quiet /root/markers.sha256 && \
    [ \"$(stat -c %h /root/markers/m1)\" = 2 ]";

pub(super) fn with_disks(script: &str, a: &Disk, b: &Disk) -> String {
    format!("A={}\nB={}\n{script}", a.by_id(), b.by_id())
}

fn assert_root_on_md0(vm: &mut Vm, what: &str) -> Result<()> {
    let root = root_source(vm)?;
    if root != "/dev/md0" {
        let e = anyhow::anyhow!("{what}: / is on {root}, expected /dev/md0");
        return Err(vm.fail(e));
    }
    crate::guest_state::assert_boot_finished(vm, what)?;
    vm.run(CHECK_MARKERS, MIN)
        .with_context(|| format!("{what}: marker files"))?;
    Ok(())
}

/// What differs between the two seeds; the flow and the checks are the same.
struct Seed {
    image: &'static str,
    before_reboot: &'static str,
    after_reboot: &'static str,
    /// Every array that must reach [UU] once both disks are in.
    arrays: &'static [&'static str],
    /// The SR's array: created whole at the end, so not degraded when a disk is missing.
    sr_array: &'static str,
}

pub fn seed_762(ctx: &mut Ctx) -> Result<()> {
    run_seed(
        ctx,
        &Seed {
            image: "xs7-bios",
            before_reboot: include_str!("../../scenarios/seed-7.6.2-phase1.sh"),
            after_reboot: include_str!("../../scenarios/seed-7.6.2-phase2.sh"),
            arrays: &["md0", "md1", "md3", "md4", "md5"],
            sr_array: "md3",
        },
    )
}

pub fn seed_65(ctx: &mut Ctx) -> Result<()> {
    run_seed(
        ctx,
        &Seed {
            image: "xs65-bios",
            before_reboot: include_str!("../../scenarios/seed-6.5-phase1.sh"),
            after_reboot: include_str!("../../scenarios/seed-6.5-phase2.sh"),
            arrays: &["md0", "md1", "md2"],
            sr_array: "none",
        },
    )
}

fn run_seed(ctx: &mut Ctx, seed: &Seed) -> Result<()> {
    let image = ctx.phase("image", |c| c.image(seed.image))?;
    let a = image.system_disk(&ctx.dir.join("disk-a.qcow2"))?;
    let b = blank_disk(
        &ctx.dir.join("disk-b.qcow2"),
        "4G",
        TARGET_SERIAL,
        TARGET_WWN,
    )?;

    ctx.phase("convert-before-reboot", |c| {
        let mut vm = c.boot("boot1-original", &image, &[&a, &b])?;
        vm.run(WRITE_MARKERS, MIN)?;
        vm.run(&with_disks(seed.before_reboot, &a, &b), 40 * MIN)?;
        vm.shutdown(5 * MIN)
    })?;
    ctx.phase("boot-disk-b-only", |c| {
        let mut vm = c.boot("boot2-b-only", &image, &[&b])?;
        assert_root_on_md0(&mut vm, "first boot from the new disk alone")?;
        vm.shutdown(5 * MIN)
    })?;
    ctx.phase("complete-mirror", |c| {
        let mut vm = c.boot("boot3-b-then-a", &image, &[&b, &a])?;
        vm.run(&with_disks(seed.after_reboot, &a, &b), 20 * MIN)?;
        let arrays = wait_all_in_sync(&mut vm, 30 * MIN)?;
        let names: Vec<&str> = arrays.iter().map(|x| x.name.as_str()).collect();
        for want in seed.arrays {
            ensure!(
                names.contains(want),
                "{want} missing after completion: {names:?}"
            );
        }
        let xe = vm.run("cat /var/log/xe-standin.log", MIN)?.stdout;
        ensure!(
            xe.contains("sr-create"),
            "xe stand-in did not log an sr-create:\n{xe}"
        );
        vm.shutdown(5 * MIN)
    })?;
    for (name, disk) in [("boot-disk-a-only", &a), ("boot-disk-b-only-again", &b)] {
        ctx.phase(name, |c| {
            let mut vm = c.boot(name, &image, &[disk])?;
            assert_root_on_md0(&mut vm, name)?;
            let arrays = wait_arrays_active(&mut vm, 3 * MIN)?;
            let degraded_ok = arrays
                .iter()
                .filter(|x| x.name != seed.sr_array)
                .all(|x| x.health == "[U_]" || x.health == "[_U]");
            ensure!(
                degraded_ok && !arrays.is_empty(),
                "{name}: expected arrays running on one member, got {arrays:?}"
            );
            vm.shutdown(5 * MIN)
        })?;
    }
    Ok(())
}
