//! Issue 8's fleet path, for real: ansible-core from PyPI (scripts/setup-ansible.sh) drives
//! two `xs7-bios` guests over SSH on loopback-forwarded ports with `contrib/ansible`'s role:
//! `--tags install` installs the .deb; `--check` shows each host's plan and writes nothing;
//! the real run converts both (Ansible reboots them, the resume unit finishes phase 2); a
//! second real run reports no change.

use super::convert::{assert_converted_as, pair_named, Pair, WRITE_MARKERS, XS7};
use super::Ctx;
use crate::vm::Vm;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIN: Duration = Duration::from_secs(60);
const HOSTS: [&str; 2] = ["guest1", "guest2"];
const LAB_NETWORK: &str =
    "[Match]\nType=ether\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n";

struct Guest {
    pair: Pair,
    vm: Vm,
}

/// What PLAY RECAP says about one host.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Recap {
    ok: u32,
    changed: u32,
    unreachable: u32,
    failed: u32,
}

pub fn ansible(ctx: &mut Ctx) -> Result<()> {
    let bin = ctx.phase("controller", |_| controller())?;
    let deb = super::package::artifact(".deb")?;
    let key = ctx.dir.join("id_lab");
    ssh_keygen(&key)?;
    let mut guests = Vec::new();
    let mut ports = Vec::new();
    for host in HOSTS {
        let port = free_port()?;
        let guest = ctx.phase(&format!("boot-{host}"), |c| {
            let pair = pair_named(c, XS7.profile, host)?;
            let mut vm = c.boot_with_ssh(host, &pair.image, &[&pair.a, &pair.b], port)?;
            vm.run(WRITE_MARKERS, MIN)?;
            let public = std::fs::read_to_string(key.with_extension("pub"))?;
            // QEMU's user network has no DHCP answer the minimal guest asks for: a static
            // address, kept across the reboots (the copy takes /etc with it).
            vm.put_text("/etc/systemd/network/10-lab.network", LAB_NETWORK)?;
            vm.run(
                "systemctl enable --now systemd-networkd >/dev/null 2>&1 && \
                 for i in $(seq 60); do ip -4 addr | grep -q 10.0.2.15 && exit 0; sleep 1; done; exit 1",
                2 * MIN,
            )
            .context("the guest's network")?;
            vm.run("install -d -m 0700 /root/.ssh", MIN)?;
            vm.put_text("/root/.ssh/authorized_keys", &public)?;
            vm.run(
                "chmod 0600 /root/.ssh/authorized_keys && systemctl is-active ssh",
                MIN,
            )
            .context("sshd in the guest")?;
            Ok(Guest { pair, vm })
        })?;
        guests.push(guest);
        ports.push(port);
    }
    for (host, port) in HOSTS.iter().zip(&ports) {
        ctx.phase(&format!("ssh-{host}"), |_| wait_ssh(&key, *port))?;
    }
    let target = guests[0].pair.b.by_id();
    let inventory = ctx.dir.join("inventory.ini");
    std::fs::write(&inventory, inventory_text(&ports, &key, &deb, &target))?;
    let play = |c: &Ctx, args: &[&str], log: &str| playbook(c, &bin, &inventory, args, log);

    let recap = ctx.phase("install", |c| play(c, &["--tags", "install"], "install"))?;
    for host in HOSTS {
        ensure!(
            recap[host].changed > 0 && recap[host].failed == 0,
            "--tags install on {host}: {:?}",
            recap[host]
        );
    }
    println!("ANSIBLE install: {}", summary(&recap));

    let recap = ctx.phase("check-mode", |c| play(c, &["--check"], "check"))?;
    let out = std::fs::read_to_string(c_log(ctx, "check"))?;
    for (host, g) in HOSTS.iter().zip(guests.iter_mut()) {
        ensure!(
            recap[*host].changed > 0 && recap[*host].failed == 0,
            "--check on {host} should report the conversion as a change: {:?}",
            recap[*host]
        );
        ensure!(
            out.contains("would convert onto") && out.contains("steps: partition-target"),
            "--check did not show the plan:\n{}",
            crate::vm::tail(&out, 60)
        );
        let untouched = g.vm.run_status(
            &format!(
                "test ! -e /var/lib/xenraid/convert.json && test -z \"$(wipefs -n {target})\" \
                 && ! sgdisk -p {target} 2>/dev/null | grep -q '^ *1 '"
            ),
            MIN,
        )?;
        ensure!(
            untouched.success(),
            "{host}: --check wrote something (journal or target disk):\n{}",
            untouched.stdout
        );
    }
    println!(
        "ANSIBLE check mode: {}; the plan shown, no journal, target disks blank",
        summary(&recap)
    );

    let t = Instant::now();
    let recap = ctx.phase("convert", |c| play(c, &[], "convert"))?;
    let took = t.elapsed();
    for (host, g) in HOSTS.iter().zip(guests.iter_mut()) {
        ensure!(
            recap[*host].changed > 0 && recap[*host].failed == 0,
            "converting {host}: {:?}",
            recap[*host]
        );
        // Ansible rebooted it: this is the lab's first look at the new boot
        g.vm.wait_booted(10 * MIN)?;
        assert_converted_as(&mut g.vm, &g.pair.image, &g.pair.a, &XS7)
            .with_context(|| format!("{host} after the playbook"))?;
        let monitor = g.vm.run(
            "systemctl is-active xenraid-monitor.service xenraid-scrub.timer | paste -sd ' ' && \
             grep -c '^\\[alert.xapi\\]' /etc/xenraid/xenraid.toml",
            MIN,
        )?;
        ensure!(
            monitor.stdout.split_whitespace().collect::<Vec<_>>() == ["active", "active", "1"],
            "{host}: monitor/timer/config: {}",
            monitor.stdout
        );
    }
    println!(
        "ANSIBLE convert: {} in {:.0} s; both: every array [UU], / on md, sr-create once, markers intact, monitor active with the role's config",
        summary(&recap),
        took.as_secs_f64()
    );

    let recap = ctx.phase("again", |c| play(c, &[], "again"))?;
    for host in HOSTS {
        ensure!(
            recap[host].changed == 0 && recap[host].failed == 0 && recap[host].unreachable == 0,
            "the second run must change nothing on {host}: {:?}",
            recap[host]
        );
    }
    for (host, g) in HOSTS.iter().zip(guests.iter_mut()) {
        let creates =
            g.vm.run("grep -c ' sr-create ' /var/log/xe-standin.log", MIN)?;
        ensure!(
            creates.stdout.trim() == "1",
            "{host}: sr-create ran {} times",
            creates.stdout.trim()
        );
    }
    println!("ANSIBLE second run: {}", summary(&recap));
    for g in guests {
        g.vm.shutdown(5 * MIN)?;
    }
    Ok(())
}

