//! An unmounted ESP read as FAT from its partition: the files and their content, names
//! compared without case, and nothing written to the device.

use std::io::{Cursor, Write};

use xenraid::doctor::esp_fat::{content_key, fat_tree};
use xenraid::host::RootedSource;

fn fat_image(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut image = Cursor::new(vec![0u8; 8 << 20]);
    fatfs::format_volume(&mut image, fatfs::FormatVolumeOptions::new()).unwrap();
    {
        let fs = fatfs::FileSystem::new(&mut image, fatfs::FsOptions::new()).unwrap();
        let root = fs.root_dir();
        for (path, content) in files {
            let mut dir = root.clone();
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                dir = match dir.open_dir(part) {
                    Ok(d) => d,
                    Err(_) => dir.create_dir(part).unwrap(),
                };
            }
            let mut file = dir.create_file(parts[parts.len() - 1]).unwrap();
            file.write_all(content).unwrap();
        }
    }
    image.into_inner()
}

#[test]
fn every_file_of_an_unmounted_esp_is_read_and_the_device_left_as_it_was() {
    let image = fat_image(&[
        ("EFI/BOOT/BOOTX64.EFI", b"grub image"),
        ("EFI/xenserver/grubx64.efi", b"grub image"),
        ("EFI/xenserver/grub.cfg", b"menuentry 'XCP-ng' {}\n"),
        ("EFI/xenserver/a-long-file-name.txt", b"long"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dev")).unwrap();
    let device = dir.path().join("dev/sdb4");
    std::fs::write(&device, &image).unwrap();

    let tree = fat_tree(&RootedSource::captured(dir.path()), "/dev/sdb4").unwrap();
    let names: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "efi/boot/bootx64.efi",
            "efi/xenserver/a-long-file-name.txt",
            "efi/xenserver/grub.cfg",
            "efi/xenserver/grubx64.efi"
        ]
    );
    assert_eq!(
        tree["efi/xenserver/grub.cfg"],
        content_key(b"menuentry 'XCP-ng' {}\n")
    );
    assert_eq!(std::fs::read(&device).unwrap(), image, "read only");
}

#[test]
fn what_is_not_fat_gives_no_tree() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dev")).unwrap();
    std::fs::write(dir.path().join("dev/sdb4"), vec![0u8; 1 << 20]).unwrap();
    assert!(fat_tree(&RootedSource::captured(dir.path()), "/dev/sdb4").is_none());
}
