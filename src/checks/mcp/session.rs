//! The Streamable HTTP transport's sessions (2025-06-18 and 2025-11-25; 2026-07-28 removed
//! them): a session ID is no credential, so a request on a session without the token gets
//! 401 like any other (MCP-28); and session IDs are visible ASCII, distinct, and too
//! random to guess (MCP-29).
//!
//! Session IDs are bearer-like: whoever holds one addresses the session. The `initialize`
//! answers that carry them are sent unrecorded; each ID is registered as a secret before
//! any recorded request carries it, and evidence shows it only by fingerprint, length and
//! character class.

use anyhow::{Context, bail, ensure};

use super::super::{CheckCtx, CheckResult, pass, skip};
use super::bearer::{accepted, delete_session, initialize, on_session};
use super::bearer_challenge;
use super::transport::valid_token;
use crate::http::{Http, Response};
use crate::secret::{Secret, SecretKind};

/// How many sessions MCP-29 opens to compare their IDs.
const SESSIONS: usize = 8;

/// The apparent entropy a session ID must carry: a UUIDv4's random bits.
const MIN_BITS: f64 = 122.0;

/// The session `resp` (an accepted `initialize`) opened, registered as a secret, or
/// `None` when the answer carries no `Mcp-Session-Id` (a stateless server).
fn opened_session(resp: &Response, what: &str) -> anyhow::Result<Option<Secret>> {
    accepted(resp, what)?;
    Ok(resp
        .header("mcp-session-id")
        .map(|id| Secret::new(SecretKind::SessionId, id)))
}

/// What a session ID looks like in evidence: fingerprint, length and character class.
fn shown(id: &str) -> String {
    let class = class_of(id.chars()).map_or("characters outside visible ASCII", |c| c.name);
    format!(
        "#{} ({} chars, {class})",
        crate::secret::fingerprint(id),
        id.chars().count()
    )
}

/// The answers to `tools/list` on a session without and with the token.
pub(super) struct OnSession {
    pub without: Response,
    pub with: Response,
}

/// On an open session: `notifications/initialized` with the token (it must be accepted),
/// then `tools/list` without the Authorization header, then the same with it.
pub(super) async fn probe_session(
    http: &Http,
    url: &str,
    session: &Secret,
    token: &Secret,
) -> anyhow::Result<OnSession> {
    let version = crate::mcp::client::PROTOCOL_VERSION.as_str();
    let post = |token| on_session(http, url, Some(session.expose()), version, token);
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let resp = post(Some(token)).json(&initialized).send().await?;
    ensure!(
        resp.is_success(),
        "notifications/initialized on the session with the token (the control) is not \
         accepted: {}",
        resp.summary()
    );
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let without = post(None).json(&list).send().await?;
    let with = post(Some(token)).json(&list).send().await?;
    Ok(OnSession { without, with })
}

/// MCP authorization (authorization MUST be in every HTTP request, even in the same
/// logical session) and security best practices, Session Hijacking (MCP servers MUST NOT
/// use sessions for authentication).
pub(super) async fn no_token_on_session(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let url = mcp.mcp_url();
    let (token, _) = valid_token(ctx).await?;
    ctx.step(
        "control: initialize with a valid token (sent unrecorded: its answer carries the \
         session ID)",
    );
    let init = initialize(&ctx.session.http, &url, Some(&token)).await?;
    let Some(session) = opened_session(&init, "initialize with a valid token")? else {
        return skip(format!(
            "initialize with a valid token answered {} without an Mcp-Session-Id: the server \
             is stateless (as 2026-07-28 is), so there is no session whose ID could stand in \
             for the token",
            init.summary()
        ));
    };
    ctx.note(format!(
        "initialize: HTTP {}; Mcp-Session-Id {}",
        init.status,
        shown(session.expose())
    ));
    ctx.step(
        "on the session: notifications/initialized with the token, then tools/list without \
         the Authorization header, then tools/list with it",
    );
    let probe = probe_session(ctx.http(), &url, &session, &token).await;
    delete_session(ctx.http(), &url, session.expose(), &token).await;
    let probe = probe?;
    let seen = judge_no_token_on_session(&probe)?;
    pass(format!(
        "tools/list with the session's Mcp-Session-Id and MCP-Protocol-Version but no \
         Authorization header: {seen}; the same request with the token is accepted \
         (HTTP {}). (Not tried: the session ID with another user's or client's token.)",
        probe.with.status
    ))
}

