//! Issue 8: the packages as a host gets them. In an `xs7-bios` guest the RPM from
//! `scripts/package.sh` is installed with rpm (Debian's, `--nodeps`: the guest's shell is not
//! in an rpm database), its binary runs alone in an empty chroot (no loader, no library: what
//! "static" must mean on dom0's glibc 2.17), its units start and enable, an edited config
//! survives a reinstall, and erasing stops and disables the units and keeps the edit as
//! `.rpmsave`. Then the .deb goes through dpkg the same way.

use super::Ctx;
use crate::vm::Vm;
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
const RPM: &str = "/root/xenraid.rpm";
const DEB: &str = "/root/xenraid.deb";

/// `XENRAID_PACKAGE_DIR`, else `target/package/`: the one artifact whose name ends in `suffix`.
pub(super) fn artifact(suffix: &str) -> Result<PathBuf> {
    let dir = match std::env::var_os("XENRAID_PACKAGE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/package"),
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "{}: build the packages with scripts/package.sh",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    ensure!(
        found.len() == 1,
        "want one *{suffix} in {}, found {found:?} (scripts/package.sh writes it)",
        dir.display()
    );
    Ok(found.remove(0))
}

/// Runs `script` under `set -e`; its stdout, trimmed.
fn sh(vm: &mut Vm, script: &str) -> Result<String> {
    Ok(vm
        .run(&format!("set -e\n{script}"), 5 * MIN)?
        .stdout
        .trim()
        .to_string())
}

/// The monitor runs (and stays up: no restart loop behind a momentary "active"), the scrub
/// timer is enabled and waiting.
fn units_run(vm: &mut Vm, how: &str) -> Result<()> {
    let out = sh(
        vm,
        "systemctl enable --now xenraid-monitor.service xenraid-scrub.timer 2>&1
         sleep 5
         echo monitor=$(systemctl is-active xenraid-monitor.service) \
              restarts=$(systemctl show -p NRestarts --value xenraid-monitor.service) \
              timer=$(systemctl is-enabled xenraid-scrub.timer)/$(systemctl is-active xenraid-scrub.timer)",
    )?;
    let status = out.lines().last().unwrap_or_default();
    if status != "monitor=active restarts=0 timer=enabled/active" {
        let log = vm.run_status(
            "journalctl -b -u xenraid-monitor --no-pager | tail -30",
            MIN,
        )?;
        anyhow::bail!(
            "{how}: units: {status} (want monitor=active restarts=0 timer=enabled/active)\n{}",
            log.stdout
        );
    }
    println!("PACKAGE {how}: xenraid-monitor active (no restart), xenraid-scrub.timer enabled and active");
    Ok(())
}

/// After removal: the units stopped and disabled by the package's own scripts.
fn units_gone(vm: &mut Vm, how: &str) -> Result<()> {
    let out = sh(
        vm,
        // A unit without its file: systemd 252 prints nothing to stdout, later ones `not-found`.
        "systemctl daemon-reload
         t=$(systemctl is-enabled xenraid-scrub.timer 2>/dev/null || true)
         case $t in '' | not-found) t=gone ;; esac
         echo monitor=$(systemctl is-active xenraid-monitor.service || true) timer=$t \
              bin=$(test -e /usr/sbin/xenraid && echo present || echo gone)",
    )?;
    let status = out.lines().last().unwrap_or_default();
    ensure!(
        status == "monitor=inactive timer=gone bin=gone",
        "{how}: after removal {status} (want monitor=inactive timer=gone bin=gone)"
    );
    Ok(())
}

