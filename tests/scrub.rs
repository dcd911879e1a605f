//! `scrub` against a fake md: a sysfs tree in a temporary directory, and a clock whose sleep
//! plays the kernel (a running check advances `sync_completed`; at the end md goes idle,
//! resets `sync_min` to 0 and leaves `mismatch_cnt`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use xenraid::host::RootedSource;
use xenraid::scrub::state::{ArrayCheckpoint, ScrubState, StateStore};
use xenraid::scrub::sysfs::{Clock, RootedSysfs};
use xenraid::scrub::{ScrubError, ScrubOptions, ScrubOutcome, Scrubber};

const TOTAL: u64 = 131_072; // sectors: component_size 65536 KiB

struct FakeMd {
    root: PathBuf,
    elapsed: Duration,
    /// Sectors a check advances per second.
    rate: u64,
    /// mismatch_cnt a check of each array leaves when it completes.
    mismatches: Vec<(String, u64)>,
    /// sync_min seen as each check started: (array, sector).
    starts: Vec<(String, u64)>,
}

impl FakeMd {
    fn new(root: &Path) -> FakeMd {
        FakeMd {
            root: root.to_path_buf(),
            elapsed: Duration::ZERO,
            rate: 1000,
            mismatches: Vec::new(),
            starts: Vec::new(),
        }
    }

    fn attr(&self, md: &str, name: &str) -> PathBuf {
        self.root.join(format!("sys/block/{md}/md/{name}"))
    }

    fn get(&self, md: &str, name: &str) -> String {
        std::fs::read_to_string(self.attr(md, name))
            .unwrap()
            .trim()
            .to_string()
    }

    fn set(&self, md: &str, name: &str, value: &str) {
        std::fs::write(self.attr(md, name), format!("{value}\n")).unwrap();
    }

