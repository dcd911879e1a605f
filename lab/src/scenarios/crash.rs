//! The crash matrix: a power cut at every step boundary of `convert`, both phases, then a boot
//! and the recovery a sysadmin would do. Every run must end converted, markers intact.
//!
//! One recording run converts a guest while pausing at each boundary (xenraid's
//! `XENRAID_STEP_HOOK`). At each pause the lab snapshots both disks at one instant (QMP
//! `transaction`): the frozen files are exactly what a power cut there would leave, since the
//! guest's unflushed page cache is not in them. Each boundary is then replayed from its
//! snapshot on a fresh machine, without the pause (the hook is gated on the recording
//! machine's SMBIOS asset tag, which the replays lack), so nothing of the lab's own
//! machinery is in the state being recovered. This costs one conversion plus one recovery
//! per boundary instead of a conversion per boundary.

use super::convert::{
    assert_converted_as, assert_converted_with, pair_of, BootOrderSeen, Expect, Pair, DEBIAN,
    WRITE_MARKERS, XCPNG8, XS65, XS7,
};
use super::xenraid::{install, GUEST_BIN};
use super::Ctx;
use crate::guest_state::root_source;
use crate::images::overlay;
use crate::vm::{Disk, Vm};
use anyhow::{bail, ensure, Context, Result};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MANIFEST: &str = "boundaries.json";
/// The profile a recording was made on, beside its manifest.
const PROFILE_FILE: &str = "profile";
const MIN: Duration = Duration::from_secs(60);
const ASSET_TAG: &str = "xenraid-lab-pause";
const HOOK: &str = "/usr/local/sbin/xenraid-lab-pause";
/// Pauses only on the recording machine; a replay of the same disks passes straight through.
const HOOK_SCRIPT: &str = r#"#!/bin/sh
grep -qs xenraid-lab-pause /sys/class/dmi/id/chassis_asset_tag || exit 0
rm -f /run/xenraid-lab-go
echo "$1" > /run/xenraid-lab-paused.tmp && mv /run/xenraid-lab-paused.tmp /run/xenraid-lab-paused
while [ ! -e /run/xenraid-lab-go ]; do sleep 0.2; done
rm -f /run/xenraid-lab-go /run/xenraid-lab-paused
"#;
/// The resume unit after the reboot gets the hook from systemd's default environment.
const HOOK_ENV: &str =
    "[Manager]\nDefaultEnvironment=XENRAID_STEP_HOOK=/usr/local/sbin/xenraid-lab-pause\n";
/// A failed resume unit ends the wait at once, with its log.
const UNIT_FAILED: &str = "if systemctl is-failed -q xenraid-resume.service; then journalctl -b -u xenraid-resume --no-pager | tail -30; exit 2; fi";
const WAIT_PAUSE: &str = "for i in $(seq 1 14400); do if [ -e /run/xenraid-lab-paused ]; then cat /run/xenraid-lab-paused; exit 0; fi; UNIT_FAILED; sleep 0.25; done; exit 1";
const RELEASE_PAUSE: &str = "touch /run/xenraid-lab-go; for i in $(seq 1 300); do [ -e /run/xenraid-lab-paused ] || exit 0; sleep 0.1; done";
const WAIT_COMPLETE: &str = "for i in $(seq 1 3600); do grep -qs '\"state\": \"complete\"' /var/lib/xenraid/convert.json && ! systemctl is-active -q xenraid-resume.service && exit 0; UNIT_FAILED; sleep 1; done; exit 1";

/// A boundary as recorded: the step about to run and the disks as they were then.
#[derive(serde::Serialize, serde::Deserialize)]
struct Boundary {
    index: usize,
    step: String,
    after_reboot: bool,
    disks: Vec<PathBuf>,
    /// UEFI: the firmware's variable store at that instant (BootNext, the new entries).
    #[serde(default)]
    uefi_vars: Option<PathBuf>,
}

/// How one replay ended.
struct Replay {
    step: String,
    after_reboot: bool,
    outcome: Result<String>,
    took: Duration,
}

pub fn crash_matrix(ctx: &mut Ctx) -> Result<()> {
    crash_matrix_as(ctx, &XS7)
}

/// Issue 5: the same on XenServer 6.5.
pub fn crash_matrix_xs65(ctx: &mut Ctx) -> Result<()> {
    crash_matrix_as(ctx, &XS65)
}

/// Issue 5: the same on XCP-ng 8 (UEFI).
pub fn crash_matrix_uefi(ctx: &mut Ctx) -> Result<()> {
    crash_matrix_as(ctx, &XCPNG8)
}

/// Issue 5: the same on plain Debian.
pub fn crash_matrix_debian(ctx: &mut Ctx) -> Result<()> {
    crash_matrix_as(ctx, &DEBIAN)
}

