//! [`DeferredCache`]: a cache store that is usable at once while the store behind it is still
//! being opened, so that opening a large cache file is not on the way to the first answer.
//!
//! Until the store has opened, the deferred cache holds nothing: `get` misses, `put` stores
//! nothing, and both `put` and `invalidate` remember the episode id (`scan`, maintenance
//! work, waits for the open instead). Once the store is open,
//! every remembered id is invalidated in it *before* the store serves a single read, because
//! the file may hold an older copy of an episode written in the meantime. Only then does every
//! call go straight to the store. If more ids are remembered than [`MAX_REMEMBERED`], the
//! store is cleared instead (correct, only colder). A failed open, or a failed catch-up, leaves
//! the deferred cache failed: every call then returns an `Unavailable` error naming the cause,
//! which the engine treats like any other cache failure (reads go to the durable store).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::episode::Episode;
use crate::error::{Error, Result};
use crate::id::EpisodeId;
use crate::store::cache::{CacheStats, CacheStore, CachedVersion};
use crate::store::durable::Page;

/// Episode ids remembered while opening before the deferred cache gives up on remembering and
/// clears the whole store once it is open.
pub const MAX_REMEMBERED: usize = 65_536;

/// Where a [`DeferredCache`] is.
#[derive(Debug, Clone)]
pub enum DeferredState {
    /// The store is still opening (or catching up with the writes made meanwhile).
    Opening,
    /// Every call goes to the store.
    Ready,
    /// The open or the catch-up failed with this error; every call fails.
    Failed(Error),
}

enum State {
    Opening {
        remembered: HashSet<EpisodeId>,
        clear_all: bool,
    },
    Ready(Arc<dyn CacheStore>),
    Failed(Error),
}

/// A [`CacheStore`] over a store that opens in the background. Cheap to share behind an
/// `Arc`; see the module docs for what it does while the store is opening.
///
/// ```
/// use memory_core::store::{CacheStore, DeferredCache, InMemoryCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memory_core::Result<()> {
/// let cache = DeferredCache::spawn(async { Ok(InMemoryCache::default()) });
/// cache.opened().await?; // optional: calls made before this work too
/// assert_eq!(cache.stats().entries, 0);
/// # Ok(())
/// # }
/// ```
pub struct DeferredCache {
    state: Arc<Mutex<State>>,
    settled: watch::Receiver<bool>,
}

impl std::fmt::Debug for DeferredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredCache")
            .field("state", &self.state())
            .finish()
    }
}

fn lock(state: &Mutex<State>) -> Result<MutexGuard<'_, State>> {
    state
        .lock()
        .map_err(|_| Error::storage("deferred cache state lock poisoned by a panic"))
}

impl DeferredCache {
    /// Start `open` on the current tokio runtime and return at once. Must be called within a
    /// runtime.
    pub fn spawn<C, F>(open: F) -> Self
    where
        C: CacheStore,
        F: Future<Output = Result<C>> + Send + 'static,
    {
        let state = Arc::new(Mutex::new(State::Opening {
            remembered: HashSet::new(),
            clear_all: false,
        }));
        let (settle, settled) = watch::channel(false);
        let task_state = state.clone();
        tokio::spawn(async move {
            let outcome = match open.await {
                Ok(store) => catch_up(&task_state, Arc::new(store)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "the cache did not open; reads go to the durable store");
                if let Ok(mut s) = task_state.lock() {
                    *s = State::Failed(e);
                }
            }
            let _ = settle.send(true);
        });
        Self { state, settled }
    }

    /// Where the cache is now.
    pub fn state(&self) -> DeferredState {
        match self.state.lock().as_deref() {
            Ok(State::Opening { .. }) => DeferredState::Opening,
            Ok(State::Ready(_)) => DeferredState::Ready,
            Ok(State::Failed(e)) => DeferredState::Failed(e.clone()),
            Err(_) => DeferredState::Failed(Error::storage(
                "deferred cache state lock poisoned by a panic",
            )),
        }
    }

