//! Guest images built from recipes and cached under a directory keyed by a hash of the
//! recipe: an unchanged recipe costs a hash and a directory lookup.

use crate::vm::{Boot, Disk, Net, Vm, VmConfig, OVMF_VARS};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The XenServer-shaped images (the seed systems): `inspect`, `speed` and `capture` run in each.
pub const PROFILES: &[&str] = &["xs7-bios", "xs65-bios", "xcpng8-uefi"];
/// Plain GRUB2 Linux (issue 5): no XenServer inventory, no `xe`, built by its own recipe.
pub const OTHER_PROFILES: &[&str] = &["debian-bios"];
/// Serial of the system disk in every guest (the recipe writes it into xensource-inventory).
pub const SYSTEM_SERIAL: &str = "XRLAB-SYS0";
pub const SYSTEM_WWN: u64 = 0x5000c500a0000001;
/// Part of every image's cache key: bump it when `provision` changes what it does.
const PROVISION_VERSION: &str = "1";

pub struct Lab {
    pub dir: PathBuf,
    src: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub profile: String,
    pub dir: PathBuf,
    pub facts: BTreeMap<String, String>,
}

impl Image {
    /// An image kept outside the cache (a crash recording keeps the one it was made on).
    pub fn load(profile: &str, dir: &Path) -> Result<Image> {
        let facts = parse_env(
            &fs::read_to_string(dir.join("facts.env"))
                .with_context(|| format!("no image in {}", dir.display()))?,
        );
        Ok(Image {
            profile: profile.to_string(),
            dir: dir.to_path_buf(),
            facts,
        })
    }

    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.raw")
    }
    pub fn fact(&self, key: &str) -> &str {
        self.facts.get(key).map(String::as_str).unwrap_or("")
    }
    pub fn is_uefi(&self) -> bool {
        self.profile.ends_with("-uefi")
    }
    /// A copy-on-write overlay of the system disk: the cached image itself is never written.
    pub fn system_disk(&self, dest: &Path) -> Result<Disk> {
        overlay(&self.disk(), "raw", dest)?;
        Ok(Disk::new(dest, SYSTEM_SERIAL, SYSTEM_WWN))
    }
    /// A fresh OVMF variable store for a UEFI guest (boot entries persist in it).
    pub fn uefi_vars(&self, dest: &Path) -> Result<Option<PathBuf>> {
        if !self.is_uefi() {
            return Ok(None);
        }
        fs::copy(OVMF_VARS, dest)?;
        Ok(Some(dest.to_path_buf()))
    }
}

pub fn qemu_img(args: &[&str]) -> Result<()> {
    let st = Command::new("qemu-img")
        .args(args)
        .status()
        .context("qemu-img (run scripts/setup.sh)")?;
    if !st.success() {
        bail!("qemu-img {} failed: {st}", args.join(" "));
    }
    Ok(())
}

/// A blank disk (qcow2, sparse) of `size` such as "4G".
/// A qcow2 overlay at `dest` over `backing`, which stays as it is.
pub fn overlay(backing: &Path, backing_format: &str, dest: &Path) -> Result<()> {
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        backing_format,
        "-b",
        &backing.display().to_string(),
        &dest.display().to_string(),
    ])
}

pub fn blank_disk(path: &Path, size: &str, serial: &str, wwn: u64) -> Result<Disk> {
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &path.display().to_string(),
        size,
    ])?;
    Ok(Disk::new(path, serial, wwn))
}

/// Bytes free for an unprivileged writer in the filesystem that holds `dir` (`df`).
pub fn free_space(dir: &Path) -> Result<u64> {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .context("df")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("df {}: {text:?}", dir.display()))
}

/// What one running scenario writes at most: a converted pair of disks (the target's copy,
/// both members' resync; zeros are not stored) and its logs. Measured: `convert` peaked at
/// 2.29 GiB (2026-11-23).
pub const SPACE_PER_SCENARIO: u64 = 5 << 29;
/// The guest root filesystem (0.8 GiB) or one built image (a sparse 4 GiB disk holding
/// 1.1 GiB).
pub const SPACE_PER_IMAGE: u64 = 5 << 28;

