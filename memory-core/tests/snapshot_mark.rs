//! A snapshot records the durable store's change mark only once every write that committed
//! before the mark was read has reached the index: a write held between its durable commit
//! and its index update makes the snapshot wait, so an open that finds the mark unchanged
//! never lacks that write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use memory_core::store::{ChangeMark, DurableStore, InMemoryStore, ListRequest, Page};
use memory_core::{
    Compared, Episode, EpisodeId, EpisodeSummary, MemoryConfig, Result, SelfLearningMemory, Step,
    TaskContext,
};
use tokio::sync::Notify;

/// An in-memory store whose next `create_episode`, once armed, returns only when released,
/// after the episode is stored (committed, not yet acknowledged).
#[derive(Default)]
struct HeldAfterCommit {
    inner: InMemoryStore,
    armed: AtomicBool,
    committed: Notify,
    release: Notify,
    mark_read: Notify,
}

#[async_trait]
impl DurableStore for HeldAfterCommit {
    async fn create_episode(&self, episode: &Episode) -> Result<()> {
        self.inner.create_episode(episode).await?;
        if self.armed.swap(false, Ordering::SeqCst) {
            self.committed.notify_one();
            self.release.notified().await;
        }
        Ok(())
    }
    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()> {
        self.inner.append_steps(id, steps).await
    }
    async fn complete_episode(&self, episode: &Episode) -> Result<()> {
        self.inner.complete_episode(episode).await
    }
    async fn update_episode(&self, episode: &Episode) -> Result<()> {
        self.inner.update_episode(episode).await
    }
    async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        self.inner.delete_episode(id).await
    }
    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.inner.get_episode(id).await
    }
    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>> {
        self.inner.list_episodes(request).await
    }
    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        self.inner.scan_summaries(after, limit).await
    }
    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        self.inner.scan_versions(after, limit).await
    }
    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
        self.inner.changed_since(since).await
    }
    async fn change_mark(&self) -> Result<ChangeMark> {
        let mark = self.inner.change_mark().await;
        self.mark_read.notify_one();
        mark
    }
    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
        self.inner.summaries_of(ids).await
    }
}

async fn open(store: &Arc<HeldAfterCommit>, dir: &std::path::Path) -> SelfLearningMemory {
    SelfLearningMemory::builder()
        .durable(store.clone())
        .index_snapshots(dir)
        .config(MemoryConfig {
            reconcile_interval: None,
            index_snapshot_interval: None,
            ..MemoryConfig::default()
        })
        .open()
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_waits_for_a_write_committed_before_its_mark_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(HeldAfterCommit::default());
    let m = Arc::new(open(&store, dir.path()).await);
    m.start_episode("an earlier task", TaskContext::new("ns", "ops", "t"))
        .await
        .unwrap();

    store.armed.store(true, Ordering::SeqCst);
    let writing = tokio::spawn({
        let m = m.clone();
        async move {
            m.start_episode(
                "committed, not yet indexed",
                TaskContext::new("ns", "ops", "t"),
            )
            .await
        }
    });
    store.committed.notified().await;
    let mut snapshotting = tokio::spawn({
        let m = m.clone();
        async move { m.write_snapshot().await }
    });
    store.mark_read.notified().await;
    // Room for a snapshot that did not wait to finish (it writes a few small files); the
    // right one cannot finish before the release, however long this is.
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut snapshotting);
    assert!(
        early.await.is_err(),
        "the snapshot must wait for the write that committed before its mark"
    );
    store.release.notify_one();
    let held = writing.await.unwrap().unwrap();
    assert_eq!(snapshotting.await.unwrap().unwrap().episodes, 2);
    drop(m); // as a kill: no shutdown, no later snapshot

    let m = open(&store, dir.path()).await;
    let open = m.index_open().clone();
    assert_eq!(open.compared, Compared::Unchanged, "{open:?}");
    assert!(m.index().contains(held).unwrap().is_some(), "{open:?}");
    m.shutdown().await.unwrap();
}