/// ansible-core 2.16 in the lab's venv: its bin directory.
fn controller() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-ansible.sh");
    let out = Command::new(&script)
        .output()
        .with_context(|| script.display().to_string())?;
    ensure!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn ssh_keygen(key: &Path) -> Result<()> {
    let _ = std::fs::remove_file(key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "xenraid-lab", "-f"])
        .arg(key)
        .status()?;
    ensure!(st.success(), "ssh-keygen failed");
    Ok(())
}

/// sshd answers through the forwarded port (under TCG its first banner can take a while).
fn wait_ssh(key: &Path, port: u16) -> Result<()> {
    let deadline = Instant::now() + 5 * MIN;
    loop {
        let out = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=60"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .arg("-i")
            .arg(key)
            .args(["-p", &port.to_string(), "root@127.0.0.1", "true"])
            .output()?;
        if out.status.success() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "ssh to the guest on port {port}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// A loopback port nobody listens on now (QEMU binds it right after).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn inventory_text(ports: &[u16], key: &Path, deb: &Path, target: &str) -> String {
    let mut s = String::from("[xenraid]\n");
    for (host, port) in HOSTS.iter().zip(ports) {
        s.push_str(&format!(
            "{host} ansible_host=127.0.0.1 ansible_port={port}\n"
        ));
    }
    s.push_str(&format!(
        "\n[xenraid:vars]\n\
         ansible_user=root\n\
         ansible_ssh_private_key_file={}\n\
         ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n\
         ansible_python_interpreter=/usr/bin/python3\n\
         xenraid_package_deb={}\n\
         xenraid_target_disk={target}\n\
         xenraid_sr_name='Local storage'\n\
         xenraid_resync_speed=max\n\
         xenraid_alert_xapi=true\n",
        key.display(),
        deb.display()
    ));
    s
}

fn c_log(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.dir.join(format!("ansible-{name}.log"))
}

/// Runs site.yml; the whole output goes to RUN_DIR/ansible-NAME.log; PLAY RECAP per host.
fn playbook(
    ctx: &Ctx,
    bin: &Path,
    inventory: &Path,
    args: &[&str],
    name: &str,
) -> Result<BTreeMap<String, Recap>> {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/ansible");
    let log = c_log(ctx, name);
    let out = Command::new(bin.join("ansible-playbook"))
        .current_dir(&contrib)
        .arg("-i")
        .arg(inventory)
        .arg("site.yml")
        // every host at once (site.yml's default converts a quarter of the fleet at a time)
        .args(["-e", "xenraid_serial=100%"])
        .args(args)
        .env("ANSIBLE_ROLES_PATH", contrib.join("roles"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        // TCG guests answer slowly; Ansible's default is 10 s
        .env("ANSIBLE_TIMEOUT", "120")
        .env("ANSIBLE_LOCAL_TEMP", ctx.dir.join("ansible-tmp"))
        .output()
        .context("ansible-playbook")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&log, &text)?;
    let recap = parse_recap(&text);
    if recap.len() != HOSTS.len() {
        bail!(
            "ansible-playbook {args:?} (exit {:?}) printed no recap for every host; {}:\n{}",
            out.status.code(),
            log.display(),
            crate::vm::tail(&text, 60)
        );
    }
    if !out.status.success() {
        bail!(
            "ansible-playbook {args:?} failed (exit {:?}), {}:\n{}",
            out.status.code(),
            log.display(),
            crate::vm::tail(&text, 60)
        );
    }
    Ok(recap)
}

fn parse_recap(text: &str) -> BTreeMap<String, Recap> {
    let mut hosts = BTreeMap::new();
    let Some(at) = text.rfind("PLAY RECAP") else {
        return hosts;
    };
    for line in text[at..].lines().skip(1) {
        let Some((host, counts)) = line.split_once(" : ") else {
            continue;
        };
        let mut r = Recap::default();
        for kv in counts.split_whitespace() {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = v.parse().unwrap_or(0);
            match k {
                "ok" => r.ok = v,
                "changed" => r.changed = v,
                "unreachable" => r.unreachable = v,
                "failed" => r.failed = v,
                _ => {}
            }
        }
        hosts.insert(host.trim().to_string(), r);
    }
    hosts
}

fn summary(recap: &BTreeMap<String, Recap>) -> String {
    recap
        .iter()
        .map(|(h, r)| format!("{h} ok={} changed={} failed={}", r.ok, r.changed, r.failed))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_play_recap() {
        let text = "TASK [x] ***\nok: [guest1]\n\nPLAY RECAP *********\n\
            guest1                     : ok=21   changed=6    unreachable=0    failed=0    skipped=9    rescued=0    ignored=0\n\
            guest2                     : ok=3    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0\n";
        let r = parse_recap(text);
        assert_eq!(
            r["guest1"],
            Recap {
                ok: 21,
                changed: 6,
                unreachable: 0,
                failed: 0
            }
        );
        assert_eq!(r["guest2"].unreachable, 1);
    }
}
