//! Arrays found by UUID and member, never by the name the kernel happened to give them: after
//! a crash before the reboot, the host's udev may have started them as md127 (the homehost
//! differs) or not at all.

use crate::exec::Command;
use crate::host::parse::kv::parse_shell_vars;
use crate::plan::ArraySpec;

use super::system::System;
use super::ConvertError;

/// The member partition's md UUID from its superblock, if it has one.
pub fn superblock_uuid(sys: &dyn System, member: &str) -> Option<String> {
    let out = sys
        .run(&Command::new("mdadm", ["--examine", "--export", member]))
        .ok()?;
    parse_shell_vars(&out.stdout).get("MD_UUID").cloned()
}

/// Makes sure the array runs under its planned name with this member, if the member carries
/// its superblock. Returns false when the member has none (the array was never created).
pub fn ensure_assembled(
    sys: &dyn System,
    spec: &ArraySpec,
    member: &str,
) -> Result<bool, ConvertError> {
    if superblock_uuid(sys, member).as_deref() != Some(spec.uuid.as_str()) {
        return Ok(false);
    }
    let planned = sys.resolve(&spec.device);
    if let Some(md) = sys.holder_of(member) {
        let dev = format!("/dev/{md}");
        let inactive = sys
            .read_value(&format!("/sys/block/{md}/md/array_state"))
            .is_some_and(|s| s == "inactive");
        if planned.as_deref() == Some(dev.as_str()) && !inactive {
            return Ok(true);
        }
        sys.run(&Command::new("mdadm", ["--stop", &dev]))?;
    }
    sys.run(&Command::new(
        "mdadm",
        [
            "--assemble",
            "--run",
            &spec.device,
            &format!("--uuid={}", spec.uuid),
            member,
        ],
    ))?;
    sys.run(&Command::new("udevadm", ["settle"]))?;
    Ok(true)
}

/// Stops whatever array holds this member and erases the member's superblock.
pub fn stop_and_zero(sys: &dyn System, spec: &ArraySpec, member: &str) -> Result<(), ConvertError> {
    if let Some(md) = sys.holder_of(member) {
        sys.run(&Command::new("mdadm", ["--stop", &format!("/dev/{md}")]))?;
    } else if sys.resolve(&spec.device).is_some() {
        // Created but its member vanished from the holders list: stop it by name.
        let _ = sys.run(&Command::new("mdadm", ["--stop", &spec.device]));
    }
    if superblock_uuid(sys, member).is_some() {
        sys.run(&Command::new("mdadm", ["--zero-superblock", member]))?;
    }
    Ok(())
}

/// Stops the array holding these members and runs `create` in its place. udev's event queue
/// is held meanwhile: the stop rewrites the members' superblocks, and udev's incremental
/// assembly started the old array again from them before the create could claim them (seen
/// in the lab: "Device or resource busy"). A power cut while it is held costs nothing: udev
/// starts afresh at boot, and the old array (or the new one) assembles.
pub fn recreate(
    sys: &dyn System,
    members: &[String],
    create: &Command,
) -> Result<(), ConvertError> {
    let udev = |what: &str| Command::new("udevadm", ["control", what]);
    sys.run(&udev("--stop-exec-queue"))?;
    let result = stop_holders(sys, members).and_then(|()| Ok(sys.run(create).map(drop)?));
    let released = sys.run(&udev("--start-exec-queue"));
    result?;
    released?;
    Ok(())
}

/// Stops every array holding one of these members, under whatever name the kernel gave it;
/// nothing to do when none does (a resume repeats this).
fn stop_holders(sys: &dyn System, members: &[String]) -> Result<(), ConvertError> {
    let mut stopped: Vec<String> = Vec::new();
    for member in members {
        if let Some(md) = sys.holder_of(member) {
            if !stopped.contains(&md) {
                sys.run(&Command::new("mdadm", ["--stop", &format!("/dev/{md}")]))?;
                stopped.push(md);
            }
        }
    }
    Ok(())
}
