//! Planning: pure functions from `HostFacts` and the user's `Intent` to a `Plan`. No I/O.

pub mod add_mirror;
pub mod boot_steps;
pub mod edits;
pub mod fold_in_steps;
pub mod ids;
pub mod layout;
pub mod lifecycle_steps;
pub mod model;
pub mod preflight;
pub mod render;
pub mod replace;
pub mod replace_steps;
pub mod shared;
pub mod steps;

pub use model::*;

use crate::host::HostFacts;

pub fn build_plan(facts: &HostFacts, intent: &Intent) -> Plan {
    let target = preflight::resolve_target(facts, &intent.target);
    let mut plan = Plan {
        profile: None,
        source: layout::source_disk(facts).map(|d| d.identity()),
        target: target.map(|d| d.identity()),
        arrays: Vec::new(),
        preflight: vec![preflight::target_found(&intent.target, target, facts)],
        phases: Vec::new(),
        notes: Vec::new(),
    };
    let Some(target) = target else {
        return plan;
    };
    let want_sr = matches!(intent.sr, SrChoice::Create { .. });
    let layout = layout::build_layout(facts, target, want_sr);
    let source = layout::source_disk(facts);
    let not_in_use = preflight::target_not_in_use(facts, target, source);
    let in_use = !not_in_use.passed;
    plan.preflight.push(not_in_use);
    plan.preflight
        .push(preflight::target_blank(target, intent.wipe_target, in_use));
    plan.preflight.push(preflight::source_layout(&layout));
    let Ok(layout) = layout else {
        return plan;
    };
    plan.profile = Some(layout.profile);
    plan.arrays = layout.arrays.clone();
    plan.preflight.push(preflight::target_large_enough(
        target,
        layout.required_bytes,
        layout.source,
    ));
    let needed = preflight::required_tools(layout.profile, facts, &layout, want_sr);
    plan.preflight
        .push(preflight::tools_present(facts, &needed));
    plan.preflight
        .push(preflight::not_converted(facts, &layout, target));
    plan.preflight
        .push(preflight::sr_not_on_mirrored_partition(facts, &layout));

    plan.notes = notes(facts, &layout, want_sr);
    if plan.refused() {
        return plan;
    }
    let sr_name = match &intent.sr {
        SrChoice::Create { name_label } => Some(name_label.as_str()),
        SrChoice::None => None,
    };
    let ctx = steps::Ctx {
        facts,
        layout: &layout,
        target,
        wipe_target: intent.wipe_target,
        sr_name,
        program: &intent.program,
    };
    plan.phases = steps::build_phases(&ctx);
    plan
}

fn notes(facts: &HostFacts, layout: &layout::Layout<'_>, want_sr: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if layout.profile == Profile::XenServerUefi {
        notes.push("UEFI: each disk keeps its own ESP (not md): firmware may write an ESP behind md's back, so xenraid copies the ESP to every disk and gives each its own boot entry; `xenraid doctor` compares them".into());
    }
    if layout.profile == Profile::PlainGrub2 {
        notes.push("plain GRUB2: no one-shot boot entry; choose the target disk in the firmware boot menu for the first RAID boot".into());
    }
    if let Some(interim) = boot_steps::interim_boot_array(layout) {
        let root = layout.arrays.iter().find(|a| a.role == "root");
        notes.push(format!(
            "XenServer 6.5: from the point of no return until {} is in sync, the original disk boots the RAID from a copy of /boot on its partition {} ({}, made anew afterwards); with --no-wait, the original disk boots again only when its rebuild ends",
            root.map_or("root", |a| a.device.as_str()),
            interim.partition,
            interim.role,
        ));
    }
    if want_sr
        && !layout.arrays.iter().any(|a| a.role == "sr")
        && layout.profile != Profile::PlainGrub2
    {
        notes.push("no free space for a storage partition: no SR will be created".into());
    }
    if want_sr && facts.product.kind == crate::host::ProductKind::Linux {
        notes.push("not a XenServer host: no SR is created".into());
    }
    for array in &layout.arrays {
        if array.content == Content::Unused {
            notes.push(format!(
                "{} ({}): mirrored empty; its old content is not copied",
                array.device, array.role
            ));
        }
    }
    notes
}
