//! `repro impersonation`: two Keycloak boots, one table; see [`crate::repro`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::ImpersonationArgs;
use crate::progress::Progress;
use crate::repro::{self, ImpersonationOptions, Outcome};
use crate::runner::{INTERRUPTED, Interrupt};
use crate::stack::process::processes_with_marker;
use crate::stack::run::RunContext;

pub async fn impersonation(args: ImpersonationArgs) -> u8 {
    let md_path = match &args.out {
        Some(out) => match markdown_path(out) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        None => None,
    };
    // One run (directory, watchdog) per boot: a Keycloak home is assembled once per run.
    let first = match RunContext::create(args.keep) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let second = match RunContext::create(args.keep) {
        Ok(r) => r,
        Err(e) => {
            first.finish();
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let runs = [Arc::new(first), Arc::new(second)];
    let opts = ImpersonationOptions {
        keycloak_version: args.keycloak_version.clone(),
        dist: args.keycloak_dist.clone(),
        boot_timeout: Duration::from_secs(args.boot_timeout),
        command_line: command_line(),
    };
    let interrupt = Interrupt::install();
    let progress = Arc::new(Progress::new());
    let outcome = repro::impersonation([&runs[0], &runs[1]], &opts, &progress, &interrupt).await;
    progress.finish();
    let left = teardown(&runs);
    let results = match outcome {
        Outcome::Interrupted(sig) => {
            eprintln!("{sig}: interrupted; Keycloak stopped, nothing written");
            return INTERRUPTED;
        }
        Outcome::Done(r) => r,
    };
    print!("{}", repro::render::terminal(&results));
    if let (Some(out), Some(md)) = (&args.out, &md_path) {
        match write_outputs(&results, out, md) {
            Ok(()) => println!("results: {} and {}", out.display(), md.display()),
            Err(e) => {
                eprintln!("error: {e:#}");
                return 1;
            }
        }
    }
    if !results.all_booted() {
        for b in results.boots.iter().filter(|b| b.error.is_some()) {
            eprintln!(
                "error: the {} boot: {}",
                b.id,
                b.error.as_deref().unwrap_or_default()
            );
        }
        return 2;
    }
    if left > 0 {
        eprintln!("error: {left} process(es) or directories outlived the reproduction");
        return 1;
    }
    0
}

/// Finishes both runs; returns how many processes or directories were left.
fn teardown(runs: &[Arc<RunContext>; 2]) -> usize {
    let mut left = 0;
    for r in runs {
        let procs = processes_with_marker(&r.id);
        for (pid, cmd) in &procs {
            eprintln!("left behind: pid {pid}: {cmd}");
        }
        left += procs.len();
        left += r.finish() as usize;
    }
    left
}

/// `--out results.json` also writes `results.md` next to it.
fn markdown_path(out: &Path) -> Result<PathBuf, String> {
    let md = out.with_extension("md");
    if md == out {
        return Err(format!(
            "--out {}: name the JSON file (e.g. results.json); the Markdown rendering goes next to it as .md",
            out.display()
        ));
    }
    // Checked before two Keycloak boots, not after them.
    let dir = match out.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_owned(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .and_then(|()| tempfile::NamedTempFile::new_in(&dir).map(drop))
        .map_err(|e| {
            format!(
                "--out {}: cannot write into {}: {e}; name a file in a writable directory",
                out.display(),
                dir.display()
            )
        })?;
    Ok(md)
}

fn write_outputs(
    results: &repro::model::ImpersonationResults,
    out: &Path,
    md: &Path,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = repro::to_json(results)?;
    let markdown = repro::render::markdown(results);
    repro::ensure_no_secrets(&markdown)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    std::fs::write(md, markdown).with_context(|| format!("writing {}", md.display()))?;
    Ok(())
}

/// The command as typed, with the program's directory left out.
fn command_line() -> Vec<String> {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(first) = args.first_mut()
        && let Some(name) = Path::new(first.as_str()).file_name()
    {
        *first = name.to_string_lossy().into_owned();
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_markdown_goes_next_to_the_json() {
        assert_eq!(
            markdown_path(Path::new("out/results.json")).unwrap(),
            Path::new("out/results.md")
        );
        assert_eq!(
            markdown_path(Path::new("results")).unwrap(),
            Path::new("results.md")
        );
        assert!(markdown_path(Path::new("results.md")).is_err());
    }
}
