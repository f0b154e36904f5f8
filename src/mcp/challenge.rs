//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1), as RFC 6750 §3 and RFC 9728 §5.1
//! use them: `Bearer error="invalid_token", resource_metadata="https://…"`.

/// One challenge: its scheme and its parameters in order (names lower-cased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every challenge in a header value. Parameters are `name=token` or `name="quoted"`;
/// a bare token after a comma starts a new challenge. (token68 credentials, unused by
/// Bearer, are not supported.)
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return out;
        }
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        rest = rest[end..].trim_start();
        if let Some(after_eq) = rest.strip_prefix('=') {
            let (value, tail) = value(after_eq.trim_start());
            rest = tail;
            if let Some(current) = out.last_mut() {
                current.params.push((token.to_ascii_lowercase(), value));
            }
        } else {
            out.push(Challenge {
                scheme: token.to_owned(),
                params: Vec::new(),
            });
        }
    }
}

/// A parameter value at the start of `s`, and what follows it.
fn value(s: &str) -> (String, &str) {
    let Some(quoted) = s.strip_prefix('"') else {
        let end = s.find(',').unwrap_or(s.len());
        return (s[..end].trim().to_owned(), &s[end..]);
    };
    let mut out = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    out.push(escaped);
                }
            }
            '"' => return (out, &quoted[i + 1..]),
            _ => out.push(c),
        }
    }
    (out, "")
}

/// The first challenge of `scheme` (case-insensitive) in `header`.
pub fn find(header: &str, scheme: &str) -> Option<Challenge> {
    parse(header)
        .into_iter()
        .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_servers_challenge() {
        let h = r#"Bearer error="invalid_token", error_description="Authentication required", resource_metadata="http://127.0.0.1:8000/.well-known/oauth-protected-resource""#;
        let c = find(h, "bearer").unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("error"), Some("invalid_token"));
        assert_eq!(
            c.param("ERROR_DESCRIPTION"),
            Some("Authentication required")
        );
        assert_eq!(
            c.param("resource_metadata"),
            Some("http://127.0.0.1:8000/.well-known/oauth-protected-resource")
        );
    }

    #[test]
    fn separates_several_challenges_and_unquotes() {
        let h = r#"Basic realm="a, b", Bearer scope=notes.read, error="x\"y""#;
        let all = parse(h);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].param("realm"), Some("a, b"));
        assert_eq!(all[1].param("scope"), Some("notes.read"));
        assert_eq!(all[1].param("error"), Some("x\"y"));
    }

    #[test]
    fn a_bare_scheme_has_no_params() {
        assert_eq!(
            parse("Bearer"),
            [Challenge {
                scheme: "Bearer".into(),
                params: vec![]
            }]
        );
        assert!(find("Basic realm=x", "Bearer").is_none());
    }
}
