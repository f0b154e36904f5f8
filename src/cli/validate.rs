//! `validate-realm PATH`: lint a realm file and, unless `--static-only`, diff it live
//! against the baseline realm.
//!
//! Exit status: 0 no error finding and no regression; 1 an error finding or a
//! regression (or the live run left something behind); 2 invalid input (a missing file,
//! malformed JSON, JSON that is not a realm, a value of the wrong type, an unreachable
//! `--mcp-url`, an unknown area or check ID in `--only`) or Keycloak could not be brought up,
//! with a message on stderr naming the file or URL, the position or JSON path, and what
//! to do; 130 after Ctrl-C.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use serde_json::Value;

use crate::checks::Check;
use crate::config::{DEFAULT_KEYCLOAK_VERSION, StackArgs};
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::lint::report::ValidationReport;
use crate::keycloak::lint::{LintOptions, lint};
use crate::keycloak::model::Realm;
use crate::keycloak::realm::MCP_SERVER_CLIENT;
use crate::keycloak::realm::RealmFile;
use crate::runner::INTERRUPTED;
use crate::runner::orchestrate::StartError;
use crate::validate::{Change, LiveDetails, LiveOptions};

/// `validate-realm`'s flags.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The realm file to validate (a realm export; `${MCP_HARNESS_...}` placeholders allowed).
    pub path: PathBuf,
    /// The realm to compare with in the live diff [default: the built-in baseline,
    /// keycloak/realm-export.json].
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Only lint the file: start no Keycloak.
    #[arg(long)]
    pub static_only: bool,
    /// The MCP server's URL: the scopes its protected resource metadata lists
    /// (RFC 9728 `scopes_supported`) are checked against the realm (LINT-11).
    #[arg(long, value_parser = crate::config::http_url_arg)]
    pub mcp_url: Option<String>,
    /// The clientId of the MCP server's own client (LINT-07).
    #[arg(long, default_value = MCP_SERVER_CLIENT)]
    pub mcp_client: String,
    /// The Keycloak version the live diff runs against.
    #[arg(long, env = "KEYCLOAK_VERSION", default_value = DEFAULT_KEYCLOAK_VERSION, value_parser = crate::config::version_arg)]
    pub keycloak_version: String,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Live diff: comma list of areas and check IDs [default: the whole catalogue; each
    /// realm gets a resource server and an MCP server of its own].
    #[arg(long)]
    pub only: Option<String>,
    /// Live diff: the `nextcloud-mcp-server` release both realms' MCP servers run.
    #[arg(long, env = "MCP_SERVER_VERSION", default_value = crate::config::DEFAULT_MCP_SERVER_VERSION, value_parser = crate::config::version_arg)]
    pub mcp_server_version: String,
    /// Live diff: where each side's report.json, report.md and junit.xml go (in
    /// `baseline/` and `changed/`).
    #[arg(long, default_value = "target/validate-realm")]
    pub report_dir: PathBuf,
    /// Live diff: how many checks run at once on each realm.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_JOBS", default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: usize,
    /// Live diff: seconds one check may take, on either realm.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_CHECK_TIMEOUT", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub check_timeout: u64,
}

/// Output formats of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Junit,
}

/// Runs the command; returns the exit status.
pub async fn validate(args: ValidateArgs) -> u8 {
    let checks = match crate::validate::selection(args.only.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let rendered = match build_report(&args, checks).await {
        Ok(report) => render(&report, args.format).map(|text| (text, exit_status(&report))),
        Err(e) => Err(e),
    };
    match rendered {
        Ok((text, status)) => {
            print!("{text}");
            status
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<StartError>() {
                Some(start) => start.exit_code(),
                None => 2,
            }
        }
    }
}

/// 130 when a signal cut the live diff short (its lists are partial), else 1 when the
/// file fails validation, else 0.
fn exit_status(report: &ValidationReport) -> u8 {
    if report
        .live
        .as_ref()
        .is_some_and(|l| l.interrupted.is_some())
    {
        INTERRUPTED
    } else {
        u8::from(report.fails())
    }
}

async fn build_report(args: &ValidateArgs, checks: Vec<Check>) -> anyhow::Result<ValidationReport> {
    let (file, realm) = Realm::load(&args.path)?;
    let baseline = match &args.baseline {
        Some(path) => Realm::load(path).context("--baseline")?.0,
        None => RealmFile::baseline(),
    };
    let mcp_scopes = match &args.mcp_url {
        Some(url) => Some(fetch_scopes_supported(&Http::new(DEFAULT_TIMEOUT), url).await?),
        None => None,
    };
    let opts = LintOptions {
        mcp_client: args.mcp_client.clone(),
        mcp_scopes,
    };
    let mut report = ValidationReport {
        file: args.path.display().to_string(),
        findings: lint(&realm, &opts),
        ..ValidationReport::default()
    };
    if !args.static_only {
        let live = live_diff(args, checks, &file, &baseline).await?;
        report.regressions = live.ids_with(Change::Regression);
        report.fixes = live.ids_with(Change::Fix);
        report.not_applicable = live.ids_with(Change::NotApplicable);
        report.live = Some(live);
    }
    Ok(report)
}

fn render(report: &ValidationReport, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Text => report.to_text(),
        Format::Json => report.to_json() + "\n",
        Format::Markdown => report.to_markdown(),
        Format::Junit => report.to_junit()?,
    })
}

