#![allow(dead_code)]

use std::path::PathBuf;

use xenraid::host::{discover, HostFacts, HostSource, RootedSource};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hosts")
        .join(name)
}

pub fn facts(name: &str) -> HostFacts {
    let source = RootedSource::captured(&fixture(name));
    discover(&source as &dyn HostSource).expect("fixture discovers")
}