fn expect_for(profile: &str) -> Result<&'static Expect> {
    [&XS7, &XS65, &XCPNG8, &DEBIAN]
        .into_iter()
        .find(|e| e.profile == profile)
        .with_context(|| format!("no crash matrix for profile {profile}"))
}

fn crash_matrix_as(ctx: &mut Ctx, want: &'static Expect) -> Result<()> {
    // A recording outlives its run directory's replays: replay it again (or the boundaries
    // a stopped run did not reach) without converting once more. It keeps the image it was
    // made on, so a later change of the image recipe does not pull its disks' backing away.
    let (p, boundaries): (Pair, Vec<Boundary>) = match std::env::var_os("XENRAID_LAB_REPLAY_FROM") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let manifest = dir.join(MANIFEST);
            let boundaries = serde_json::from_str(&std::fs::read_to_string(&manifest)?)
                .with_context(|| format!("reading {}", manifest.display()))?;
            (recorded_pair(&dir)?, boundaries)
        }
        None => {
            let p = ctx.phase("image", |c| {
                pair_of(c, want.profile).and_then(|p| keep_image(&c.dir, p))
            })?;
            std::fs::write(ctx.dir.join(PROFILE_FILE), want.profile)?;
            let boundaries = ctx.phase("record", |c| record(c, &p, want))?;
            (p, boundaries)
        }
    };
    // A replayed recording is judged by the profile it was made on.
    let want = expect_for(&p.image.profile)?;
    let only: Option<Vec<String>> = std::env::var("XENRAID_LAB_CRASH_AT")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    // Phase 2 first: its replays are the short ones and its steps are the ones that touch
    // the original disk, so a stopped run has covered what matters most.
    let boot_order_at = boundaries
        .iter()
        .find(|b| b.step == "boot-order")
        .map(|b| b.index);
    let mut queue: Vec<Boundary> = boundaries
        .into_iter()
        .filter(|b| only.as_ref().is_none_or(|o| o.contains(&b.step)))
        .collect();
    queue.sort_by_key(|b| (!b.after_reboot, b.index));
    let queue: VecDeque<Boundary> = queue.into();
    let jobs = lab_jobs();
    eprintln!(
        "[crash-matrix] replaying {} boundaries, {jobs} at a time",
        queue.len()
    );
    let queue = Mutex::new(queue);
    let results = Mutex::new(Vec::new());
    let shared: &Ctx = ctx;
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let Some(b) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                let t = Instant::now();
                let boot_order_set = boot_order_at.is_some_and(|at| at < b.index);
                let outcome = replay(shared, &p, &b, want, boot_order_set);
                let took = t.elapsed();
                let line = match &outcome {
                    Ok(how) => format!("converted ({how})"),
                    Err(e) => {
                        eprintln!("[crash-matrix] {} failed: {e:#}", b.step);
                        format!("FAILED: {}", first_line(e))
                    }
                };
                eprintln!(
                    "CRASH {:>2} {:<28} {line} [{:.0} s]",
                    b.index,
                    b.step,
                    took.as_secs_f64()
                );
                results.lock().expect("results").push((
                    b.index,
                    Replay {
                        step: b.step.clone(),
                        after_reboot: b.after_reboot,
                        outcome,
                        took,
                    },
                ));
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.0);
    println!("\n| power cut before step | phase | recovery and outcome | replay |");
    println!("|---|---|---|---|");
    for (_, r) in &results {
        let outcome = match &r.outcome {
            Ok(how) => format!("converted ({how})"),
            Err(e) => format!("FAILED: {}", first_line(e)),
        };
        let phase = if r.after_reboot { 2 } else { 1 };
        println!(
            "| {} | {phase} | {outcome} | {:.0} s |",
            r.step,
            r.took.as_secs_f64()
        );
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.outcome.is_err())
        .map(|(_, r)| r.step.clone())
        .collect();
    ensure!(failed.is_empty(), "crash matrix failures: {failed:?}");
    Ok(())
}

/// Copies the image into the run directory and points disk A at the copy.
fn keep_image(dir: &std::path::Path, p: Pair) -> Result<Pair> {
    let kept = dir.join("image");
    let status = std::process::Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(&p.image.dir)
        .arg(&kept)
        .status()?;
    ensure!(
        status.success(),
        "copying the image into {}",
        kept.display()
    );
    crate::images::qemu_img(&[
        "rebase",
        "-u",
        "-F",
        "raw",
        "-b",
        &kept.join("disk.raw").display().to_string(),
        &p.a.path.display().to_string(),
    ])?;
    Ok(Pair {
        image: crate::images::Image::load(&p.image.profile, &kept)?,
        ..p
    })
}