/// The request without the token must get 401 with a Bearer challenge, and the same
/// request with it must be accepted: the session ID alone authenticates nobody.
pub(super) fn judge_no_token_on_session(probe: &OnSession) -> anyhow::Result<String> {
    let without = &probe.without;
    if without.is_success() {
        bail!(
            "the session ID alone authenticated: tools/list on the session without an \
             Authorization header answered {}; authorization MUST be included in every HTTP \
             request, even in the same logical session, and MCP servers MUST NOT use sessions \
             for authentication",
            without.summary()
        );
    }
    ensure!(
        probe.with.status == 200,
        "tools/list on the session with the token (the control) is not accepted: {}; the \
         refusal without the token proves nothing",
        probe.with.summary()
    );
    ensure!(
        without.status == 401,
        "tools/list on the session without an Authorization header answered {}, not 401 (a \
         request without a token MUST get 401, session or not)",
        without.summary()
    );
    let (_, meta, _) = bearer_challenge(without)
        .context("the 401 to tools/list on the session without a token")?;
    Ok(format!(
        "HTTP 401 with a Bearer challenge naming resource_metadata {meta}"
    ))
}

/// Streamable HTTP transport (2025-06-18, 2025-11-25): a session ID MUST be visible
/// ASCII and SHOULD be globally unique and cryptographically secure; security best
/// practices, Session Hijacking: MCP servers MUST use secure, non-deterministic session
/// IDs. Opens [`SESSIONS`] sessions and compares their IDs.
pub(super) async fn session_ids(ctx: &CheckCtx) -> CheckResult {
    let mcp = ctx.mcp_server()?;
    let url = mcp.mcp_url();
    let (token, _) = valid_token(ctx).await?;
    ctx.step(format!(
        "open {SESSIONS} sessions with a valid token (initialize sent unrecorded: its answer \
         carries the session ID), ending each"
    ));
    let mut ids = Vec::new();
    let mut stateless = Vec::new();
    for i in 1..=SESSIONS {
        let init = initialize(&ctx.session.http, &url, Some(&token)).await?;
        match opened_session(&init, &format!("initialize {i} with a valid token"))? {
            Some(session) => {
                ctx.note(format!("session {i}: {}", shown(session.expose())));
                delete_session(ctx.http(), &url, session.expose(), &token).await;
                ids.push(session);
            }
            None => stateless.push(format!("initialize {i}: {}", init.summary())),
        }
    }
    if ids.is_empty() {
        return skip(format!(
            "none of {SESSIONS} accepted initialize answers carries an Mcp-Session-Id: the \
             server is stateless (as 2026-07-28 is), so it has no session IDs to judge"
        ));
    }
    ensure!(
        stateless.is_empty(),
        "{} of {SESSIONS} accepted initialize answers carry no Mcp-Session-Id ({}) while the \
         others do",
        stateless.len(),
        stateless.join("; ")
    );
    let ids: Vec<String> = ids.iter().map(|s| s.expose().to_owned()).collect();
    pass(judge_session_ids(&ids)?)
}

/// A set of characters a session ID can be drawn from.
#[derive(Clone, Copy, Debug)]
pub(super) struct Class {
    pub name: &'static str,
    pub size: u32,
    holds: fn(char) -> bool,
}

/// The character classes, smallest first: an ID's apparent entropy per character is the
/// log2 of the size of the smallest class that covers it.
const CLASSES: &[Class] = &[
    Class {
        name: "decimal digits",
        size: 10,
        holds: |c| c.is_ascii_digit(),
    },
    Class {
        name: "lower-case hex",
        size: 16,
        holds: |c| c.is_ascii_digit() || ('a'..='f').contains(&c),
    },
    Class {
        name: "upper-case hex",
        size: 16,
        holds: |c| c.is_ascii_digit() || ('A'..='F').contains(&c),
    },
    Class {
        name: "lower-case alphanumeric",
        size: 36,
        holds: |c| c.is_ascii_digit() || c.is_ascii_lowercase(),
    },
    Class {
        name: "upper-case alphanumeric",
        size: 36,
        holds: |c| c.is_ascii_digit() || c.is_ascii_uppercase(),
    },
    Class {
        name: "alphanumeric",
        size: 62,
        holds: |c| c.is_ascii_alphanumeric(),
    },
    Class {
        name: "base64url",
        size: 64,
        holds: |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
    },
    Class {
        name: "base64",
        size: 64,
        holds: |c| c.is_ascii_alphanumeric() || c == '+' || c == '/',
    },
    Class {
        name: "visible ASCII",
        size: 94,
        holds: is_visible_ascii,
    },
];

