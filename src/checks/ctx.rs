//! What a check can reach: the session, and recorders that put everything it does into
//! its own evidence.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;

use super::{Blocked, Check};
use crate::evidence::Evidence;
use crate::http::Http;
use crate::keycloak::admin::AdminClient;
use crate::oauth::discovery::ProviderMetadata;
use crate::session::{DeployedRealm, Session};
use crate::stack::{HarnessClient, McpInstances, McpServerState, ResourceServer, RunningMcp};

/// The context of one check run.
pub struct CheckCtx {
    pub session: Arc<Session>,
    pub check: Check,
    pub evidence: Evidence,
    http: Http,
}

impl CheckCtx {
    pub fn new(session: Arc<Session>, check: Check) -> Self {
        let evidence = Evidence::new();
        let http = session.http.recording(&evidence);
        Self {
            session,
            check,
            evidence,
            http,
        }
    }

    /// HTTP client recording into this check's evidence.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Admin API client recording into this check's evidence.
    pub fn admin(&self) -> AdminClient {
        self.session.admin.recording(&self.evidence)
    }

    /// Opens a named step of the evidence.
    pub fn step(&self, name: impl Into<String>) {
        self.evidence.step(name);
    }

    /// Adds a note to the current step.
    pub fn note(&self, text: impl AsRef<str>) {
        self.evidence.note(text);
    }

    /// The baseline realm, if it was deployed; otherwise an error naming REALM-01.
    pub fn realm(&self) -> anyhow::Result<&DeployedRealm> {
        let realm = &self.session.realm;
        if let Some(why) = realm.unusable() {
            anyhow::bail!(
                "the realm {:?} is not usable: {why} (see REALM-01)",
                realm.name
            );
        }
        Ok(realm)
    }

    /// The realm's discovery document, fetched now (and recorded).
    pub async fn discovery(&self) -> anyhow::Result<ProviderMetadata> {
        let realm = self.realm()?;
        ProviderMetadata::fetch(&self.http, &realm.discovery_url()).await
    }

    /// The realm's JWKS, fetched now through its discovery document.
    pub async fn jwks(&self, meta: &ProviderMetadata) -> anyhow::Result<JwkSet> {
        crate::oauth::jwt::fetch_jwks(&self.http, meta.jwks_uri()?).await
    }

    /// A client_credentials token of `client_id`, validated against the realm's JWKS
    /// (signature, `iss`, `exp`); its claims are noted in the evidence.
    pub async fn verified_client_credentials(
        &self,
        client_id: &str,
        secret: &crate::secret::Secret,
    ) -> anyhow::Result<(crate::oauth::token::Tokens, serde_json::Value)> {
        let meta = self.discovery().await?;
        let keys = self.jwks(&meta).await?;
        self.step(format!(
            "client_credentials for {client_id}, validated against the JWKS"
        ));
        let tokens = crate::oauth::token::client_credentials(
            self.http(),
            meta.token_endpoint()?,
            client_id,
            secret,
            None,
        )
        .await?
        .issued(&format!("client_credentials for {client_id}"))?;
        let expect = crate::oauth::jwt::Expect {
            issuer: Some(&meta.issuer),
            ..Default::default()
        };
        let claims = crate::oauth::jwt::verify(&tokens.access_token, &keys, &expect)?;
        self.note(format!(
            "claims: {}",
            crate::oauth::jwt::claims_for_evidence(&claims)
        ));
        Ok((tokens, claims))
    }

    /// A browser flow in `user`'s profile that logs in as `user` (with the realm file's
    /// password) and accepts consent; "not applicable" when the realm gives no password.
    pub fn user_flow<'a>(
        &'a self,
        user: &'a str,
        timeout: std::time::Duration,
    ) -> anyhow::Result<crate::browser::login::Flow<'a>> {
        self.realm()?;
        self.session.user_flow(user, self.check.id, timeout)
    }

    /// The secret of a client the realm file defines ("not applicable" when it defines none).
    pub fn client_secret(&self, client_id: &str) -> anyhow::Result<crate::secret::Secret> {
        Ok(self.realm()?.require_client_secret(client_id)?)
    }

    /// The MCP server when it runs. When it did not start, the check is blocked by
    /// MCP-01 (which reports that), or by REALM-01 when the realm was not usable.
    pub fn mcp_server(&self) -> anyhow::Result<&RunningMcp> {
        match &self.session.stack.subjects.mcp {
            McpServerState::Running(m) => Ok(m),
            McpServerState::Failed { .. } => Err(Blocked {
                by: "MCP-01",
                why: "the MCP server did not start".into(),
            }
            .into()),
            McpServerState::Unavailable(why) => Err(Blocked {
                by: "REALM-01",
                why: why.clone(),
            }
            .into()),
            McpServerState::NotNeeded => {
                anyhow::bail!("the session did not start the MCP server: declare Need::McpServer")
            }
        }
    }

    /// Compares `observed` with the committed pin `fixtures/snapshots/<name>.snap`, or
    /// writes it there under `mcp-authz-harness pin`; returns what happened, for the pass
    /// message. `flags` are what `pin` needs to observe the same subject again (e.g.
    /// `--mcp-server-version 0.202.1`); failures name the whole command.
    pub fn pinned(
        &self,
        name: String,
        source: &'static str,
        flags: &str,
        observed: &impl serde::Serialize,
    ) -> anyhow::Result<String> {
        let dir = crate::pins::snapshots_dir();
        let pin = crate::pins::Pin {
            dir: &dir,
            name,
            source,
            command: format!("mcp-authz-harness pin --only {} {flags}", self.check.id),
        };
        self.step(format!(
            "{} {}",
            if self.session.update_pins {
                "write the observation as the pin"
            } else {
                "compare the observation with the pin"
            },
            pin.shown()
        ));
        pin.verify(&serde_json::to_value(observed)?, self.session.update_pins)
    }

    /// The resource server. Checks that call this declare `Need::ResourceServer`, so the
    /// runner has already reported them unavailable where there is none.
    pub fn resource_server(&self) -> anyhow::Result<&ResourceServer> {
        if let Some(rs) = &self.session.stack.subjects.resource_server {
            return Ok(rs);
        }
        let realm = &self.session.realm;
        match realm.unusable() {
            Some(why) => Err(Blocked {
                by: "REALM-01",
                why: format!("the realm {} is not usable ({why})", realm.name),
            }
            .into()),
            None => anyhow::bail!("no resource server runs: declare Need::ResourceServer"),
        }
    }

    /// Further MCP server instances. Checks that call this declare `Need::McpInstances`.
    pub fn instances(&self) -> anyhow::Result<&McpInstances> {
        self.session
            .stack
            .subjects
            .instances
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("this stack starts no further MCP server instances"))
    }

    /// The harness's client at the MCP server's authorization proxy.
    pub fn harness_client(&self) -> anyhow::Result<&HarnessClient> {
        self.session
            .stack
            .subjects
            .harness_client
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no MCP server: the harness has no client at its proxy"))
    }
}
