//! UEFI boot variables through `efibootmgr`. The plan names firmware entries by label: their
//! numbers (`Boot0004`) are assigned by the firmware when an entry is created, so only the
//! host can tell which number a label has.

use crate::exec::Command;

use super::system::System;
use super::ConvertError;

/// What `efibootmgr` (with or without `-v`) prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootVariables {
    pub boot_next: Option<String>,
    pub boot_order: Vec<String>,
    /// (number, label) in the order listed.
    pub entries: Vec<(String, String)>,
}

impl BootVariables {
    pub fn numbers_of(&self, label: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(_, l)| l == label)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Parses `efibootmgr` output. Labels may end in spaces (OVMF's "UEFI QEMU HARDDISK ");
/// they are compared trimmed. With `-v` a tab separates the label from the device path.
pub fn parse_efibootmgr(text: &str) -> BootVariables {
    let mut vars = BootVariables::default();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("BootNext:") {
            vars.boot_next = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("BootOrder:") {
            vars.boot_order = v
                .trim()
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
        } else if let Some(rest) = line.strip_prefix("Boot") {
            let (number, after) = rest.split_at(rest.len().min(4));
            if number.len() != 4 || !number.chars().all(|c| c.is_ascii_hexdigit()) {
                continue;
            }
            let after = after.strip_prefix('*').unwrap_or(after);
            let Some(label) = after.strip_prefix(' ') else {
                continue;
            };
            let label = label.split('\t').next().unwrap_or_default().trim();
            vars.entries.push((number.to_string(), label.to_string()));
        }
    }
    vars
}

pub fn read(sys: &dyn System) -> Result<BootVariables, ConvertError> {
    let out = sys.run(&Command::new("efibootmgr", Vec::<String>::new()))?;
    Ok(parse_efibootmgr(&out.stdout))
}

fn number_of(vars: &BootVariables, label: &str) -> Result<String, ConvertError> {
    vars.numbers_of(label)
        .first()
        .map(|n| n.to_string())
        .ok_or_else(|| ConvertError::Firmware {
            problem: format!(
                "the firmware has no boot entry labelled '{label}' (efibootmgr lists none); \
                 `xenraid resume` re-creates it"
            ),
        })
}

/// The firmware boots the entry with this label at the next boot only, then returns to
/// BootOrder: a RAID boot that fails leaves the next power cycle on the original disk.
pub fn set_boot_next(sys: &dyn System, label: &str) -> Result<(), ConvertError> {
    let number = number_of(&read(sys)?, label)?;
    sys.run(&Command::new("efibootmgr", ["--bootnext", number.as_str()]))?;
    Ok(())
}

/// The new BootOrder: these labels' entries first (every entry with such a label, in the
/// labels' order), then the rest as they were.
pub fn order_with_first(
    vars: &BootVariables,
    labels: &[String],
) -> Result<Vec<String>, ConvertError> {
    let mut order = Vec::new();
    for label in labels {
        number_of(vars, label)?;
        for n in vars.numbers_of(label) {
            if !order.iter().any(|o: &String| o == n) {
                order.push(n.to_string());
            }
        }
    }
    for n in &vars.boot_order {
        if !order.contains(n) {
            order.push(n.clone());
        }
    }
    Ok(order)
}

/// BootOrder's first entries carry these labels, in this order (one entry each).
pub fn order_starts_with(vars: &BootVariables, labels: &[String]) -> bool {
    let label_of = |n: &String| {
        vars.entries
            .iter()
            .find(|(number, _)| number == n)
            .map(|(_, l)| l.as_str())
    };
    vars.boot_order.len() >= labels.len()
        && vars
            .boot_order
            .iter()
            .zip(labels)
            .all(|(n, want)| label_of(n) == Some(want.as_str()))
}

pub fn put_first(sys: &dyn System, labels: &[String]) -> Result<(), ConvertError> {
    let vars = read(sys)?;
    let order = order_with_first(&vars, labels)?;
    if order == vars.boot_order {
        return Ok(());
    }
    sys.run(&Command::new(
        "efibootmgr",
        ["--bootorder".to_string(), order.join(",")],
    ))?;
    Ok(())
}

/// Removes every entry with this label (and BootNext if it pointed at one): rollback's undo
/// of the target's entry.
pub fn delete_entries(sys: &dyn System, label: &str) -> Result<usize, ConvertError> {
    let vars = read(sys)?;
    let numbers = vars.numbers_of(label);
    if vars
        .boot_next
        .as_deref()
        .is_some_and(|next| numbers.contains(&next))
    {
        sys.run(&Command::new("efibootmgr", ["--delete-bootnext"]))?;
    }
    for n in &numbers {
        sys.run(&Command::new(
            "efibootmgr",
            ["--bootnum", n, "--delete-bootnum"],
        ))?;
    }
    Ok(numbers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_order_starts_with_the_labels_in_their_order() {
        let vars = parse_efibootmgr(
            "BootOrder: 0004,0005,0001\nBoot0001* UEFI QEMU HARDDISK\nBoot0004* A (xenraid T)\tHD(4)\nBoot0005* A (xenraid S)\tHD(4)\n",
        );
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(order_starts_with(
            &vars,
            &labels(&["A (xenraid T)", "A (xenraid S)"])
        ));
        assert!(order_starts_with(&vars, &labels(&["A (xenraid T)"])));
        assert!(!order_starts_with(
            &vars,
            &labels(&["A (xenraid S)", "A (xenraid T)"])
        ));
        assert!(!order_starts_with(
            &vars,
            &labels(&["A (xenraid T)", "UEFI QEMU HARDDISK"])
        ));
        let short = parse_efibootmgr("BootOrder: 0004\nBoot0004* A (xenraid T)\n");
        assert!(!order_starts_with(
            &short,
            &labels(&["A (xenraid T)", "A (xenraid S)"])
        ));
    }
}
