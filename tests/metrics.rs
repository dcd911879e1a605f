//! `metrics` on real md: the eight captured arrays (tests/fixtures/md/states) rendered as
//! Prometheus text, checked line by line and against the format's rules.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use xenraid::health::{report, HealthReport};
use xenraid::host::RootedSource;
use xenraid::metrics::http::MetricsServer;
use xenraid::metrics::{render, textfile::write_textfile, MetricsOptions};

fn captured() -> HealthReport {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/md/states");
    report(&RootedSource::captured(&root))
}

fn text() -> String {
    render(
        &captured(),
        &MetricsOptions {
            last_alert_unix: Some(1_763_776_800),
            skip_node_md: false,
        },
    )
}

/// The kernel name of the array udev named /dev/md/NAME.
fn dev(r: &HealthReport, name: &str) -> String {
    r.arrays
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no md/{name}"))
        .device
        .clone()
}

/// metric name + sorted labels → value, checking the text format on the way: every sample
/// belongs to a family declared by # HELP and # TYPE before it, each family is declared
/// once and its samples are contiguous, label values are properly quoted, no series repeats.
fn parse(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut help = BTreeSet::new();
    let mut typed = BTreeMap::new();
    let mut finished = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(help.insert(name.clone()), "HELP twice for {name}");
            if let Some(c) = current.take() {
                finished.insert(c);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(help.contains(name), "TYPE before HELP for {name}");
            assert!(
                ["gauge", "counter", "untyped"].contains(&kind),
                "type {kind}"
            );
            assert!(typed.insert(name.to_string(), kind).is_none());
            current = Some(name.to_string());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "line {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect("closing brace"))),
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name {name}"
        );
        assert_eq!(
            current.as_deref(),
            Some(name),
            "sample {line} outside its family's # TYPE block"
        );
        assert!(!finished.contains(name));
        assert!(
            samples.insert((name.to_string(), labels), value).is_none(),
            "series twice: {line}"
        );
    }
    samples
}

fn parse_labels(mut text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"").expect("key=\"");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("unterminated label value");
            match c {
                '\\' => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                '"' => break i,
                '\n' => panic!("raw newline in a label value"),
                c => value.push(c),
            }
        };
        out.insert(key.to_string(), value);
        text = rest[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&rest[end + 1..]);
    }
    out
}

fn get(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    *samples
        .get(&(name.to_string(), labels.clone()))
        .unwrap_or_else(|| panic!("no {name}{labels:?}"))
}

#[test]
fn every_sample_belongs_to_a_declared_family() {
    let samples = parse(&text());
    assert!(samples.len() > 100);
}

#[test]
fn node_md_lines_as_node_exporter_writes_them() {
    let r = captured();
    let t = text();
    let degraded = dev(&r, "degraded");
    for line in [
        format!("node_md_disks{{device=\"{degraded}\",state=\"active\"}} 1"),
        format!("node_md_disks{{device=\"{degraded}\",state=\"failed\"}} 0"),
        format!("node_md_disks_required{{device=\"{degraded}\"}} 2"),
        format!("node_md_blocks{{device=\"{degraded}\"}} 64512"),
        format!("node_md_state{{device=\"{degraded}\",state=\"active\"}} 1"),
        format!("xenraid_md_degraded{{device=\"{degraded}\"}} 1"),
        "# HELP node_md_disks Number of active/failed/spare disks of device.".to_string(),
        "# TYPE node_md_state gauge".to_string(),
        "xenraid_health_severity 2".to_string(),
        "xenraid_last_alert_timestamp_seconds 1763776800".to_string(),
    ] {
        assert!(t.lines().any(|l| l == line), "missing line: {line}\n{t}");
    }
}

