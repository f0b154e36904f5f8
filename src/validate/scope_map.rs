//! The tool-to-scope maps of the two sides compared: which tools became visible or hidden
//! under which scopes when the realm changed. Each side's map is what its MCP server
//! showed under that realm's tokens (MCP-10 derives it, leave-one-out).

use serde::Serialize;

use crate::mcp::scope_map::ScopeMap;

/// One tool whose needed scopes differ; `None` on a side where the tool was not listed
/// under every scope (hidden whatever the token holds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolChange {
    pub tool: String,
    pub baseline: Option<Vec<String>>,
    pub changed: Option<Vec<String>>,
}

impl ToolChange {
    /// One line: `tool: needs a b -> needs c`, `hidden`, `visible`.
    pub fn describe(&self) -> String {
        let side = |s: &Option<Vec<String>>| match s {
            None => "hidden".to_owned(),
            Some(v) if v.is_empty() => "needs no scope".to_owned(),
            Some(v) => format!("needs {}", v.join(" ")),
        };
        format!(
            "{}: {} -> {}",
            self.tool,
            side(&self.baseline),
            side(&self.changed)
        )
    }
}

/// The tools listed on either side whose needs differ, by name.
pub fn compare(baseline: &ScopeMap, changed: &ScopeMap) -> Vec<ToolChange> {
    let needs = |m: &ScopeMap, tool: &str| m.get(tool).map(|s| s.iter().cloned().collect());
    let mut tools: Vec<&String> = baseline.keys().chain(changed.keys()).collect();
    tools.sort();
    tools.dedup();
    tools
        .into_iter()
        .filter_map(|tool| {
            let (b, c) = (needs(baseline, tool), needs(changed, tool));
            (b != c).then(|| ToolChange {
                tool: tool.clone(),
                baseline: b,
                changed: c,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &[&str])]) -> ScopeMap {
        entries
            .iter()
            .map(|(t, s)| (t.to_string(), s.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    #[test]
    fn tools_that_appear_disappear_or_change_their_scopes_are_listed() {
        let baseline = map(&[
            ("list", &["notes.read"]),
            ("gone", &["files.read"]),
            ("same", &[]),
        ]);
        let changed = map(&[
            ("list", &["notes.read", "notes.write"]),
            ("new", &[]),
            ("same", &[]),
        ]);
        let diff = compare(&baseline, &changed);
        let lines: Vec<String> = diff.iter().map(ToolChange::describe).collect();
        assert_eq!(
            lines,
            [
                "gone: needs files.read -> hidden",
                "list: needs notes.read -> needs notes.read notes.write",
                "new: hidden -> needs no scope",
            ]
        );
    }
}
