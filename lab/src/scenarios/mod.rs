//! The lab's proof scenarios. Each boots real guests, acts, and asserts on real state.

use crate::images::{Image, Lab};
use crate::vm::{Boot, Disk, Net, Vm, VmConfig};
use anyhow::Result;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod add_mirror;
mod ansible;
mod bench;
mod convert;
mod crash;
mod doctor;
mod driver;
mod monitor;
mod package;
mod replace;
mod scrub;
mod seeds;
mod sysv;
pub mod xenraid;

pub struct Scenario {
    pub name: &'static str,
    /// In the core tier, run by CI; the rest only in the full matrix.
    pub core: bool,
    pub about: &'static str,
    pub run: fn(&mut Ctx) -> Result<()>,
}

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "driver",
            core: true,
            about: "lab driver: reboot, QMP unplug/plug, power cut, disk order",
            run: driver::driver,
        },
        Scenario {
            name: "inspect",
            core: true,
            about: "xenraid inspect --json in each image matches its recipe; plan refuses the system disk",
            run: xenraid::inspect,
        },
        Scenario {
            name: "speed",
            core: false,
            about: "inspect and plan median wall time in each guest, limit 200 ms",
            run: xenraid::speed,
        },
        Scenario {
            name: "bad-targets",
            core: true,
            about: "plan refuses small / stale-md+ext4 / LVM targets, target image unchanged",
            run: xenraid::bad_targets,
        },
        Scenario {
            name: "package",
            core: true,
            about: "the RPM (rpm -i) and the .deb in xs7-bios: binary runs in an empty chroot, units start and enable, edited config kept, removal stops them",
            run: package::package,
        },
        Scenario {
            name: "ansible",
            core: false,
            about: "contrib/ansible against two xs7-bios guests over SSH (ansible-core 2.16 from PyPI): --tags install, --check shows the plans and writes nothing, the run converts both, a second run changes nothing",
            run: ansible::ansible,
        },
        Scenario {
            name: "seed-7.6.2",
            core: false,
            about: "7.6.2 seed procedure (bugs fixed) in xs7-bios",
            run: seeds::seed_762,
        },
        Scenario {
            name: "convert",
            core: true,
            about: "xenraid convert on xs7-bios: one reboot, automatic resume, SR via xe, each disk boots alone",
            run: convert::convert,
        },
        Scenario {
            name: "convert-xs65",
            core: false,
            about: "issue 5: convert on xs65-bios (md 0.90, extlinux + gptmbr.bin): one reboot, resume, SR via xe, each disk boots alone",
            run: convert::convert_xs65,
        },
        Scenario {
            name: "convert-uefi",
            core: false,
            about: "issue 5: convert on xcpng8-uefi (an ESP and a boot entry per disk): one reboot, resume, SR via xe, each disk boots alone",
            run: convert::convert_uefi,
        },
        Scenario {
            name: "convert-debian",
            core: false,
            about: "issue 5: convert on plain Debian 12 (GRUB2 by grub-mkconfig, dracut, no xe): one reboot, resume, each disk boots alone",
            run: convert::convert_debian,
        },
        Scenario {
            name: "rollback",
            core: true,
            about: "convert stopped before the point of no return, then rollback: original as before, target blank",
            run: convert::rollback,
        },
        Scenario {
            name: "convert-swapped",
            core: false,
            about: "disk order swapped between the phases: the original (by serial) is repartitioned",
            run: convert::convert_swapped,
        },
        Scenario {
            name: "convert-xs65-sysv",
            core: false,
            about: "issue 5: convert --no-wait on xs65-bios switched to SysV init (6.5's CentOS 5 dom0 has no systemd): the resume starts from the copy's inittab and waits for the resync, the finish removes the entry; doctor --fix runs the monitor from inittab; each disk boots alone",
            run: sysv::convert_xs65_sysv,
        },
        Scenario {
            name: "convert-swapped-xs65",
            core: false,
            about: "issue 5: the swapped order on xs65-bios",
            run: convert::convert_swapped_xs65,
        },
        Scenario {
            name: "convert-swapped-uefi",
            core: false,
            about: "issue 5: the swapped order on xcpng8-uefi",
            run: convert::convert_swapped_uefi,
        },
        Scenario {
            name: "convert-swapped-debian",
            core: false,
            about: "issue 5: the swapped order on plain Debian",
            run: convert::convert_swapped_debian,
        },
        Scenario {
            name: "scrub",
            core: false,
            about: "scrub on real md: a budgeted check checkpoints and continues; a corrupted member is reported and alerted",
            run: scrub::scrub_scenario,
        },
        Scenario {
            name: "crash-matrix",
            core: false,
            about: "power cut at every step boundary of convert, then boot and resume (XENRAID_LAB_CRASH_AT=a,b for some)",
            run: crash::crash_matrix,
        },
        Scenario {
            name: "crash-matrix-xs65",
            core: false,
            about: "issue 5: the crash matrix on xs65-bios",
            run: crash::crash_matrix_xs65,
        },
        Scenario {
            name: "crash-matrix-uefi",
            core: false,
            about: "issue 5: the crash matrix on xcpng8-uefi (each power cut keeps the firmware's variable store as it was)",
            run: crash::crash_matrix_uefi,
        },
        Scenario {
            name: "crash-matrix-debian",
            core: false,
            about: "issue 5: the crash matrix on plain Debian",
            run: crash::crash_matrix_debian,
        },
        Scenario {
            name: "bench",
            core: false,
            about: "issue 4 benchmark: seed-7.6.2 vs xenraid convert, time to full redundancy, bytes, raw bandwidth",
            run: bench::bench,
        },
        Scenario {
            name: "monitor",
            core: false,
            about: "monitor on a converted xs7-bios: idle footprint, disk pulled -> mail (real SMTP server) vs mdadm --monitor, xe message, status --check",
            run: monitor::monitor,
        },
        Scenario {
            name: "doctor",
            core: false,
            about: "doctor on a converted xs7-bios: passes; initramfs without mdadm.conf, wiped boot code, removed bitmap each detected and fixed; disk B alone boots",
            run: doctor::doctor_scenario,
        },
        Scenario {
            name: "replace",
            core: false,
            about: "replace on a converted xs7-bios: a member back after a brief loss re-added (bitmap vs none, bytes resynced); disk A pulled, bad new disks refused, a new disk replaces it and boots alone",
            run: replace::replace_scenario,
        },
        Scenario {
            name: "doctor-uefi",
            core: false,
            about: "doctor on a converted xcpng8-uefi: an ESP copy that drifted is detected and fixed; that disk alone boots",
            run: doctor::doctor_uefi,
        },
        Scenario {
            name: "replace-uefi",
            core: false,
            about: "replace on a converted xcpng8-uefi: a member back after a brief loss re-added (bitmap vs none); disk A pulled, a new disk replaces it (ESP, boot entry) and boots alone through its own entry",
            run: replace::replace_uefi,
        },
        Scenario {
            name: "replace-xs65",
            core: false,
            about: "replace on a converted xs65-bios (md 0.90, gptmbr.bin): the brief loss re-added; disk A pulled, a new disk replaces it, flagged legacy-BIOS-bootable only after its resync, and boots alone",
            run: replace::replace_xs65,
        },
        Scenario {
            name: "add-mirror",
            core: false,
            about: "add-mirror on a converted xs7-bios with two new 2G disks: bad inputs refused (exit 3, disks unchanged), then a named RAID1 [UU] with an SR via xe, the same name after a reboot, doctor passes",
            run: add_mirror::add_mirror,
        },
        Scenario {
            name: "add-mirror-uefi",
            core: false,
            about: "add-mirror on a converted xcpng8-uefi: the same proof",
            run: add_mirror::add_mirror_uefi,
        },
        Scenario {
            name: "seed-6.5",
            core: false,
            about: "6.5 seed procedure (md 0.90, extlinux --raid) in xs65-bios",
            run: seeds::seed_65,
        },
    ]
}