/// The pair a kept recording was made with (its disks and its own copy of the image).
fn recorded_pair(dir: &std::path::Path) -> Result<Pair> {
    // Recordings from before the profile file were all xs7-bios.
    let profile = std::fs::read_to_string(dir.join(PROFILE_FILE))
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|_| "xs7-bios".into());
    Ok(Pair {
        image: crate::images::Image::load(&profile, &dir.join("image"))?,
        a: Disk::new(
            dir.join("disk-a.qcow2"),
            crate::images::SYSTEM_SERIAL,
            crate::images::SYSTEM_WWN,
        ),
        b: Disk::new(dir.join("disk-b.qcow2"), "XRLAB-TGT0", 0x5000c500a0000002),
    })
}

/// VMs at once: one per two cores (TCG keeps a core busy per guest, the host needs the rest);
/// `XENRAID_LAB_JOBS` overrides.
fn lab_jobs() -> usize {
    std::env::var("XENRAID_LAB_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 2))
        .max(1)
}

/// The cause, not the VM context around it: `Vm::fail` puts the console tail in the
/// outermost message, so its first line names only the VM.
fn first_line(e: &anyhow::Error) -> String {
    let cause = e
        .chain()
        .map(|c| c.to_string())
        .find(|m| !m.starts_with("VM "))
        .unwrap_or_else(|| e.to_string());
    cause.lines().next().unwrap_or("").to_string()
}

/// The step ids of the plan, in order, as the guest's xenraid prints them.
fn step_ids(vm: &mut Vm, b: &Disk) -> Result<Vec<String>> {
    let out = vm
        .run(
            &format!("{GUEST_BIN} plan --target {} --json", b.by_id()),
            MIN,
        )?
        .stdout;
    let plan: serde_json::Value = serde_json::from_str(&out)?;
    Ok(plan["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect())
}

/// Converts once, pausing at every boundary to freeze the disks; checks the run itself ends
/// converted (the matrix's "no crash" row).
fn record(ctx: &mut Ctx, p: &Pair, want: &Expect) -> Result<Vec<Boundary>> {
    let mut vm = ctx.boot_tagged("record", &p.image, &[&p.a, &p.b], 0, Some(ASSET_TAG))?;
    vm.run(WRITE_MARKERS, MIN)?;
    install(&mut vm)?;
    let ids = step_ids(&mut vm, &p.b)?;
    vm.put_text(HOOK, HOOK_SCRIPT)?;
    vm.put_text("/etc/systemd/system.conf.d/xenraid-lab-hook.conf", HOOK_ENV)?;
    vm.run(&format!("chmod 755 {HOOK}"), MIN)?;
    // On a real host xenraid was installed long before: make it (and the markers) durable,
    // or a cut before the first step — whose end is xenraid's first `sync` — leaves a
    // zero-length binary that "resumes" by doing nothing (found replaying boundary 0).
    vm.run("sync", MIN)?;
    let sr_name = if want.sr.is_some() {
        "--sr-name 'Local storage'"
    } else {
        ""
    };
    vm.spawn(&format!(
        "XENRAID_STEP_HOOK={HOOK} {GUEST_BIN} convert --target {} --yes {sr_name} || {{ echo XENRAID-CONVERT-FAILED; systemctl poweroff; }}",
        p.b.by_id()
    ))?;
    let reboot_at = ids
        .iter()
        .position(|s| s == "reboot")
        .context("no reboot step")?;
    let mut boundaries = Vec::new();
    for (index, step) in ids.iter().enumerate() {
        let got = vm
            .run(&WAIT_PAUSE.replace("UNIT_FAILED", UNIT_FAILED), 60 * MIN)
            .with_context(|| format!("waiting for the pause before {step}"))?
            .stdout
            .trim()
            .to_string();
        if &got != step {
            bail!("paused before {got}, expected {step}");
        }
        let overlays: Vec<PathBuf> = ["a", "b"]
            .iter()
            .map(|d| ctx.dir.join(format!("chain-{d}-{index:02}.qcow2")))
            .collect();
        let disks = vm.snapshot_disks(&overlays)?;
        // QEMU writes the pflash store through at each variable write: a copy taken while
        // the guest waits in the hook is what the firmware would find after the power cut.
        let uefi_vars = if p.image.is_uefi() {
            let copy = ctx.dir.join(format!("chain-vars-{index:02}.fd"));
            std::fs::copy(ctx.dir.join("uefi-vars.fd"), &copy)?;
            Some(copy)
        } else {
            None
        };
        boundaries.push(Boundary {
            index,
            step: step.clone(),
            after_reboot: index > reboot_at,
            disks,
            uefi_vars,
        });
        // Until the hook has taken the go, the pause file still names this step: the next
        // wait read it as the next pause, or saw it vanish between its test and its `cat`
        // (the recording failed "paused before , expected boot-once", 2026-11-23).
        vm.run(RELEASE_PAUSE, MIN)?;
        if index == reboot_at {
            // the resume unit holds the boot open while it pauses: wait for the agent only
            vm.wait_agent(60 * MIN)?;
        }
    }
    std::fs::write(
        ctx.dir.join(MANIFEST),
        serde_json::to_string_pretty(&boundaries)?,
    )?;
    vm.run(&WAIT_COMPLETE.replace("UNIT_FAILED", UNIT_FAILED), 61 * MIN)
        .context("the recording run did not complete")?;
    assert_converted_as(&mut vm, &p.image, &p.a, want)?;
    vm.shutdown(5 * MIN)?;
    Ok(boundaries)
}

/// Boots the disks as the power cut left them (through fresh overlays, the snapshot stays
/// intact) and recovers: the resume unit on a RAID boot, `resume` (or `resume --retry-boot`,
/// when xenraid says the RAID boot did not happen) on the original.
/// `boot_order_set`: xenraid's `boot-order` step ran before this power cut.
fn replay(
    ctx: &Ctx,
    p: &Pair,
    b: &Boundary,
    want: &Expect,
    boot_order_set: bool,
) -> Result<String> {
    let mut disks = Vec::new();
    for (name, (frozen, like)) in ["a", "b"].iter().zip(b.disks.iter().zip([&p.a, &p.b])) {
        let path = ctx.dir.join(format!("replay-{name}-{:02}.qcow2", b.index));
        let _ = std::fs::remove_file(&path);
        overlay(frozen, "qcow2", &path)?;
        disks.push(Disk::new(path, &like.serial, like.wwn));
    }
    let vars = match &b.uefi_vars {
        Some(frozen) => {
            let copy = ctx.dir.join(format!("replay-vars-{:02}.fd", b.index));
            std::fs::copy(frozen, &copy)?;
            Some(copy)
        }
        None => None,
    };
    let result = recover(ctx, p, b, &disks, vars.as_deref(), want, boot_order_set);
    if result.is_ok() && std::env::var_os("XENRAID_LAB_KEEP").is_none() {
        for d in &disks {
            let _ = std::fs::remove_file(&d.path);
        }
    }
    result
}

fn recover(
    ctx: &Ctx,
    p: &Pair,
    b: &Boundary,
    disks: &[Disk],
    vars: Option<&std::path::Path>,
    want: &Expect,
    boot_order_set: bool,
) -> Result<String> {
    let name = format!("crash-{:02}-{}", b.index, b.step);
    let both = [&disks[0], &disks[1]];
    let mut vm = match vars {
        Some(vars) => ctx.boot_with_vars(&name, &p.image, &both, vars)?,
        None => ctx.boot(&name, &p.image, &both)?,
    };
    let mut how = Vec::new();
    if !root_source(&mut vm)?.starts_with("/dev/md") {
        how.push("original booted");
        let resume = vm.run_status(
            &format!("{GUEST_BIN} resume --stop-before reboot"),
            60 * MIN,
        )?;
        let retry = if resume.stderr.contains("--retry-boot") {
            how.push("resume --retry-boot");
            "--retry-boot"
        } else {
            ensure!(
                resume.success(),
                "resume after the crash failed: {}{}",
                resume.stdout,
                resume.stderr
            );
            how.push("resume");
            ""
        };
        vm.spawn(&format!("{GUEST_BIN} resume {retry} || systemctl poweroff"))?;
        vm.wait_booted(60 * MIN)?;
    } else {
        how.push("RAID booted, resume unit");
    }
    vm.run(&WAIT_COMPLETE.replace("UNIT_FAILED", UNIT_FAILED), 61 * MIN)
        .context("the resume unit did not complete the conversion")?;
    // xenraid's `boot-order` ran before the cut: the replay's own boot let OVMF rewrite it.
    let seen = match (&b.uefi_vars, boot_order_set) {
        (Some(frozen), true) => BootOrderSeen::Frozen(frozen),
        _ => BootOrderSeen::Live,
    };
    assert_converted_with(&mut vm, &p.image, &disks[0], want, seen)?;
    if want.sr.is_some() {
        let creates = vm
            .run("grep -c ' sr-create ' /var/log/xe-standin.log", MIN)?
            .stdout;
        ensure!(
            creates.trim() == "1",
            "sr-create ran {} times",
            creates.trim()
        );
    }
    vm.shutdown(5 * MIN)?;
    Ok(how.join(", "))
}
