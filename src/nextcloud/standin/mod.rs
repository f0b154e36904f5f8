//! A strict stand-in for Nextcloud, for the native backend (no Nextcloud can be installed
//! there): a small axum server on `127.0.0.1:0` that logs users in the way Nextcloud with
//! `user_oidc` does, for real, against the live Keycloak's keys, and serves the endpoints
//! the reference MCP server uses (status, OCS user and capabilities, Login Flow v2, app
//! password deletion, Notes API v1).
//!
//! Strictness is the point: a stand-in that accepts a bad token hides the very failures
//! the suite exists to find. Where Nextcloud's exact answer is unknown, the stand-in
//! takes the stricter one and says so in the handler's doc comment.

mod accounts;
mod auth;
mod bearer;
mod keys;
mod log;
mod login_flow;
mod notes;
mod ocs;
mod router;
mod state;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[cfg(test)]
use bearer::user_id_for_sub;
pub use log::{AuthKind, RecordedRequest, RequestLog};

use bearer::BearerValidator;
use state::StandInState;

/// How the stand-in names itself in `/status.php`'s `productname`, so that a harness
/// reaching it by URL knows it is not a real Nextcloud.
pub const STAND_IN_PRODUCT: &str = "mcp-authz-harness stand-in";

/// How the stand-in trusts Keycloak: user_oidc's provider settings.
#[derive(Clone, Debug)]
pub struct StandInConfig {
    /// The Keycloak realm's OIDC discovery URL.
    pub discovery_url: String,
    /// The provider's client id, which a token's `aud` must name (`nextcloud`).
    pub client_id: String,
    /// user_oidc's database id of the provider, part of the derived user ids (1).
    pub provider_db_id: u32,
    /// How long discovery and JWKS are cached (user_oidc: one hour).
    pub jwks_cache: Duration,
    /// Deliberate defects, for the mutation self-test only (all off by default).
    pub leniency: Leniency,
}

/// Defects the stand-in can be given on purpose, so that the mutation self-test can show
/// the RS checks catch a resource server that has them. All off in every normal run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leniency {
    /// Accept `alg: none` tokens (no signature at all).
    pub accept_alg_none: bool,
    /// Accept any signature (decode the claims without verifying).
    pub skip_signature: bool,
    /// Do not check `exp`.
    pub ignore_exp: bool,
    /// Do not check `iss`.
    pub ignore_iss: bool,
    /// Do not check `aud`.
    pub ignore_aud: bool,
    /// Log a token without `sub` in by `preferred_username`, else by its client (`azp`),
    /// instead of refusing it.
    pub sub_optional: bool,
}

impl StandInConfig {
    /// The reference configuration against `discovery_url`.
    pub fn new(discovery_url: impl Into<String>) -> Self {
        Self {
            discovery_url: discovery_url.into(),
            client_id: "nextcloud".into(),
            provider_db_id: 1,
            jwks_cache: Duration::from_secs(3600),
            leniency: Leniency::default(),
        }
    }
}

/// Timings tests shorten; the defaults are Nextcloud's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timings {
    /// A Login Flow v2 expires after 20 minutes.
    pub(crate) flow_ttl: Duration,
    /// An unknown `kid` re-fetches the JWKS at most once a minute.
    pub(crate) kid_refetch_interval: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            flow_ttl: Duration::from_secs(1200),
            kid_refetch_interval: Duration::from_secs(60),
        }
    }
}

/// A running stand-in. [`StandIn::stop`] shuts it down; dropping it aborts the server.
pub struct StandIn {
    base_url: String,
    state: Arc<StandInState>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Binds `127.0.0.1:0` and serves. Fetches nothing until the first bearer token.
    pub async fn start(cfg: StandInConfig) -> anyhow::Result<StandIn> {
        Self::start_with(cfg, Timings::default()).await
    }

    pub(crate) async fn start_with(
        cfg: StandInConfig,
        timings: Timings,
    ) -> anyhow::Result<StandIn> {
        Self::serve(cfg, timings, "127.0.0.1:0".parse()?).await
    }

    /// Binds `addr` and serves (the `stand-in` command). Its URLs (Login Flow v2) name
    /// the bound address, or loopback when bound to all interfaces.
    pub async fn start_at(cfg: StandInConfig, addr: SocketAddr) -> anyhow::Result<StandIn> {
        Self::serve(cfg, Timings::default(), addr).await
    }

    async fn serve(
        cfg: StandInConfig,
        timings: Timings,
        addr: SocketAddr,
    ) -> anyhow::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the Nextcloud stand-in to {addr}"))?;
        let mut local = listener.local_addr()?;
        if local.ip().is_unspecified() {
            local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base_url = format!("http://{local}");
        let bearer = BearerValidator::new(
            cfg.discovery_url,
            cfg.client_id,
            cfg.provider_db_id,
            cfg.jwks_cache,
            timings.kid_refetch_interval,
        )
        .with_leniency(cfg.leniency);
        let state = Arc::new(StandInState::new(
            base_url.clone(),
            bearer,
            timings.flow_ttl,
        ));
        let app = router::router(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("the Nextcloud stand-in stopped serving: {e}");
            }
        });
        tracing::info!("Nextcloud stand-in listening on {base_url}");
        Ok(StandIn {
            base_url,
            state,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Every request received so far, in order, redacted.
    #[cfg(test)]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.log.snapshot()
    }

    /// The request log, shared: it keeps growing while the stand-in serves.
    pub fn log(&self) -> RequestLog {
        self.state.log.clone()
    }

    /// Stops accepting, lets requests in flight finish (5 s at most), then ends.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            tracing::warn!("the Nextcloud stand-in did not stop within 5 s; aborting it");
            server.abort();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
