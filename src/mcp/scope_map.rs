//! Which scopes each tool needs, derived from `tools/list` alone (the server filters the
//! list by the token's scopes): list under all scopes, then under all scopes minus one,
//! for each scope. A tool missing from "all minus s" needs `s`. Tools that need several
//! scopes are found too, which single-scope tokens would miss.

use std::collections::{BTreeMap, BTreeSet};

/// Tool name to the scopes it needs (sorted). A tool with no entry needs none.
pub type ScopeMap = BTreeMap<String, BTreeSet<String>>;

/// A map derived from a live server, with the listings it came from.
#[derive(Clone, Debug)]
pub struct Derived {
    pub map: ScopeMap,
    /// The scopes the server's metadata lists (`scopes_supported`).
    pub listed: Vec<String>,
    /// Tools listed under every listed scope.
    pub full: Vec<String>,
    /// Tools listed under `openid` alone.
    pub openid_only: Vec<String>,
}

/// Derives the map from the full listing and one listing per left-out scope.
pub fn derive(full: &[String], without: &BTreeMap<String, Vec<String>>) -> ScopeMap {
    full.iter()
        .map(|tool| {
            let needs: BTreeSet<String> = without
                .iter()
                .filter(|(_, listed)| !listed.contains(tool))
                .map(|(scope, _)| scope.clone())
                .collect();
            (tool.clone(), needs)
        })
        .collect()
}

/// The tools a token with `granted` scopes should see, by the map.
pub fn predict(map: &ScopeMap, granted: &BTreeSet<String>) -> BTreeSet<String> {
    map.iter()
        .filter(|(_, needs)| needs.is_subset(granted))
        .map(|(tool, _)| tool.clone())
        .collect()
}

/// Scopes that some tool needs.
pub fn required_scopes(map: &ScopeMap) -> BTreeSet<String> {
    map.values().flatten().cloned().collect()
}

/// Listed scopes no tool needs (reported, not a failure: `offline_access`, say).
pub fn unused(map: &ScopeMap, listed: &[String]) -> Vec<String> {
    let required = required_scopes(map);
    listed
        .iter()
        .filter(|s| !required.contains(*s))
        .cloned()
        .collect()
}

/// Differences between two tool sets, for failure messages.
pub fn difference(expected: &BTreeSet<String>, actual: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = expected.difference(actual).collect();
    let extra: Vec<&String> = actual.difference(expected).collect();
    format!("missing {missing:?}, unexpected {extra:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn leave_one_out_finds_single_and_multi_scope_requirements() {
        let full = s(&["auth", "notes_list", "deck_attach_note"]);
        let without = BTreeMap::from([
            ("openid".to_string(), s(&[])),
            ("notes.read".to_string(), s(&["auth"])),
            ("deck.write".to_string(), s(&["auth", "notes_list"])),
        ]);
        let map = derive(&full, &without);
        assert_eq!(map["auth"], BTreeSet::from(["openid".to_string()]));
        assert_eq!(
            map["notes_list"],
            BTreeSet::from(["openid".to_string(), "notes.read".to_string()])
        );
        assert_eq!(map["deck_attach_note"].len(), 3);
        let granted = BTreeSet::from(["openid".to_string(), "notes.read".to_string()]);
        assert_eq!(
            predict(&map, &granted),
            BTreeSet::from(["auth".to_string(), "notes_list".to_string()])
        );
        assert_eq!(
            unused(&map, &s(&["openid", "offline_access"])),
            s(&["offline_access"])
        );
    }
}
