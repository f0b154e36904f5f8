//! Pinned observations: what a check saw once, reviewed and committed as
//! `fixtures/snapshots/<name>.snap`, and compared as JSON on every run.
//!
//! The verdict depends on the committed file alone. insta, which wrote these files first,
//! reads `INSTA_UPDATE` and `INSTA_FORCE_PASS` from the environment and can turn a
//! mismatch into a pass; nothing here reads the environment. Writing a pin is a separate,
//! explicit command (`mcp-authz-harness pin`), never a side effect of a run.
//!
//! The format stays insta's (a header between `---` lines, then pretty-printed JSON), so
//! every pin written before stays valid, and a pin whose value did not change is never
//! rewritten (its bytes stay as committed).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// The committed pins: `fixtures/snapshots/` of this crate.
pub fn snapshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots")
}

/// At most this many differences are listed in a failure message.
const SHOWN_DIFFERENCES: usize = 25;

/// One pin: its file and how to write it again.
pub struct Pin<'a> {
    /// The directory holding the pins ([`snapshots_dir`] outside tests).
    pub dir: &'a Path,
    /// The file name without `.snap` (`scope-map-0.202.1`).
    pub name: String,
    /// The module that observes the value, written into the header of a new pin.
    pub source: &'static str,
    /// The command that writes this pin anew, named in every failure.
    pub command: String,
}

/// What [`Pin::compare`] or [`Pin::update`] found.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The observed value equals the pin (the file was not touched).
    Matches,
    /// The file was written: it was missing (`None`) or differed (the differences).
    Written(Option<Vec<String>>),
}

