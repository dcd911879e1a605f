//! What the packages ship besides the binary: the default `/etc/xenraid/xenraid.toml` and
//! the systemd units. The artifacts themselves are checked by `scripts/check-package.sh`.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Parser;
use serde_json::Value;
use xenraid::cli::Cli;
use xenraid::config::Config;

const SHIPPED: &str = include_str!("../packaging/xenraid.toml");

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("/etc/xenraid/xenraid.toml"))
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// The file with every example setting switched on: the convention in the file is `#key`
/// and `#[section]` (no space) for a setting, `# ` for prose.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c == '[' || c.is_ascii_lowercase()) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Dotted paths of the leaves: `alert.mail.to`, `monitor.reminder`, …
fn leaves(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(v, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[test]
fn the_shipped_config_is_the_default_configuration() {
    // Every setting commented out: installing the package changes no behaviour.
    assert_eq!(parse(SHIPPED), Config::default());
}

#[test]
fn every_setting_the_program_knows_is_documented_and_its_example_parses() {
    let text = uncommented(SHIPPED);
    let config = parse(&text);
    assert!(config.alert.mail.is_some() && config.alert.webhook.is_some());
    assert!(config.alert.xapi.as_ref().is_some_and(|x| x.enabled));
    assert!(config.metrics.textfile.is_some());

    // What the program reads: every field of Config, unset options as null.
    let mut known = BTreeSet::new();
    leaves(&serde_json::to_value(&config).unwrap(), "", &mut known);
    // What the file documents.
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut documented = BTreeSet::new();
    leaves(&serde_json::to_value(&table).unwrap(), "", &mut documented);
    assert_eq!(
        known, documented,
        "packaging/xenraid.toml must show every setting of src/config.rs, and only those"
    );
    assert!(documented.len() >= 19, "{documented:?}");
}

#[test]
fn the_examples_are_the_defaults_where_the_program_has_one() {
    // A commented-out default that differs from the real one would mislead: uncommenting it
    // must not change what the program does.
    let config = parse(&uncommented(SHIPPED));
    let defaults = xenraid::config::MonitorConfig::default();
    assert_eq!(config.monitor, defaults);
    assert!(!config.metrics.skip_node_md);
    let mail = config.alert.mail.unwrap();
    assert_eq!(mail.sendmail, "/usr/sbin/sendmail");
    assert_eq!(config.alert.xapi.unwrap().xe, "xe");
}

/// The packaged units run `/usr/sbin/xenraid` (where the RPM and the .deb put it) with
/// arguments the CLI accepts: a renamed flag would otherwise fail only on a host.
#[test]
fn every_unit_runs_the_packaged_binary_with_arguments_the_cli_accepts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd");
    let mut services = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(command) = line.strip_prefix("ExecStart=") else {
                continue;
            };
            services += 1;
            let argv: Vec<&str> = command.split_whitespace().collect();
            assert_eq!(argv[0], "/usr/sbin/xenraid", "{}", path.display());
            Cli::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{}: `{command}`: {e}", path.display()));
        }
    }
    assert_eq!(
        services, 2,
        "xenraid-monitor.service and xenraid-scrub.service"
    );
}