    fn add_array(&self, md: &str, uuid: &str, degraded: u32) {
        let dir = self.root.join(format!("sys/block/{md}/md"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, value) in [
            ("level", "raid1".to_string()),
            ("array_state", "clean".into()),
            ("raid_disks", "2".into()),
            ("degraded", degraded.to_string()),
            ("sync_action", "idle".into()),
            ("sync_completed", "none".into()),
            ("sync_min", "0".into()),
            ("sync_max", "max".into()),
            ("sync_speed", "none".into()),
            ("mismatch_cnt", "0".into()),
            ("component_size", (TOTAL / 2).to_string()),
            ("chunk_size", "0".into()),
            ("uuid", uuid.into()),
        ] {
            std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
        }
        std::fs::write(
            self.root.join(format!("sys/block/{md}/size")),
            format!("{TOTAL}\n"),
        )
        .unwrap();
    }

    fn arrays(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("sys/block"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A check stopped by `idle`: md keeps where it got to in sync_min.
    fn stopped(&self, md: &str) {
        let completed = self.get(md, "sync_completed");
        if let Some((done, _)) = completed.split_once('/') {
            self.set(md, "sync_min", done.trim());
            self.set(md, "sync_completed", "none");
        }
    }

    /// What md does meanwhile.
    fn kernel(&mut self, dt: Duration) {
        for md in self.arrays() {
            if self.get(&md, "sync_action") != "check" {
                self.stopped(&md);
                continue;
            }
            let completed = self.get(&md, "sync_completed");
            let done = if completed == "none" {
                let start: u64 = self.get(&md, "sync_min").parse().unwrap();
                self.starts.push((md.clone(), start));
                self.set(&md, "mismatch_cnt", "0");
                start
            } else {
                completed.split('/').next().unwrap().trim().parse().unwrap()
            };
            let done = done + self.rate * dt.as_secs();
            if done >= TOTAL {
                let m = self
                    .mismatches
                    .iter()
                    .find(|(d, _)| *d == md)
                    .map(|(_, m)| *m)
                    .unwrap_or(0);
                self.set(&md, "mismatch_cnt", &m.to_string());
                self.set(&md, "sync_action", "idle");
                self.set(&md, "sync_completed", "none");
                self.set(&md, "sync_min", "0");
            } else {
                self.set(&md, "sync_completed", &format!("{done} / {TOTAL}"));
            }
        }
    }
}

impl Clock for FakeMd {
    fn elapsed(&self) -> Duration {
        self.elapsed
    }

    fn now_unix(&self) -> u64 {
        1_763_776_800 + self.elapsed.as_secs()
    }

    fn sleep(&mut self, duration: Duration) {
        self.elapsed += duration;
        self.kernel(duration);
    }
}

fn scrub(
    root: &Path,
    fake: &mut FakeMd,
    store: &StateStore,
    options: &ScrubOptions,
) -> Result<ScrubOutcome, ScrubError> {
    let src = RootedSource::captured(root);
    let sysfs = RootedSysfs::under(root);
    let mut seen = Vec::new();
    let out = Scrubber {
        src: &src,
        sysfs: &sysfs,
        clock: fake,
        store,
    }
    .run(options, &mut |p| {
        seen.push((p.device.clone(), p.done_sectors))
    });
    assert!(
        seen.windows(2)
            .all(|w| w[0].0 != w[1].0 || w[0].1 <= w[1].1),
        "progress {seen:?}"
    );
    out
}

fn budget(secs: u64) -> ScrubOptions {
    ScrubOptions {
        budget: Some(Duration::from_secs(secs)),
        ..ScrubOptions::default()
    }
}

#[test]
fn the_budget_ends_in_a_checkpoint_and_an_idle_array() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut fake = FakeMd::new(root);
    fake.add_array("md127", "aaaa", 0);
    let store = StateStore::new(root.join("var/lib/xenraid/scrub.json"));

    let out = scrub(root, &mut fake, &store, &budget(30)).unwrap();

    assert_eq!(out.arrays.len(), 1);
    let a = &out.arrays[0];
    assert_eq!((a.from_sector, a.to_sector), (0, 30_000));
    assert!(!a.finished && a.note.is_none());
    assert_eq!(fake.get("md127", "sync_action"), "idle");
    assert_eq!(fake.starts, [("md127".to_string(), 0)]);
    let saved = store.load().unwrap();
    let c = &saved.arrays["aaaa"];
    assert_eq!(c.next_sector, 30_000);
    assert_eq!(c.total_sectors, TOTAL);
    assert_eq!(c.device, "md127");
    assert_eq!(out.exit_code(), 0);
}

#[test]
fn the_next_run_resumes_at_the_checkpoint_and_a_finished_pass_resets_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut fake = FakeMd::new(root);
    fake.add_array("md127", "aaaa", 0);
    fake.mismatches.push(("md127".into(), 128));
    let store = StateStore::new(root.join("scrub.json"));
    let mut state = ScrubState::default();
    state.arrays.insert(
        "aaaa".into(),
        ArrayCheckpoint {
            device: "md126".into(), // renumbered since: the UUID finds it
            next_sector: 100_000,
            total_sectors: TOTAL,
            pass_mismatch_sectors: 8,
            ..Default::default()
        },
    );
    store.save(&state).unwrap();

    let out = scrub(root, &mut fake, &store, &ScrubOptions::default()).unwrap();

    assert_eq!(fake.starts, [("md127".to_string(), 100_000)]);
    let a = &out.arrays[0];
    assert!(a.finished);
    assert_eq!((a.from_sector, a.to_sector), (100_000, TOTAL));
    assert_eq!(a.mismatch_sectors, 128);
    assert_eq!(a.pass_mismatch_sectors, Some(136));
    assert_eq!(out.mismatch_events().count(), 1);
    assert_eq!(out.exit_code(), 1);
    let c = &store.load().unwrap().arrays["aaaa"];
    assert_eq!(c.next_sector, 0);
    assert_eq!(c.pass_mismatch_sectors, 0);
    assert_eq!(c.last_mismatch_sectors, Some(136));
    assert_eq!(c.last_finished, Some(fake.now_unix()));
    assert_eq!(c.device, "md127");
}

#[test]
fn a_pass_spread_over_three_runs_covers_the_array_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut fake = FakeMd::new(root);
    fake.add_array("md127", "aaaa", 0);
    let store = StateStore::new(root.join("scrub.json"));
    let mut ranges = Vec::new();
    for _ in 0..3 {
        fake.elapsed = Duration::ZERO;
        let out = scrub(root, &mut fake, &store, &budget(60)).unwrap();
        let a = &out.arrays[0];
        ranges.push((a.from_sector, a.to_sector, a.finished));
    }
    assert_eq!(
        ranges,
        [
            (0, 60_000, false),
            (60_000, 120_000, false),
            (120_000, TOTAL, true)
        ]
    );
}

