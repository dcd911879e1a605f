//! Discovery of what the host runs: the product, the boot loader and its configuration, and
//! the init system that will start xenraid again after the conversion's reboot.

use std::collections::BTreeMap;

use super::discover::{read_trimmed, DiscoveryError};
use super::facts::*;
use super::parse::bootcfg::{parse_extlinux_conf, parse_grub_cfg};
use super::parse::kv::parse_shell_vars;
use super::parse::mbr::BootCode;
use super::source::HostSource;

const GRUB_BIOS_CONFIGS: &[&str] = &["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

const GPTMBR_PATHS: &[&str] = &[
    "/usr/share/syslinux/gptmbr.bin",
    "/usr/lib/syslinux/mbr/gptmbr.bin",
    "/usr/lib/syslinux/gptmbr.bin",
];

pub(super) fn read_product(src: &dyn HostSource, files: &BTreeMap<String, String>) -> Product {
    let os = src
        .read_to_string("/etc/os-release")
        .map(|t| parse_shell_vars(&t))
        .unwrap_or_default();
    let kernel_release = read_trimmed(src, "/proc/sys/kernel/osrelease");
    if let Some(inventory) = files.get("/etc/xensource-inventory") {
        let vars = parse_shell_vars(inventory);
        let brand = vars.get("PRODUCT_BRAND").cloned().unwrap_or_default();
        let kind = if brand.to_ascii_lowercase().contains("xcp") {
            ProductKind::XcpNg
        } else {
            ProductKind::XenServer
        };
        return Product {
            kind,
            version: vars
                .get("PRODUCT_VERSION")
                .or_else(|| vars.get("PLATFORM_VERSION"))
                .cloned()
                .unwrap_or_default(),
            brand,
            installation_uuid: vars.get("INSTALLATION_UUID").cloned(),
            primary_disk: vars.get("PRIMARY_DISK").cloned(),
            backup_partition: vars.get("BACKUP_PARTITION").cloned(),
            os_id: os.get("ID").cloned(),
            kernel_release,
        };
    }
    Product {
        kind: ProductKind::Linux,
        brand: os
            .get("NAME")
            .cloned()
            .unwrap_or_else(|| "Linux".to_string()),
        version: os.get("VERSION_ID").cloned().unwrap_or_default(),
        installation_uuid: None,
        primary_disk: None,
        backup_partition: None,
        os_id: os.get("ID").cloned(),
        kernel_release,
    }
}

pub(super) fn read_boot(
    src: &dyn HostSource,
    disks: &[Disk],
    tools: &BTreeMap<String, Option<String>>,
    warnings: &mut Vec<String>,
) -> Result<Boot, DiscoveryError> {
    let has = |t: &str| tools.get(t).is_some_and(Option::is_some);
    let mode = if src.exists("/sys/firmware/efi") {
        BootMode::Uefi
    } else {
        BootMode::Bios
    };
    // The MBR code says which loader the firmware really starts on a BIOS host; a stale
    // extlinux.conf left by an upgrade from 6.5 must not win over GRUB in the MBR.
    let syslinux_in_mbr = disks
        .iter()
        .any(|d| d.boot_code == BootCode::SyslinuxGptMbr || d.boot_code == BootCode::SyslinuxMbr);
    let mut candidates: Vec<(LoaderKind, String)> = Vec::new();
    if mode == BootMode::Uefi {
        for vendor in src.list_dir("/boot/efi/EFI").unwrap_or_default() {
            let path = format!("/boot/efi/EFI/{vendor}/grub.cfg");
            if src.exists(&path) {
                candidates.push((LoaderKind::Grub2, path));
            }
        }
        // XenServer's own directory first: other vendors' stubs only chain to /boot/grub.
        candidates.sort_by_key(|(_, p)| !p.contains("/xenserver/"));
    }
    if mode == BootMode::Bios
        && (syslinux_in_mbr || !GRUB_BIOS_CONFIGS.iter().any(|p| src.exists(p)))
    {
        candidates.push((LoaderKind::Extlinux, "/boot/extlinux.conf".to_string()));
    }
    for path in GRUB_BIOS_CONFIGS {
        candidates.push((LoaderKind::Grub2, path.to_string()));
    }
    let mut boot = Boot {
        mode,
        loader: None,
        config_path: None,
        config: None,
        initramfs_tool: if has("dracut") {
            Some(InitramfsTool::Dracut)
        } else if has("update-initramfs") {
            Some(InitramfsTool::InitramfsTools)
        } else if has("mkinitrd") {
            Some(InitramfsTool::Mkinitrd)
        } else {
            None
        },
        efi_loaders: Vec::new(),
        gptmbr_path: GPTMBR_PATHS
            .iter()
            .find(|p| src.exists(p))
            .map(|p| p.to_string()),
        cmdline: read_trimmed(src, "/proc/cmdline"),
        init: InitSystem::Systemd,
    };
    for (kind, path) in candidates {
        let Ok(text) = src.read_to_string(&path) else {
            continue;
        };
        let parsed = match kind {
            LoaderKind::Grub2 => parse_grub_cfg(&text),
            LoaderKind::Extlinux => parse_extlinux_conf(&text),
        };
        match parsed {
            Ok(config) => {
                if let Some(dir) = path
                    .strip_suffix("/grub.cfg")
                    .filter(|_| mode == BootMode::Uefi)
                {
                    boot.efi_loaders = src
                        .list_dir(dir)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|f| f.to_ascii_lowercase().ends_with(".efi"))
                        .collect();
                }
                boot.loader = Some(kind);
                boot.config = Some(config);
                boot.config_path = Some(path);
                return Ok(boot);
            }
            Err(err) => warnings.push(format!("{path} not understood: {err}")),
        }
    }
    warnings.push("no boot loader configuration found".to_string());
    Ok(boot)
}

