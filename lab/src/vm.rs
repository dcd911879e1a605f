//! One QEMU guest: disks on a virtio-scsi bus (so the guest sees sdX names, serials and
//! WWNs like a real server's), the serial console to a file, QMP and the agent on sockets.

use crate::agent::{Agent, Output};
use crate::qmp::Qmp;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A disk as the machine sees it. The serial is what the guest's /dev/disk/by-id shows.
#[derive(Debug, Clone)]
pub struct Disk {
    pub path: PathBuf,
    pub serial: String,
    pub wwn: u64,
}

impl Disk {
    pub fn new(path: impl Into<PathBuf>, serial: &str, wwn: u64) -> Disk {
        Disk {
            path: path.into(),
            serial: serial.to_string(),
            wwn,
        }
    }
    /// The guest-side stable name of this disk.
    pub fn by_id(&self) -> String {
        format!("/dev/disk/by-id/wwn-{:#x}", self.wwn)
    }
    fn format(&self) -> &'static str {
        if self.path.extension().is_some_and(|e| e == "qcow2") {
            "qcow2"
        } else {
            "raw"
        }
    }
}

#[derive(Debug, Clone)]
pub enum Boot {
    /// Through the firmware (SeaBIOS or OVMF) and the disks' own boot code.
    Firmware,
    /// `-kernel/-initrd/-append`: used once while building an image, before it has a bootloader.
    Direct {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
}

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub name: String,
    pub dir: PathBuf,
    /// In bus order: the first gets scsi-id 0 (usually sda).
    pub disks: Vec<Disk>,
    /// Index in `disks` of the disk the firmware boots first (the others follow in bus
    /// order). SeaBIOS, like many real BIOSes, tries only the first hard disk it is given.
    pub boot_disk: usize,
    pub boot: Boot,
    /// OVMF variable store to use (UEFI guests); None = SeaBIOS.
    pub uefi_vars: Option<PathBuf>,
    pub memory_mb: u32,
    /// SMBIOS chassis asset tag (`/sys/class/dmi/id/chassis_asset_tag` in the guest): a
    /// property of this machine, not of its disks, so a later boot of the same disks elsewhere
    /// does not see it.
    pub asset_tag: Option<String>,
    pub net: Net,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Net {
    None,
    /// QEMU user networking (virtio-net): the guest reaches the host's loopback at 10.0.2.2.
    User,
    /// The same, with the host's 127.0.0.1:PORT forwarded to the guest's sshd.
    UserWithSsh(u16),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// KVM only when it can really run a stock kernel: /dev/kvm must open and the CPU must
/// advertise vmx/svm (PVM-backed /dev/kvm does not, and hangs a stock kernel at boot).
/// `XENRAID_LAB_ACCEL=tcg|kvm` overrides.
pub fn detect_accel() -> Accel {
    match std::env::var("XENRAID_LAB_ACCEL").as_deref() {
        Ok("kvm") => return Accel::Kvm,
        Ok("tcg") => return Accel::Tcg,
        _ => {}
    }
    let kvm_opens = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hw_virt = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if kvm_opens && hw_virt {
        Accel::Kvm
    } else {
        Accel::Tcg
    }
}

pub struct Vm {
    pub config: VmConfig,
    child: Child,
    agent: Option<Agent>,
    qmp: Option<Qmp>,
    pub console: PathBuf,
    boot_id: Option<String>,
    /// `systemctl is-system-running` once the last boot finished.
    pub system_state: String,
    started: Instant,
}

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

impl Vm {
    pub fn start(config: VmConfig) -> Result<Vm> {
        fs::create_dir_all(&config.dir)?;
        let console = config.dir.join(format!("{}.console.log", config.name));
        let qmp_sock = config.dir.join(format!("{}.qmp", config.name));
        let agent_sock = config.dir.join(format!("{}.agent", config.name));
        let _ = fs::remove_file(&qmp_sock);
        let _ = fs::remove_file(&agent_sock);
        let mut cmd = Command::new("qemu-system-x86_64");
        match detect_accel() {
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
        };
        cmd.args([
            "-machine",
            "pc",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ]);
        cmd.args(["-m", &config.memory_mb.to_string(), "-smp", "2"]);
        match config.net {
            Net::None => cmd.args(["-nic", "none"]),
            Net::User => cmd.args(["-nic", "user,model=virtio-net-pci"]),
            Net::UserWithSsh(port) => cmd.args([
                "-nic",
                &format!("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:22"),
            ]),
        };
        cmd.arg("-chardev")
            .arg(format!("file,id=con,path={},append=on", console.display()));
        cmd.args(["-serial", "chardev:con"]);
        cmd.arg("-chardev").arg(format!(
            "socket,id=qmp,path={},server=on,wait=off",
            qmp_sock.display()
        ));
        cmd.args(["-mon", "chardev=qmp,mode=control"]);
        cmd.args(["-device", "virtio-serial-pci,id=vser"]);
        cmd.arg("-chardev").arg(format!(
            "socket,id=agent,path={},server=on,wait=off",
            agent_sock.display()
        ));
        cmd.args([
            "-device",
            "virtserialport,chardev=agent,name=org.xenraid.lab.agent",
        ]);
        cmd.args(["-device", "virtio-scsi-pci,id=scsi0"]);
        if let Some(tag) = &config.asset_tag {
            cmd.arg("-smbios").arg(format!("type=3,asset={tag}"));
        }
        if let Some(vars) = &config.uefi_vars {
            cmd.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
            ));
            cmd.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
        }
        for (i, disk) in config.disks.iter().enumerate() {
            cmd.arg("-drive").arg(format!(
                "if=none,id=drv{i},file={},format={},cache=unsafe,discard=unmap,detect-zeroes=unmap",
                disk.path.display(),
                disk.format()
            ));
            // UEFI keeps bootindex too: without QEMU's boot order, this OVMF did not connect
            // the second disk, and BootNext naming its ESP failed "Not Found" (2026-11-22).
            // The price: OVMF rewrites BootOrder from this list at every boot.
            let priority = if i == config.boot_disk { 1 } else { i + 2 };
            cmd.arg("-device").arg(disk_device(i, disk, Some(priority)));
        }
        if let Boot::Direct {
            kernel,
            initrd,
            append,
        } = &config.boot
        {
            cmd.arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initrd)
                .arg("-append")
                .arg(append);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(fs::File::create(
            config.dir.join(format!("{}.qemu.err", config.name)),
        )?);
        let child = cmd
            .spawn()
            .context("starting qemu-system-x86_64 (run scripts/setup.sh)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut vm = Vm {
            config,
            child,
            agent: None,
            qmp: None,
            console,
            boot_id: None,
            system_state: String::new(),
            started: Instant::now(),
        };
        vm.qmp = Some(Qmp::connect(&qmp_sock, deadline).map_err(|e| vm.fail(e))?);
        vm.agent = Some(Agent::connect(&agent_sock, deadline).map_err(|e| vm.fail(e))?);
        Ok(vm)
    }

