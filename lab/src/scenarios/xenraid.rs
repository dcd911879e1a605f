//! xenraid itself in the guests: `inspect` must match what the recipe built, `plan` must
//! refuse every bad target with the right check and leave the target's image unchanged,
//! and both must be fast. Also captures the guests' real outputs as unit-test fixtures.

use super::Ctx;
use crate::images::{blank_disk, qemu_img, Image};
use crate::vm::{Disk, Vm};
use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
pub const GUEST_BIN: &str = "/usr/local/sbin/xenraid";

/// The static binary under test: `XENRAID_BIN`, else the musl release build.
pub fn xenraid_binary() -> Result<PathBuf> {
    let p = match std::env::var_os("XENRAID_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/x86_64-unknown-linux-musl/release/xenraid"),
    };
    ensure!(
        p.exists(),
        "{} not found: build it with `cargo build --release --target x86_64-unknown-linux-musl -p xenraid`",
        p.display()
    );
    Ok(p)
}

pub fn install(vm: &mut Vm) -> Result<()> {
    vm.copy_in(&xenraid_binary()?, GUEST_BIN, 0o755)
}

/// What a finished install has: xenraid installed, `config` as /etc/xenraid/xenraid.toml and
/// the shipped `xenraid-monitor.service` enabled and running.
pub fn install_with_monitor(vm: &mut Vm, config: &str) -> Result<()> {
    install(vm)?;
    vm.put_text("/etc/xenraid/xenraid.toml", config)?;
    vm.copy_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd/xenraid-monitor.service"),
        "/etc/systemd/system/xenraid-monitor.service",
        0o644,
    )?;
    vm.run(
        &format!("ln -sf {GUEST_BIN} /usr/sbin/xenraid && systemctl daemon-reload && systemctl enable --now xenraid-monitor"),
        Duration::from_secs(60),
    )?;
    Ok(())
}

/// A guest of `profile` with its system disk and a blank 4G target (XRLAB-TGT0), booted.
pub struct GuestWithTarget {
    pub image: Image,
    pub sys: Disk,
    pub tgt: Disk,
    pub vm: Vm,
}

pub fn boot_with_blank_target(ctx: &Ctx, profile: &str, name: &str) -> Result<GuestWithTarget> {
    let image = ctx.image(profile)?;
    let sys = image.system_disk(&ctx.dir.join(format!("{name}-sys.qcow2")))?;
    let tgt = blank_disk(
        &ctx.dir.join(format!("{name}-tgt.qcow2")),
        "4G",
        "XRLAB-TGT0",
        0x5000c500a0000002,
    )?;
    let vm = ctx.boot(name, &image, &[&sys, &tgt])?;
    Ok(GuestWithTarget {
        image,
        sys,
        tgt,
        vm,
    })
}

/// Median wall time in ms of `cmd` over `n` runs, measured inside the guest by bash's `time`,
/// which starts no process of its own. (`s=$(date +%s%N); cmd; e=$(date +%s%N)` counted the
/// second `date`'s start, a dynamically linked program loaded afresh under TCG, in every
/// sample: ~75 ms in xs7-bios, where a static hello world takes ~7 ms.)
fn median_ms(vm: &mut Vm, cmd: &str, n: usize) -> Result<f64> {
    let script = format!(
        "export LC_NUMERIC=C TIMEFORMAT=%3R; for i in $(seq 1 {n}); do {{ time {cmd} >/dev/null 2>&1; }} 2>&1; done"
    );
    let out = vm.run(&script, 5 * MIN)?.stdout;
    let mut v: Vec<f64> = out
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(|s| s * 1000.0)
        .collect();
    ensure!(v.len() == n, "timing runs: {out}");
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    Ok(v[n / 2])
}

fn json_has_string(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s == needle,
        Value::Array(a) => a.iter().any(|x| json_has_string(x, needle)),
        Value::Object(o) => o.values().any(|x| json_has_string(x, needle)),
        _ => false,
    }
}

