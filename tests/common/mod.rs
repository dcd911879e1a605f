#![allow(dead_code)]

use std::path::PathBuf;

use xenraid::host::{discover, HostFacts, HostSource, RootedSource};
use xenraid::plan::render::render_plan;
use xenraid::plan::{build_plan, Intent, Plan, SrChoice};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hosts")
        .join(name)
}

pub fn facts(name: &str) -> HostFacts {
    let source = RootedSource::captured(&fixture(name));
    discover(&source as &dyn HostSource).expect("fixture discovers")
}

/// The conversion plan of a captured host onto `target`, with an SR; it must not be refused.
pub fn plan_for(fixture: &str, target: &str) -> Plan {
    let plan = build_plan(
        &facts(fixture),
        &Intent {
            target: target.to_string(),
            wipe_target: false,
            sr: SrChoice::Create {
                name_label: "Local storage".into(),
            },
            program: xenraid::plan::DEFAULT_PROGRAM.into(),
        },
    );
    assert!(!plan.refused(), "{}", render_plan(&plan));
    plan
}