impl Lab {
    /// Refuses to start when the lab's disk cannot hold what the run writes: QEMU would stop
    /// a guest at its first write that fails for space, which looks like a hang.
    pub fn check_space(&self, jobs: usize) -> Result<()> {
        let free = free_space(&self.dir)?;
        // what the cache lacks (the base profiles and the root filesystem they start from),
        // this run builds
        let mut missing = u64::from(!self.rootfs_path()?.exists());
        for profile in PROFILES {
            missing += u64::from(!self.image_dir(profile)?.join(".complete").exists());
        }
        let need = SPACE_PER_SCENARIO * jobs as u64 + SPACE_PER_IMAGE * missing;
        eprintln!(
            "lab: {} MiB free in {}, this run needs about {} MiB",
            free >> 20,
            self.dir.display(),
            need >> 20
        );
        if free < need {
            bail!(
                "only {} MiB free in {}; the lab needs about {} MiB ({} MiB per scenario running at once, {} MiB per image still to build). Free space there (old runs are in {}/runs), or point XENRAID_LAB_DIR at a larger disk",
                free >> 20,
                self.dir.display(),
                need >> 20,
                SPACE_PER_SCENARIO >> 20,
                SPACE_PER_IMAGE >> 20,
                self.dir.display()
            );
        }
        Ok(())
    }