    /// Waits until the guest has booted and the boot finished (every start job done).
    pub fn wait_booted(&mut self, timeout: Duration) -> Result<Duration> {
        self.wait_boot(timeout, true)
    }

    /// Waits only for the agent of a new boot: for a boot whose start jobs wait on the lab.
    pub fn wait_agent(&mut self, timeout: Duration) -> Result<Duration> {
        self.wait_boot(timeout, false)
    }

    fn wait_boot(&mut self, timeout: Duration, finished: bool) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        let previous = self.boot_id.clone();
        loop {
            self.check_alive()?;
            let agent = self.agent.as_mut().expect("agent connected");
            let step = (Instant::now() + Duration::from_secs(5)).min(deadline);
            match agent.wait_ready(step) {
                Ok(id) if Some(&id) != previous.as_ref() => {
                    self.boot_id = Some(id);
                    if !finished {
                        return Ok(self.started.elapsed());
                    }
                    // the agent starts early in sysinit; "booted" means the boot finished
                    // (running, degraded, or maintenance = emergency mode, for checks to see)
                    let left = deadline.saturating_duration_since(Instant::now());
                    // SysV init (the 6.5 guest switched to it) starts the agent only once the
                    // runlevel's scripts are done: the boot has finished when it answers.
                    let state = self.run_status(
                        "if [ -d /run/systemd/system ]; then systemctl is-system-running --wait; else echo running; fi",
                        left,
                    )?;
                    self.system_state = state.stdout.trim().to_string();
                    return Ok(self.started.elapsed());
                }
                Ok(_) => std::thread::sleep(Duration::from_secs(1)), // still the old boot
                Err(_) if Instant::now() < deadline => {}
                Err(e) => {
                    let shot = self.screendump("boot-timeout");
                    return Err(self.fail(e.context(format!(
                        "guest did not boot within {timeout:?} (screen: {shot})"
                    ))));
                }
            }
        }
    }

    /// Runs a script; the error (non-zero exit or timeout) carries its output and the console tail.
    pub fn run(&mut self, script: &str, timeout: Duration) -> Result<Output> {
        let out = self.run_status(script, timeout)?;
        if !out.success() {
            return Err(self.fail(anyhow!(
                "guest command failed with status {}:\n--- script\n{}\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
                out.status,
                script.trim(),
                tail(&out.stdout, 30),
                tail(&out.stderr, 30)
            )));
        }
        Ok(out)
    }

    /// Runs a script and returns its status and output whatever the status.
    pub fn run_status(&mut self, script: &str, timeout: Duration) -> Result<Output> {
        let deadline = Instant::now() + timeout;
        let agent = self.agent.as_mut().expect("agent connected");
        let qmp = &mut self.qmp;
        let res = agent.run_watched(script, deadline, || match qmp.as_mut() {
            Some(q) => ensure_running(q),
            None => Ok(()),
        });
        res.map_err(|e| {
            let e = e.context(format!(
                "running in the guest (timeout {timeout:?}):\n{}",
                script.trim()
            ));
            self.fail(e)
        })
    }

    /// Starts a script detached from the agent (for commands that reboot or power off); its
    /// output goes to the console log (nohup would divert a terminal stdout to nohup.out).
    pub fn spawn(&mut self, script: &str) -> Result<()> {
        let wrapped = format!(
            "cat > /run/lab-detached.sh <<'LAB_EOF'\nexec >/dev/console 2>&1\n{script}\nLAB_EOF\nsetsid nohup bash /run/lab-detached.sh >/dev/null 2>&1 </dev/null &\n"
        );
        self.run(&wrapped, Duration::from_secs(30)).map(|_| ())
    }

    pub fn copy_in(&mut self, host: &Path, guest: &str, mode: u32) -> Result<()> {
        let data = fs::read(host).with_context(|| format!("read {}", host.display()))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let agent = self.agent.as_mut().expect("agent connected");
        let res = agent.put(guest, mode, &data, deadline);
        res.map_err(|e| self.fail(e))
    }

    pub fn put_text(&mut self, guest: &str, text: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let agent = self.agent.as_mut().expect("agent connected");
        let res = agent.put(guest, 0o644, text.as_bytes(), deadline);
        res.map_err(|e| self.fail(e))
    }

    /// In-place reboot (same QEMU process, same disks): waits for the new boot.
    pub fn reboot(&mut self, timeout: Duration) -> Result<Duration> {
        self.spawn("sleep 1; reboot")?;
        let t = Instant::now();
        self.wait_booted(timeout)?;
        Ok(t.elapsed())
    }

    /// Clean shutdown; waits for QEMU to exit.
    pub fn shutdown(mut self, timeout: Duration) -> Result<()> {
        self.spawn("sleep 1; poweroff")?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let e = anyhow!("guest did not power off within {timeout:?}");
        Err(self.fail(e))
    }

    /// Power cut: QMP quit, QEMU exits with no guest shutdown.
    pub fn power_cut(mut self) -> Result<()> {
        if let Some(q) = self.qmp.as_mut() {
            let _ = q.quit();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Snapshots every disk at one instant (QMP `transaction` of `blockdev-snapshot-sync`):
    /// each disk's current file is frozen as it is now and the guest goes on writing to the
    /// new overlay `overlays[i]`, so the frozen files are the disks as a power cut now would
    /// leave them. Returns the frozen files.
    pub fn snapshot_disks(&mut self, overlays: &[PathBuf]) -> Result<Vec<PathBuf>> {
        anyhow::ensure!(
            overlays.len() == self.config.disks.len(),
            "one overlay per disk"
        );
        let actions: Vec<_> = overlays
            .iter()
            .enumerate()
            .map(|(i, o)| {
                json!({ "type": "blockdev-snapshot-sync", "data": {
                    "device": format!("drv{i}"), "snapshot-file": o.display().to_string(),
                    "format": "qcow2" } })
            })
            .collect();
        let q = self.qmp.as_mut().expect("qmp");
        q.execute("transaction", json!({ "actions": actions }))?;
        let mut frozen = Vec::new();
        for (disk, overlay) in self.config.disks.iter_mut().zip(overlays) {
            frozen.push(std::mem::replace(&mut disk.path, overlay.clone()));
        }
        Ok(frozen)
    }

    /// Hot-unplug disk number `index` (as in `config.disks`), like pulling it from the bay.
    pub fn unplug_disk(&mut self, index: usize) -> Result<()> {
        let q = self.qmp.as_mut().expect("qmp");
        q.execute("device_del", json!({ "id": format!("disk{index}") }))?;
        Ok(())
    }

    /// After `unplug_disk`: waits until QEMU let go of the disk's image, so the same file can
    /// be plugged again (the disk came back). Disks from the command line lose their backend
    /// with the device; hot-added ones keep a node until it is deleted.
    pub fn release_unplugged(&mut self, index: usize) -> Result<()> {
        let q = self.qmp.as_mut().expect("qmp");
        let (node, device) = (format!("drv{index}"), format!("disk{index}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let blocks = q.execute("query-block", json!({}))?;
            let attached = blocks.as_array().is_some_and(|a| {
                a.iter().any(|b| {
                    b["device"].as_str() == Some(node.as_str())
                        || b["qdev"].as_str().is_some_and(|d| d.contains(&device))
                })
            });
            if !attached {
                break;
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "{device} is still attached a minute after device_del"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        match q.execute("blockdev-del", json!({ "node-name": node })) {
            Ok(_) => Ok(()),
            // A -drive backend: deleted with its device.
            Err(e) if e.to_string().to_lowercase().contains("find") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The VGA screen as a PPM next to the console log (GRUB rescue and BIOS messages never
    /// reach the serial console). Returns the path, or why there is none.
    pub fn screendump(&mut self, what: &str) -> String {
        let path = self
            .config
            .dir
            .join(format!("{}.{what}.ppm", self.config.name));
        let Some(q) = self.qmp.as_mut() else {
            return "no QMP".into();
        };
        match q.execute(
            "screendump",
            json!({ "filename": path.display().to_string() }),
        ) {
            Ok(_) => path.display().to_string(),
            Err(e) => format!("screendump failed: {e}"),
        }
    }

    /// Bytes (read, written) per disk since this QEMU process started, from QMP
    /// `query-blockstats`: survives the guest's own reboots.
    pub fn block_stats(&mut self) -> Result<Vec<(u64, u64)>> {
        let q = self.qmp.as_mut().expect("qmp");
        let v = q.execute("query-blockstats", json!({}))?;
        let mut out = Vec::new();
        for i in 0..self.config.disks.len() {
            let name = format!("disk{i}");
            let entry = v.as_array().and_then(|a| {
                a.iter().find(|e| {
                    e["qdev"].as_str().is_some_and(|q| q.contains(&name))
                        || e["device"].as_str() == Some(name.as_str())
                })
            });
            let stat = |k: &str| entry.and_then(|e| e["stats"][k].as_u64()).unwrap_or(0);
            out.push((stat("rd_bytes"), stat("wr_bytes")));
        }
        Ok(out)
    }

    /// Hot-add a disk on the next free SCSI target.
    pub fn plug_disk(&mut self, disk: Disk) -> Result<()> {
        let i = self.config.disks.len();
        let q = self.qmp.as_mut().expect("qmp");
        q.execute(
            "blockdev-add",
            json!({
                "node-name": format!("drv{i}"), "driver": disk.format(), "cache": {"no-flush": true},
                "discard": "unmap", "detect-zeroes": "unmap",
                "file": { "driver": "file", "filename": disk.path.display().to_string() }
            }),
        )?;
        q.execute(
            "device_add",
            json!({ "driver": "scsi-hd", "id": format!("disk{i}"), "drive": format!("drv{i}"),
                    "bus": "scsi0.0", "scsi-id": i, "lun": 0, "serial": disk.serial,
                    "wwn": disk.wwn }),
        )?;
        self.config.disks.push(disk);
        Ok(())
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let e = anyhow!("QEMU exited ({status})");
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Decorates an error with the serial console's tail: what a person needs to see first.
    /// A guest QEMU paused is named first: with the host disk full, QEMU stops the guest at
    /// its next disk write (werror=enospc), which otherwise looks like a guest that hangs.
    pub fn fail(&mut self, e: anyhow::Error) -> anyhow::Error {
        let paused = self.paused_reason();
        let console = fs::read_to_string(&self.console).unwrap_or_default();
        let qemu_err = fs::read_to_string(
            self.config
                .dir
                .join(format!("{}.qemu.err", self.config.name)),
        )
        .unwrap_or_default();
        let e = e.context(format!(
            "VM {} ({}), console {}:\n--- console tail\n{}\n--- qemu stderr\n{}",
            self.config.name,
            self.config
                .disks
                .iter()
                .map(|d| d.serial.as_str())
                .collect::<Vec<_>>()
                .join(","),
            self.console.display(),
            tail(&strip_ansi(&console), 40),
            tail(&qemu_err, 10)
        ));
        match paused {
            Some(why) => e.context(why),
            None => e,
        }
    }

    /// Why QEMU holds the guest stopped, if it does (QMP `query-status`), naming each disk
    /// whose write failed (`query-block` io-status) and the space left where its file is.
    fn paused_reason(&mut self) -> Option<String> {
        let q = self.qmp.as_mut()?;
        let state = stopped_state(q).ok()??;
        let blocks = q.execute("query-block", json!({})).unwrap_or_default();
        let failed: Vec<String> = blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["io-status"].as_str().is_some_and(|s| s != "ok"))
            .map(|b| {
                let file = b["inserted"]["file"].as_str().unwrap_or("?");
                let free = Path::new(file)
                    .parent()
                    .and_then(|d| crate::images::free_space(d).ok())
                    .map_or("unknown".to_string(), |f| format!("{} MiB", f >> 20));
                format!(
                    "{} ({file}): {}, {free} free there",
                    b["device"].as_str().unwrap_or("?"),
                    b["io-status"].as_str().unwrap_or("?")
                )
            })
            .collect();
        Some(format!(
            "QEMU paused VM {} (status {state}): a disk write failed on the host ({}); QEMU stops a guest whose disk file cannot grow (a full host disk)",
            self.config.name,
            if failed.is_empty() { "no disk names the error".to_string() } else { failed.join("; ") }
        ))
    }
}

/// Fails at once when QEMU holds the guest stopped (a paused guest answers nothing, so a
/// long wait would run to its deadline); `Vm::fail` then says why.
fn ensure_running(q: &mut Qmp) -> Result<()> {
    if let Some(state) = stopped_state(q)? {
        bail!("the guest is not running (QEMU status {state})");
    }
    Ok(())
}

/// QEMU's run state when it holds the guest stopped (`io-error` for a failed disk write),
/// `None` while the guest runs.
fn stopped_state(q: &mut Qmp) -> Result<Option<String>> {
    let status = q.execute("query-status", json!({}))?;
    Ok((status["running"].as_bool() == Some(false))
        .then(|| status["status"].as_str().unwrap_or("?").to_string()))
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn disk_device(i: usize, disk: &Disk, bootindex: Option<usize>) -> String {
    let mut s = format!(
        "scsi-hd,bus=scsi0.0,channel=0,scsi-id={i},lun=0,drive=drv{i},id=disk{i},serial={},wwn={:#x}",
        disk.serial, disk.wwn
    );
    if let Some(b) = bootindex {
        s.push_str(&format!(",bootindex={b}"));
    }
    s
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}