/// `inspect --json` in each image: labels, product and boot mode as the recipe made them.
pub fn inspect(ctx: &mut Ctx) -> Result<()> {
    for profile in crate::images::PROFILES {
        ctx.phase(&format!("inspect-{profile}"), |c| {
            let GuestWithTarget {
                image,
                sys,
                tgt,
                mut vm,
            } = boot_with_blank_target(c, profile, &format!("inspect-{profile}"))?;
            install(&mut vm)?;
            let out = vm.run(&format!("{GUEST_BIN} inspect --json"), MIN)?;
            let facts: Value =
                serde_json::from_str(&out.stdout).context("inspect --json is not JSON")?;
            check_inspect(&image, &facts).map_err(|e| vm.fail(e))?;
            let human = vm.run(&format!("{GUEST_BIN} inspect"), MIN)?.stdout;
            ensure!(
                human.contains(image.fact("ROOT_LABEL")),
                "human inspect lacks the root label:\n{human}"
            );
            let own = vm.run_status(
                &format!("{GUEST_BIN} plan --target {} --json", sys.by_id()),
                MIN,
            )?;
            ensure!(
                own.status == 3,
                "plan onto the system disk exited {} (want 3)",
                own.status
            );
            let failed = failed_checks(&serde_json::from_str(&own.stdout)?);
            ensure!(
                failed.iter().any(|f| f == "target-not-in-use"),
                "plan onto the system disk: failed {failed:?}"
            );
            let good = vm.run_status(&format!("{GUEST_BIN} plan --target {}", tgt.by_id()), MIN)?;
            ensure!(
                good.status == 0,
                "plan onto the blank disk exited {}:\n{}\n{}",
                good.status,
                good.stdout,
                good.stderr
            );
            vm.shutdown(5 * MIN)
        })?;
    }
    Ok(())
}

/// inspect and plan must each answer in under 200 ms inside a guest (issue 3's number);
/// `status` over eight arrays in under 20 ms (issue 6's).
/// Measured under the lab's accelerator: under TCG every process start costs ~10x native.
pub fn speed(ctx: &mut Ctx) -> Result<()> {
    let mut slow = Vec::new();
    // `XENRAID_LAB_PROFILES=xs7-bios` times one guest (status is timed in xs7-bios only).
    let only = std::env::var("XENRAID_LAB_PROFILES").ok();
    let profiles = crate::images::PROFILES.iter().filter(|p| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == **p))
    });
    for profile in profiles {
        ctx.phase(&format!("speed-{profile}"), |c| {
            let GuestWithTarget { tgt, mut vm, .. } = boot_with_blank_target(c, profile, &format!("speed-{profile}"))?;
            install(&mut vm)?;
            let t_inspect = median_ms(&mut vm, &format!("{GUEST_BIN} inspect --json"), 7)?;
            let t_plan = median_ms(&mut vm, &format!("{GUEST_BIN} plan --target {} --json", tgt.by_id()), 7)?;
            println!("TIMING {profile} inspect {t_inspect:.0} ms, plan {t_plan:.0} ms (median of 7, in the guest)");
            if t_inspect >= 200.0 || t_plan >= 200.0 {
                slow.push(format!("{profile}: inspect {t_inspect:.0} ms, plan {t_plan:.0} ms"));
            }
            if *profile == "xs7-bios" {
                // Issue 6: `status` over eight arrays (clean, resync, degraded, faulty, spare,
                // recovery, check, no bitmap: the fixture script's) in under 20 ms.
                // The fixture script up to its capture part (which is for the unit tests).
                let script = include_str!("../../../tests/fixtures/md-states.sh");
                let build = script.split("\nOUT=").next().unwrap_or(script);
                vm.run(build, 10 * MIN)?;
                let arrays = vm.run(&format!("{GUEST_BIN} status --json"), MIN)?.stdout;
                let n = serde_json::from_str::<Value>(&arrays)?["arrays"]
                    .as_array()
                    .map_or(0, Vec::len);
                ensure!(n == 8, "expected the fixture's 8 arrays, status saw {n}");
                let t_status = median_ms(&mut vm, &format!("{GUEST_BIN} status"), 7)?;
                let t_check = median_ms(&mut vm, &format!("{GUEST_BIN} status --check; true"), 7)?;
                // The floor under TCG: starting the static binary and parsing its CLI.
                let t_floor = median_ms(&mut vm, &format!("{GUEST_BIN} --version"), 7)?;
                println!("TIMING {profile} status (8 arrays) {t_status:.0} ms, status --check {t_check:.0} ms, `xenraid --version` {t_floor:.0} ms (median of 7, in the guest)");
                if t_status >= 20.0 || t_check >= 20.0 {
                    slow.push(format!("{profile}: status {t_status:.0} ms, --check {t_check:.0} ms (limit 20 ms)"));
                }
            }
            vm.shutdown(5 * MIN)
        })?;
    }
    ensure!(slow.is_empty(), "over the limit: {}", slow.join("; "));
    Ok(())
}

