//! No parser panics, whatever text the host hands it.

use proptest::prelude::*;

use xenraid::host::parse::{blkid, bootcfg, fstab, kv, lvm, mbr, mdadm, mdstat, mountinfo, xe};

/// Text shaped like the real formats (brackets, colons, `=`, `---`, quotes) finds more edges
/// than uniform noise.
fn texty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>().prop_map(|c| c.to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(" : ".to_string()),
            Just("=".to_string()),
            Just("\n".to_string()),
            Just(" --- ".to_string()),
            Just("'".to_string()),
            Just("\\".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("md0 : active raid1 sda1[0]".to_string()),
            Just("resync = 7.2% (1/2)".to_string()),
            Just("menuentry 'x' {".to_string()),
            Just("root=LABEL=root-abc".to_string()),
            Just("label xe\n kernel mboot.c32\n append ".to_string()),
            Just("uuid ( RO): ".to_string()),
            Just("MD_DEVICE_dev_sda1_DEV=".to_string()),
            Just(" - ".to_string()),
            Just("\\040".to_string()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_parsers(text in texty()) {
        let _ = mdstat::parse_mdstat(&text);
        let _ = mdadm::parse_mdadm_detail_export(&text);
        let _ = mdadm::parse_mdadm_conf_arrays(&text);
        let _ = blkid::parse_blkid_export(&text);
        let _ = mountinfo::parse_mountinfo(&text);
        let _ = mountinfo::parse_swaps(&text);
        let entries = fstab::parse_fstab(&text);
        for entry in &entries {
            let _ = fstab::replace_spec(&text, entry.line, "UUID=x");
            let _ = fstab::add_option(&text, entry.line, "nofail");
        }
        let _ = kv::parse_shell_vars(&text);
        let _ = kv::parse_udev_db(&text);
        let _ = lvm::parse_pvs(&text);
        let _ = xe::parse_xe_records(&text);
        let _ = xe::join_srs_and_pbds(&text, &text);
        let _ = bootcfg::parse_grub_cfg(&text);
        let _ = bootcfg::parse_extlinux_conf(&text);
        let _ = bootcfg::rewrite_kernel_root(&text, &["LABEL=root-abc".into()], "UUID=y", &["rd.md.uuid=1".into()]);
        let _ = bootcfg::rewrite_grub_search(&text, &["root-abc".into()], "y", &["mdraid1x"]);
    }

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        let _ = mdstat::parse_mdstat(&text);
        let _ = mountinfo::parse_mountinfo(&text);
        let _ = bootcfg::parse_grub_cfg(&text);
        let _ = bootcfg::parse_extlinux_conf(&text);
        let _ = fstab::parse_fstab(&text);
        let _ = kv::parse_shell_vars(&text);
    }

    #[test]
    fn boot_code(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = mbr::classify_boot_code(&bytes);
    }
}