/// The Streamable HTTP transport's alphabet for session IDs: 0x21 to 0x7E.
fn is_visible_ascii(c: char) -> bool {
    ('\x21'..='\x7e').contains(&c)
}

/// The smallest class holding every character, if any does (none: not visible ASCII).
pub(super) fn class_of(chars: impl Iterator<Item = char> + Clone) -> Option<Class> {
    CLASSES
        .iter()
        .find(|class| chars.clone().all(class.holds))
        .copied()
}

/// The length of the prefix (`from_end`: suffix) every ID shares, in characters.
fn shared(ids: &[Vec<char>], from_end: bool) -> usize {
    let min = ids.iter().map(Vec::len).min().unwrap_or(0);
    (0..min)
        .take_while(|&k| {
            let at = |id: &Vec<char>| {
                if from_end {
                    id[id.len() - 1 - k]
                } else {
                    id[k]
                }
            };
            ids.iter().all(|id| at(id) == at(&ids[0]))
        })
        .count()
}

/// Whether `ids`, once their shared prefix and suffix are cut, are numbers (decimal or
/// hex) that rise or fall with every session within a span a counter or a clock covers.
fn numbered(ids: &[Vec<char>], prefix: usize, suffix: usize) -> bool {
    let cores: Vec<String> = ids
        .iter()
        .map(|id| {
            let end = id.len().saturating_sub(suffix).max(prefix);
            id[prefix..end].iter().collect()
        })
        .collect();
    let parse = |radix: u32, max_len: usize| -> Option<Vec<u128>> {
        cores
            .iter()
            .map(|c| {
                (!c.is_empty() && c.len() <= max_len)
                    .then(|| u128::from_str_radix(c, radix).ok())
                    .flatten()
            })
            .collect()
    };
    let Some(values) = parse(10, 38).or_else(|| parse(16, 32)) else {
        return false;
    };
    let rising = values.windows(2).all(|w| w[0] < w[1]);
    let falling = values.windows(2).all(|w| w[0] > w[1]);
    let (lo, hi) = (values.iter().min(), values.iter().max());
    let span = match (lo, hi) {
        (Some(lo), Some(hi)) => hi - lo,
        _ => return false,
    };
    (rising || falling) && span < 1u128 << 64
}

