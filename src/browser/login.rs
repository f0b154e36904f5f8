//! Driving an authorization request through the browser as a user would: open the URL,
//! log in on Keycloak's page if it asks, accept consent if it asks, and wait for the
//! authorization response at the redirect listener.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::Value;

use super::Browser;
use super::redirect::{Callback, RedirectListener};
use crate::secret::Secret;

/// Who logs in, when the login page appears.
#[derive(Clone)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: Secret,
}

/// Where a flow ended.
#[derive(Debug)]
pub enum FlowEnd {
    /// The authorization response reached the listener.
    Callback(Callback),
    /// The browser stopped elsewhere (a login error, an error page, a timeout).
    Stopped {
        reason: String,
        url: String,
        /// The error text the page shows, if any.
        page_error: Option<String>,
        /// Where the screenshot and page source were saved.
        capture: String,
    },
}

impl FlowEnd {
    /// The callback, or an error carrying the reason and the saved evidence.
    pub fn callback(self) -> anyhow::Result<Callback> {
        match self {
            FlowEnd::Callback(c) => Ok(c),
            FlowEnd::Stopped {
                reason,
                url,
                page_error,
                capture,
            } => anyhow::bail!(
                "the browser did not reach the redirect URI: {reason} (at {url}; page says {page_error:?}); {capture}"
            ),
        }
    }
}

/// One authorization through the browser.
pub struct Flow<'a> {
    pub browser: &'a Browser,
    pub profile: &'a str,
    pub listener: &'a RedirectListener,
    pub login: Option<Credentials<'a>>,
    pub accept_consent: bool,
    /// Names the evidence files of a failure.
    pub label: &'a str,
    pub timeout: Duration,
}

/// What the current page shows, read in one script call.
const INSPECT: &str = r#"
const q = s => document.querySelector(s);
const text = s => { const e = q(s); return e ? e.textContent.trim() : null; };
return {
  url: location.href,
  ready: document.readyState,
  login: !!(q('#username') && q('#password')),
  consent: !!q('[name=accept]'),
  inputError: text('#input-error') || text('#input-error-username') || text('.kc-feedback-text'),
  alert: text('#kc-error-message') || text('.pf-v5-c-alert__title') || text('.alert-error'),
  text: document.body ? document.body.innerText.slice(0, 4000) : '',
  status: (performance.getEntriesByType('navigation')[0] || {}).responseStatus || null,
};
"#;

/// A page the browser reached where a flow ends at a server's own page (the MCP
/// server's provisioning callback), not at the harness's listener.
#[derive(Clone, Debug)]
pub struct Page {
    /// Its URL, redacted.
    pub url: String,
    /// Its visible text (the first 4000 characters).
    pub text: String,
    /// The HTTP status of the document (Navigation Timing's `responseStatus`), when the
    /// browser tells it.
    pub status: Option<u16>,
}

/// Where a flow that may end at the listener or at a server's own page arrived.
#[derive(Debug)]
pub enum Arrival {
    /// The authorization response reached the listener.
    Listener(Callback),
    /// The browser shows a page at the awaited prefix: the server answered the browser
    /// itself (an error page, say) instead of redirecting.
    Page(Page),
    /// Neither: the browser stopped elsewhere.
    Stopped(FlowEnd),
}

/// Where a drive through the pages ends.
enum Until<'a> {
    /// The authorization response for this state reaches the listener.
    Listener(&'a str),
    /// The browser is on a loaded page whose URL starts with this.
    Page(&'a str),
    /// Whichever comes first: the response for this state, or a page at this prefix.
    ListenerOrPage(&'a str, &'a str),
}

impl Until<'_> {
    fn state(&self) -> Option<&str> {
        match self {
            Until::Listener(s) | Until::ListenerOrPage(s, _) => Some(s),
            Until::Page(_) => None,
        }
    }

    fn page_prefix(&self) -> Option<&str> {
        match self {
            Until::Page(p) | Until::ListenerOrPage(_, p) => Some(p),
            Until::Listener(_) => None,
        }
    }

    /// What was awaited, for the message when the deadline passes.
    fn awaited(&self) -> String {
        let page = |p: &str| format!("no page at {}", crate::secret::redact(p));
        match self {
            Until::Listener(_) => "no authorization response".to_owned(),
            Until::Page(p) => page(p),
            Until::ListenerOrPage(_, p) => format!("no authorization response and {}", page(p)),
        }
    }
}

