//! XenServer 6.5's dom0 is CentOS 5: SysV init reading /etc/inittab, no systemd. The lab's
//! 6.5 guest is switched to Debian's sysvinit first (same packages as its rootfs, from the
//! host's apt), then converted: the copy must resume from its inittab entry, started by init
//! itself after the runlevel's scripts, and the finish must take the entry out again.

use super::convert::{assert_converted_as, boot_each_disk_alone_as, pair_of, start_convert, XS65};
use super::xenraid::{install, GUEST_BIN};
use super::Ctx;
use crate::vm::Vm;
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// sysvinit-core and what it needs beyond the rootfs (Debian bookworm).
const SYSV_PACKAGES: &[&str] = &[
    "sysvinit-core",
    "initscripts",
    "sysv-rc",
    "insserv",
    "startpar",
];

const SWITCH_TO_SYSV: &str = r#"set -e
cd /var/tmp/sysv
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-remove-essential ./*.deb \
  >/var/tmp/sysv/apt.log 2>&1 || { tail -30 /var/tmp/sysv/apt.log; exit 1; }
# insserv's own postinst ran before initscripts was there: order the rc links now.
insserv >/dev/null 2>&1 || true
grep -q '^id:2:initdefault:' /etc/inittab
# The lab agent was a systemd unit; under SysV init it is respawned from inittab.
printf 'ag:2345:respawn:/usr/local/sbin/xenraid-lab-agent\n' >>/etc/inittab
# An initramfs without systemd, as CentOS 5 has: systemd's would start systemd again at its
# switch-root and leave its run directory behind, which makes every init script hand over
# to systemctl. The conversion's own dracut run reads the same configuration.
printf 'omit_dracutmodules+=" systemd systemd-initrd dracut-systemd "\n' \
  >/etc/dracut.conf.d/20-sysvinit.conf
kver=$(uname -r)
dracut -q --force "/boot/initrd-$kver.img" "$kver"
if lsinitrd "/boot/initrd-$kver.img" | grep -q 'systemd-journald$'; then
  echo "systemd is still in the initramfs"; exit 1
fi
"#;

/// PID 1 is sysvinit's (`init`; systemd names itself `systemd`) and no systemd run directory
/// is there; prints the runlevel.
const RUNS_SYSV: &str = r#"comm=$(cat /proc/1/comm)
if [ "$comm" != init ] || [ -d /run/systemd/system ]; then
  echo "PID 1 is $comm; $(ls -d /run/systemd/system 2>&1)"; exit 1
fi
runlevel || true"#;

/// The sysvinit packages, downloaded once into the lab cache with the host's apt (a bookworm
/// host, like the guests' rootfs).
fn sysv_debs(ctx: &Ctx) -> Result<Vec<PathBuf>> {
    let dir = ctx.lab.dir.join("debs-sysvinit");
    if !dir.join(".complete").exists() {
        let tmp = dir.with_extension("downloading");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        let out = Command::new("apt-get")
            .arg("download")
            .args(SYSV_PACKAGES)
            .current_dir(&tmp)
            .output()
            .context("apt-get download (the lab needs apt on a Debian bookworm host)")?;
        if !out.status.success() {
            bail!(
                "apt-get download {} failed: {}",
                SYSV_PACKAGES.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fs::write(tmp.join(".complete"), "")?;
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&tmp, &dir)?;
    }
    let mut debs: Vec<PathBuf> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    ensure!(
        debs.len() == SYSV_PACKAGES.len(),
        "expected {} packages in {}, found {debs:?}",
        SYSV_PACKAGES.len(),
        dir.display()
    );
    Ok(debs)
}

/// Convert (with `--no-wait`) on a 6.5 guest running SysV init: one reboot, the resume started
/// by init from the copy's inittab, waiting for the resync, complete with every array [UU],
/// the entry gone; doctor keeps the monitor running from inittab; each disk boots alone.
pub fn convert_xs65_sysv(ctx: &mut Ctx) -> Result<()> {
    let p = ctx.phase("image", |c| pair_of(c, XS65.profile))?;
    let debs = sysv_debs(ctx)?;
    ctx.phase("switch-to-sysvinit", |c| {
        let mut vm = c.boot("original-systemd", &p.image, &[&p.a, &p.b])?;
        for deb in &debs {
            let name = deb.file_name().expect("a file").to_string_lossy();
            vm.copy_in(deb, &format!("/var/tmp/sysv/{name}"), 0o644)?;
        }
        vm.run(SWITCH_TO_SYSV, 10 * MIN)
            .context("installing sysvinit")?;
        vm.reboot(30 * MIN)?;
        let level = vm.run(RUNS_SYSV, MIN).context("SysV init is not PID 1")?;
        eprintln!(
            "[convert-xs65-sysv] SysV init runs, runlevel {}",
            level.stdout.trim()
        );
        vm.shutdown(5 * MIN)
    })?;
    ctx.phase("convert-reboot-resume", |c| {
        let mut vm = c.boot("original", &p.image, &[&p.a, &p.b])?;
        vm.run(RUNS_SYSV, MIN)?;
        install(&mut vm)?;
        let inspect = vm.run(&format!("{GUEST_BIN} inspect"), MIN)?.stdout;
        ensure!(
            inspect.contains("init Sysv"),
            "inspect did not see SysV init:\n{inspect}"
        );
        let plan = vm
            .run(&format!("{GUEST_BIN} plan --target {}", p.b.by_id()), MIN)?
            .stdout;
        ensure!(
            plan.contains("+xr:2345:once:/var/lib/xenraid/xenraid resume --yes --wait")
                && plan.contains("$ reboot")
                && !plan.contains("xenraid-resume.service"),
            "the plan does not resume through inittab:\n{plan}"
        );
        // --no-wait: the resume entry waits for the resync all the same (it runs in the
        // background), so 6.5's boot flag still moves only after it and nobody resumes by hand.
        start_convert(&mut vm, &p.b, "--resync-speed max --no-wait")?;
        vm.wait_booted(60 * MIN)?;
        vm.run(RUNS_SYSV, MIN)?;
        // init itself started the resume (its parent is PID 1), from the copy's inittab.
        let resume = vm.run(
            "grep -q '^xr:2345:once:/var/lib/xenraid/xenraid resume --yes --wait$' /etc/inittab && \
             pid=$(pgrep -f 'xenraid resume --yes' | head -1) && [ -n \"$pid\" ] && \
             ps -o ppid=,args= -p \"$pid\"",
            MIN,
        )
        .context("no resume started by init after the reboot")?;
        ensure!(
            resume.stdout.trim_start().starts_with("1 "),
            "the resume's parent is not init: {}",
            resume.stdout
        );
        eprintln!("[convert-xs65-sysv] resume started by init: {}", resume.stdout.trim());
        // It runs in the background (an inittab `once`): the boot did not wait for it.
        vm.run(
            "for i in $(seq 1 2700); do grep -q '\"state\": \"complete\"' /var/lib/xenraid/convert.json && exit 0; sleep 1; done; exit 1",
            50 * MIN,
        )
        .context("the resume did not complete")?;
        assert_converted_as(&mut vm, &p.image, &p.a, &XS65)?;
        vm.run(
            "! grep -q 'skipped: --no-wait' /var/lib/xenraid/convert.json",
            MIN,
        )
        .context("the resume from inittab skipped the resync wait")?;
        vm.run("! grep -q 'xenraid resume' /etc/inittab", MIN)
            .context("the finish left the inittab entry")?;
        let status = vm.run(&format!("{GUEST_BIN} status"), MIN)?.stdout;
        eprint!("{status}");
        doctor_keeps_the_monitor_running(&mut vm)?;
        vm.shutdown(5 * MIN)
    })?;
    boot_each_disk_alone_as(ctx, &p, &XS65)
}

/// The monitor's pid once init runs it (its parent PID 1), other than `not`.
fn monitor_pid(vm: &mut Vm, not: &str) -> Result<String> {
    let script = format!(
        r#"for i in $(seq 1 60); do
  for pid in $(pgrep -f '^/usr/sbin/xenraid monitor'); do
    [ "$pid" != "{not}" ] && [ "$(ps -o ppid= -p "$pid" | tr -d ' ')" = 1 ] && {{ echo "$pid"; exit 0; }}
  done
  sleep 1
done
ps -ef; exit 1"#
    );
    Ok(vm
        .run(&script, 2 * MIN)
        .context("no xenraid monitor started by init")?
        .stdout
        .trim()
        .to_string())
}

/// doctor under SysV init: the monitor fails with the inittab entry as its fix; `--fix` adds
/// the entry and init starts the monitor, and starts it again when it is killed; doctor passes.
fn doctor_keeps_the_monitor_running(vm: &mut Vm) -> Result<()> {
    vm.put_text("/etc/xenraid/xenraid.toml", "[alert.xapi]\n")?;
    vm.run(&format!("ln -sf {GUEST_BIN} /usr/sbin/xenraid"), MIN)?;
    let doctor = |vm: &mut Vm, args: &str| -> Result<(i32, String)> {
        let out = vm.run_status(&format!("{GUEST_BIN} doctor {args}"), 20 * MIN)?;
        Ok((out.status, format!("{}{}", out.stdout, out.stderr)))
    };
    let (status, out) = doctor(vm, "")?;
    let monitor_failed = out
        .lines()
        .any(|l| l.starts_with("FAIL") && l.contains("monitor"));
    ensure!(
        status == 4 && monitor_failed && out.contains("xm:2345:respawn:"),
        "doctor must fail `monitor` with the inittab entry as its fix, exit {status}:\n{out}"
    );
    let (status, fixed) = doctor(vm, "--fix")?;
    ensure!(status == 0, "doctor --fix left exit {status}:\n{fixed}");
    let first = monitor_pid(vm, "")?;
    vm.run(&format!("kill {first}"), MIN)?;
    let second = monitor_pid(vm, &first)?;
    let (status, after) = doctor(vm, "")?;
    ensure!(status == 0, "after --fix doctor exits {status}:\n{after}");
    eprintln!(
        "[convert-xs65-sysv] doctor --fix: the monitor runs from inittab (pid {first}); killed, init started it again (pid {second}); doctor passes"
    );
    Ok(())
}
