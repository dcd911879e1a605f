//! Writes xenraid's man pages (section 8, one per subcommand) and bash/zsh/fish completions
//! from the same clap `Cli` the binary parses, so they cannot drift from it. A separate
//! program: clap_mangen and clap_complete stay out of the shipped binary.
//!
//!   xenraid-gen OUT_DIR [--date YYYY-MM-DD]
//!
//! OUT_DIR/man/xenraid.8, OUT_DIR/man/xenraid-<sub>.8, OUT_DIR/completions/{xenraid.bash,
//! _xenraid, xenraid.fish}.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Command, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;

/// Section 8: system administration commands (it needs root and manages the host's disks).
const SECTION: &str = "8";
const MANUAL: &str = "System Administration";

/// The command as the man pages describe it: no `help` subcommand (it would get a page of
/// its own saying nothing), built so every subcommand knows its display name
/// (`xenraid-inspect`) and its usage line (`xenraid inspect`).
fn command() -> Command {
    let mut cmd = xenraid::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every page: the top-level one and one per visible subcommand, as (file name, roff text).
pub fn man_pages(date: &str) -> Result<Vec<(String, String)>> {
    let cmd = command();
    let mut pages = Vec::new();
    let mut add = |c: Command| -> Result<()> {
        let man = Man::new(c)
            .section(SECTION)
            .manual(MANUAL)
            .date(date)
            .source(format!("xenraid {}", env!("CARGO_PKG_VERSION")));
        let mut text = Vec::new();
        man.render(&mut text)?;
        pages.push((man.get_filename(), String::from_utf8(text)?));
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        add(sub.clone())?;
    }
    add(cmd.clone())?;
    Ok(pages)
}

/// (file name, script) for bash, zsh and fish, named as each shell's loader looks them up.
pub fn completions() -> Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "xenraid.bash"),
        (Shell::Zsh, "_xenraid"),
        (Shell::Fish, "xenraid.fish"),
    ] {
        let mut cmd = command();
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, "xenraid", &mut text);
        out.push((file, String::from_utf8(text)?));
    }
    Ok(out)
}

fn write_all(out: &Path, date: &str) -> Result<()> {
    let man = out.join("man");
    let comp = out.join("completions");
    for dir in [&man, &comp] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (name, text) in man_pages(date)? {
        fs::write(man.join(&name), text).with_context(|| format!("writing {name}"))?;
    }
    for (name, text) in completions()? {
        fs::write(comp.join(name), text).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, date) = match args.as_slice() {
        [out] => (PathBuf::from(out), String::new()),
        [out, flag, date] if flag == "--date" => (PathBuf::from(out), date.clone()),
        _ => bail!("usage: xenraid-gen OUT_DIR [--date YYYY-MM-DD]"),
    };
    write_all(&out, &date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_section_8_page_per_subcommand_with_every_long_option() {
        let pages = man_pages("2026-01-01").unwrap();
        let cmd = command();
        let subs: Vec<&Command> = cmd.get_subcommands().collect();
        assert_eq!(
            pages.len(),
            subs.len() + 1,
            "{:?}",
            pages.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        for sub in subs {
            let file = format!("xenraid-{}.8", sub.get_name());
            let (_, text) = pages
                .iter()
                .find(|(name, _)| *name == file)
                .unwrap_or_else(|| panic!("no page {file}"));
            assert!(
                text.contains(&format!(".TH xenraid-{} 8 2026-01-01", sub.get_name())),
                "{file}: {}",
                text.lines().next().unwrap_or_default()
            );
            // The synopsis is the command as typed, not the page's name (roff escapes dashes).
            let typed = format!("\\fBxenraid {}\\fR", sub.get_name().replace('-', "\\-"));
            assert!(text.contains(&typed), "{file} lacks {typed}");
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    // roff escapes the dashes of an option: \-\-json
                    let escaped = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(text.contains(&escaped), "{file} lacks --{long}");
                }
            }
        }
        let (_, top) = pages.iter().find(|(n, _)| n == "xenraid.8").unwrap();
        assert!(
            top.contains("xenraid\\-alert\\-test(8)"),
            "the top page names the subcommand pages"
        );
    }

    #[test]
    fn completions_know_every_subcommand() {
        let all = completions().unwrap();
        assert_eq!(all.len(), 3);
        for (file, text) in &all {
            for sub in command().get_subcommands() {
                assert!(
                    text.contains(sub.get_name()),
                    "{file} lacks {}",
                    sub.get_name()
                );
            }
        }
        let bash = &all.iter().find(|(f, _)| *f == "xenraid.bash").unwrap().1;
        assert!(
            bash.contains("complete -F _xenraid"),
            "bash registers the completion function"
        );
    }
}