impl Flow<'_> {
    /// Opens `url` and follows the pages until the response for `state` arrives.
    pub async fn run(&self, url: &str, state: &str) -> anyhow::Result<FlowEnd> {
        Ok(match self.drive(url, Until::Listener(state)).await? {
            Arrival::Listener(c) => FlowEnd::Callback(c),
            Arrival::Stopped(end) => end,
            Arrival::Page(p) => {
                anyhow::bail!("the flow ended at a page ({}), not at the listener", p.url)
            }
        })
    }

    /// Opens `url` and follows the pages (login, consent) until the browser shows a page
    /// whose URL starts with `prefix`; an error when it stops anywhere else.
    pub async fn run_to_page(&self, url: &str, prefix: &str) -> anyhow::Result<Page> {
        match self.drive(url, Until::Page(prefix)).await? {
            Arrival::Page(p) => Ok(p),
            Arrival::Stopped(FlowEnd::Stopped {
                reason,
                url,
                page_error,
                capture,
            }) => anyhow::bail!(
                "the browser did not reach {}: {reason} (at {url}; page says {page_error:?}); {capture}",
                crate::secret::redact(prefix)
            ),
            Arrival::Stopped(FlowEnd::Callback(_)) | Arrival::Listener(_) => {
                anyhow::bail!("the flow ended at the listener, not at a page")
            }
        }
    }

    /// Opens `url` and follows the pages until the response for `state` reaches the
    /// listener or the browser shows a loaded page whose URL starts with `prefix`,
    /// whichever comes first: for a flow whose server may answer the browser itself.
    pub async fn run_to_listener_or_page(
        &self,
        url: &str,
        state: &str,
        prefix: &str,
    ) -> anyhow::Result<Arrival> {
        self.drive(url, Until::ListenerOrPage(state, prefix)).await
    }

    async fn drive(&self, url: &str, until: Until<'_>) -> anyhow::Result<Arrival> {
        let profile = self.browser.profile(self.profile).await?;
        let client = profile.lock().await;
        client.goto(url).await?;
        let deadline = Instant::now() + self.timeout;
        let mut submitted = false;
        loop {
            if let Some(state) = until.state()
                && let Some(c) = self.listener.take(state)
            {
                return Ok(Arrival::Listener(c));
            }
            if Instant::now() >= deadline {
                return Ok(Arrival::Stopped(
                    self.stopped(
                        &client,
                        format!("{} within {}s", until.awaited(), self.timeout.as_secs()),
                        None,
                    )
                    .await,
                ));
            }
            let page = client.execute(INSPECT, vec![]).await.unwrap_or(Value::Null);
            if let Some(prefix) = until.page_prefix()
                && page["ready"] == "complete"
                && page["url"].as_str().is_some_and(|u| u.starts_with(prefix))
            {
                return Ok(Arrival::Page(Page {
                    url: crate::secret::redact(page["url"].as_str().unwrap_or_default()),
                    text: page["text"].as_str().unwrap_or_default().to_owned(),
                    status: page["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
                }));
            }
            let page_error = page["inputError"]
                .as_str()
                .or(page["alert"].as_str())
                .map(str::to_owned);
            if page["login"] == true {
                match (&self.login, submitted) {
                    (None, _) => {
                        return Ok(Arrival::Stopped(
                            self.stopped(
                                &client,
                                "the login page asks for a user, and none was given".into(),
                                page_error,
                            )
                            .await,
                        ));
                    }
                    (Some(_), true) if page_error.is_some() => {
                        return Ok(Arrival::Stopped(
                            self.stopped(&client, "login refused".into(), page_error)
                                .await,
                        ));
                    }
                    (Some(who), false) => {
                        submit_login(&client, who).await?;
                        submitted = true;
                    }
                    (Some(_), true) => {}
                }
            } else if page["consent"] == true {
                if !self.accept_consent {
                    return Ok(Arrival::Stopped(
                        self.stopped(
                            &client,
                            "a consent screen appeared and consent is not to be given".into(),
                            None,
                        )
                        .await,
                    ));
                }
                client
                    .find(Locator::Css("[name=accept]"))
                    .await?
                    .click()
                    .await?;
            } else if let Some(alert) = page["alert"]
                .as_str()
                .filter(|_| !on_listener(&page, self.listener))
            {
                return Ok(Arrival::Stopped(
                    self.stopped(
                        &client,
                        "Keycloak shows an error page".into(),
                        Some(alert.to_owned()),
                    )
                    .await,
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn stopped(
        &self,
        client: &Client,
        reason: String,
        page_error: Option<String>,
    ) -> FlowEnd {
        let url = client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let capture = self.browser.capture(client, self.label).await;
        FlowEnd::Stopped {
            reason,
            url: crate::secret::redact(&url),
            page_error,
            capture,
        }
    }
}

fn on_listener(page: &Value, listener: &RedirectListener) -> bool {
    page["url"]
        .as_str()
        .is_some_and(|u| u.starts_with(listener.base_url()))
}

async fn submit_login(client: &Client, who: &Credentials<'_>) -> anyhow::Result<()> {
    let user = client.find(Locator::Id("username")).await?;
    user.clear().await?;
    user.send_keys(who.username).await?;
    let pass = client.find(Locator::Id("password")).await?;
    pass.clear().await?;
    pass.send_keys(who.password.expose()).await?;
    client.find(Locator::Id("kc-login")).await?.click().await?;
    Ok(())
}