fn check_inspect(image: &Image, facts: &Value) -> Result<()> {
    for key in ["ROOT_LABEL", "INSTALL_UUID"] {
        ensure!(
            json_has_string(facts, image.fact(key)),
            "inspect --json lacks {key}={}",
            image.fact(key)
        );
    }
    if image.profile != "xs65-bios" {
        for key in ["LOGS_LABEL", "SWAP_LABEL"] {
            ensure!(
                json_has_string(facts, image.fact(key)),
                "inspect --json lacks {key}={}",
                image.fact(key)
            );
        }
    }
    if image.is_uefi() {
        ensure!(
            json_has_string(facts, image.fact("BOOT_LABEL")),
            "ESP label missing"
        );
    }
    let text = facts.to_string().to_lowercase();
    ensure!(
        text.contains(if image.is_uefi() {
            "\"uefi\""
        } else {
            "\"bios\""
        }),
        "boot mode not reported right"
    );
    let version = match image.profile.as_str() {
        "xs7-bios" => "7.6.0",
        "xs65-bios" => "6.5.0",
        _ => "8.2.1",
    };
    ensure!(
        json_has_string(facts, version),
        "product version {version} missing"
    );
    ensure!(
        json_has_string(facts, "XRLAB-SYS0"),
        "system disk serial missing"
    );
    Ok(())
}

/// A bad target: how to spoil it inside the guest, and which preflight check must fail.
struct BadTarget {
    name: &'static str,
    size: &'static str,
    spoil: &'static str,
    /// Any of these check names failing is the right refusal.
    checks: &'static [&'static str],
}

const BAD_TARGETS: &[BadTarget] = &[
    BadTarget { name: "too-small", size: "2G", spoil: "", checks: &["target-large-enough"] },
    BadTarget {
        name: "stale-md-ext4",
        size: "4G",
        spoil: "sgdisk -n1:0:+1G -t1:fd00 -n2:0:+1G -t2:8300 $T && partx -u $T; udevadm settle; \
                mdadm --create /dev/md99 --run --level=1 --raid-devices=2 --metadata=1.2 ${T}1 missing && \
                mdadm --stop /dev/md99 && mkfs.ext4 -q ${T}2",
        checks: &["target-blank", "target-not-in-use"],
    },
    BadTarget {
        name: "lvm-pv",
        size: "4G",
        spoil: "pvcreate -ff -y $T && vgcreate oldvg $T && vgchange -an oldvg",
        checks: &["target-blank", "target-not-in-use"],
    },
];

