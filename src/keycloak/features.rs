//! Which Keycloak releases have which optional features, read from their versions.

/// The first Keycloak release with Client ID Metadata Documents (the `cimd` feature).
pub const CIMD_SINCE: (u32, u32) = (26, 6);

/// The first Keycloak release with RFC 8707 resource indicators (the experimental
/// `resource-indicators` feature): read from the `Profile$Feature` class of the
/// `keycloak-common` jars, absent in 26.4.7, 26.5.0 and 26.5.7, present in 26.6.0, 26.6.4,
/// 26.7.0 and 26.7.3.
pub const RESOURCE_INDICATORS_SINCE: (u32, u32) = (26, 6);

/// Whether Keycloak `version` has the `cimd` feature (26.6.0 and later); `false` for a
/// version that does not read as `major.minor[...]`, which then boots without it.
pub fn has_cimd(version: &str) -> bool {
    at_least(version, CIMD_SINCE)
}

/// Whether Keycloak `version` has the `resource-indicators` feature (26.6.0 and later);
/// `false` for a version that does not read as `major.minor[...]`.
pub fn has_resource_indicators(version: &str) -> bool {
    at_least(version, RESOURCE_INDICATORS_SINCE)
}

fn at_least(version: &str, since: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= since,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cimd_from_26_6_on() {
        for v in ["26.6.0", "26.7.3", "27.0.1", "26.10.0"] {
            assert!(has_cimd(v), "{v}");
        }
        for v in ["26.4.7", "26.5.9", "25.0.6", "nightly", "26"] {
            assert!(!has_cimd(v), "{v}");
        }
    }

    #[test]
    fn resource_indicators_from_26_6_on() {
        for v in ["26.6.0", "26.6.4", "26.7.3", "27.0.1"] {
            assert!(has_resource_indicators(v), "{v}");
        }
        for v in ["26.4.7", "26.5.0", "26.5.7", "nightly", "26"] {
            assert!(!has_resource_indicators(v), "{v}");
        }
    }
}
