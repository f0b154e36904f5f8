//! Sessions that share one Keycloak: a second realm (the live diff of `validate-realm`)
//! runs in a session that joins the one which brought the stack up, with its own realm,
//! listener, browser profiles and subjects, and owns only what it created.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Deployment, Session, SessionOptions, sanitize, teardown};
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::progress::Progress;
use crate::stack::run::RunContext;
use crate::stack::{Need, Stack, StackError, Unavailable};

/// A session to deploy on a shared stack: its options and where its reports go.
pub struct Joining<'a> {
    pub opts: &'a SessionOptions,
    pub report_dir: &'a Path,
}

impl Session {
    /// A second session on this session's Keycloak (and WebDriver), for another realm:
    /// it imports `opts.realm` (under a name no realm there has yet), runs with its own
    /// redirect listener and browser profiles, starts the subjects `opts.stack.needs` asks
    /// for against its realm (its own resource server and MCP server instance, where the
    /// backend starts them: see [`Stack::shared_view`]), and its teardown removes what it
    /// created (clients, variants, its realm, its subjects) but stops nothing of this
    /// session's. Tear it down before this session.
    pub async fn join(
        &self,
        opts: &SessionOptions,
        report_dir: &Path,
    ) -> Result<Arc<Session>, StackError> {
        let (view, opts) = joined_view(&self.stack, opts);
        let browser_dir = self
            .run
            .path(format!("browser-{}", sanitize(opts.realm.name())));
        deploy_joined(view, &opts, report_dir, browser_dir).await
    }

    /// Brings the stack up for `first` and deploys it and every one of `joining` at once:
    /// each realm's import and subjects start alongside the others' instead of after
    /// them. The first session owns the stack; tear the others down before it. On any
    /// failure everything started is torn down and the first error returns.
    pub async fn start_sharing(
        first: &SessionOptions,
        report_dir: &Path,
        joining: &[Joining<'_>],
        progress: Arc<Progress>,
    ) -> Result<Vec<Arc<Session>>, StackError> {
        let stack = Self::start_stack(first, progress, report_dir).await?;
        let run = stack.run.clone();
        let views: Vec<_> = joining
            .iter()
            .map(|j| (joined_view(&stack, j.opts), j.report_dir))
            .collect();
        let joined = views.into_iter().map(|((view, opts), report_dir)| {
            let browser_dir = run.path(format!("browser-{}", sanitize(opts.realm.name())));
            async move { deploy_joined(view, &opts, report_dir, browser_dir).await }
        });
        let deploy = Deployment {
            owns_stack: true,
            browser_dir: run.path("browser"),
            report_dir,
        };
        let (first_deployed, joined) = futures::future::join(
            Self::deploy(stack, first, deploy),
            futures::future::join_all(joined),
        )
        .await;
        let mut error = None;
        let mut others = Vec::new();
        for j in joined {
            match j {
                Ok(s) => others.push(s),
                Err(e) => error = error.or(Some(e)),
            }
        }
        let first = match first_deployed {
            Ok(s) => Arc::new(s),
            Err((e, stack)) => {
                end_joined(&others).await;
                teardown::copy_logs(&stack.log_files().await, &report_dir.join("logs"));
                stack.stop().await;
                run.finish();
                return Err(StackError::new(e));
            }
        };
        if let Some(e) = error {
            end_joined(&others).await;
            first.teardown(Some(&report_dir.join("logs"))).await;
            return Err(e);
        }
        let mut all = vec![first];
        all.extend(others);
        Ok(all)
    }

    /// The run dir and the stack, up, for `opts` (no realm deployed yet). On failure,
    /// component logs are copied into `<report_dir>/logs` and the run is cleaned up.
    pub(super) async fn start_stack(
        opts: &SessionOptions,
        progress: Arc<Progress>,
        report_dir: &Path,
    ) -> Result<Stack, StackError> {
        let id = opts
            .run_id
            .clone()
            .unwrap_or_else(crate::stack::run::new_id);
        let run = Arc::new(RunContext::create_as(id, opts.keep).map_err(StackError::new)?);
        progress.println(&format!("run {} in {}", run.id, run.dir.display()));
        Stack::up(run.clone(), &opts.stack, progress)
            .await
            .inspect_err(|e| {
                teardown::copy_logs(&e.logs, &report_dir.join("logs"));
                run.abort();
            })
    }
}

async fn end_joined(sessions: &[Arc<Session>]) {
    for s in sessions {
        s.teardown(None).await;
    }
}

/// A view of `stack` for a session on another realm, and that session's options: its
/// listener takes a free port (`--mcp-redirect-uri` belongs to the first session's).
fn joined_view(stack: &Stack, opts: &SessionOptions) -> (Stack, SessionOptions) {
    let mut opts = opts.clone();
    opts.redirect_uri = None;
    let mut view = stack.shared_view(&sanitize(opts.realm.name()), &opts.stack);
    if view.webdriver.is_none() && view.unavailable(Need::Browser).is_none() {
        let why = "the session that brought the stack up did not start a browser";
        view.unavailable
            .push(Unavailable::by_design(Need::Browser, why));
    }
    (view, opts)
}

/// Deploys a joined session on `view`; a realm it imported is deleted again when the
/// deployment fails.
async fn deploy_joined(
    view: Stack,
    opts: &SessionOptions,
    report_dir: &Path,
    browser_dir: PathBuf,
) -> Result<Arc<Session>, StackError> {
    let kc = &view.keycloak;
    let admin = AdminClient::new(
        Http::new(DEFAULT_TIMEOUT),
        &kc.base_url,
        &kc.admin_user,
        kc.admin_password.clone(),
    );
    let name = opts.realm.name();
    let existed = admin.realm_exists(name).await.map_err(StackError::new)?;
    let deploy = Deployment {
        owns_stack: false,
        browser_dir,
        report_dir,
    };
    match Session::deploy(view, opts, deploy).await {
        Ok(s) => Ok(Arc::new(s)),
        Err((e, _)) => {
            if !existed {
                let _ = admin.delete_realm(name).await;
            }
            Err(StackError::new(e))
        }
    }
}