#[test]
fn each_captured_state_shows_in_the_numbers() {
    let r = captured();
    let s = parse(&text());
    let d = |n: &str| dev(&r, n);
    let state = |n: &str| {
        ["active", "inactive", "recovering", "resync", "check"]
            .into_iter()
            .filter(|st| get(&s, "node_md_state", &[("device", &d(n)), ("state", st)]) == 1.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(state("resync"), ["resync"]);
    assert_eq!(state("check"), ["check"]);
    assert_eq!(state("recovery"), ["recovering"]);
    assert_eq!(state("clean"), ["active"]);
    assert_eq!(state("faulty"), ["active"]);

    let blocks = get(&s, "node_md_blocks", &[("device", &d("resync"))]);
    let synced = get(&s, "node_md_blocks_synced", &[("device", &d("resync"))]);
    assert!(synced > 0.0 && synced < blocks, "{synced} of {blocks}");
    assert_eq!(
        get(&s, "node_md_blocks_synced", &[("device", &d("clean"))]),
        get(&s, "node_md_blocks", &[("device", &d("clean"))])
    );
    // Delayed behind the resync on the same disk: nothing synced yet.
    assert_eq!(
        get(&s, "node_md_blocks_synced", &[("device", &d("recovery"))]),
        0.0
    );

    let disks = |n: &str, st: &str| get(&s, "node_md_disks", &[("device", &d(n)), ("state", st)]);
    assert_eq!(disks("faulty", "failed"), 1.0);
    assert_eq!(disks("faulty", "active"), 1.0);
    assert_eq!(disks("spare", "spare"), 1.0);
    assert_eq!(disks("spare", "active"), 2.0);
    assert_eq!(disks("recovery", "active"), 1.0);
    assert_eq!(disks("clean", "active"), 2.0);

    let one = |name: &str, n: &str| get(&s, name, &[("device", &d(n))]);
    assert_eq!(one("xenraid_md_bitmap_present", "nobitmap"), 0.0);
    assert_eq!(one("xenraid_md_bitmap_present", "clean"), 1.0);
    assert_eq!(one("xenraid_md_mismatch_sectors", "clean"), 0.0);
    assert_eq!(one("xenraid_md_degraded", "recovery"), 1.0);
    assert_eq!(
        get(
            &s,
            "xenraid_md_member_state",
            &[
                ("device", &d("faulty")),
                ("member", "sdb8"),
                ("disk", "sdb"),
                ("serial", "XRLAB-TGT0"),
                ("role", "faulty"),
            ]
        ),
        1.0
    );
    assert_eq!(
        get(
            &s,
            "xenraid_disk_bootable",
            &[("disk", "sdb"), ("serial", "XRLAB-TGT0")]
        ),
        0.0
    );
    assert_eq!(
        get(
            &s,
            "xenraid_md_info",
            &[
                ("device", &d("nobitmap")),
                ("name", "nobitmap"),
                ("level", "raid1"),
                ("metadata", "0.90"),
                (
                    "uuid",
                    &r.arrays
                        .iter()
                        .find(|a| a.device == d("nobitmap"))
                        .unwrap()
                        .uuid
                        .clone()
                        .unwrap_or_default()
                ),
            ]
        ),
        1.0
    );
}

#[test]
fn awkward_label_values_survive_the_round_trip() {
    let mut r = captured();
    r.disks[0].serial = Some("WD \"quoted\" back\\slash\nnewline".into());
    let s = parse(&render(&r, &MetricsOptions::default()));
    assert_eq!(
        get(
            &s,
            "xenraid_disk_bootable",
            &[
                ("disk", "sdb"),
                ("serial", "WD \"quoted\" back\\slash\nnewline")
            ]
        ),
        0.0
    );
}

#[test]
fn the_textfile_is_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xenraid.prom");
    std::fs::write(&path, "old 1\n").unwrap();
    write_textfile(&path, &text()).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["xenraid.prom"], "no temporary file left behind");
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_listener_answers_a_real_get() {
    let server = MetricsServer::bind("127.0.0.1:0", false).unwrap();
    let addr = server.local_addr().unwrap();
    server.spawn(Arc::new(text));
    let response = http_get(addr, "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert_eq!(body, text());
    parse(body);
    let response = http_get(addr, "/");
    assert!(
        response.starts_with("HTTP/1.0 404 Not Found\r\n"),
        "{response}"
    );
}

#[test]
fn the_cli_prints_the_captured_tree() {
    let out = assert_cmd::Command::cargo_bin("xenraid")
        .unwrap()
        .args(["metrics", "--no-node-md", "--root"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/md/states"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("node_md_"));
    assert!(out.contains("xenraid_health_severity 2\n"));
    parse(&out);
}