    pub fn new() -> Result<Lab> {
        let dir = std::env::var_os("XENRAID_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/xenraid-lab"));
        fs::create_dir_all(&dir)?;
        Ok(Lab {
            dir,
            src: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        })
    }

    fn recipe(&self, name: &str) -> PathBuf {
        self.src.join("recipes").join(name)
    }

    fn hash_files(&self, parts: &[&str], extra: &str) -> Result<String> {
        let mut h = Sha256::new();
        for p in parts {
            let path = self.src.join(p);
            h.update(p.as_bytes());
            h.update(fs::read(&path).with_context(|| format!("read {}", path.display()))?);
        }
        h.update(extra.as_bytes());
        Ok(hex::encode(&h.finalize()[..8]))
    }

    fn rootfs_key(&self) -> Result<String> {
        self.hash_files(&["recipes/common.sh", "recipes/rootfs.sh"], "")
    }

    /// The recipe that lays out `profile`'s disk (its own file, so a new profile does not
    /// change the other images' cache keys).
    fn image_recipe(profile: &str) -> &'static str {
        if OTHER_PROFILES.contains(&profile) {
            "image-debian.sh"
        } else {
            "image.sh"
        }
    }

    fn image_key(&self, profile: &str) -> Result<String> {
        let rootfs = self.rootfs_key()?;
        let recipe = format!("recipes/{}", Self::image_recipe(profile));
        self.hash_files(
            &[
                "recipes/common.sh",
                &recipe,
                "guest/xenraid-lab-agent",
                "guest/xenraid-lab-agent.service",
                "guest/xe",
                "guest/dracut-lab.conf",
            ],
            &format!("{profile}:{rootfs}:{PROVISION_VERSION}"),
        )
    }

    fn lock(&self) -> Result<fs::File> {
        let f = fs::File::create(self.dir.join(".build.lock"))?;
        f.lock()?;
        Ok(f)
    }

    pub fn rootfs(&self) -> Result<PathBuf> {
        let path = self.rootfs_path()?;
        if path.exists() {
            return Ok(path);
        }
        let t = Instant::now();
        eprintln!("lab: building the guest root filesystem (debootstrap + apt, ~3 min)");
        run_recipe(
            Command::new("bash")
                .arg(self.recipe("rootfs.sh"))
                .arg(&path),
        )?;
        eprintln!("lab: rootfs built in {:.0} s", t.elapsed().as_secs_f64());
        Ok(path)
    }

    fn image_dir(&self, profile: &str) -> Result<PathBuf> {
        Ok(self
            .dir
            .join("images")
            .join(format!("{profile}-{}", self.image_key(profile)?)))
    }

    fn rootfs_path(&self) -> Result<PathBuf> {
        Ok(self.dir.join(format!("rootfs-{}.tar", self.rootfs_key()?)))
    }

    /// The cached image for `profile`, built first if its recipe changed.
    pub fn image(&self, profile: &str) -> Result<Image> {
        if !PROFILES.contains(&profile) && !OTHER_PROFILES.contains(&profile) {
            bail!(
                "unknown image {profile:?}; known: {}, {}",
                PROFILES.join(", "),
                OTHER_PROFILES.join(", ")
            );
        }
        let _lock = self.lock()?;
        let dir = self.image_dir(profile)?;
        if !dir.join(".complete").exists() {
            self.build(profile, &dir)?;
        }
        let facts = parse_env(&fs::read_to_string(dir.join("facts.env"))?);
        Ok(Image {
            profile: profile.to_string(),
            dir,
            facts,
        })
    }

    fn build(&self, profile: &str, dir: &Path) -> Result<()> {
        let t = Instant::now();
        let rootfs = self.rootfs()?;
        let tmp = dir.with_extension("building");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        eprintln!("lab: building image {profile}");
        let built = run_recipe(
            Command::new("bash")
                .arg(self.recipe(Self::image_recipe(profile)))
                .arg(profile)
                .arg(&rootfs)
                .arg(&tmp),
        );
        detach_loops(&tmp.join("disk.raw"));
        built?;
        let facts = parse_env(&fs::read_to_string(tmp.join("facts.env"))?);
        let image = Image {
            profile: profile.to_string(),
            dir: tmp.clone(),
            facts,
        };
        provision(&image)?;
        fs::write(
            tmp.join(".complete"),
            format!("{:.1}\n", t.elapsed().as_secs_f64()),
        )?;
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir.parent().expect("images dir"))?;
        fs::rename(&tmp, dir)?;
        prune_other_versions(dir, profile);
        eprintln!(
            "lab: image {profile} built in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// First boot of a new image: installs what can only be installed from inside (GRUB's
/// BIOS boot code needs the guest's view of the disk), then proves the image boots
/// through its firmware and bootloader with / where the recipe put it.
fn provision(image: &Image) -> Result<()> {
    let disk = Disk::new(image.disk(), SYSTEM_SERIAL, SYSTEM_WWN);
    let vars = image.uefi_vars(&image.dir.join("provision-vars.fd"))?;
    if image.profile == "xs7-bios" || image.profile == "debian-bios" {
        let mut vm = Vm::start(VmConfig {
            name: "provision".into(),
            dir: image.dir.clone(),
            disks: vec![disk.clone()],
            boot: Boot::Direct {
                kernel: image.dir.join("vmlinuz"),
                initrd: image.dir.join("initrd.img"),
                append: image.fact("CMDLINE").to_string(),
            },
            uefi_vars: None,
            boot_disk: 0,
            memory_mb: 1536,
            asset_tag: None,
            net: Net::None,
        })?;
        vm.wait_booted(Duration::from_secs(300))?;
        let dev = format!(
            "$(lsblk -dno NAME,SERIAL | awk '$2==\"{SYSTEM_SERIAL}\"{{print \"/dev/\"$1}}')"
        );
        vm.run(
            &format!("grub-install --target=i386-pc {dev}"),
            Duration::from_secs(300),
        )?;
        if image.profile == "debian-bios" {
            // As debian-installer ends: grub.cfg made by grub-mkconfig (update-grub).
            vm.run("update-grub", Duration::from_secs(300))?;
        }
        vm.shutdown(Duration::from_secs(120))?;
    }
    let mut vm = Vm::start(VmConfig {
        name: "firstboot".into(),
        dir: image.dir.clone(),
        disks: vec![disk],
        boot: Boot::Firmware,
        uefi_vars: vars,
        boot_disk: 0,
        memory_mb: 1536,
        asset_tag: None,
        net: Net::None,
    })?;
    vm.wait_booted(Duration::from_secs(300))?;
    let label = vm.run(
        "findmnt -n -o SOURCE / | xargs blkid -s LABEL -o value",
        Duration::from_secs(30),
    )?;
    if label.stdout.trim() != image.fact("ROOT_LABEL") {
        bail!(
            "first boot of {}: / is labelled {:?}, expected {:?}",
            image.profile,
            label.stdout.trim(),
            image.fact("ROOT_LABEL")
        );
    }
    vm.shutdown(Duration::from_secs(120))?;
    let _ = fs::remove_file(image.dir.join("provision-vars.fd"));
    // the overlays' backing file: never written again
    let mut perm = fs::metadata(image.disk())?.permissions();
    perm.set_readonly(true);
    fs::set_permissions(image.disk(), perm)?;
    Ok(())
}

/// The recipes' partition loop devices on `img`: a recipe records them from a command
/// substitution's subshell, so its own cleanup never sees them, and a killed recipe leaves
/// them too. Each pins its (later deleted) image's space until detached.
fn detach_loops(img: &Path) {
    let Ok(out) = Command::new("losetup").arg("-j").arg(img).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((dev, _)) = line.split_once(':') {
            let _ = Command::new("losetup").args(["-d", dev]).status();
        }
    }
}

/// Older builds of the same profile (other recipe hashes) only take disk space.
fn prune_other_versions(current: &Path, profile: &str) {
    let Some(parent) = current.parent() else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        let same_profile = name
            .strip_prefix(profile)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|key| key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
        if same_profile && p != current {
            let _ = fs::remove_dir_all(&p);
        }
    }
}

fn run_recipe(cmd: &mut Command) -> Result<()> {
    let st = cmd.status().with_context(|| format!("{cmd:?}"))?;
    if !st.success() {
        bail!("recipe {cmd:?} failed: {st}");
    }
    Ok(())
}

pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