    /// Wait until the store has opened and caught up (`Ok`), or failed (its error).
    pub async fn opened(&self) -> Result<()> {
        let mut settled = self.settled.clone();
        // The sender lives until the open settles; an error here means it settled already.
        let _ = settled.wait_for(|done| *done).await;
        match self.state() {
            DeferredState::Ready => Ok(()),
            DeferredState::Failed(e) => Err(e),
            DeferredState::Opening => Err(unsettled()),
        }
    }

    /// The store, once ready; `Ok(None)` while opening; the failure otherwise.
    fn store(&self) -> Result<Option<Arc<dyn CacheStore>>> {
        match &*lock(&self.state)? {
            State::Opening { .. } => Ok(None),
            State::Ready(store) => Ok(Some(store.clone())),
            State::Failed(e) => Err(failed(e)),
        }
    }

    /// While opening, remember `id` (or give up remembering and clear all at open) and return
    /// `None`; once ready, the store.
    fn remember(&self, id: EpisodeId) -> Result<Option<Arc<dyn CacheStore>>> {
        match &mut *lock(&self.state)? {
            State::Opening {
                remembered,
                clear_all,
            } => {
                if !*clear_all {
                    remembered.insert(id);
                    if remembered.len() > MAX_REMEMBERED {
                        *remembered = HashSet::new();
                        *clear_all = true;
                    }
                }
                Ok(None)
            }
            State::Ready(store) => Ok(Some(store.clone())),
            State::Failed(e) => Err(failed(e)),
        }
    }
}

/// The open task ended (it panicked) without making the cache ready or failed.
fn unsettled() -> Error {
    Error::storage("the cache's open task ended without settling")
}

/// The error every call returns after a failed open.
fn failed(cause: &Error) -> Error {
    Error::unavailable(format!("the cache did not open: {cause}")).with_source(cause.clone())
}

/// Invalidate in `store` what was written while it opened, then make it ready. The state
/// becomes `Ready` under the same lock that finds nothing left to catch up with, so no write
/// slips between the last catch-up and the first direct call.
async fn catch_up(state: &Mutex<State>, store: Arc<dyn CacheStore>) -> Result<()> {
    loop {
        let (ids, clear) = {
            let mut guard = lock(state)?;
            let State::Opening {
                remembered,
                clear_all,
            } = &mut *guard
            else {
                return Ok(());
            };
            let taken = (std::mem::take(remembered), std::mem::take(clear_all));
            if taken.0.is_empty() && !taken.1 {
                *guard = State::Ready(store);
                return Ok(());
            }
            taken
        };
        if clear {
            store.clear().await?;
        }
        for id in ids {
            store.invalidate(id).await?;
        }
    }
}

