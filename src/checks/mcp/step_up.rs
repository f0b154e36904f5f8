//! Runtime insufficient-scope errors (MCP authorization 2025-11-25, "Scope Challenge
//! Handling"): a `tools/call` with a token that lacks a scope the tool needs SHOULD get
//! HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…",
//! resource_metadata="…"` (RFC 6750 §3.1), so that a client can step up. 2026-07-28 adds
//! that all scopes the operation needs SHOULD come in a single challenge.
//!
//! The calls are raw HTTP, not the MCP client: the verdict is in the status and the
//! headers. Each refusal is judged next to its control, the same call with every listed
//! scope, which must not be refused for scope.

use std::collections::BTreeSet;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use super::super::{CheckCtx, CheckResult, pass, skip};
use super::bearer::{delete_session, on_session};
use super::enforcement::{all_listed, names_scope, provision_user, provisions};
use super::resolves_to_metadata;
use super::users::{USER, derived, mcp_url, token_for};
use crate::http::{Http, Response};
use crate::mcp::challenge;
use crate::mcp::client::{McpClient, McpClientOptions};
use crate::mcp::scope_map::{Derived, ScopeMap};
use crate::secret::Secret;

/// The revision whose text a challenge is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Revision {
    /// 403, `error="insufficient_scope"`, a `scope` naming the scope needed,
    /// `resource_metadata`.
    V2025_11_25,
    /// The same, and every scope the operation needs in the one challenge.
    V2026_07_28,
}

impl Revision {
    fn clause(self) -> &'static str {
        match self {
            Revision::V2025_11_25 => {
                "MCP authorization 2025-11-25 (runtime insufficient scope errors): servers \
                 SHOULD answer HTTP 403 with WWW-Authenticate: Bearer \
                 error=\"insufficient_scope\", scope=\"<needed>\", resource_metadata=\"<PRM URL>\""
            }
            Revision::V2026_07_28 => {
                "MCP authorization 2026-07-28 (server scope management): servers SHOULD answer \
                 HTTP 403 with a Bearer insufficient_scope challenge and SHOULD include all \
                 scopes required for the operation in a single challenge"
            }
        }
    }
}

/// The application scopes a tool needs (`openid` is every token's).
fn application_scopes(needs: &BTreeSet<String>) -> BTreeSet<String> {
    needs.iter().filter(|s| *s != "openid").cloned().collect()
}

/// One tool that needs exactly one application scope: a read scope, a listing, a Notes
/// tool (the resource server serves Notes) first.
fn single_scope_probe(map: &ScopeMap) -> Option<(String, String)> {
    map.iter()
        .filter_map(|(name, needs)| {
            let app = application_scopes(needs);
            (app.len() == 1).then(|| (name.clone(), app.into_iter().next().unwrap_or_default()))
        })
        .min_by_key(|(name, scope)| {
            (
                !scope.ends_with(".read"),
                !name.contains("list"),
                !scope.starts_with("notes"),
                name.len(),
                name.clone(),
            )
        })
}

/// One tool that needs several application scopes: read scopes only, the fewest, a
/// listing first.
fn multi_scope_probe(map: &ScopeMap) -> Option<(String, BTreeSet<String>)> {
    map.iter()
        .map(|(name, needs)| (name.clone(), application_scopes(needs)))
        .filter(|(_, app)| app.len() > 1)
        .min_by_key(|(name, app)| {
            (
                !app.iter().all(|s| s.ends_with(".read")),
                app.len(),
                !name.contains("list"),
                name.clone(),
            )
        })
}

fn listing(scopes: &BTreeSet<String>) -> String {
    scopes.iter().cloned().collect::<Vec<_>>().join(" ")
}

/// MCP-30 (2025-11-25): a tool whose one scope the token lacks gets the step-up challenge.
pub(super) async fn insufficient_scope(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let d = derived(ctx, &url).await?;
    let Some((tool, scope)) = single_scope_probe(&d.map) else {
        return skip("no tool needs exactly one application scope");
    };
    let lacking: BTreeSet<String> = [scope].into();
    let seen = step_up(ctx, &url, &d, &tool, &lacking, Revision::V2025_11_25).await?;
    pass(seen)
}

