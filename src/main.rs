use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use xenraid::host::prefetch::Prefetched;
use xenraid::host::{discover, HostFacts, HostSource, RootedSource};

mod add_mirror_cmd;
mod metrics_cmd;
mod monitor_cmd;
mod replace_cmd;
mod run_cmd;
mod scrub_cmd;

use xenraid::cli::{self, Cli, Commands, EXIT_OK, EXIT_REFUSED, EXIT_RUNTIME, EXIT_USAGE};
use xenraid::convert::journal::{ConversionSummary, JournalStore};
use xenraid::plan::lifecycle_steps::JOURNAL_FILE;
use xenraid::plan::{build_plan, Intent, SrChoice};

/// Only the shipped static build: glibc's malloc is fine elsewhere (see Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            } as u8);
        }
    };
    init_logging(cli.verbose);
    match run(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("xenraid: error: {err:#}");
            ExitCode::from(EXIT_RUNTIME as u8)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("XENRAID_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn read_facts(cli: &Cli) -> anyhow::Result<HostFacts> {
    let facts = match &cli.root {
        Some(root) => {
            let source = RootedSource::captured(root);
            discover(&Prefetched::new(&source) as &dyn HostSource)
        }
        None => {
            let source = RootedSource::live();
            discover(&Prefetched::new(&source) as &dyn HostSource)
        }
    };
    facts.context("reading the host")
}

#[derive(serde::Serialize)]
struct InspectOutput<'a> {
    #[serde(flatten)]
    facts: &'a HostFacts,
    conversion: ConversionSummary,
}

/// The conversion journal of the host (or of the captured tree under --root).
fn conversion_summary(cli: &Cli) -> ConversionSummary {
    let store = match &cli.root {
        Some(root) => JournalStore::under(&root.display().to_string(), JOURNAL_FILE),
        None => JournalStore::new(JOURNAL_FILE),
    };
    ConversionSummary::of(store.load())
}

fn status(cli: &Cli, args: &cli::StatusArgs) -> anyhow::Result<i32> {
    let report = match &cli.root {
        Some(root) => xenraid::health::quick_report(&RootedSource::captured(root)),
        None => xenraid::health::quick_report(&RootedSource::live()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.check {
        println!("{}", report.verdict.summary);
    } else {
        print!("{}", xenraid::health::render::render(&report));
    }
    // --check speaks Nagios (with --json too); plain status exits 0: it looked.
    Ok(if args.check {
        report.verdict.severity.exit_code()
    } else {
        EXIT_OK
    })
}

fn doctor(cli: &Cli, args: &cli::DoctorArgs) -> anyhow::Result<i32> {
    let report = match (&cli.root, args.fix) {
        (Some(_), true) => anyhow::bail!("doctor --fix works on the live host only"),
        (Some(root), false) => xenraid::doctor::examine(&RootedSource::captured(root))?,
        (None, false) => xenraid::doctor::examine(&RootedSource::live())?,
        (None, true) => xenraid::doctor::examine_and_fix(
            &RootedSource::live(),
            &xenraid::exec::RealRunner,
            std::path::Path::new("/"),
        )?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", xenraid::doctor::render::render(&report));
    }
    Ok(report.exit_code())
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Commands::Inspect(args) => {
            let facts = read_facts(cli)?;
            let conversion = conversion_summary(cli);
            if args.json {
                let out = InspectOutput {
                    facts: &facts,
                    conversion,
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", xenraid::host::render::render_facts(&facts));
                println!("{}", conversion.render());
            }
            Ok(EXIT_OK)
        }
        Commands::Plan(args) => {
            let facts = read_facts(cli)?;
            let plan = build_plan(&facts, &intent_from(&args.target));
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", xenraid::plan::render::render_plan(&plan));
            }
            Ok(if plan.refused() {
                EXIT_REFUSED
            } else {
                EXIT_OK
            })
        }
        Commands::Convert(args) => {
            if cli.root.is_some() {
                anyhow::bail!("convert works on the live host only (--root reads a captured tree)");
            }
            let facts = read_facts(cli)?;
            run_cmd::convert(args, build_plan(&facts, &intent_from(&args.plan)))
        }
        Commands::Resume(args) => run_cmd::resume(args),
        Commands::Rollback(args) => run_cmd::rollback(args),
        Commands::Status(args) => Ok(status(cli, args)?),
        Commands::Monitor(args) => monitor_cmd::monitor(&cli.root, args),
        Commands::Event(args) => monitor_cmd::event(&cli.root, args),
        Commands::AlertTest(args) => monitor_cmd::alert_test(&cli.root, args),
        Commands::Metrics(args) => metrics_cmd::metrics(cli.root.clone(), args),
        Commands::Scrub(args) => {
            if cli.root.is_some() {
                anyhow::bail!("scrub works on the live host only (--root reads a captured tree)");
            }
            scrub_cmd::scrub(args)
        }
        Commands::Doctor(args) => doctor(cli, args),
        Commands::Replace(args) => replace_cmd::replace(&cli.root, args, read_facts(cli)?),
        Commands::AddMirror(args) => add_mirror_cmd::add_mirror(cli, args),
    }
}

fn intent_from(args: &cli::PlanTargetArgs) -> Intent {
    Intent {
        target: args.target.clone(),
        wipe_target: args.wipe_target,
        sr: if args.no_sr {
            SrChoice::None
        } else {
            SrChoice::Create {
                name_label: args.sr_name.clone(),
            }
        },
        program: program_path(),
    }
}

/// The running binary, for the resume unit's copy. Falls back to the packaged path.
fn program_path() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
        .unwrap_or_else(|| xenraid::plan::DEFAULT_PROGRAM.into())
}