/// `plan` on every bad target is refused (exit 3) by the right check; the target's disk
/// image is byte-identical before and after.
pub fn bad_targets(ctx: &mut Ctx) -> Result<()> {
    let image = ctx.image("xs7-bios")?;
    for (i, bad) in BAD_TARGETS.iter().enumerate() {
        ctx.phase(bad.name, |c| {
            let sys = image.system_disk(&c.dir.join(format!("{}-sys.qcow2", bad.name)))?;
            let tgt = blank_disk(
                &c.dir.join(format!("{}-tgt.qcow2", bad.name)),
                bad.size,
                "XRLAB-BAD0",
                0x5000c500a00000a0 + i as u64,
            )?;
            if !bad.spoil.is_empty() {
                let mut vm = c.boot(&format!("spoil-{}", bad.name), &image, &[&sys, &tgt])?;
                vm.run(
                    &format!("set -e; T=$(readlink -f {}); {}", tgt.by_id(), bad.spoil),
                    5 * MIN,
                )?;
                vm.shutdown(5 * MIN)?;
            }
            let before = c.dir.join(format!("{}-before.qcow2", bad.name));
            std::fs::copy(&tgt.path, &before)?;
            let mut vm = c.boot(&format!("plan-{}", bad.name), &image, &[&sys, &tgt])?;
            install(&mut vm)?;
            let out = vm.run_status(
                &format!("{GUEST_BIN} plan --target {} --json", tgt.by_id()),
                MIN,
            )?;
            let human =
                vm.run_status(&format!("{GUEST_BIN} plan --target {}", tgt.by_id()), MIN)?;
            vm.shutdown(5 * MIN)?;
            ensure!(
                out.status == 3,
                "{}: plan exited {} (want 3):\n{}\n{}",
                bad.name,
                out.status,
                out.stdout,
                out.stderr
            );
            let v: Value = serde_json::from_str(&out.stdout).context("plan --json is not JSON")?;
            let failed = failed_checks(&v);
            ensure!(
                bad.checks.iter().any(|c| failed.iter().any(|f| f == c)),
                "{}: failed checks {failed:?}, expected one of {:?}",
                bad.name,
                bad.checks
            );
            println!(
                "REFUSED {} by {failed:?}; first lines:\n{}",
                bad.name,
                crate::vm::tail(&human.stdout, 12)
            );
            same_content(&before, &tgt)
        })?;
    }
    Ok(())
}

pub fn failed_checks(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_failed(v, &mut out);
    out
}

fn collect_failed(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            let failed = o.get("passed").and_then(Value::as_bool) == Some(false)
                || o.get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("fail"));
            if failed {
                if let Some(id) = o
                    .get("id")
                    .or_else(|| o.get("name"))
                    .and_then(Value::as_str)
                {
                    out.push(id.to_string());
                }
            }
            o.values().for_each(|x| collect_failed(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_failed(x, out)),
        _ => {}
    }
}

fn same_content(before: &Path, after: &Disk) -> Result<()> {
    let a = before.display().to_string();
    let b = after.path.display().to_string();
    if qemu_img(&["compare", "-q", &a, &b]).is_err() {
        bail!("the target disk image changed while planning ({a} vs {b})");
    }
    Ok(())
}

/// Runs a capture script in each image (with a blank target attached) and unpacks what it
/// gathered into `out/<profile>/`: real outputs for the unit tests' fixtures.
pub fn capture(ctx: &mut Ctx, script: &Path, out: &Path) -> Result<()> {
    let body =
        std::fs::read_to_string(script).with_context(|| format!("read {}", script.display()))?;
    for profile in crate::images::PROFILES {
        let GuestWithTarget { mut vm, .. } =
            boot_with_blank_target(ctx, profile, &format!("capture-{profile}"))?;
        vm.put_text("/root/capture.sh", &body)?;
        let res = vm.run("rm -rf /root/cap && sh /root/capture.sh /root/cap >/dev/null && tar -C /root/cap -czf - . | base64 -w0", 5 * MIN)?;
        vm.shutdown(5 * MIN)?;
        let dest = out.join(profile);
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest)?;
        let tgz = ctx.dir.join(format!("{profile}.tgz"));
        let bytes = base64_decode(res.stdout.trim())?;
        std::fs::write(&tgz, bytes)?;
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&dest)
            .arg("-xzf")
            .arg(&tgz)
            .status()?;
        ensure!(st.success(), "unpacking the capture of {profile}");
        println!("captured {profile} -> {}", dest.display());
    }
    Ok(())
}

fn base64_decode(s: &str) -> Result<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut val = [255u8; 256];
    for (i, c) in T.iter().enumerate() {
        val[*c as usize] = i as u8;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = val[c as usize];
        ensure!(v != 255, "bad base64 from the guest");
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
