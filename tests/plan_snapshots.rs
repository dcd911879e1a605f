//! The full plan of each profile, as JSON and as text, from captured host trees.

mod common;

use common::plan_for;
use xenraid::plan::render::render_plan;
use xenraid::plan::{Plan, Profile};

fn snapshot(name: &str, plan: &Plan) {
    insta::assert_snapshot!(format!("{name}-text"), render_plan(plan));
    insta::assert_json_snapshot!(format!("{name}-json"), plan);
}

#[test]
fn xenserver7_bios_boot_on_p3_creates_storage_partition_p4() {
    let plan = plan_for("xs7-bios-boot-p3", "/dev/sdb");
    assert_eq!(plan.profile, Some(Profile::XenServer7Bios));
    let sr = plan
        .arrays
        .iter()
        .find(|a| a.role == "sr")
        .expect("sr array");
    assert_eq!(sr.partition, 4);
    // Never md on the BIOS-boot partition.
    assert!(plan.arrays.iter().all(|a| a.partition != 3));
    snapshot("xs7-bios-boot-p3", &plan);
}

#[test]
fn xenserver7_bios_boot_on_p4_mirrors_sr_partition_p3() {
    let plan = plan_for(
        "xs7-bios-boot-p4",
        "/dev/disk/by-id/ata-WDC_WD5000AAKX-08U6AA0_WD-WCC6Y3KXN0CD",
    );
    assert_eq!(
        plan.target.as_ref().and_then(|t| t.serial.as_deref()),
        Some("WD-WCC6Y3KXN0CD")
    );
    assert!(plan.arrays.iter().all(|a| a.partition != 4));
    assert_eq!(
        plan.arrays
            .iter()
            .find(|a| a.role == "sr")
            .map(|a| a.partition),
        Some(3)
    );
    snapshot("xs7-bios-boot-p4", &plan);
}

#[test]
fn xenserver65_extlinux_md090() {
    let plan = plan_for("xs65-bios", "/dev/sdb");
    assert_eq!(plan.profile, Some(Profile::XenServer65));
    assert!(plan.arrays.iter().all(|a| a.metadata == "0.90"));
    let text = render_plan(&plan);
    assert!(text.contains("gptmbr.bin"));
    assert!(text.contains("--attributes=1:set:2"));
    assert!(text.contains("extlinux --raid --install /boot"));
    snapshot("xs65-bios", &plan);
}

#[test]
fn xcpng8_uefi_independent_esps() {
    let plan = plan_for("xcpng8-uefi", "/dev/disk/by-id/virtio-XR0TGT02");
    assert_eq!(plan.profile, Some(Profile::XenServerUefi));
    assert!(
        plan.arrays.iter().all(|a| a.partition != 4),
        "ESP is not in md"
    );
    let text = render_plan(&plan);
    assert_eq!(text.matches("$ efibootmgr --create").count(), 2);
    assert!(text.contains("defaults,nofail"));
    snapshot("xcpng8-uefi", &plan);
}

#[test]
fn debian_plain_grub2() {
    let plan = plan_for("debian-bios", "/dev/sdb");
    assert_eq!(plan.profile, Some(Profile::PlainGrub2));
    let text = render_plan(&plan);
    assert!(text.contains("/etc/mdadm/mdadm.conf"));
    assert!(text.contains("update-initramfs"));
    assert!(text.contains("grub-mkconfig -o /boot/grub/grub.cfg"));
    snapshot("debian-bios", &plan);
}

#[test]
fn pitfalls_from_the_seeds_are_in_the_plan() {
    let plan = plan_for("xs7-bios-boot-p3", "/dev/sdb");
    let text = render_plan(&plan);
    // dracut assembles nothing without rd.md.uuid.
    assert!(text.contains("rd.md.uuid="));
    // Every array: explicit metadata, internal bitmap, --run.
    for line in text.lines().filter(|l| l.contains("mdadm --create")) {
        assert!(
            line.contains("--bitmap=internal")
                && line.contains("--run")
                && line.contains("--metadata=1.2"),
            "{line}"
        );
    }
    // The copy gets a label of its own; the old label is never copied.
    assert!(!text.contains("-L root-ocmtfp"));
    assert!(text.contains("-L mdroot-ocmtfp"));
    assert!(text.contains("cp -ax /. /run/xenraid/newroot/"));
    assert!(text.contains("partx -u"));
    assert!(!text.contains("blockdev --rereadpt"));
    assert!(text.contains("add_dracutmodules+=\" mdraid \""));
    assert!(text.contains("--mdadmconf"));
    // Phase 2: the original first (so it boots the RAID before it is erased), then both.
    assert_eq!(text.matches("$ grub-install --target=i386-pc").count(), 3);
    let after = text.split("Phase 2").nth(1).expect("phase 2");
    let early = after
        .find("$ grub-install")
        .expect("grub-install in phase 2");
    assert!(early < after.find("$ wipefs").expect("wipefs in phase 2"));
    assert!(text.contains("xe sr-create type=lvm content-type=user"));
    // After the reboot the original disk is only ever named by its stable id.
    let after = text.split("Phase 2").nth(1).expect("phase 2");
    assert!(
        !after.contains("/dev/sda"),
        "kernel name used after the reboot"
    );
}
