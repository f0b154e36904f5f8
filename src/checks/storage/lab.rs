//! The STORAGE area's own MCP server instance ("the lab"): the session's configuration on
//! its own port and database, so the flows that fill a database can run without touching
//! the instance the MCP checks use. Each flow runs once per session, in whichever check
//! needs it first; checks that change what the lab stores (revocation) and checks that
//! read it serialize on the same lock.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard, OnceCell};

use super::super::CheckCtx;
use super::flows::{self, Flow1, Flow2, Grant};
use crate::stack::Instance;
use crate::storage::{Cipher, TokenDb};

/// The lab instance's name (its log is `<run>/storage.log`).
const LAB: &str = "storage";

/// Flow 2 for the lab: `None` until it ran or after a revocation removed its token.
pub(super) type Flow2Slot = Option<Result<Arc<Flow2>, String>>;

/// The lab and what has been done to it.
pub(crate) struct Lab {
    /// The instance, or why it did not start.
    instance: Result<Instance, String>,
    flow2: Mutex<Flow2Slot>,
    grant: OnceCell<Result<Arc<Grant>, String>>,
    flow1: OnceCell<Result<Arc<Flow1>, String>>,
}

impl Lab {
    /// The session's lab, started by the first check that asks.
    pub(super) async fn get(ctx: &CheckCtx) -> Arc<Lab> {
        ctx.session.memo.get_or_init(|| Lab::start(ctx)).await
    }

    async fn start(ctx: &CheckCtx) -> Lab {
        ctx.step(format!(
            "start the lab: the session's MCP server configuration as instance {LAB:?}, with its own port and database"
        ));
        let instance = match ctx.instances() {
            Ok(instances) => instances.start(LAB, |_| {}).await,
            Err(e) => Err(format!("{e:#}")),
        };
        match &instance {
            Ok(i) => ctx.note(format!(
                "{LAB} answers at {} (database {})",
                i.base_url,
                i.db_path.display()
            )),
            Err(e) => ctx.note(format!("{LAB} did not start: {e}")),
        }
        Lab {
            instance,
            flow2: Mutex::new(None),
            grant: OnceCell::new(),
            flow1: OnceCell::new(),
        }
    }

    /// The instance, or why there is none (for a skip or a failure).
    pub(super) fn instance(&self) -> anyhow::Result<&Instance> {
        self.instance
            .as_ref()
            .map_err(|e| anyhow::anyhow!("the STORAGE lab instance did not start: {e}"))
    }

    /// The lab's database, opened now.
    pub(super) fn db(&self) -> anyhow::Result<TokenDb> {
        TokenDb::open(&self.instance()?.db_path)
    }

    pub(super) fn cipher(&self) -> anyhow::Result<Cipher> {
        Cipher::new(&self.instance()?.fernet_key)
    }

    /// Flow 2 done (running it now when needed), with the lock held: nothing changes the
    /// lab's stored refresh token while the guard lives.
    pub(super) async fn flow2(
        &self,
        ctx: &CheckCtx,
    ) -> anyhow::Result<(MutexGuard<'_, Flow2Slot>, Arc<Flow2>)> {
        let mut slot = self.flow2.lock().await;
        if slot.is_none() {
            let done = flows::flow2(ctx, self.instance()?).await;
            *slot = Some(done.map(Arc::new).map_err(|e| format!("{e:#}")));
        }
        match slot.as_ref() {
            Some(Ok(f)) => {
                let f = f.clone();
                ctx.note(f.summary());
                Ok((slot, f))
            }
            Some(Err(e)) => Err(anyhow::anyhow!("Flow 2 did not complete: {e}")),
            None => unreachable!("the slot was filled above"),
        }
    }

    /// Login Flow v2 provisioning done (once).
    pub(super) async fn grant(&self, ctx: &CheckCtx) -> anyhow::Result<Arc<Grant>> {
        let instance = self.instance()?;
        let done = self
            .grant
            .get_or_init(|| async {
                flows::login_flow(ctx, instance)
                    .await
                    .map(Arc::new)
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        let g = done
            .clone()
            .map_err(|e| anyhow::anyhow!("Login Flow v2 provisioning did not complete: {e}"))?;
        ctx.note(g.summary());
        Ok(g)
    }

    /// The proxy flow (Flow 1) done (once).
    pub(super) async fn flow1(&self, ctx: &CheckCtx) -> anyhow::Result<Arc<Flow1>> {
        let instance = self.instance()?;
        let done = self
            .flow1
            .get_or_init(|| async {
                flows::flow1(ctx, instance)
                    .await
                    .map(Arc::new)
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        let f = done
            .clone()
            .map_err(|e| anyhow::anyhow!("the proxy flow (Flow 1) did not complete: {e}"))?;
        ctx.note(f.summary());
        Ok(f)
    }
}
