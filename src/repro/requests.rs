//! The requests every column sends, and what one answer becomes in the table.

use serde_json::Value;

use super::model::{Cell, Issued, RequestSpec};
use super::realm::{ALICE, BOB, LOGIN, REALM, REQUESTER, ReproRealm, TARGET};
use crate::http::Http;
use crate::keycloak::admin::AdminClient;
use crate::oauth::token::{self, ACCESS_TOKEN_TYPE, Exchange, REFRESH_TOKEN_TYPE, TokenOutcome};
use crate::secret::Secret;

/// Where a request's `subject_token` comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subject {
    /// No `subject_token` (nor `subject_token_type`).
    None,
    /// alice's access token from `repro-login` (password grant), fresh per column.
    Alice,
    /// The access token request `own-token` issued in the same column (alice, `azp`
    /// the requester); the request is not sent when that one issued nothing.
    OwnTokenResult,
}

/// One request of the table.
#[derive(Clone, Copy, Debug)]
pub struct RequestDef {
    pub id: &'static str,
    pub title: &'static str,
    pub subject: Subject,
    pub audience: Option<&'static str>,
    pub requested_subject: Option<&'static str>,
    pub requested_issuer: Option<&'static str>,
}

/// An identity-provider alias the realm does not have.
pub const UNKNOWN_ISSUER: &str = "repro-idp";

pub const OWN_TOKEN: &str = "own-token";

/// The rows, in order. Every one is sent by the confidential `requester` with its secret.
pub fn requests() -> Vec<RequestDef> {
    let base = RequestDef {
        id: "",
        title: "",
        subject: Subject::Alice,
        audience: None,
        requested_subject: None,
        requested_issuer: None,
    };
    vec![
        RequestDef {
            id: OWN_TOKEN,
            title: "alice's token for the requester's own token (no audience)",
            ..base
        },
        RequestDef {
            id: "audience-target",
            title: "alice's token for audience `target`",
            audience: Some(TARGET),
            ..base
        },
        RequestDef {
            id: "impersonate-with-token",
            title: "impersonation: `requested_subject=bob` with alice's token",
            requested_subject: Some(BOB),
            ..base
        },
        RequestDef {
            id: "impersonate-naked",
            title: "direct naked impersonation: `requested_subject=bob`, no subject_token",
            subject: Subject::None,
            requested_subject: Some(BOB),
            ..base
        },
        RequestDef {
            id: "impersonate-requester-held-token",
            title: "impersonation: `requested_subject=bob` with alice's token held by the requester (row 1's result)",
            subject: Subject::OwnTokenResult,
            requested_subject: Some(BOB),
            ..base
        },
        RequestDef {
            id: "requested-issuer",
            title: "alice's token with `requested_issuer=repro-idp` (no such identity provider)",
            requested_issuer: Some(UNKNOWN_ISSUER),
            ..base
        },
    ]
}

impl RequestDef {
    /// The form fields besides `grant_type`, `client_id` and `client_secret`, described.
    pub fn spec(&self) -> RequestSpec {
        let mut parameters = Vec::new();
        match self.subject {
            Subject::None => {}
            Subject::Alice => parameters.push(format!(
                "subject_token=<alice's access token from {LOGIN} (password grant)>"
            )),
            Subject::OwnTokenResult => parameters.push(format!(
                "subject_token=<the access token request {OWN_TOKEN} issued in this column>"
            )),
        }
        if self.subject != Subject::None {
            parameters.push(format!("subject_token_type={ACCESS_TOKEN_TYPE}"));
        }
        if let Some(a) = self.audience {
            parameters.push(format!("audience={a}"));
        }
        if let Some(s) = self.requested_subject {
            parameters.push(format!("requested_subject={s}"));
        }
        if let Some(i) = self.requested_issuer {
            parameters.push(format!("requested_issuer={i}"));
        }
        RequestSpec {
            id: self.id.to_owned(),
            title: self.title.to_owned(),
            parameters,
        }
    }

    /// Whether Standard V2's `supports()` takes this request (given that the requester has
    /// `standard.token.exchange.enabled`): no `requested_subject`, no `requested_issuer`,
    /// a subject access token.
    pub fn v2_takes(&self) -> bool {
        self.requested_subject.is_none()
            && self.requested_issuer.is_none()
            && self.subject != Subject::None
    }
}

/// What a column needs to send its requests.
pub struct Target<'a> {
    pub http: &'a Http,
    pub base_url: &'a str,
    pub admin: &'a AdminClient,
    pub realm: &'a ReproRealm,
    /// Serverinfo feature names enabled in this boot.
    pub features: &'a [String],
}