#[async_trait]
impl CacheStore for DeferredCache {
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        match self.store()? {
            Some(store) => store.get(id).await,
            None => Ok(None),
        }
    }

    async fn put(&self, episode: &Episode) -> Result<()> {
        match self.remember(episode.id)? {
            Some(store) => store.put(episode).await,
            None => Ok(()),
        }
    }

    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        match self.remember(id)? {
            Some(store) => store.invalidate(id).await,
            None => Ok(()),
        }
    }

    /// Waits for the open to settle first (a scan is maintenance work, not on a read path).
    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        let _ = self.opened().await;
        match self.store()? {
            Some(store) => store.scan(after, limit).await,
            None => Err(unsettled()),
        }
    }

    async fn clear(&self) -> Result<()> {
        let store = match &mut *lock(&self.state)? {
            State::Opening {
                remembered,
                clear_all,
            } => {
                *remembered = HashSet::new();
                *clear_all = true;
                return Ok(());
            }
            State::Ready(store) => store.clone(),
            State::Failed(e) => return Err(failed(e)),
        };
        store.clear().await
    }

    fn stats(&self) -> CacheStats {
        match self.store() {
            Ok(Some(store)) => store.stats(),
            _ => CacheStats::default(),
        }
    }

    /// Waits for the open to settle, then closes the store (a failed open has nothing to
    /// close).
    async fn close(&self) -> Result<()> {
        if self.opened().await.is_err() {
            return Ok(());
        }
        match self.store()? {
            Some(store) => store.close().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::sample_episode;
    use crate::error::ErrorKind;
    use crate::store::InMemoryCache;
    use tokio::sync::oneshot;

    /// A deferred cache over `store` whose open finishes when the returned sender fires.
    fn held_open(store: Arc<InMemoryCache>) -> (DeferredCache, oneshot::Sender<()>) {
        let (release, wait) = oneshot::channel::<()>();
        let cache = DeferredCache::spawn(async move {
            let _ = wait.await;
            Ok(store)
        });
        (cache, release)
    }

    #[tokio::test]
    async fn an_older_copy_in_the_store_is_never_served_after_a_write_made_while_opening() {
        let store = Arc::new(InMemoryCache::new());
        let old = sample_episode("ns");
        store.put(&old).await.unwrap();
        let mut newer = old.clone();
        newer.version = old.version + 1;

        let (cache, release) = held_open(store.clone());
        assert!(matches!(cache.state(), DeferredState::Opening));
        assert_eq!(
            cache.get(old.id).await.unwrap(),
            None,
            "a miss while opening"
        );
        cache.put(&newer).await.unwrap();
        assert_eq!(
            store.get(old.id).await.unwrap(),
            Some(old.clone()),
            "not yet open"
        );

        release.send(()).unwrap();
        cache.opened().await.unwrap();
        assert!(matches!(cache.state(), DeferredState::Ready));
        assert_eq!(
            cache.get(old.id).await.unwrap(),
            None,
            "the old copy is gone"
        );
        cache.put(&newer).await.unwrap();
        assert_eq!(
            cache.get(old.id).await.unwrap(),
            Some(newer),
            "direct once ready"
        );
    }

    #[tokio::test]
    async fn too_many_writes_while_opening_clear_the_whole_store() {
        let store = Arc::new(InMemoryCache::new());
        let untouched = sample_episode("ns");
        store.put(&untouched).await.unwrap();
        let (cache, release) = held_open(store.clone());
        for _ in 0..=MAX_REMEMBERED {
            cache.invalidate(EpisodeId::new()).await.unwrap();
        }
        release.send(()).unwrap();
        cache.opened().await.unwrap();
        assert_eq!(store.stats().entries, 0, "cleared instead of remembered");
        assert_eq!(cache.get(untouched.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_open_fails_every_call_naming_the_cause() {
        let cache = DeferredCache::spawn(async {
            Err::<InMemoryCache, _>(Error::corrupt("page 7 is damaged"))
        });
        let err = cache.opened().await.expect_err("failed open");
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        let e = sample_episode("ns");
        for err in [
            cache.get(e.id).await.expect_err("get"),
            cache.put(&e).await.expect_err("put"),
            cache.invalidate(e.id).await.expect_err("invalidate"),
            cache.clear().await.expect_err("clear"),
            cache.scan(None, 1).await.map(|_| ()).expect_err("scan"),
        ] {
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
            assert!(err.message().contains("page 7 is damaged"), "{err}");
        }
        cache.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_scan_waits_for_the_open_rather_than_answer_an_empty_page() {
        let store = Arc::new(InMemoryCache::new());
        store.put(&sample_episode("ns")).await.unwrap();
        let (cache, release) = held_open(store);
        let cache = Arc::new(cache);
        let scanning = tokio::spawn({
            let cache = cache.clone();
            async move { cache.scan(None, 10).await }
        });
        tokio::task::yield_now().await;
        assert!(!scanning.is_finished(), "waits while opening");
        release.send(()).unwrap();
        assert_eq!(scanning.await.unwrap().unwrap().items.len(), 1);
    }
}
