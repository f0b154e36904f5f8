//! Sessions on a stack of their own (Keycloak built otherwise than the session's), shared
//! by the checks of one process that ask for the same Keycloak while it is up.
//!
//! A check that needs a realm-wide Keycloak feature (MCP-33) boots such a stack. The live
//! diff of `validate-realm` and `matrix` run that check once per realm or release, at
//! about the same time: each booting a Keycloak of its own cost a boot per side (40-60 s
//! on two cores, one after the other) on the run's longest path. Here the first check to
//! ask boots the stack with its realm; the others deploy their realms on it as joined
//! sessions (their own MCP server instance and stand-in), and the last one to finish
//! tears the stack down. A check whose realm name is already deployed there boots one of
//! its own, as before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Session, SessionOptions, TeardownReport};
use crate::progress::Progress;
use crate::stack::StackConfig;

/// A stack of its own, shared: its host session (the realm of the check that booted it)
/// once up, and the realms of the checks using it.
#[derive(Default)]
struct Shared {
    host: tokio::sync::OnceCell<Result<Arc<Session>, String>>,
    users: Mutex<Vec<String>>,
}

/// Shared stacks of this process by Keycloak configuration.
static SHARED: Mutex<BTreeMap<String, Arc<Shared>>> = Mutex::new(BTreeMap::new());

/// One own stack boots at a time in a process: stacks that cannot be shared (a `matrix`
/// over several Keycloak versions runs MCP-33 on each at once) would otherwise boot
/// together, and four Keycloak boots at a time on two cores each took over the 180 s boot
/// timeout, which failed the checks for the harness's own load.
static BOOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Waits until no other own stack of this process is booting; the boot holds the permit.
/// Returns it with how long the wait took.
async fn boot_slot() -> (tokio::sync::SemaphorePermit<'static>, Duration) {
    let asked = Instant::now();
    let permit = BOOTS
        .acquire()
        .await
        .expect("the own-stack semaphore is never closed");
    (permit, asked.elapsed())
}

/// What makes two own stacks interchangeable: everything but the subjects, which each
/// session starts for itself.
fn key(cfg: &StackConfig) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        cfg.backend, cfg.keycloak, cfg.external, cfg.subject, cfg.containers
    )
}

/// How a check came by its session on a stack of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// It booted the stack (`waited`: for another own stack's boot to end first).
    Booted { waited: Duration },
    /// It deployed its realm on a stack another check booted.
    Joined,
}

/// A check's session on a stack of its own; [`OwnSession::release`] ends it (and the stack,
/// when no other check uses it). Dropped unreleased (a timed-out check), it ends in the
/// background.
pub struct OwnSession {
    pub session: Arc<Session>,
    pub arrival: Arrival,
    lease: Lease,
}

/// A check's place among a shared stack's users; leaving is idempotent.
struct Lease {
    key: String,
    realm: String,
    shared: Arc<Shared>,
    joined: Option<Arc<Session>>,
    left: bool,
}

impl OwnSession {
    /// A session for `opts` (its realm) on a stack built from `opts.stack`: on one
    /// another check of this process has up, or on one it boots (reports and logs under
    /// `report_dir`).
    pub async fn start(
        opts: &SessionOptions,
        progress: Arc<Progress>,
        report_dir: &Path,
    ) -> Result<OwnSession, String> {
        let realm = opts.realm.name().to_owned();
        let mut lease = Lease::enter(key(&opts.stack), &realm);
        let mut waited = Duration::ZERO;
        let host = lease
            .shared
            .host
            .get_or_init(|| async {
                let (slot, w) = boot_slot().await;
                waited = w;
                let up = Session::start(opts, progress, report_dir).await;
                drop(slot);
                up.map_err(|e| e.message)
            })
            .await
            .clone()?;
        if host.realm.name == realm {
            return Ok(OwnSession {
                session: host,
                arrival: Arrival::Booted { waited },
                lease,
            });
        }
        let joined = host.join(opts, report_dir).await.map_err(|e| e.message)?;
        lease.joined = Some(joined.clone());
        Ok(OwnSession {
            session: joined,
            arrival: Arrival::Joined,
            lease,
        })
    }