/// alice's subject token, by password grant through the repro-only public client.
pub async fn alice_token(t: &Target<'_>) -> anyhow::Result<Secret> {
    let endpoint = ReproRealm::token_endpoint(t.base_url);
    let outcome = token::request(
        t.http,
        &endpoint,
        &[
            ("grant_type", "password"),
            ("client_id", LOGIN),
            ("username", ALICE),
            ("password", t.realm.alice_password.expose()),
        ],
    )
    .await?;
    Ok(outcome
        .issued("alice's password grant through repro-login")?
        .access_token)
}

/// Sends every request once, in order, and returns one cell per request.
pub async fn run_column(t: &Target<'_>) -> anyhow::Result<Vec<Cell>> {
    let alice = alice_token(t).await?;
    let mut own_token: Option<Secret> = None;
    let mut cells = Vec::new();
    for def in requests() {
        let subject = match def.subject {
            Subject::None => None,
            Subject::Alice => Some(alice.clone()),
            Subject::OwnTokenResult => match &own_token {
                Some(t) => Some(t.clone()),
                None => {
                    cells.push(Cell {
                        request: def.id.to_owned(),
                        note: Some(format!(
                            "not sent: request `{OWN_TOKEN}` issued no token in this column"
                        )),
                        answered_by: "not sent".into(),
                        ..Cell::default()
                    });
                    continue;
                }
            },
        };
        let (cell, issued) = send(t, &def, subject.as_ref()).await;
        if def.id == OWN_TOKEN {
            own_token = issued;
        }
        cells.push(cell);
    }
    Ok(cells)
}

/// One request; the cell, and the access token when one was issued.
async fn send(
    t: &Target<'_>,
    def: &RequestDef,
    subject: Option<&Secret>,
) -> (Cell, Option<Secret>) {
    let endpoint = ReproRealm::token_endpoint(t.base_url);
    let x = Exchange {
        subject_token: subject.map(Secret::expose),
        subject_token_type: subject.map(|_| ACCESS_TOKEN_TYPE),
        audience: def.audience,
        requested_subject: def.requested_subject,
        requested_issuer: def.requested_issuer,
        ..Exchange::default()
    };
    let outcome = token::exchange(
        t.http,
        &endpoint,
        REQUESTER,
        Some(&t.realm.requester_secret),
        &x,
    )
    .await;
    let mut cell = Cell {
        request: def.id.to_owned(),
        ..Cell::default()
    };
    let mut access = None;
    match outcome {
        Ok(TokenOutcome::Refused(r)) => {
            cell.status = Some(r.status);
            cell.error = Some(r.error);
            cell.error_description = r.description;
        }
        Ok(TokenOutcome::Issued(tokens)) => {
            cell.status = Some(200);
            let mut issued = match crate::oauth::jwt::peek(tokens.access_token.expose()) {
                Ok((_, claims)) => issued_from_claims(&claims),
                Err(e) => {
                    cell.note = Some(format!("the issued access token does not decode: {e}"));
                    Issued::default()
                }
            };
            issued.issued_token_type = tokens.issued_token_type.clone();
            issued.refresh_token_issued = tokens.refresh_token.is_some();
            if issued.username.is_none()
                && let Some(sub) = &issued.sub
            {
                issued.username = username_of(t.admin, sub).await;
            }
            cell.issued = Some(issued);
            access = Some(tokens.access_token);
        }
        Err(e) => cell.note = Some(crate::secret::redact(&format!("{e:#}"))),
    }
    let (by, why) = answered_by(t.features, def, &cell);
    cell.answered_by = by.to_owned();
    cell.answered_by_reason = why;
    (cell, access)
}

/// The few claims the table shows.
pub fn issued_from_claims(claims: &Value) -> Issued {
    let s = |k: &str| claims[k].as_str().map(str::to_owned);
    Issued {
        sub: s("sub"),
        username: s("preferred_username"),
        azp: s("azp"),
        aud: crate::oauth::jwt::audiences(claims),
        scope: s("scope"),
        issued_token_type: None,
        refresh_token_issued: false,
    }
}

async fn username_of(admin: &AdminClient, sub: &str) -> Option<String> {
    let user = admin
        .get_json(&format!("/realms/{REALM}/users/{sub}"))
        .await
        .ok()?;
    user["username"].as_str().map(str::to_owned)
}

pub const LABEL_V2: &str = "standard (V2)";
pub const LABEL_V1: &str = "legacy (V1)";
pub const LABEL_UNKNOWN: &str = "unknown";