impl Pin<'_> {
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.snap", self.name))
    }

    /// `fixtures/snapshots/<name>.snap`, as messages name it.
    pub fn shown(&self) -> String {
        format!("fixtures/snapshots/{}.snap", self.name)
    }

    /// The pinned value, or why there is none usable.
    fn read(&self) -> anyhow::Result<Option<Value>> {
        let path = self.path();
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        body(&text)
            .map(Some)
            .with_context(|| format!("{} is not a pin", self.shown()))
    }

    /// `observed` equals the pin, or an error saying how they differ (or that there is no
    /// pin) and naming the command that writes it.
    pub fn compare(&self, observed: &Value) -> anyhow::Result<Outcome> {
        let Some(pinned) = self.read()? else {
            anyhow::bail!(
                "no pin {}: create it with `{}`, review it and commit it",
                self.shown(),
                self.command
            );
        };
        let diff = differences(&pinned, observed);
        anyhow::ensure!(
            diff.is_empty(),
            "the observed value differs from {} in {} place(s):\n{}\nif the change is intended, re-pin with `{}` and review the diff",
            self.shown(),
            diff.len(),
            listed(&diff),
            self.command
        );
        Ok(Outcome::Matches)
    }

    /// Writes `observed` as the pin unless the pin already holds it.
    pub fn update(&self, observed: &Value) -> anyhow::Result<Outcome> {
        // An unreadable pin is replaced, like a differing one.
        let previous = self.read().unwrap_or_default();
        let diff = match &previous {
            Some(pinned) => {
                let diff = differences(pinned, observed);
                if diff.is_empty() {
                    return Ok(Outcome::Matches);
                }
                Some(diff)
            }
            None => None,
        };
        let path = self.path();
        std::fs::write(&path, render(self.source, observed))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Outcome::Written(diff))
    }

    /// `update` when `write` is set, else `compare`; the pass message of a check.
    pub fn verify(&self, observed: &Value, write: bool) -> anyhow::Result<String> {
        let outcome = if write {
            self.update(observed)?
        } else {
            self.compare(observed)?
        };
        Ok(match outcome {
            Outcome::Matches => format!("matches {}", self.shown()),
            Outcome::Written(None) => format!("wrote the new pin {}", self.shown()),
            Outcome::Written(Some(diff)) => format!(
                "re-pinned {} ({} difference(s): {})",
                self.shown(),
                diff.len(),
                diff.iter()
                    .take(SHOWN_DIFFERENCES)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    }
}

/// The JSON body of a pin: what follows the header between the first two `---` lines.
pub fn body(text: &str) -> anyhow::Result<Value> {
    let json = text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map(|(_, json)| json)
        .ok_or_else(|| anyhow::anyhow!("no header between --- lines"))?;
    Ok(serde_json::from_str(json)?)
}

/// A pin file as insta writes one with the expression omitted.
pub fn render(source: &str, value: &Value) -> String {
    let json = serde_json::to_string_pretty(value).unwrap_or_default();
    format!("---\nsource: {source}\n---\n{json}\n")
}

/// Where `observed` differs from `pinned`, one line each, with the JSON path.
pub fn differences(pinned: &Value, observed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("$", pinned, observed, &mut out);
    out
}

fn diff_at(path: &str, pinned: &Value, observed: &Value, out: &mut Vec<String>) {
    match (pinned, observed) {
        (Value::Object(p), Value::Object(o)) => {
            for (k, pv) in p {
                match o.get(k) {
                    Some(ov) => diff_at(&format!("{path}.{k}"), pv, ov, out),
                    None => out.push(format!("{path}.{k}: pinned {}, not observed", short(pv))),
                }
            }
            for (k, ov) in o.iter().filter(|(k, _)| !p.contains_key(*k)) {
                out.push(format!("{path}.{k}: observed {}, not pinned", short(ov)));
            }
        }
        (Value::Array(p), Value::Array(o)) => match (named(p), named(o)) {
            (Some(pn), Some(on)) => {
                for (name, pv) in &pn {
                    match on.iter().find(|(n, _)| n == name) {
                        Some((_, ov)) => diff_at(&format!("{path}[{name}]"), pv, ov, out),
                        None => out.push(format!("{path}[{name}]: pinned, not observed")),
                    }
                }
                for (name, _) in on.iter().filter(|(n, _)| !pn.iter().any(|(m, _)| m == n)) {
                    out.push(format!("{path}[{name}]: observed, not pinned"));
                }
            }
            _ if p != o => {
                let only = |a: &[Value], b: &[Value]| -> Vec<String> {
                    a.iter().filter(|v| !b.contains(v)).map(short).collect()
                };
                let (gone, new) = (only(p, o), only(o, p));
                if gone.is_empty() && new.is_empty() {
                    out.push(format!(
                        "{path}: same elements in another order: pinned {}, observed {}",
                        short(pinned),
                        short(observed)
                    ));
                } else {
                    out.push(format!(
                        "{path}: pinned only [{}], observed only [{}]",
                        gone.join(", "),
                        new.join(", ")
                    ));
                }
            }
            _ => {}
        },
        (p, o) if p != o => out.push(format!(
            "{path}: pinned {}, observed {}",
            short(p),
            short(o)
        )),
        _ => {}
    }
}

/// A list of objects that each have a distinct string `name` (tables, columns), by name.
fn named(list: &[Value]) -> Option<Vec<(String, &Value)>> {
    let names: Vec<(String, &Value)> = list
        .iter()
        .map(|v| Some((v.get("name")?.as_str()?.to_owned(), v)))
        .collect::<Option<_>>()?;
    let mut distinct: Vec<&String> = names.iter().map(|(n, _)| n).collect();
    distinct.sort();
    distinct.dedup();
    (!list.is_empty() && distinct.len() == names.len()).then_some(names)
}

fn short(v: &Value) -> String {
    crate::http::truncate(&v.to_string(), 160)
}

/// The first differences, one per line, and how many more there are.
fn listed(diff: &[String]) -> String {
    let mut lines: Vec<String> = diff
        .iter()
        .take(SHOWN_DIFFERENCES)
        .map(|d| format!("  {d}"))
        .collect();
    if diff.len() > SHOWN_DIFFERENCES {
        lines.push(format!("  ... and {} more", diff.len() - SHOWN_DIFFERENCES));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests;
