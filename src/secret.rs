//! Secrets as redacting newtypes, and the one redactor every artefact passes through.
//!
//! A [`Secret`] prints as `[REDACTED <kind> #<fingerprint>]` and registers its value with the
//! process-wide [`Redactor`], so any text that later contains the value in clear (an HTTP
//! body, a component log, a panic message) can be scrubbed by value, not by guessing.
//! The fingerprint is a truncated SHA-256 of the value: it lets evidence show that two
//! exchanges used the same token without showing the token.

use std::fmt;
use std::sync::{LazyLock, RwLock};

use sha2::{Digest, Sha256};

/// What kind of secret a value is; shown in its redacted form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretKind {
    AccessToken,
    RefreshToken,
    IdToken,
    ClientSecret,
    RegistrationToken,
    Password,
    AppPassword,
    FernetKey,
    AuthorizationCode,
    CodeVerifier,
    /// An MCP session ID (`Mcp-Session-Id`): whoever holds it can address the session.
    SessionId,
    Token,
}

impl SecretKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
            Self::IdToken => "id_token",
            Self::ClientSecret => "client_secret",
            Self::RegistrationToken => "registration_access_token",
            Self::Password => "password",
            Self::AppPassword => "app_password",
            Self::FernetKey => "fernet_key",
            Self::AuthorizationCode => "code",
            Self::CodeVerifier => "code_verifier",
            Self::SessionId => "mcp_session_id",
            Self::Token => "token",
        }
    }
}

/// A secret value. `Debug` and `Display` never show it; [`Secret::expose`] does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret {
    kind: SecretKind,
    value: String,
}

impl Secret {
    /// Wraps `value` and registers it for redaction everywhere.
    pub fn new(kind: SecretKind, value: impl Into<String>) -> Self {
        let value = value.into();
        Redactor::global().register(kind, &value);
        Self { kind, value }
    }

    /// A random url-safe secret of `bytes` random bytes.
    pub fn generate(kind: SecretKind, bytes: usize) -> Self {
        use base64::Engine;
        let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
        Self::new(
            kind,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        )
    }

    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[REDACTED {} #{}]",
            self.kind.label(),
            self.fingerprint()
        )
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{self}"))
    }
}

/// First 8 hex digits of the SHA-256 of `value`.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Values shorter than this are not scrubbed by value: a 3-character "secret" would
/// shred unrelated text. Every secret the harness makes is far longer.
const MIN_REDACTABLE_LEN: usize = 8;

/// The registry of every secret value this process has handled.
#[derive(Default)]
pub struct Redactor {
    known: RwLock<Vec<(String, SecretKind)>>,
}

static GLOBAL: LazyLock<Redactor> = LazyLock::new(Redactor::default);

impl Redactor {
    pub fn global() -> &'static Redactor {
        &GLOBAL
    }

    pub fn register(&self, kind: SecretKind, value: &str) {
        if value.len() < MIN_REDACTABLE_LEN {
            return;
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if !known.iter().any(|(v, _)| v == value) {
            known.push((value.to_owned(), kind));
            // Longest first, so a token that contains another secret is replaced whole.
            known.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        }
    }

    /// Every registered value, for the artefact scan.
    pub fn known_values(&self) -> Vec<(String, SecretKind)> {
        self.known.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces every registered value in `text`, then anything shaped like a JWT.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (value, kind) in self.known.read().unwrap_or_else(|e| e.into_inner()).iter() {
            if out.contains(value.as_str()) {
                let shown = format!("[REDACTED {} #{}]", kind.label(), fingerprint(value));
                out = out.replace(value.as_str(), &shown);
            }
        }
        redact_url_parameters(&redact_jwt_shapes(&out))
    }
}

/// A JWT the harness never saw as a [`Secret`] (say, inside a component log) is still a
/// token: anything with the `eyJ…​.eyJ…​.…` shape is replaced.
fn redact_jwt_shapes(text: &str) -> String {
    static JWT: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
            .expect("static regex")
    });
    JWT.replace_all(text, |caps: &regex::Captures<'_>| {
        format!("[REDACTED jwt #{}]", fingerprint(&caps[0]))
    })
    .into_owned()
}

/// Form fields, URL parameters and JSON keys whose values are secrets whatever their
/// content (matched without regard to case): the one list the HTTP recorder and the
/// redaction of text use.
pub const SECRET_PARAMETERS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "registration_access_token",
    "password",
    "appPassword",
    "app_password",
    "subject_token",
    "actor_token",
    "code",
    "code_verifier",
    "token",
    "secret",
    "device_code",
];

/// A secret the harness never held (say, a code Keycloak sent to another party's
/// redirect URI and the browser showed) is still one when it travels as a URL parameter.
fn redact_url_parameters(text: &str) -> String {
    static PARAM: LazyLock<regex::Regex> = LazyLock::new(|| {
        let names: Vec<String> = SECRET_PARAMETERS.iter().map(|n| regex::escape(n)).collect();
        regex::Regex::new(&format!(
            r"([?&#](?i:{})=)([^&\s\x22'<>]+)",
            names.join("|")
        ))
        .expect("static regex")
    });
    PARAM
        .replace_all(text, |caps: &regex::Captures<'_>| {
            if caps[2].starts_with("[REDACTED") {
                return caps[0].to_owned();
            }
            format!("{}[REDACTED #{}]", &caps[1], fingerprint(&caps[2]))
        })
        .into_owned()
}

/// Shorthand for `Redactor::global().redact(text)`.
pub fn redact(text: &str) -> String {
    Redactor::global().redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new(SecretKind::ClientSecret, "s3cr3t-value-123");
        assert!(!format!("{s}").contains("s3cr3t"));
        assert!(!format!("{s:?}").contains("s3cr3t"));
        assert!(
            serde_json::to_string(&s)
                .unwrap()
                .contains("REDACTED client_secret")
        );
        assert_eq!(s.expose(), "s3cr3t-value-123");
    }

    #[test]
    fn registered_values_are_scrubbed_from_any_text() {
        let s = Secret::new(SecretKind::Password, "hunter2-but-longer");
        let text = format!("login with password={} failed", s.expose());
        let red = redact(&text);
        assert!(!red.contains("hunter2-but-longer"), "{red}");
        assert!(red.contains(&format!("[REDACTED password #{}]", s.fingerprint())));
    }

    #[test]
    fn unregistered_jwts_are_scrubbed_by_shape() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eXoifQ.c2lnbmF0dXJl";
        let red = redact(&format!("Authorization: Bearer {jwt}"));
        assert!(!red.contains(jwt));
        assert!(red.starts_with("Authorization: Bearer [REDACTED jwt #"));
    }

    #[test]
    fn secret_url_parameters_are_scrubbed_even_unregistered() {
        let red = redact("at http://h/cb?state=s1&code=abc-123.def&iss=x and #access_token=tok");
        assert!(
            !red.contains("abc-123.def") && !red.contains("=tok"),
            "{red}"
        );
        assert!(red.contains("state=s1") && red.contains("&iss=x"), "{red}");
    }

    #[test]
    fn short_values_are_not_registered() {
        Secret::new(SecretKind::Password, "abc");
        assert_eq!(redact("abc def"), "abc def");
    }
}
