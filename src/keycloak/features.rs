//! Which Keycloak releases have which optional features, read from their versions.

/// The first Keycloak release with Client ID Metadata Documents (the `cimd` feature).
pub const CIMD_SINCE: (u32, u32) = (26, 6);

/// Whether Keycloak `version` has the `cimd` feature (26.6.0 and later); `false` for a
/// version that does not read as `major.minor[...]`, which then boots without it.
pub fn has_cimd(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= CIMD_SINCE,
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
}