/// MCP-31 (2026-07-28): a tool needing several scopes, all lacking, gets one challenge
/// naming them all (not one now and the next on the retry).
pub(super) async fn single_challenge(ctx: &CheckCtx) -> CheckResult {
    let url = mcp_url(ctx)?;
    let d = derived(ctx, &url).await?;
    let Some((tool, lacking)) = multi_scope_probe(&d.map) else {
        return skip(
            "no tool needs several application scopes: a single challenge naming them all \
             cannot be observed",
        );
    };
    let seen = step_up(ctx, &url, &d, &tool, &lacking, Revision::V2026_07_28).await?;
    pass(seen)
}

/// After provisioning: the control (`tool` with every listed scope, not refused for
/// scope), then `tool` with a token lacking `lacking`, judged by `rev`.
async fn step_up(
    ctx: &CheckCtx,
    url: &str,
    d: &Derived,
    tool: &str,
    lacking: &BTreeSet<String>,
    rev: Revision,
) -> anyhow::Result<String> {
    // The reference refuses an unprovisioned user before it looks at scopes.
    if provisions(&d.full) {
        provision_user(ctx, url, &d.listed).await?;
    }
    let all = all_listed(&d.listed);
    let full = token_for(ctx, USER, &all).await?;
    let args = {
        let client = McpClient::connect(McpClientOptions::new(url, full.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let args = client.minimal_arguments(tool).await;
        client.close().await;
        args?
    };
    ctx.step(format!(
        "control: tools/call {tool} as {USER} with every listed scope (raw HTTP)"
    ));
    let resp = raw_tool_call(ctx.http(), url, &full, tool, &args).await?;
    let control = judge_control(&resp, tool, lacking)?;
    ctx.note(format!("control: {control}"));
    let fewer: BTreeSet<String> = all.difference(lacking).cloned().collect();
    ctx.step(format!(
        "tools/call {tool} as {USER} with a token lacking {} (raw HTTP)",
        listing(lacking)
    ));
    let resp = raw_tool_call(
        ctx.http(),
        url,
        &token_for(ctx, USER, &fewer).await?,
        tool,
        &args,
    )
    .await?;
    ctx.note(format!(
        "answer: {}; WWW-Authenticate: {}",
        resp.summary(),
        resp.header("www-authenticate").unwrap_or("(none)")
    ));
    let (scope, metadata) = judge_challenge(&resp, tool, lacking, rev)?;
    resolves_to_metadata(ctx, &metadata, url).await?;
    Ok(format!(
        "{tool} without {}: HTTP 403 with Bearer error=\"insufficient_scope\", \
         scope=\"{scope}\" and resource_metadata {metadata}, which resolves; with every \
         scope the same call is not refused for scope ({control})",
        listing(lacking)
    ))
}

/// The JSON-RPC id of the `tools/call` request.
const CALL_ID: i64 = 2;

/// `tools/call` of `tool` on a session initialized with `token`: the answer as sent
/// (status, headers, body). The session is ended afterwards (best effort).
pub(super) async fn raw_tool_call(
    http: &Http,
    url: &str,
    token: &Secret,
    tool: &str,
    args: &Value,
) -> anyhow::Result<Response> {
    let init = super::bearer::initialize(http, url, Some(token)).await?;
    ensure!(
        init.status == 200,
        "initialize before tools/call {tool} answered {}",
        init.summary()
    );
    let session = init.header("mcp-session-id").map(str::to_owned);
    let version = messages(&init)
        .iter()
        .find_map(|m| m["result"]["protocolVersion"].as_str().map(str::to_owned))
        .unwrap_or_else(|| crate::mcp::client::PROTOCOL_VERSION.as_str().to_owned());
    let notified = on_session(http, url, session.as_deref(), &version, Some(token))
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await?;
    ensure!(
        notified.is_success(),
        "notifications/initialized answered {}",
        notified.summary()
    );
    let call = on_session(http, url, session.as_deref(), &version, Some(token))
        .json(&json!({
            "jsonrpc": "2.0", "id": CALL_ID, "method": "tools/call",
            "params": {"name": tool, "arguments": args}
        }))
        .send()
        .await;
    if let Some(s) = &session {
        delete_session(http, url, s, token).await;
    }
    Ok(call?)
}

/// The JSON-RPC messages of an answer: its JSON body, or else the `data` of each SSE
/// event (whatever the Content-Type says).
fn messages(resp: &Response) -> Vec<Value> {
    let text = resp.text();
    match serde_json::from_str(&text) {
        Ok(Value::Array(all)) => return all,
        Ok(v) => return vec![v],
        Err(_) => {}
    }
    let mut out = Vec::new();
    let mut data = String::new();
    for line in text.lines().chain([""]) {
        if line.is_empty() {
            if let Ok(v) = serde_json::from_str(&data) {
                out.push(v);
            }
            data.clear();
        } else if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    out
}

/// What the body of a 2xx says about the call: a tool result or a JSON-RPC error.
enum Answer {
    Result { is_error: bool, text: String },
    Error { code: i64, message: String },
    None,
}

fn answer(resp: &Response) -> Answer {
    let Some(m) = messages(resp)
        .into_iter()
        .find(|m| m["id"] == json!(CALL_ID))
    else {
        return Answer::None;
    };
    if let Some(e) = m.get("error") {
        return Answer::Error {
            code: e["code"].as_i64().unwrap_or_default(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        };
    }
    let r = &m["result"];
    let text = r["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Answer::Result {
        is_error: r["isError"] == true,
        text,
    }
}

fn first_line(s: &str) -> String {
    crate::http::truncate(
        &crate::secret::redact(s.lines().next().unwrap_or_default()),
        120,
    )
}

/// Which of `scopes` `text` names (as whole words).
fn named_in<'a>(text: &str, scopes: &'a BTreeSet<String>) -> Vec<&'a str> {
    scopes
        .iter()
        .filter(|s| names_scope(text, s))
        .map(String::as_str)
        .collect()
}

/// How a refusal text relates to the scopes lacking: "naming the scope x",
/// "naming x (not y)", "saying insufficient_scope", or `None` for neither.
fn naming(text: &str, lacking: &BTreeSet<String>) -> Option<String> {
    let named = named_in(text, lacking);
    let absent: Vec<&str> = lacking
        .iter()
        .map(String::as_str)
        .filter(|s| !named.contains(s))
        .collect();
    match (named.len(), absent.len()) {
        (0, _) if text.contains("insufficient_scope") => Some("saying insufficient_scope".into()),
        (0, _) => None,
        (1, 0) => Some(format!("naming the scope {}", named[0])),
        (_, 0) => Some(format!("naming the scopes {}", named.join(" "))),
        _ => Some(format!(
            "naming {} (not {})",
            named.join(" "),
            absent.join(" ")
        )),
    }
}

/// The refusal of `tool` without `lacking`, judged by `rev`. Returns the challenge's
/// `scope` and `resource_metadata`.
pub(super) fn judge_challenge(
    resp: &Response,
    tool: &str,
    lacking: &BTreeSet<String>,
    rev: Revision,
) -> anyhow::Result<(String, String)> {
    let without = format!(
        "tools/call of {tool} with a token lacking {}",
        listing(lacking)
    );
    let clause = rev.clause();
    if resp.is_success() {
        let status = resp.status;
        match answer(resp) {
            Answer::Result {
                is_error: true,
                text,
            } => match naming(&text, lacking) {
                Some(how) => bail!(
                    "{without} answered HTTP {status} with a JSON-RPC result isError: true \
                     {how} ({:?}), not HTTP 403 with a Bearer insufficient_scope challenge; \
                     {clause}",
                    first_line(&text)
                ),
                None => bail!(
                    "{without} answered HTTP {status} with a JSON-RPC result isError: true \
                     that does not name the scope ({:?}), not HTTP 403; {clause}",
                    first_line(&text)
                ),
            },
            Answer::Result { text, .. } => bail!(
                "{without} answered HTTP {status} and the tool ran ({:?}): the scope is not \
                 enforced at all; {clause}",
                first_line(&text)
            ),
            Answer::Error { code, message } => bail!(
                "{without} answered HTTP {status} with a JSON-RPC error {code} ({:?}), not \
                 HTTP 403; {clause}",
                first_line(&message)
            ),
            Answer::None => bail!(
                "{without} answered HTTP {status} without a JSON-RPC answer to the call ({}), \
                 not HTTP 403; {clause}",
                resp.summary()
            ),
        }
    }
    ensure!(
        resp.status == 403,
        "{without} answered {}, not 403 Forbidden; {clause}",
        resp.summary()
    );
    let header = resp.header("www-authenticate").with_context(|| {
        format!("{without}: HTTP 403 without a WWW-Authenticate header; {clause}")
    })?;
    let bearer = challenge::find(header, "Bearer").with_context(|| {
        format!(
            "{without}: HTTP 403, WWW-Authenticate {header:?} has no Bearer challenge; {clause}"
        )
    })?;
    let error = bearer.param("error");
    ensure!(
        error == Some("insufficient_scope"),
        "{without}: HTTP 403 whose Bearer challenge has error {error:?}, not \
         \"insufficient_scope\" (RFC 6750 §3.1): {header:?}; {clause}"
    );
    let scope = bearer.param("scope").unwrap_or_default().to_owned();
    let in_challenge: BTreeSet<&str> = scope.split_whitespace().collect();
    ensure!(
        !in_challenge.is_empty(),
        "{without}: HTTP 403 insufficient_scope whose challenge carries no scope: {header:?}; \
         {clause}"
    );
    let absent: Vec<&str> = lacking
        .iter()
        .map(String::as_str)
        .filter(|s| !in_challenge.contains(s))
        .collect();
    if !absent.is_empty() {
        let named: Vec<&str> = lacking
            .iter()
            .map(String::as_str)
            .filter(|s| in_challenge.contains(s))
            .collect();
        if named.is_empty() {
            bail!(
                "{without}: the challenge's scope={scope:?} does not name {}: {header:?}; \
                 {clause}",
                absent.join(" ")
            );
        }
        bail!(
            "{without}: the challenge's scope={scope:?} names {} but not {}: a client \
             stepping up to it is refused again for the rest (an incremental challenge); \
             {clause}",
            named.join(" "),
            absent.join(" ")
        );
    }
    let metadata = bearer
        .param("resource_metadata")
        .with_context(|| {
            format!(
                "{without}: HTTP 403 insufficient_scope whose challenge names no \
                 resource_metadata: {header:?}; {clause}"
            )
        })?
        .to_owned();
    Ok((scope, metadata))
}

/// The control: `tool` with every scope answered 2xx with a tool result or an error that
/// is not about `scopes`. Returns what it was.
pub(super) fn judge_control(
    resp: &Response,
    tool: &str,
    scopes: &BTreeSet<String>,
) -> anyhow::Result<String> {
    let what = format!("tools/call of {tool} with every listed scope (the control)");
    ensure!(
        resp.is_success(),
        "{what} answered {}; a refusal without the scope would prove nothing",
        resp.summary()
    );
    match answer(resp) {
        Answer::Result {
            is_error: false, ..
        } => Ok("the tool ran".into()),
        Answer::Result {
            is_error: true,
            text,
        } => match naming(&text, scopes) {
            Some(how) => bail!(
                "{what} is refused for scope too, {how} ({:?}): a refusal without the scope \
                 would prove nothing",
                first_line(&text)
            ),
            None => Ok(format!(
                "isError for another reason: {:?}",
                first_line(&text)
            )),
        },
        Answer::Error { code, message } => match naming(&message, scopes) {
            Some(how) => bail!(
                "{what} is refused for scope too: JSON-RPC error {code} {how} ({:?})",
                first_line(&message)
            ),
            None => Ok(format!(
                "JSON-RPC error {code} for another reason: {:?}",
                first_line(&message)
            )),
        },
        Answer::None => bail!(
            "{what} answered {} without a JSON-RPC answer to the call",
            resp.summary()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_string_contains, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const META: &str = "http://mcp/.well-known/oauth-protected-resource";

    fn set(scopes: &[&str]) -> BTreeSet<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    fn sse(message: &Value) -> Response {
        Response {
            status: 200,
            url: "http://mcp/mcp".into(),
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: format!("event: message\r\ndata: {message}\r\n\r\n").into_bytes(),
        }
    }

    fn tool_result(is_error: bool, text: &str) -> Response {
        sse(&json!({"jsonrpc": "2.0", "id": CALL_ID, "result": {
            "content": [{"type": "text", "text": text}], "isError": is_error}}))
    }

    fn forbidden(challenge: Option<&str>) -> Response {
        Response {
            status: 403,
            url: "http://mcp/mcp".into(),
            headers: challenge
                .map(|c| vec![("www-authenticate".into(), c.into())])
                .unwrap_or_default(),
            body: Vec::new(),
        }
    }

    fn judged(resp: &Response, lacking: &[&str], rev: Revision) -> anyhow::Result<String> {
        judge_challenge(resp, "t", &set(lacking), rev).map(|(scope, meta)| {
            assert_eq!(meta, META);
            scope
        })
    }

    fn failure(resp: &Response, lacking: &[&str], rev: Revision) -> String {
        format!("{:#}", judged(resp, lacking, rev).unwrap_err())
    }

    /// What 0.202.1 answers.
    const REFERENCE: &str =
        "Missing required scopes: notes.read. Token has scopes: openid notes.write";

    #[test]
    fn a_200_is_error_naming_the_scope_fails_saying_so() {
        let why = failure(
            &tool_result(true, REFERENCE),
            &["notes.read"],
            Revision::V2025_11_25,
        );
        assert!(
            why.contains(
                "answered HTTP 200 with a JSON-RPC result isError: true naming the scope \
                 notes.read (\"Missing required scopes"
            ),
            "{why}"
        );
        assert!(why.contains("2025-11-25"), "{why}");
        let why = failure(
            &tool_result(true, "Missing required scopes: calendar.read"),
            &["calendar.read", "todo.read"],
            Revision::V2026_07_28,
        );
        assert!(
            why.contains("isError: true naming calendar.read (not todo.read)"),
            "{why}"
        );
        assert!(why.contains("2026-07-28"), "{why}");
    }

    #[test]
    fn other_2xx_answers_fail_saying_what_they_were() {
        let one = &["notes.read"];
        let rev = Revision::V2025_11_25;
        assert!(failure(&tool_result(false, "[]"), one, rev).contains("the tool ran"));
        assert!(
            failure(&tool_result(true, "User not provisioned"), one, rev)
                .contains("does not name the scope")
        );
        let error = sse(&json!({"jsonrpc": "2.0", "id": CALL_ID,
            "error": {"code": -32600, "message": "insufficient_scope"}}));
        assert!(failure(&error, one, rev).contains("JSON-RPC error -32600"));
        let unrelated = sse(&json!({"jsonrpc": "2.0", "method": "notifications/message"}));
        assert!(failure(&unrelated, one, rev).contains("without a JSON-RPC answer"));
    }

    #[test]
    fn a_correct_403_passes() {
        let c = format!(
            r#"Bearer error="insufficient_scope", scope="notes.read", resource_metadata="{META}", error_description="x""#
        );
        assert_eq!(
            judged(&forbidden(Some(&c)), &["notes.read"], Revision::V2025_11_25).unwrap(),
            "notes.read"
        );
        let both = format!(
            r#"Bearer error="insufficient_scope", scope="todo.read calendar.read openid", resource_metadata="{META}""#
        );
        assert!(
            judged(
                &forbidden(Some(&both)),
                &["calendar.read", "todo.read"],
                Revision::V2026_07_28
            )
            .is_ok()
        );
    }

    #[test]
    fn a_403_without_scope_with_the_wrong_scope_or_without_resource_metadata_fails() {
        let rev = Revision::V2025_11_25;
        let one = &["notes.read"];
        let cases = [
            (
                format!(r#"Bearer error="insufficient_scope", resource_metadata="{META}""#),
                "carries no scope",
            ),
            (
                format!(
                    r#"Bearer error="insufficient_scope", scope="notes.readwrite", resource_metadata="{META}""#
                ),
                "does not name notes.read",
            ),
            (
                format!(
                    r#"Bearer error="insufficient_scope", scope="notes.write", resource_metadata="{META}""#
                ),
                "does not name notes.read",
            ),
            (
                r#"Bearer error="insufficient_scope", scope="notes.read""#.to_owned(),
                "names no resource_metadata",
            ),
            (
                format!(
                    r#"Bearer error="invalid_token", scope="notes.read", resource_metadata="{META}""#
                ),
                "not \"insufficient_scope\"",
            ),
            (
                format!(r#"Basic realm="x", scope="notes.read", resource_metadata="{META}""#),
                "no Bearer challenge",
            ),
        ];
        for (challenge, says) in cases {
            let why = failure(&forbidden(Some(&challenge)), one, rev);
            assert!(why.contains(says), "{challenge}: {why}");
        }
        assert!(failure(&forbidden(None), one, rev).contains("without a WWW-Authenticate"));
        let mut unauthorized = forbidden(Some("Bearer error=\"insufficient_scope\""));
        unauthorized.status = 401;
        assert!(failure(&unauthorized, one, rev).contains("not 403 Forbidden"));
    }

    #[test]
    fn an_incremental_challenge_fails_the_2026_07_28_judgement() {
        let c = format!(
            r#"Bearer error="insufficient_scope", scope="calendar.read", resource_metadata="{META}""#
        );
        let why = failure(
            &forbidden(Some(&c)),
            &["calendar.read", "todo.read"],
            Revision::V2026_07_28,
        );
        assert!(
            why.contains("names calendar.read but not todo.read")
                && why.contains("all scopes required for the operation in a single challenge"),
            "{why}"
        );
    }

    #[test]
    fn the_control_must_not_be_refused_for_scope() {
        let lacking = set(&["notes.read"]);
        assert!(judge_control(&tool_result(false, "[]"), "t", &lacking).is_ok());
        assert!(judge_control(&tool_result(true, "Nextcloud: 404"), "t", &lacking).is_ok());
        let why = judge_control(&tool_result(true, REFERENCE), "t", &lacking).unwrap_err();
        assert!(
            format!("{why:#}").contains("refused for scope too"),
            "{why:#}"
        );
        let why = judge_control(&forbidden(None), "t", &lacking).unwrap_err();
        assert!(format!("{why:#}").contains("HTTP 403"), "{why:#}");
    }

    #[test]
    fn probes_prefer_a_read_listing_and_several_read_scopes() {
        let map: ScopeMap = [
            ("nc_notes_create_note", vec!["notes.write"]),
            ("nc_notes_list_notes", vec!["notes.read"]),
            ("nc_notes_get_note", vec!["notes.read", "openid"]),
            ("check_logged_in", vec!["openid"]),
            (
                "deck_attach_note",
                vec!["deck.write", "files.read", "notes.read"],
            ),
            ("nc_calendar_list_todos", vec!["calendar.read", "todo.read"]),
            (
                "nc_calendar_create_todo",
                vec!["calendar.read", "todo.write"],
            ),
        ]
        .into_iter()
        .map(|(t, s)| (t.to_owned(), set(&s)))
        .collect();
        assert_eq!(
            single_scope_probe(&map),
            Some(("nc_notes_list_notes".into(), "notes.read".into()))
        );
        assert_eq!(
            multi_scope_probe(&map),
            Some((
                "nc_calendar_list_todos".into(),
                set(&["calendar.read", "todo.read"])
            ))
        );
    }

    /// A server answering like 0.202.1, over raw HTTP: the call reaches it on the
    /// initialized session and the judgement fails naming the 200.
    #[tokio::test]
    async fn a_raw_call_on_a_session_answered_200_is_error_fails() {
        let server = MockServer::start().await;
        let event = |v: Value| {
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .insert_header("mcp-session-id", "s-1")
                .set_body_string(format!("event: message\ndata: {v}\n\n"))
        };
        Mock::given(method("POST"))
            .and(body_string_contains("\"initialize\""))
            .respond_with(event(json!({"jsonrpc": "2.0", "id": 1,
                "result": {"protocolVersion": "2025-06-18", "capabilities": {}}})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("notifications/initialized"))
            .respond_with(ResponseTemplate::new(202))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("tools/call"))
            .and(wiremock::matchers::header("mcp-session-id", "s-1"))
            .respond_with(event(json!({"jsonrpc": "2.0", "id": CALL_ID,
                "result": {"content": [{"type": "text", "text": REFERENCE}], "isError": true}})))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let http = Http::new(std::time::Duration::from_secs(2));
        let token = Secret::new(crate::secret::SecretKind::AccessToken, "t0ken-1234567");
        let url = format!("{}/mcp", server.uri());
        let resp = raw_tool_call(&http, &url, &token, "nc_notes_list_notes", &json!({}))
            .await
            .unwrap();
        let why = judge_challenge(
            &resp,
            "nc_notes_list_notes",
            &set(&["notes.read"]),
            Revision::V2025_11_25,
        )
        .unwrap_err();
        assert!(
            format!("{why:#}").contains(
                "HTTP 200 with a JSON-RPC result isError: true naming the scope notes.read"
            ),
            "{why:#}"
        );
    }
}
