//! `stand-in`: the harness's Nextcloud stand-in as a server of its own, for deployments the
//! harness does not start (the stand-in image of `docker-compose`, `--backend external`).
//! It is not Nextcloud, and says so on its first line and in `/status.php`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::http::Http;
use crate::nextcloud::{STAND_IN_PRODUCT, StandIn, StandInConfig};
use crate::runner::Interrupt;

/// `stand-in`'s flags.
#[derive(clap::Args)]
pub struct StandInArgs {
    /// The address to listen on (an IP address, not a name).
    #[arg(long, env = "STAND_IN_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The port to listen on (0: a free one, printed at start).
    #[arg(long, env = "STAND_IN_PORT", default_value_t = 8081)]
    pub port: u16,
    /// The Keycloak realm's OIDC discovery URL, whose keys sign the bearer tokens accepted
    /// (e.g. http://127.0.0.1:8080/realms/nextcloud-mcp/.well-known/openid-configuration).
    #[arg(long, env = "OIDC_DISCOVERY_URL", value_parser = crate::config::http_url_arg)]
    pub discovery_url: String,
    /// Seconds to wait at start for the discovery URL to answer (Keycloak may still boot).
    #[arg(long, env = "STAND_IN_DISCOVERY_TIMEOUT", default_value_t = 180, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub discovery_timeout: u64,
}

/// Waits for discovery, serves until SIGTERM or SIGINT, then stops in order. Exit status:
/// 0 after a signal, 1 when discovery did not answer in time, 2 when the address cannot
/// be bound.
pub async fn stand_in(args: StandInArgs) -> u8 {
    let interrupt = Interrupt::install();
    let addr = SocketAddr::new(args.host, args.port);
    println!(
        "{STAND_IN_PRODUCT}: a strict stand-in for Nextcloud (user_oidc bearer tokens, OCS, \
         Login Flow v2, Notes API), not Nextcloud"
    );
    let timeout = Duration::from_secs(args.discovery_timeout);
    match interrupt
        .guard(wait_for_discovery(&args.discovery_url, timeout))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return 1;
        }
        Err(sig) => {
            eprintln!("{sig} while waiting for OIDC discovery; stopped");
            return 0;
        }
    }
    let server = match StandIn::start_at(StandInConfig::new(&args.discovery_url), addr).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    println!(
        "listening on {} (status: {}/status.php); SIGTERM or Ctrl-C stops it",
        server.base_url(),
        server.base_url()
    );
    let sig = interrupt.cancelled().await;
    eprintln!("{sig}: stopping the stand-in");
    server.stop().await;
    0
}

/// Until `url` answers 200 with a JSON document naming an issuer and a JWKS URI, or
/// `timeout` passes: then an error naming the URL, the time waited and the last answer.
async fn wait_for_discovery(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let http = Http::new(Duration::from_secs(5));
    let started = Instant::now();
    let mut announced = false;
    loop {
        let last = match http.get(url).send().await {
            Ok(r) if r.status == 200 => match r.json_value() {
                Ok(v) if v["issuer"].is_string() && v["jwks_uri"].is_string() => {
                    println!(
                        "OIDC discovery answers (issuer {}) after {:.1} s",
                        v["issuer"].as_str().unwrap_or_default(),
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                _ => format!("not an OIDC discovery document: {}", r.summary()),
            },
            Ok(r) => r.summary(),
            Err(e) => format!("{e:#}"),
        };
        if started.elapsed() >= timeout {
            anyhow::bail!(
                "the OIDC discovery URL {url} did not answer within {} s (last: {last}); \
                 is Keycloak up and the realm imported? (--discovery-timeout to wait longer)",
                timeout.as_secs()
            );
        }
        if !announced {
            println!(
                "waiting for OIDC discovery at {url} (up to {} s)",
                timeout.as_secs()
            );
            announced = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
