//! UEFI boot variables: the parser on efibootmgr output captured in the xcpng8-uefi lab guest,
//! and BootNext / BootOrder / delete against a firmware store that behaves like efibootmgr's.

use std::cell::RefCell;
use std::path::PathBuf;

use xenraid::convert::efi::{self, parse_efibootmgr};
use xenraid::convert::system::System;
use xenraid::convert::{ConvertError, Journal};
use xenraid::exec::{Command, CommandOutput, ExecError};
use xenraid::plan::DoneCheck;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/efi")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_parser_reads_numbers_labels_and_order_with_and_without_device_paths() {
    for name in ["ovmf-two-disks.txt", "ovmf-two-disks-verbose.txt"] {
        let vars = parse_efibootmgr(&fixture(name));
        assert_eq!(vars.boot_order, ["0001", "0002", "0000", "0003"], "{name}");
        assert_eq!(vars.boot_next, None);
        let labels: Vec<&str> = vars.entries.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "UiApp",
                "UEFI QEMU QEMU HARDDISK",
                "UEFI QEMU QEMU HARDDISK  2",
                "EFI Internal Shell"
            ],
            "{name}"
        );
        assert_eq!(vars.numbers_of("UEFI QEMU QEMU HARDDISK  2"), ["0002"]);
    }
}

/// The firmware's variables, changed only through the efibootmgr arguments xenraid uses.
struct Firmware {
    next: RefCell<Option<String>>,
    order: RefCell<Vec<String>>,
    entries: RefCell<Vec<(String, String)>>,
    commands: RefCell<Vec<String>>,
}

impl Firmware {
    fn lab() -> Firmware {
        let vars = parse_efibootmgr(&fixture("ovmf-two-disks.txt"));
        let mut entries = vars.entries;
        entries.push(("0004".into(), "XCP-ng (xenraid XRLAB-TGT0)".into()));
        Firmware {
            next: RefCell::new(None),
            order: RefCell::new(vars.boot_order),
            entries: RefCell::new(entries),
            commands: RefCell::default(),
        }
    }

    fn print(&self) -> String {
        let mut out = String::from("BootCurrent: 0001\n");
        if let Some(n) = &*self.next.borrow() {
            out.push_str(&format!("BootNext: {n}\n"));
        }
        out.push_str(&format!("BootOrder: {}\n", self.order.borrow().join(",")));
        for (n, l) in self.entries.borrow().iter() {
            out.push_str(&format!("Boot{n}* {l}\n"));
        }
        out
    }
}

impl System for Firmware {
    fn run(&self, command: &Command) -> Result<CommandOutput, ExecError> {
        assert_eq!(command.program, "efibootmgr");
        self.commands.borrow_mut().push(command.to_string());
        let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
        match args.as_slice() {
            [] => {}
            ["--bootnext", n] => *self.next.borrow_mut() = Some(n.to_string()),
            ["--delete-bootnext"] => *self.next.borrow_mut() = None,
            ["--bootorder", list] => {
                *self.order.borrow_mut() = list.split(',').map(str::to_string).collect()
            }
            ["--bootnum", n, "--delete-bootnum"] => {
                self.entries.borrow_mut().retain(|(m, _)| m != n);
                self.order.borrow_mut().retain(|m| m != n);
            }
            other => panic!("unexpected efibootmgr {other:?}"),
        }
        Ok(CommandOutput {
            status: 0,
            stdout: self.print(),
            stderr: String::new(),
        })
    }
    fn run_copy(&self, _: &Command, _: &str) -> Result<(), ConvertError> {
        unreachable!()
    }
    fn holds(&self, _: &DoneCheck, _: &Journal) -> Result<bool, ConvertError> {
        unreachable!()
    }
    fn write_file(&self, _: &str, _: &str) -> Result<(), ConvertError> {
        unreachable!()
    }
    fn wait_sync(&self, _: &[String]) -> Result<(), ConvertError> {
        unreachable!()
    }
    fn mounts_under(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn holder_of(&self, _: &str) -> Option<String> {
        None
    }
    fn resolve(&self, _: &str) -> Option<String> {
        None
    }
    fn read_value(&self, _: &str) -> Option<String> {
        None
    }
    fn write_value(&self, _: &str, _: &str) -> Result<(), ConvertError> {
        unreachable!()
    }
}

const TARGET: &str = "XCP-ng (xenraid XRLAB-TGT0)";

#[test]
fn boot_next_names_the_targets_entry_and_leaves_boot_order_alone() {
    let fw = Firmware::lab();
    efi::set_boot_next(&fw, TARGET).unwrap();
    assert_eq!(fw.next.borrow().as_deref(), Some("0004"));
    assert_eq!(*fw.order.borrow(), ["0001", "0002", "0000", "0003"]);
}

#[test]
fn a_missing_entry_is_an_error_naming_the_label_and_nothing_is_set() {
    let fw = Firmware::lab();
    let err = efi::set_boot_next(&fw, "XCP-ng (xenraid NOPE)").unwrap_err();
    assert!(err.to_string().contains("XCP-ng (xenraid NOPE)"), "{err}");
    assert_eq!(*fw.next.borrow(), None);
    assert_eq!(fw.commands.borrow().len(), 1, "only the listing ran");
}

#[test]
fn both_entries_go_first_in_the_given_order_and_the_rest_keep_theirs() {
    let fw = Firmware::lab();
    fw.entries
        .borrow_mut()
        .push(("0005".into(), "XCP-ng (xenraid XRLAB-SYS0)".into()));
    fw.order.borrow_mut().push("0005".into());
    let labels = vec![
        TARGET.to_string(),
        "XCP-ng (xenraid XRLAB-SYS0)".to_string(),
    ];
    efi::put_first(&fw, &labels).unwrap();
    assert_eq!(
        *fw.order.borrow(),
        ["0004", "0005", "0001", "0002", "0000", "0003"]
    );
    // Already in place: a resume does not write the variable again.
    efi::put_first(&fw, &labels).unwrap();
    assert_eq!(
        fw.commands
            .borrow()
            .iter()
            .filter(|c| c.contains("--bootorder"))
            .count(),
        1
    );
}

#[test]
fn rollback_deletes_the_entry_and_a_boot_next_pointing_at_it() {
    let fw = Firmware::lab();
    efi::set_boot_next(&fw, TARGET).unwrap();
    assert_eq!(efi::delete_entries(&fw, TARGET).unwrap(), 1);
    assert_eq!(*fw.next.borrow(), None);
    assert!(fw.entries.borrow().iter().all(|(_, l)| l != TARGET));
    assert_eq!(efi::delete_entries(&fw, TARGET).unwrap(), 0, "idempotent");
}
