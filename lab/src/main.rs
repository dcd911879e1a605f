//! `xenraid-lab`: builds the XenServer-shaped guest images and runs the proof scenarios.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::time::Instant;
use xenraid_lab::{images, scenarios, vm};

#[derive(Parser)]
#[command(
    version,
    about = "QEMU lab for xenraid: real kernels, real md, real boot, real disk loss"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build (or find in the cache) guest images: xs7-bios, xs65-bios, xcpng8-uefi.
    Image { profiles: Vec<String> },
    /// List the scenarios and their tier.
    List,
    /// Run scenarios by name, or a tier: `core` (CI) or `full` (every scenario).
    Run {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Boot PROFILE with a blank 4G target attached, run SCRIPT (bash) in it, print the
    /// output: a quick look inside a guest while developing.
    Exec { profile: String, script: String },
    /// Boot a kept run's disks (XENRAID_LAB_KEEP=1: RUN_DIR/disk-a.qcow2 = XRLAB-SYS0,
    /// disk-b.qcow2 = XRLAB-TGT0) and run SCRIPT: a look at what a failed scenario left.
    Inspect {
        profile: String,
        run_dir: std::path::PathBuf,
        script: String,
    },
    /// Run a capture script in every image and unpack its output under OUT/<profile>/
    /// (how tests/fixtures/lab/ is refreshed).
    Capture {
        script: std::path::PathBuf,
        out: std::path::PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let lab = images::Lab::new()?;
    match cli.command {
        Cmd::Image { profiles } => {
            let profiles = if profiles.is_empty() {
                images::PROFILES.iter().map(|s| s.to_string()).collect()
            } else {
                profiles
            };
            for p in profiles {
                let t = Instant::now();
                let img = lab.image(&p)?;
                println!(
                    "{p}: {} ({:.1} s)",
                    img.dir.display(),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        Cmd::List => {
            for s in scenarios::all() {
                println!(
                    "{:<24} {:<5} {}",
                    s.name,
                    if s.core { "core" } else { "full" },
                    s.about
                );
            }
        }
        Cmd::Run { names } => run(&lab, &names)?,
        Cmd::Exec { profile, script } => {
            let ctx = scenarios::Ctx::new(&lab, "exec")?;
            let image = ctx.image(&profile)?;
            let sys = image.system_disk(&ctx.dir.join("sys.qcow2"))?;
            let tgt = images::blank_disk(
                &ctx.dir.join("tgt.qcow2"),
                "4G",
                "XRLAB-TGT0",
                0x5000c500a0000002,
            )?;
            let mut vm = ctx.boot("exec", &image, &[&sys, &tgt])?;
            if scenarios::xenraid::xenraid_binary().is_ok() {
                scenarios::xenraid::install(&mut vm)?;
            }
            let out = vm.run_status(&script, std::time::Duration::from_secs(1800))?;
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            vm.shutdown(std::time::Duration::from_secs(300))?;
            ctx.cleanup(true);
            if out.status != 0 {
                bail!("exit status {}", out.status);
            }
        }
        Cmd::Inspect {
            profile,
            run_dir,
            script,
        } => {
            let ctx = scenarios::Ctx::new(&lab, "inspect-kept")?;
            let image = ctx.image(&profile)?;
            let a = vm::Disk::new(
                run_dir.join("disk-a.qcow2"),
                "XRLAB-SYS0",
                0x5000c500a0000001,
            );
            let b = vm::Disk::new(
                run_dir.join("disk-b.qcow2"),
                "XRLAB-TGT0",
                0x5000c500a0000002,
            );
            let boot_disk = usize::from(std::env::var_os("XENRAID_LAB_BOOT_B").is_some());
            let mut vm = ctx.boot_from("kept", &image, &[&a, &b], boot_disk)?;
            let out = vm.run_status(&script, std::time::Duration::from_secs(1800))?;
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            vm.shutdown(std::time::Duration::from_secs(300))?;
            ctx.cleanup(true);
        }
        Cmd::Capture { script, out } => {
            let mut ctx = scenarios::Ctx::new(&lab, "capture")?;
            let r = scenarios::xenraid::capture(&mut ctx, &script, &out);
            ctx.cleanup(r.is_ok());
            r?;
        }
    }
    Ok(())
}

fn run(lab: &images::Lab, names: &[String]) -> Result<()> {
    let all = scenarios::all();
    let mut selected = Vec::new();
    for n in names {
        match n.as_str() {
            "core" => selected.extend(all.iter().filter(|s| s.core)),
            "full" => selected.extend(all.iter()),
            _ => match all.iter().find(|s| s.name == n) {
                Some(s) => selected.push(s),
                None => bail!("unknown scenario {n:?} (see `xenraid-lab list`)"),
            },
        }
    }
    let jobs = parallel_jobs();
    eprintln!(
        "lab: accelerator {:?}, {jobs} scenario(s) at a time",
        vm::detect_accel()
    );
    lab.check_space(jobs)?;
    let queue = std::sync::Mutex::new(selected.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let Some(s) = queue.lock().expect("queue").next() else {
                    break;
                };
                let t = Instant::now();
                let outcome = scenarios::Ctx::new(lab, s.name).map(|mut ctx| {
                    let r = (s.run)(&mut ctx);
                    ctx.cleanup(r.is_ok());
                    (r, ctx.phases)
                });
                let (ok, phases) = match outcome {
                    Ok((Ok(()), phases)) => (true, phases),
                    Ok((Err(e), phases)) => {
                        eprintln!("[{}] FAILED: {e:?}", s.name);
                        (false, phases)
                    }
                    Err(e) => {
                        eprintln!("[{}] FAILED to start: {e:?}", s.name);
                        (false, Vec::new())
                    }
                };
                results
                    .lock()
                    .expect("results")
                    .push((s.name, ok, t.elapsed(), phases));
            });
        }
    });
    let results = results.into_inner().expect("results");
    println!(
        "\n{:<24} {:<6} {:>9}  phases (s)",
        "scenario", "result", "wall (s)"
    );
    for (name, ok, wall, phases) in &results {
        let ph: Vec<String> = phases
            .iter()
            .map(|(n, d)| format!("{n} {:.0}", d.as_secs_f64()))
            .collect();
        println!(
            "{:<24} {:<6} {:>9.0}  {}",
            name,
            if *ok { "pass" } else { "FAIL" },
            wall.as_secs_f64(),
            ph.join(", ")
        );
    }
    let failed = results.iter().filter(|r| !r.1).count();
    println!("{} passed, {} failed", results.len() - failed, failed);
    if failed > 0 {
        bail!("{failed} scenario(s) failed");
    }
    Ok(())
}

/// Scenarios run side by side only when the cores allow: each TCG guest keeps about two
/// cores busy. `XENRAID_LAB_JOBS` overrides.
fn parallel_jobs() -> usize {
    if let Some(n) = std::env::var("XENRAID_LAB_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return std::cmp::max(n, 1);
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    std::cmp::max(cores / 3, 1)
}