/// Judges session IDs issued one after another, in that order. Counts apparent entropy
/// as: the characters of an ID at the positions where not all IDs agree (positions every
/// ID shares, such as a UUID's dashes and version digit or a shared prefix, carry none),
/// times log2 of the size of the smallest class covering those characters in all IDs
/// (hex 4 bits, base64url 6, visible ASCII log2 94). A UUIDv4 in hex scores 31 × 4 = 124.
pub(super) fn judge_session_ids(ids: &[String]) -> anyhow::Result<String> {
    ensure!(
        ids.len() >= 2,
        "{} session ID(s): comparing needs at least two",
        ids.len()
    );
    let mut problems = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some((k, c)) = id.chars().enumerate().find(|(_, c)| !is_visible_ascii(*c)) {
            problems.push(format!(
                "session {} ID {} has U+{:04X} at character {k}: a session ID MUST only \
                 contain visible ASCII (0x21 to 0x7E)",
                i + 1,
                shown(id),
                c as u32
            ));
        }
        if id.is_empty() {
            problems.push(format!("session {} ID is empty", i + 1));
        }
    }
    let mut repeated = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(j) = ids[..i].iter().position(|other| other == id) {
            repeated.push(format!("session {} repeats session {}'s ID", i + 1, j + 1));
        }
    }
    if !repeated.is_empty() {
        problems.push(format!(
            "{}: session IDs are not distinct per session",
            repeated.join(", ")
        ));
    }
    let chars: Vec<Vec<char>> = ids.iter().map(|id| id.chars().collect()).collect();
    let min = chars.iter().map(Vec::len).min().unwrap_or(0);
    let same_at = |k: usize| chars.iter().all(|id| id[k] == chars[0][k]);
    let prefix = shared(&chars, false);
    let suffix = shared(&chars, true);
    // Per ID: which of its characters vary across the IDs.
    let varying: Vec<Vec<char>> = chars
        .iter()
        .map(|id| {
            id.iter()
                .enumerate()
                .filter(|&(k, _)| !(k < min && same_at(k)) && k + suffix < id.len())
                .map(|(_, c)| *c)
                .collect()
        })
        .collect();
    let all_varying = varying.iter().flatten().copied();
    let class = class_of(all_varying.clone());
    let numbering = numbered(&chars, prefix, suffix);
    if numbering {
        problems.push(format!(
            "the IDs, past their shared prefix ({prefix} chars) and suffix ({suffix} chars), \
             are numbers that move in step with each session: sequential numbering, which \
             an attacker guesses (MCP servers MUST use secure, non-deterministic session IDs)"
        ));
    }
    let bits_per_char = class.map_or(0.0, |c| f64::from(c.size).log2());
    let bits: Vec<f64> = varying
        .iter()
        .map(|v| v.len() as f64 * bits_per_char)
        .collect();
    let least = bits.iter().copied().fold(f64::INFINITY, f64::min);
    let class_name = class.map_or("no class (not visible ASCII)", |c| c.name);
    let count = format!(
        "{} of the shortest ID's {min} characters vary across the {} IDs, drawn from {class_name} \
         ({bits_per_char:.2} bits each)",
        varying.iter().map(Vec::len).min().unwrap_or(0),
        ids.len()
    );
    // Characters outside visible ASCII are judged above; no class counts their entropy.
    if class.is_some() && least < MIN_BITS {
        problems.push(format!(
            "the least random ID carries {least:.0} bits of apparent entropy, under the \
             {MIN_BITS} of a UUIDv4: {count} (MCP servers MUST use secure, non-deterministic \
             session IDs; SHOULD be cryptographically secure)"
        ));
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    let mut lengths: Vec<usize> = chars.iter().map(Vec::len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let lengths: Vec<String> = lengths.iter().map(usize::to_string).collect();
    Ok(format!(
        "{} sessions, {} distinct IDs, each visible ASCII of {} chars ({}); {count}, so at \
         least {least:.0} bits of apparent entropy each (>= {MIN_BITS}, a UUIDv4's); shared \
         prefix {prefix} chars, shared suffix {suffix} chars, no sequential numbering",
        ids.len(),
        ids.len(),
        lengths.join("/"),
        class_of(ids.iter().flat_map(|id| id.chars())).map_or("?", |c| c.name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_partial_json, header, header_exists, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const GOOD: &str = "good-token-123456";
    const SESSION: &str = "0123456789abcdef0123456789abcdef";

    fn token() -> Secret {
        Secret::new(SecretKind::AccessToken, GOOD)
    }

    /// A server that opens a session on initialize with the token and answers every
    /// request on the session with the token; `without` answers those without it.
    async fn server(without: ResponseTemplate) -> anyhow::Result<OnSession> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_partial_json(
                serde_json::json!({"method": "initialize"}),
            ))
            .and(header("Authorization", format!("Bearer {GOOD}").as_str()))
            .respond_with(ResponseTemplate::new(200).insert_header("Mcp-Session-Id", SESSION))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(header("Mcp-Session-Id", SESSION))
            .and(header("Authorization", format!("Bearer {GOOD}").as_str()))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(header_exists("Mcp-Session-Id"))
            .and(|r: &wiremock::Request| !r.headers.contains_key("authorization"))
            .respond_with(without)
            .mount(&server)
            .await;
        let http = Http::new(std::time::Duration::from_secs(2));
        let url = format!("{}/mcp", server.uri());
        let init = initialize(&http, &url, Some(&token())).await?;
        let session = opened_session(&init, "initialize")?.context("no session")?;
        assert_eq!(session.expose(), SESSION);
        probe_session(&http, &url, &session, &token()).await
    }

    #[tokio::test]
    async fn a_server_that_authenticates_on_the_session_id_alone_fails() {
        let probe = server(ResponseTemplate::new(200)).await.unwrap();
        let why = judge_no_token_on_session(&probe).unwrap_err();
        assert!(
            format!("{why:#}").contains("the session ID alone authenticated"),
            "{why:#}"
        );
    }

    #[tokio::test]
    async fn a_401_with_a_bearer_challenge_next_to_an_accepted_control_passes() {
        let challenge = ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            r#"Bearer resource_metadata="http://x/.well-known/oauth-protected-resource""#,
        );
        let probe = server(challenge).await.unwrap();
        let seen = judge_no_token_on_session(&probe).unwrap();
        assert!(seen.contains("HTTP 401"), "{seen}");
    }

    #[tokio::test]
    async fn a_refusal_other_than_401_or_without_a_challenge_fails() {
        let why = judge_no_token_on_session(&server(ResponseTemplate::new(404)).await.unwrap())
            .unwrap_err();
        assert!(format!("{why:#}").contains("not 401"), "{why:#}");
        let why = judge_no_token_on_session(&server(ResponseTemplate::new(401)).await.unwrap())
            .unwrap_err();
        assert!(format!("{why:#}").contains("WWW-Authenticate"), "{why:#}");
    }

    fn answer(status: u16) -> Response {
        Response {
            status,
            url: "http://x/mcp".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn a_refused_control_fails() {
        let probe = OnSession {
            without: answer(401),
            with: answer(401),
        };
        let why = judge_no_token_on_session(&probe).unwrap_err();
        assert!(format!("{why:#}").contains("the control"), "{why:#}");
    }

    #[test]
    fn a_stateless_answer_opens_no_session() {
        assert!(
            opened_session(&answer(200), "initialize")
                .unwrap()
                .is_none()
        );
        assert!(opened_session(&answer(401), "initialize").is_err());
    }

    fn uuids(n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let mut b: [u8; 16] = rand::random();
                b[6] = (b[6] & 0x0f) | 0x40;
                b[8] = (b[8] & 0x3f) | 0x80;
                b.iter().map(|x| format!("{x:02x}")).collect()
            })
            .collect()
    }

    #[test]
    fn random_uuids_and_random_base64url_pass() {
        let seen = judge_session_ids(&uuids(8)).unwrap();
        assert!(seen.contains("lower-case hex"), "{seen}");
        assert!(seen.contains("124 bits"), "{seen}");
        let dashed: Vec<String> = uuids(8)
            .iter()
            .map(|u| {
                format!(
                    "{}-{}-{}-{}-{}",
                    &u[..8],
                    &u[8..12],
                    &u[12..16],
                    &u[16..20],
                    &u[20..]
                )
            })
            .collect();
        judge_session_ids(&dashed).unwrap();
        let b64: Vec<String> = (0..8)
            .map(|_| Secret::generate(SecretKind::Token, 24).expose().to_owned())
            .collect();
        let seen = judge_session_ids(&b64).unwrap();
        assert!(
            seen.contains("base64url") || seen.contains("alphanumeric"),
            "{seen}"
        );
        let prefixed: Vec<String> = uuids(8).iter().map(|u| format!("mcp-{u}")).collect();
        judge_session_ids(&prefixed).unwrap();
    }

    #[test]
    fn sequential_ids_fail() {
        let fixed = "7f3a9c2e5b1d4f6a8c0e2b4d6f8a1c3e";
        for ids in [
            (1000..1008)
                .map(|n| format!("{fixed}{n}"))
                .collect::<Vec<_>>(),
            (9..17).map(|n| format!("session-{n}")).collect(),
            (0..8)
                .map(|n| format!("{:032x}", 0xdead_beef_u128 + n))
                .collect(),
        ] {
            let why = judge_session_ids(&ids).unwrap_err();
            assert!(format!("{why:#}").contains("sequential"), "{why:#}");
        }
    }

    #[test]
    fn a_repeated_id_fails() {
        let mut ids = uuids(8);
        ids[5] = ids[2].clone();
        let why = judge_session_ids(&ids).unwrap_err();
        assert!(
            format!("{why:#}").contains("session 6 repeats session 3's ID"),
            "{why:#}"
        );
    }

    #[test]
    fn short_ids_fail() {
        let ids: Vec<String> = uuids(8).iter().map(|u| u[..16].to_owned()).collect();
        let why = judge_session_ids(&ids).unwrap_err();
        assert!(
            format!("{why:#}").contains("60 bits of apparent entropy, under the 122"),
            "{why:#}"
        );
    }

    #[test]
    fn non_ascii_ids_fail_without_showing_them() {
        for bad in [' ', 'é', '\u{7f}', '\t'] {
            let mut ids = uuids(8);
            ids[3] = format!("{}{bad}{}", &ids[3][..10], &ids[3][10..]);
            let why = format!("{:#}", judge_session_ids(&ids).unwrap_err());
            assert!(why.contains("session 4 ID #"), "{why}");
            assert!(why.contains("MUST only contain visible ASCII"), "{why}");
            assert!(!why.contains(&ids[3][..10]), "{why}");
        }
    }

    #[test]
    fn classes_are_the_smallest_that_cover() {
        let name = |s: &str| class_of(s.chars()).map(|c| c.name);
        assert_eq!(name("0123"), Some("decimal digits"));
        assert_eq!(name("00ff"), Some("lower-case hex"));
        assert_eq!(name("a-_Z"), Some("base64url"));
        assert_eq!(name("a+/Z"), Some("base64"));
        assert_eq!(name("a~Z"), Some("visible ASCII"));
        assert_eq!(name("a Z"), None);
    }
}
