//! LINT-09 and LINT-10 (errors): two clients with one `clientId`, two client scopes with
//! one name. Keycloak keeps both unique per realm, so the import of such a file fails
//! (a duplicate error), and anything that looks them up by name would be ambiguous.
//! Each later occurrence is reported, by index (its identity is not unique).

use super::{Ctx, Finding, Severity};

pub(super) fn check_clients(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let ids: Vec<&str> = ctx.realm.clients.iter().map(|c| c.client_id()).collect();
    for (i, first) in later_duplicates(&ids) {
        out.push(Finding::new(
            "LINT-09",
            Severity::Error,
            format!("{}.clientId", ctx.paths.client(i)),
            format!(
                "clientId `{}` is also used by {}: Keycloak refuses the second one, so the import \
                 fails. Rename or remove one of them",
                ids[i],
                ctx.paths.client(first)
            ),
        ));
    }
}

pub(super) fn check_scopes(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let names: Vec<&str> = ctx.realm.client_scopes().iter().map(|s| s.name()).collect();
    for (i, first) in later_duplicates(&names) {
        out.push(Finding::new(
            "LINT-10",
            Severity::Error,
            format!("{}.name", ctx.paths.scope(i)),
            format!(
                "client scope name `{}` is also used by {}: Keycloak refuses the second one, so \
                 the import fails. Merge the two scopes or rename one",
                names[i],
                ctx.paths.scope(first)
            ),
        ));
    }
}

/// `(index, index of the first occurrence)` of every repeated non-empty name.
fn later_duplicates(names: &[&str]) -> Vec<(usize, usize)> {
    names
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.is_empty())
        .filter_map(|(i, n)| {
            let first = names.iter().position(|m| m == n)?;
            (first < i).then_some((i, first))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_client_fixture_yields_an_error_on_the_second_client() {
        let found = findings(&fixture("lint-09-duplicate-client-id.json"));
        assert_finding(&found, "LINT-09", Severity::Error, "clients[1].clientId");
        assert_eq!(of(&found, "LINT-09").len(), 1);
    }

    #[test]
    fn the_scope_fixture_yields_an_error_on_the_second_scope() {
        let found = findings(&fixture("lint-10-duplicate-scope-name.json"));
        assert_finding(&found, "LINT-10", Severity::Error, "clientScopes[1].name");
    }

    #[test]
    fn the_baseline_has_no_duplicates() {
        let found = findings(&baseline());
        assert_eq!(of(&found, "LINT-09"), vec![]);
        assert_eq!(of(&found, "LINT-10"), vec![]);
    }

    #[test]
    fn every_later_occurrence_points_at_the_first() {
        assert_eq!(
            later_duplicates(&["a", "b", "a", "", "", "a"]),
            [(2, 0), (5, 0)]
        );
    }
}