    /// Tears this check's session down (its realm, subjects and clients), and the whole
    /// stack when this was its last user; logs go to `logs`. The report counts both.
    pub async fn release(mut self, logs: &Path) -> (TeardownReport, Released) {
        self.lease.leave(Some(logs.to_path_buf())).await
    }
}

/// Whether releasing a session stopped the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released {
    StackStopped,
    /// Other checks still use the stack (how many).
    StackInUse(usize),
}

impl Lease {
    /// Registers `realm` as a user of the shared stack for `key`, creating the entry
    /// when none is up (or when that realm is deployed there already: a stack apart).
    fn enter(key: String, realm: &str) -> Lease {
        let mut map = SHARED.lock().expect("own stacks lock");
        let entry = map.entry(key.clone()).or_default().clone();
        let shared = {
            let mut users = entry.users.lock().expect("own stack users lock");
            if users.iter().any(|u| u == realm) {
                drop(users);
                let apart = Arc::new(Shared::default());
                apart
                    .users
                    .lock()
                    .expect("fresh lock")
                    .push(realm.to_owned());
                apart
            } else {
                users.push(realm.to_owned());
                drop(users);
                entry
            }
        };
        Lease {
            key,
            realm: realm.to_owned(),
            shared,
            joined: None,
            left: false,
        }
    }

    /// Leaves: this user's joined session torn down, then the stack if it was the last.
    async fn leave(&mut self, logs: Option<PathBuf>) -> (TeardownReport, Released) {
        self.left = true;
        let mut report = TeardownReport::default();
        if let Some(joined) = self.joined.take() {
            report = joined.teardown(logs.as_deref()).await;
        }
        let others = self.unregister();
        if others > 0 {
            return (report, Released::StackInUse(others));
        }
        if let Some(Ok(host)) = self.shared.host.get() {
            report.add(host.teardown(logs.as_deref()).await);
        }
        (report, Released::StackStopped)
    }

    /// Removes this user; the entry goes with its last user. Returns how many remain.
    fn unregister(&self) -> usize {
        let mut map = SHARED.lock().expect("own stacks lock");
        let mut users = self.shared.users.lock().expect("own stack users lock");
        users.retain(|u| *u != self.realm);
        let remaining = users.len();
        if remaining == 0
            && map
                .get(&self.key)
                .is_some_and(|e| Arc::ptr_eq(e, &self.shared))
        {
            map.remove(&self.key);
        }
        remaining
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.left = true;
        let mut rest = Lease {
            key: self.key.clone(),
            realm: self.realm.clone(),
            shared: self.shared.clone(),
            joined: self.joined.take(),
            left: false,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    rest.leave(None).await;
                });
            }
            Err(_) => {
                rest.left = true;
                rest.unregister();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Option<Arc<Shared>> {
        SHARED.lock().unwrap().get(key).cloned()
    }

    #[test]
    fn realms_share_a_stack_and_the_last_to_leave_removes_it() {
        let key = "test-share".to_owned();
        let mut a = Lease::enter(key.clone(), "realm-a");
        let mut b = Lease::enter(key.clone(), "realm-b");
        assert!(Arc::ptr_eq(&a.shared, &b.shared));
        a.left = true;
        assert_eq!(a.unregister(), 1);
        assert!(entry(&key).is_some(), "b still uses it");
        b.left = true;
        assert_eq!(b.unregister(), 0);
        assert!(entry(&key).is_none());
    }

    #[test]
    fn a_realm_already_on_the_stack_gets_one_apart() {
        let key = "test-apart".to_owned();
        let mut first = Lease::enter(key.clone(), "realm");
        let mut second = Lease::enter(key.clone(), "realm");
        assert!(!Arc::ptr_eq(&first.shared, &second.shared));
        second.left = true;
        assert_eq!(second.unregister(), 0);
        assert!(
            entry(&key).is_some(),
            "leaving the apart one keeps the shared entry"
        );
        first.left = true;
        first.unregister();
        assert!(entry(&key).is_none());
    }

    #[test]
    fn a_lease_dropped_without_a_runtime_still_leaves() {
        let key = "test-drop".to_owned();
        drop(Lease::enter(key.clone(), "realm"));
        assert!(entry(&key).is_none());
    }
}