/// The live half: both realms in one fresh Keycloak (`--keycloak-version`; distribution,
/// boot timeout and `--keep` from the environment as for `run`), the catalogue on both.
async fn live_diff(
    args: &ValidateArgs,
    checks: Vec<Check>,
    changed: &RealmFile,
    baseline: &RealmFile,
) -> anyhow::Result<LiveDetails> {
    let mut stack = StackArgs::from_env()?;
    stack.keycloak_version = args.keycloak_version.clone();
    stack.mcp_server_version = args.mcp_server_version.clone();
    let opts = LiveOptions {
        stack,
        checks,
        report_dir: args.report_dir.clone(),
        jobs: args.jobs,
        check_timeout: std::time::Duration::from_secs(args.check_timeout),
    };
    crate::validate::run(changed, baseline, &opts).await
}

/// The well-known path of RFC 9728 protected resource metadata.
const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// The MCP server's `scopes_supported`, from its protected resource metadata at
/// `<url>/.well-known/oauth-protected-resource`, or else where RFC 9728 §3.1 puts it for a
/// URL with a path (the well-known path between host and path:
/// `https://h/.well-known/oauth-protected-resource/mcp` for `https://h/mcp`).
async fn fetch_scopes_supported(http: &Http, url: &str) -> anyhow::Result<Vec<String>> {
    let mut tried = Vec::new();
    for candidate in prm_urls(url)? {
        match http.get(&candidate).send().await {
            Ok(resp) if resp.is_success() => {
                let metadata = resp
                    .json_value()
                    .with_context(|| format!("--mcp-url {url}"))?;
                return scopes_of(&metadata)
                    .with_context(|| format!("--mcp-url {url}: {candidate}"));
            }
            Ok(resp) => tried.push(format!("{candidate} answered {}", resp.summary())),
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(anyhow!(
        "cannot read the MCP server's protected resource metadata for --mcp-url {url}: {}. \
         Check the URL and that the MCP server is running",
        tried.join("; ")
    ))
}

fn prm_urls(url: &str) -> anyhow::Result<Vec<String>> {
    let parsed = url::Url::parse(url).map_err(|e| {
        anyhow!("--mcp-url {url} is not a URL ({e}); pass e.g. http://127.0.0.1:8000")
    })?;
    let mut out = vec![format!("{}{PRM_PATH}", url.trim_end_matches('/'))];
    let path = parsed.path().trim_end_matches('/');
    if !path.is_empty() {
        out.push(format!(
            "{}{PRM_PATH}{path}",
            parsed.origin().ascii_serialization()
        ));
    }
    Ok(out)
}

fn scopes_of(metadata: &Value) -> anyhow::Result<Vec<String>> {
    let list = metadata
        .get("scopes_supported")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the protected resource metadata has no scopes_supported list"))?;
    Ok(list
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn prm() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "resource": "http://x/mcp", "scopes_supported": ["openid", "notes.read"]
        }))
    }

    #[tokio::test]
    async fn scopes_come_from_the_metadata_under_the_url() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(PRM_PATH))
            .respond_with(prm())
            .mount(&server)
            .await;
        let scopes = fetch_scopes_supported(&Http::new(DEFAULT_TIMEOUT), &server.uri())
            .await
            .unwrap();
        assert_eq!(scopes, ["openid", "notes.read"]);
    }

    #[tokio::test]
    async fn a_url_with_a_path_falls_back_to_the_rfc_9728_location() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("{PRM_PATH}/mcp")))
            .respond_with(prm())
            .mount(&server)
            .await;
        let url = format!("{}/mcp", server.uri());
        let scopes = fetch_scopes_supported(&Http::new(DEFAULT_TIMEOUT), &url)
            .await
            .unwrap();
        assert_eq!(scopes, ["openid", "notes.read"]);
    }

    #[tokio::test]
    async fn a_server_without_metadata_is_an_error_naming_the_url() {
        let server = MockServer::start().await;
        let err = fetch_scopes_supported(&Http::new(DEFAULT_TIMEOUT), &server.uri())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("--mcp-url {}", server.uri())),
            "{err}"
        );
        assert!(err.contains("HTTP 404"), "{err}");
    }

    #[test]
    fn metadata_without_scopes_is_refused() {
        assert!(scopes_of(&serde_json::json!({"resource": "x"})).is_err());
        assert!(prm_urls("not a url").is_err());
    }
}
