//! `docs/checks-per-backend.md`: which checks each backend runs, and why not the others.

use crate::markdown::cell as md_cell;
use crate::stack::Backend;

/// `docs/checks-per-backend.md`: for each backend, the checks it cannot run and why (from
/// what the backend lacks by design and what each check needs).
pub fn backends_markdown() -> String {
    let mut md = String::from(
        "# Checks per backend\n\nGenerated from the check table and what each backend lacks by design \
         (`Backend::lacks` in `src/stack/mod.rs`); a test fails when this file is stale \
         (`UPDATE_DOCS=1 cargo test --test docs` rewrites it). A check a backend cannot run is reported \
         `skip` with the reason below, also under `CI=true`; every other check runs.\n",
    );
    let all = crate::checks::catalogue();
    for backend in Backend::AVAILABLE {
        let lacks = backend.lacks();
        let cannot: Vec<(&crate::checks::Check, &str)> = all
            .iter()
            .filter_map(|c| {
                lacks
                    .iter()
                    .find(|(n, _)| c.needs.contains(n))
                    .map(|(_, why)| (c, *why))
            })
            .collect();
        md.push_str(&format!(
            "\n## {}\n\nRuns {} of {} checks.\n",
            backend.name(),
            all.len() - cannot.len(),
            all.len()
        ));
        if cannot.is_empty() {
            continue;
        }
        md.push_str("\n| ID | title | why not |\n|---|---|---|\n");
        for (c, why) in cannot {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                c.id,
                md_cell(c.title),
                md_cell(why)
            ));
        }
    }
    md
}
