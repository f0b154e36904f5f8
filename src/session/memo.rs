//! Per-session state that checks share, keyed by its type: the session keeps it and drops
//! it with itself, without knowing what it is (the catalogue's own types stay in the
//! catalogue).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

type Cell = Arc<dyn Any + Send + Sync>;

/// One value per type, made once by whichever caller asks first.
#[derive(Default)]
pub struct Memo {
    cells: Mutex<HashMap<TypeId, Cell>>,
}

impl Memo {
    /// The session's `T`, made by `init` the first time (concurrent callers wait for it).
    pub async fn get_or_init<T, F, Fut>(&self, init: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = self.cell::<T>();
        cell.get_or_init(|| async { Arc::new(init().await) })
            .await
            .clone()
    }

    /// The session's `T` if it was made, else `Err` from `init` (tried again next time).
    pub async fn get_or_try_init<T, E, F, Fut>(&self, init: F) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cell = self.cell::<T>();
        cell.get_or_try_init(|| async { init().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// The session's `T`, if something made it.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.cell::<T>().get().cloned()
    }

    fn cell<T: Send + Sync + 'static>(&self) -> Arc<OnceCell<Arc<T>>> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let cell = cells
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(OnceCell::<Arc<T>>::new()) as Cell)
            .clone();
        cell.downcast::<OnceCell<Arc<T>>>()
            .expect("a memo cell holds the type it is keyed by")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_type_is_made_once_and_failures_are_retried() {
        let memo = Memo::default();
        let a = memo.get_or_init(|| async { 1_u32 }).await;
        let b = memo.get_or_init(|| async { 2_u32 }).await;
        assert_eq!((*a, *b), (1, 1));
        let s = memo.get_or_init(|| async { "other type" }).await;
        assert_eq!(*s, "other type");
        let failed: Result<Arc<u64>, &str> = memo.get_or_try_init(|| async { Err("no") }).await;
        assert!(failed.is_err());
        let ok: Result<Arc<u64>, &str> = memo.get_or_try_init(|| async { Ok(7) }).await;
        assert_eq!(*ok.unwrap(), 7);
    }
}