pub fn package(ctx: &mut Ctx) -> Result<()> {
    let rpm = artifact(".x86_64.rpm")?;
    let deb = artifact("_amd64.deb")?;
    let image = ctx.image("xs7-bios")?;
    let sys = image.system_disk(&ctx.dir.join("sys.qcow2"))?;
    let mut vm = ctx.phase("boot", |c| c.boot("package", &image, &[&sys]))?;

    ctx.phase("rpm", |_| {
        vm.copy_in(&rpm, RPM, 0o644)?;
        // md_mod: /proc/mdstat is the monitor unit's condition (a dom0 always has it).
        let version = sh(
            &mut vm,
            &format!(
                "modprobe raid1
                 rpm -i --nodeps --force-debian {RPM} >/root/rpm.log 2>&1 || {{ cat /root/rpm.log >&2; exit 1; }}
                 rpm -q xenraid >&2
                 /usr/sbin/xenraid --version"
            ),
        )?;
        ensure!(
            version.starts_with("xenraid "),
            "/usr/sbin/xenraid --version: {version}"
        );
        println!("PACKAGE rpm -i: {version}");

        // Nothing but the binary: no /lib, no ld.so, no libc, no /proc.
        let alone = sh(
            &mut vm,
            "rm -rf /tmp/empty && mkdir -p /tmp/empty && cp /usr/sbin/xenraid /tmp/empty/
             find /tmp/empty -mindepth 1 | wc -l >&2
             chroot /tmp/empty /xenraid --version",
        )?;
        ensure!(
            alone == version,
            "in an empty chroot: `{alone}` (on the host: `{version}`)"
        );
        println!("PACKAGE static: `chroot /tmp/empty /xenraid --version` = {alone}");

        units_run(&mut vm, "rpm")?;
        let config = sh(&mut vm, "rpm -q --configfiles xenraid")?;
        ensure!(
            config == "/etc/xenraid/xenraid.toml",
            "rpm -q --configfiles: {config}"
        );
        // The admin's edit survives a reinstall (%config(noreplace)), and the running monitor
        // is restarted by %postun with the reinstalled binary.
        let kept = sh(
            &mut vm,
            &format!(
                "echo '[alert.xapi]' >> /etc/xenraid/xenraid.toml
                 pid=$(systemctl show -p MainPID --value xenraid-monitor)
                 rpm -U --replacepkgs --nodeps --force-debian {RPM} >/root/rpm.log 2>&1 || {{ cat /root/rpm.log >&2; exit 1; }}
                 sleep 2
                 tail -1 /etc/xenraid/xenraid.toml
                 test \"$(systemctl show -p MainPID --value xenraid-monitor)\" != \"$pid\" && echo restarted
                 systemctl is-active xenraid-monitor"
            ),
        )?;
        ensure!(
            kept.lines().collect::<Vec<_>>() == ["[alert.xapi]", "restarted", "active"],
            "after rpm -U --replacepkgs: {kept:?} (want the edit kept, the monitor restarted and active)"
        );
        println!("PACKAGE rpm -U: edited config kept, monitor restarted");
        if sh(&mut vm, "command -v man || true")?.is_empty() {
            println!("PACKAGE man: man-db not in the guest, page lookup not checked");
        } else {
            let page = sh(&mut vm, "man -w xenraid-scrub")?;
            ensure!(
                page == "/usr/share/man/man8/xenraid-scrub.8.gz",
                "man -w xenraid-scrub: {page}"
            );
        }
        let saved = sh(
            &mut vm,
            "rpm -e --nodeps xenraid
             tail -1 /etc/xenraid/xenraid.toml.rpmsave",
        )?;
        ensure!(
            saved == "[alert.xapi]",
            "rpm -e: the edited config must be kept as .rpmsave, got {saved:?}"
        );
        units_gone(&mut vm, "rpm -e")?;
        println!("PACKAGE rpm -e: units stopped and disabled, edited config kept as .rpmsave");
        sh(&mut vm, "rm -rf /etc/xenraid /tmp/empty").map(|_| ())
    })?;

    ctx.phase("deb", |_| {
        vm.copy_in(&deb, DEB, 0o644)?;
        let version = sh(
            &mut vm,
            &format!(
                "dpkg -i {DEB} >&2
                 dpkg-query -W -f='${{Status}} ${{Conffiles}}\\n' xenraid >&2
                 /usr/sbin/xenraid --version"
            ),
        )?;
        ensure!(
            version.starts_with("xenraid "),
            "deb: /usr/sbin/xenraid --version: {version}"
        );
        units_run(&mut vm, "deb")?;
        // dpkg -r keeps a conffile, dpkg -P removes it.
        let kept = sh(
            &mut vm,
            "dpkg -r xenraid >&2
             test -e /etc/xenraid/xenraid.toml && echo kept
             dpkg -P xenraid >&2
             test -e /etc/xenraid/xenraid.toml && echo still-there || echo purged",
        )?;
        ensure!(
            kept.lines().collect::<Vec<_>>() == ["kept", "purged"],
            "deb: conffile after dpkg -r / -P: {kept:?}"
        );
        units_gone(&mut vm, "dpkg -r")?;
        println!(
            "PACKAGE deb: installed, units ran, removal stopped them, conffile kept until purge"
        );
        Ok(())
    })?;
    vm.shutdown(5 * MIN)
}