/// Which token-exchange provider answered, and how that is told: from the enabled
/// features (serverinfo), Keycloak's provider order (V2 is asked first, V1's `supports()`
/// takes every request), and what the answer itself shows (V2's "... for standard token
/// exchange" refusals surface only when no provider took the request; V1 defaults
/// `requested_token_type` to refresh_token, V2 to access_token).
pub fn answered_by(features: &[String], def: &RequestDef, cell: &Cell) -> (&'static str, String) {
    if cell.status.is_none() {
        return ("not sent", "no HTTP answer".into());
    }
    let v2 = features.iter().any(|f| f == "TOKEN_EXCHANGE_STANDARD_V2");
    let v1 = features.iter().any(|f| f == "TOKEN_EXCHANGE");
    let (by, mut why) = match (v2, v1) {
        (true, false) => (
            LABEL_V2,
            "the only token-exchange provider enabled (serverinfo: TOKEN_EXCHANGE_STANDARD_V2 on, TOKEN_EXCHANGE off)".to_owned(),
        ),
        (false, true) => (
            LABEL_V1,
            "the only token-exchange provider enabled (serverinfo: TOKEN_EXCHANGE on, TOKEN_EXCHANGE_STANDARD_V2 off)".to_owned(),
        ),
        (true, true) if def.v2_takes() => (
            LABEL_V2,
            "both providers enabled; V2 is asked first and takes a request with a subject access token and neither requested_subject nor requested_issuer".to_owned(),
        ),
        (true, true) => (
            LABEL_V1,
            "both providers enabled; V2 declines requested_subject, requested_issuer and a missing subject_token, and V1 takes every request".to_owned(),
        ),
        (false, false) => (
            LABEL_UNKNOWN,
            "neither TOKEN_EXCHANGE nor TOKEN_EXCHANGE_STANDARD_V2 is enabled".to_owned(),
        ),
    };
    let observed = observed_provider(cell);
    match observed {
        Some((seen, how)) if seen == by => why.push_str(&format!("; the answer agrees: {how}")),
        Some((seen, how)) => {
            return (
                LABEL_UNKNOWN,
                format!("{why}; but the answer points to {seen}: {how}"),
            );
        }
        None => {}
    }
    (by, why)
}

/// What the answer alone says about its provider, when it says anything.
fn observed_provider(cell: &Cell) -> Option<(&'static str, &'static str)> {
    if cell
        .error_description
        .as_deref()
        .is_some_and(|d| d.contains("for standard token exchange"))
    {
        return Some((
            LABEL_V2,
            "a refusal worded \"... for standard token exchange\"",
        ));
    }
    let issued = cell.issued.as_ref()?;
    match issued.issued_token_type.as_deref() {
        Some(REFRESH_TOKEN_TYPE) => Some((
            LABEL_V1,
            "issued_token_type refresh_token without requested_token_type (V1's default)",
        )),
        Some(ACCESS_TOKEN_TYPE) if !issued.refresh_token_issued => Some((
            LABEL_V2,
            "issued_token_type access_token and no refresh_token without requested_token_type (V2's default)",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str) -> RequestDef {
        requests().into_iter().find(|r| r.id == id).unwrap()
    }

    #[test]
    fn v2_takes_only_plain_exchanges() {
        assert!(def(OWN_TOKEN).v2_takes());
        assert!(def("audience-target").v2_takes());
        assert!(!def("impersonate-with-token").v2_takes());
        assert!(!def("impersonate-naked").v2_takes());
        assert!(!def("requested-issuer").v2_takes());
    }

    #[test]
    fn the_provider_follows_features_and_the_answer() {
        let both = [
            "TOKEN_EXCHANGE".to_owned(),
            "TOKEN_EXCHANGE_STANDARD_V2".into(),
        ];
        let refused_v1 = Cell {
            status: Some(403),
            error: Some("access_denied".into()),
            error_description: Some("Client not allowed to exchange".into()),
            ..Cell::default()
        };
        assert_eq!(
            answered_by(&both, &def("impersonate-naked"), &refused_v1).0,
            LABEL_V1
        );
        let v1_token = Cell {
            status: Some(200),
            issued: Some(Issued {
                issued_token_type: Some(REFRESH_TOKEN_TYPE.into()),
                refresh_token_issued: true,
                ..Issued::default()
            }),
            ..Cell::default()
        };
        // Both enabled and a plain exchange: V2 should have answered; a V1-shaped answer
        // is a contradiction, reported as such.
        let (by, why) = answered_by(&both, &def(OWN_TOKEN), &v1_token);
        assert_eq!(by, LABEL_UNKNOWN, "{why}");
        let only_v2 = ["TOKEN_EXCHANGE_STANDARD_V2".to_owned()];
        let v2_refusal = Cell {
            status: Some(400),
            error_description: Some(
                "Parameter 'requested_subject' is not supported for standard token exchange".into(),
            ),
            ..Cell::default()
        };
        let (by, why) = answered_by(&only_v2, &def("impersonate-with-token"), &v2_refusal);
        assert_eq!(by, LABEL_V2);
        assert!(why.contains("agrees"), "{why}");
    }

    #[test]
    fn request_specs_never_carry_values_of_secrets() {
        for r in requests() {
            let spec = r.spec();
            assert!(
                spec.parameters
                    .iter()
                    .all(|p| !p.starts_with("subject_token=ey") && !p.contains('`')),
                "{spec:?}"
            );
        }
    }
}