#[test]
fn one_array_at_a_time_in_progress_first_and_the_budget_leaves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut fake = FakeMd::new(root);
    fake.add_array("md125", "cccc", 0);
    fake.add_array("md126", "bbbb", 1);
    fake.add_array("md127", "aaaa", 0);
    fake.set("md125", "sync_action", "resync");
    fake.add_array("md124", "dddd", 0);
    fake.add_array("md123", "eeee", 0);
    let store = StateStore::new(root.join("scrub.json"));
    let mut state = ScrubState::default();
    state.arrays.insert(
        "aaaa".into(),
        ArrayCheckpoint {
            next_sector: 121_072,
            total_sectors: TOTAL,
            ..Default::default()
        },
    );
    store.save(&state).unwrap();

    // md127 needs 10 s to finish, md123 gets the remaining 20 s, md124 is not reached.
    let out = scrub(root, &mut fake, &store, &budget(30)).unwrap();

    let done: Vec<(&str, bool)> = out
        .arrays
        .iter()
        .map(|a| (a.device.as_str(), a.finished))
        .collect();
    assert_eq!(done, [("md127", true), ("md123", false)]);
    assert_eq!(out.not_reached, ["md124"]);
    let skipped: Vec<&str> = out.skipped.iter().map(|s| s.device.as_str()).collect();
    assert_eq!(skipped, ["md125", "md126"]);
    assert!(out.skipped[1].why.contains("degraded"));
    // Never two checks at once: each started after the one before went idle.
    assert_eq!(fake.starts.len(), 2);
    assert_eq!(fake.get("md126", "sync_action"), "idle");
}

#[test]
fn named_arrays_only_and_an_unknown_name_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut fake = FakeMd::new(root);
    fake.add_array("md126", "bbbb", 0);
    fake.add_array("md127", "aaaa", 0);
    let store = StateStore::new(root.join("scrub.json"));
    let options = ScrubOptions {
        arrays: vec!["/dev/md127".into()],
        ..ScrubOptions::default()
    };
    let out = scrub(root, &mut fake, &store, &options).unwrap();
    assert_eq!(out.arrays.len(), 1);
    assert_eq!(out.arrays[0].device, "md127");
    let options = ScrubOptions {
        arrays: vec!["md9".into()],
        ..ScrubOptions::default()
    };
    assert!(matches!(
        scrub(root, &mut fake, &store, &options),
        Err(ScrubError::NoArray { .. })
    ));
}

#[test]
fn a_check_stopped_by_someone_else_keeps_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let fake = FakeMd::new(root);
    fake.add_array("md127", "aaaa", 0);
    let store = StateStore::new(root.join("scrub.json"));
    // Another admin writes idle after ~20 s: md leaves sync_min at the position reached.
    struct Interrupting(FakeMd);
    impl Clock for Interrupting {
        fn elapsed(&self) -> Duration {
            self.0.elapsed()
        }
        fn now_unix(&self) -> u64 {
            self.0.now_unix()
        }
        fn sleep(&mut self, d: Duration) {
            self.0.sleep(d);
            if self.0.elapsed >= Duration::from_secs(20)
                && self.0.get("md127", "sync_action") == "check"
            {
                self.0.set("md127", "sync_action", "idle");
                self.0.stopped("md127");
            }
        }
    }
    let mut clock = Interrupting(fake);
    let src = RootedSource::captured(root);
    let sysfs = RootedSysfs::under(root);
    let out = Scrubber {
        src: &src,
        sysfs: &sysfs,
        clock: &mut clock,
        store: &store,
    }
    .run(&ScrubOptions::default(), &mut |_| {})
    .unwrap();
    let a = &out.arrays[0];
    assert!(!a.finished);
    assert!(a.note.as_deref().unwrap().contains("something else"));
    assert_eq!(a.to_sector, 20_000);
    assert_eq!(store.load().unwrap().arrays["aaaa"].next_sector, 20_000);
}

#[test]
fn an_array_md_refuses_to_check_is_skipped_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut fake = FakeMd::new(root);
    fake.add_array("md126", "bbbb", 0);
    fake.add_array("md127", "aaaa", 0);
    // An attribute that cannot be written (sysfs answers EBUSY; here: it is missing).
    std::fs::remove_file(fake.attr("md126", "sync_min")).unwrap();
    let store = StateStore::new(root.join("scrub.json"));
    let out = scrub(root, &mut fake, &store, &ScrubOptions::default()).unwrap();
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].device, "md126");
    assert!(out.skipped[0].why.contains("could not start"));
    assert_eq!(out.arrays.len(), 1);
    assert!(out.arrays[0].finished);
}

#[test]
fn the_cli_refuses_a_captured_tree_and_a_bad_budget() {
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("xenraid")
            .unwrap()
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["scrub", "--root", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("live host only"));
    let out = run(&["scrub", "--budget", "4 fortnights"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["metrics", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}