/// Per-run state: the run directory (disks, consoles) and the timed phases.
pub struct Ctx<'a> {
    pub lab: &'a Lab,
    pub dir: PathBuf,
    pub phases: Vec<(String, Duration)>,
    scenario: String,
}

impl<'a> Ctx<'a> {
    pub fn new(lab: &'a Lab, scenario: &str) -> Result<Ctx<'a>> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let dir = lab.dir.join("runs").join(format!("{scenario}-{stamp}"));
        fs::create_dir_all(&dir)?;
        Ok(Ctx {
            lab,
            dir,
            phases: Vec::new(),
            scenario: scenario.to_string(),
        })
    }

    /// Runs and times one phase; prints its wall time as it ends.
    pub fn phase<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let t = Instant::now();
        eprintln!("[{}] phase {name} …", self.scenario);
        let r = f(self);
        let d = t.elapsed();
        eprintln!(
            "[{}] phase {name}: {} in {:.1} s",
            self.scenario,
            if r.is_ok() { "ok" } else { "FAILED" },
            d.as_secs_f64()
        );
        self.phases.push((name.to_string(), d));
        r
    }

    pub fn image(&self, profile: &str) -> Result<Image> {
        self.lab.image(profile)
    }

    /// Boots through the firmware with `disks` in this bus/boot order; waits for the agent.
    pub fn boot(&self, name: &str, image: &Image, disks: &[&Disk]) -> Result<Vm> {
        self.boot_from(name, image, disks, 0)
    }

    /// Like `boot`, with the firmware booting `disks[boot_disk]` whatever its bus position.
    pub fn boot_from(
        &self,
        name: &str,
        image: &Image,
        disks: &[&Disk],
        boot_disk: usize,
    ) -> Result<Vm> {
        self.boot_tagged(name, image, disks, boot_disk, None)
    }

    /// Like `boot_from`, on a machine whose SMBIOS chassis asset tag is `asset_tag`.
    pub fn boot_tagged(
        &self,
        name: &str,
        image: &Image,
        disks: &[&Disk],
        boot_disk: usize,
        asset_tag: Option<&str>,
    ) -> Result<Vm> {
        self.boot_machine(name, image, disks, boot_disk, asset_tag, Net::None, None)
    }

    /// Like `boot`, with QEMU user networking (the host's loopback is 10.0.2.2 in the guest).
    pub fn boot_networked(&self, name: &str, image: &Image, disks: &[&Disk]) -> Result<Vm> {
        self.boot_machine(name, image, disks, 0, None, Net::User, None)
    }

    /// Like `boot`, with the host's 127.0.0.1:`ssh_port` forwarded to the guest's sshd.
    pub fn boot_with_ssh(
        &self,
        name: &str,
        image: &Image,
        disks: &[&Disk],
        ssh_port: u16,
    ) -> Result<Vm> {
        self.boot_machine(
            name,
            image,
            disks,
            0,
            None,
            Net::UserWithSsh(ssh_port),
            None,
        )
    }

    /// Like `boot`, a UEFI guest with this variable store (the crash replays each have the
    /// store as it was at their power cut).
    pub fn boot_with_vars(
        &self,
        name: &str,
        image: &Image,
        disks: &[&Disk],
        vars: &std::path::Path,
    ) -> Result<Vm> {
        self.boot_machine(name, image, disks, 0, None, Net::None, Some(vars))
    }

    #[allow(clippy::too_many_arguments)]
    fn boot_machine(
        &self,
        name: &str,
        image: &Image,
        disks: &[&Disk],
        boot_disk: usize,
        asset_tag: Option<&str>,
        net: Net,
        vars: Option<&std::path::Path>,
    ) -> Result<Vm> {
        let vars = vars
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| self.dir.join("uefi-vars.fd"));
        let uefi_vars = if image.is_uefi() {
            if !vars.exists() {
                image.uefi_vars(&vars)?;
            }
            Some(vars)
        } else {
            None
        };
        let mut vm = Vm::start(VmConfig {
            name: name.to_string(),
            dir: self.dir.clone(),
            disks: disks.iter().map(|d| (*d).clone()).collect(),
            boot: Boot::Firmware,
            uefi_vars,
            boot_disk,
            memory_mb: 1536,
            asset_tag: asset_tag.map(str::to_string),
            net,
        })?;
        // long enough for a resume unit finishing a conversion within the boot
        let took = vm.wait_booted(Duration::from_secs(1800))?;
        eprintln!(
            "[{}]   {name}: booted in {:.1} s ({})",
            self.scenario,
            took.as_secs_f64(),
            vm.system_state
        );
        if vm.system_state == "degraded" {
            let failed = vm.run_status(
                "systemctl --failed --no-legend --plain",
                Duration::from_secs(30),
            )?;
            eprintln!(
                "[{}]   {name}: failed units: {}",
                self.scenario,
                failed.stdout.trim().replace('\n', "; ")
            );
        }
        Ok(vm)
    }

    pub fn cleanup(&self, success: bool) {
        let keep = std::env::var_os("XENRAID_LAB_KEEP").is_some();
        if success && !keep {
            let _ = fs::remove_dir_all(&self.dir);
        } else if keep {
            eprintln!(
                "[{}] kept run directory (disks, consoles): {}",
                self.scenario,
                self.dir.display()
            );
        } else {
            // disk overlays are large; keep consoles, drop disks unless asked to keep them.
            // A crash matrix's recording (chain-*) stays: its boundaries can be replayed
            // again (XENRAID_LAB_REPLAY_FROM) once the failure is understood.
            if let Ok(entries) = fs::read_dir(&self.dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    let recording = e.file_name().to_string_lossy().starts_with("chain-");
                    if p.extension().is_some_and(|x| x == "qcow2") && !recording {
                        let _ = fs::remove_file(p);
                    }
                }
            }
            eprintln!(
                "[{}] consoles kept in {} (set XENRAID_LAB_KEEP=1 to keep the disk images too)",
                self.scenario,
                self.dir.display()
            );
        }
    }
}