/// PID 1's name says which init runs (systemd names itself so); a captured tree without it
/// has systemd's run directory to go by (sd_booted). Otherwise an `initdefault` line in
/// /etc/inittab is SysV init (XenServer 6.5's CentOS 5 dom0). An inittab a Debian kept from its
/// sysvinit days does not count while systemd runs; a systemd initramfs leaves its run
/// directory behind under SysV init, so that alone does not count either.
pub(super) fn read_init(src: &dyn HostSource, files: &BTreeMap<String, String>) -> InitSystem {
    match read_trimmed(src, "/proc/1/comm").as_deref() {
        Some("systemd") => return InitSystem::Systemd,
        None if src.exists("/run/systemd/system") => return InitSystem::Systemd,
        _ => {}
    }
    let sysv = files.get("/etc/inittab").is_some_and(|text| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.split(':').nth(2) == Some("initdefault"))
    });
    if sysv {
        InitSystem::Sysv
    } else {
        InitSystem::Systemd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::RootedSource;

    const CENTOS5: &str = "# Default runlevel.\nid:3:initdefault:\nsi::sysinit:/etc/rc.d/rc.sysinit\nl3:3:wait:/etc/rc.d/rc 3\n";
    // CentOS 7 keeps an inittab of comments only.
    const CENTOS7: &str = "# inittab is no longer used when using systemd.\n#\n# systemd uses 'targets' instead of runlevels. By default, there are two main targets:\n#\n# multi-user.target: analogous to runlevel 3\n";

    fn init_of(inittab: Option<&str>, systemd_dir: bool, pid1: Option<&str>) -> InitSystem {
        let root = tempfile::tempdir().expect("tempdir");
        if systemd_dir {
            std::fs::create_dir_all(root.path().join("run/systemd/system")).expect("mkdir");
        }
        if let Some(comm) = pid1 {
            std::fs::create_dir_all(root.path().join("proc/1")).expect("mkdir");
            std::fs::write(root.path().join("proc/1/comm"), format!("{comm}\n")).expect("comm");
        }
        let files: BTreeMap<String, String> = inittab
            .map(|t| ("/etc/inittab".to_string(), t.to_string()))
            .into_iter()
            .collect();
        read_init(&RootedSource::captured(root.path()), &files)
    }

    #[test]
    fn an_inittab_with_a_default_runlevel_is_sysv_init() {
        assert_eq!(init_of(Some(CENTOS5), false, None), InitSystem::Sysv);
        assert_eq!(
            init_of(Some(CENTOS5), false, Some("init")),
            InitSystem::Sysv
        );
    }

    #[test]
    fn sysv_init_after_a_systemd_initramfs_is_still_sysv_init() {
        // dracut's systemd initramfs leaves /run/systemd/system behind when it hands over.
        assert_eq!(init_of(Some(CENTOS5), true, Some("init")), InitSystem::Sysv);
    }

    #[test]
    fn systemd_running_wins_over_an_inittab_kept_from_sysvinit_days() {
        assert_eq!(
            init_of(Some(CENTOS5), false, Some("systemd")),
            InitSystem::Systemd
        );
        assert_eq!(init_of(Some(CENTOS5), true, None), InitSystem::Systemd);
    }

    #[test]
    fn an_inittab_of_comments_or_none_is_systemd() {
        assert_eq!(init_of(Some(CENTOS7), false, None), InitSystem::Systemd);
        assert_eq!(init_of(None, false, Some("init")), InitSystem::Systemd);
        assert_eq!(
            init_of(Some("#id:3:initdefault:\n"), false, None),
            InitSystem::Systemd
        );
    }
}
