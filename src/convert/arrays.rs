//! Arrays found by UUID and member, never by the name the kernel happened to give them: after
//! a crash before the reboot, the host's udev may have started them as md127 (the homehost
//! differs) or not at all.

use crate::exec::{Command, ExecError};
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
        stop_array(sys, &dev)?;
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
        stop_array(sys, &format!("/dev/{md}"))?;
    } else if sys.resolve(&spec.device).is_some() {
        // Created but its member vanished from the holders list: stop it by name.
        let _ = stop_array(sys, &spec.device);
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
                // udev's queue is held here: settling would only wait out its timeout
                stop_with_retries(sys, &format!("/dev/{md}"), false)?;
                stopped.push(md);
            }
        }
    }
    Ok(())
}

/// How often a stop that found the array briefly open elsewhere is tried again.
const STOP_RETRIES: usize = 5;

/// `mdadm --stop`, after udev has settled and again while the array is only briefly busy.
/// Right after a boot, udev is still probing arrays it just assembled (`mdadm --incremental`,
/// blkid, LVM's scan open them), and a stop in that instant fails "Cannot get exclusive
/// access" (the crash matrix hit it: a resume run as soon as the original had booted).
/// A mounted or otherwise held array stays busy and still fails, after about 5 s.
pub fn stop_array(sys: &dyn System, device: &str) -> Result<(), ConvertError> {
    stop_with_retries(sys, device, true)
}

fn stop_with_retries(sys: &dyn System, device: &str, settle: bool) -> Result<(), ConvertError> {
    let stop = Command::new("mdadm", ["--stop", device]);
    let mut tries = 0;
    loop {
        if settle {
            let _ = sys.run(&Command::new("udevadm", ["settle", "--timeout=10"]));
        }
        match sys.run(&stop) {
            Ok(_) => return Ok(()),
            Err(e) if tries < STOP_RETRIES && briefly_busy(&e) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn briefly_busy(e: &ExecError) -> bool {
    matches!(e, ExecError::Failed { stderr_tail, .. } if stderr_tail.contains("Cannot get exclusive access"))
}
