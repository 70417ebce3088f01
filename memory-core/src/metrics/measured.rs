//! Store wrappers that count the errors each store returns, by kind, for
//! [`super::StorageErrors`]. The engine wraps the stores it is given at open; the wrappers
//! pass every call through unchanged.

use std::sync::Arc;

use async_trait::async_trait;

use super::EngineMetrics;
use crate::episode::{Episode, EpisodeSummary, Step};
use crate::error::Result;
use crate::id::EpisodeId;
use crate::store::{
    CacheStats, CacheStore, CachedVersion, ChangeMark, DurableStore, Journal, JournalEntry,
    JournalSeq, ListRequest, Page, WriteStats,
};

/// A durable store whose errors are counted.
pub(crate) struct MeasuredDurable {
    pub(crate) inner: Arc<dyn DurableStore>,
    pub(crate) metrics: Arc<EngineMetrics>,
}

impl MeasuredDurable {
    fn count<T>(&self, r: Result<T>) -> Result<T> {
        self.metrics.durable_errors.count(&r);
        r
    }
}

#[async_trait]
impl DurableStore for MeasuredDurable {
    async fn create_episode(&self, episode: &Episode) -> Result<()> {
        self.count(self.inner.create_episode(episode).await)
    }
    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()> {
        self.count(self.inner.append_steps(id, steps).await)
    }
    async fn complete_episode(&self, episode: &Episode) -> Result<()> {
        self.count(self.inner.complete_episode(episode).await)
    }
    async fn update_episode(&self, episode: &Episode) -> Result<()> {
        self.count(self.inner.update_episode(episode).await)
    }
    async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        self.count(self.inner.delete_episode(id).await)
    }
    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.count(self.inner.get_episode(id).await)
    }
    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>> {
        self.count(self.inner.list_episodes(request).await)
    }
    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        self.count(self.inner.scan_summaries(after, limit).await)
    }
    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        self.count(self.inner.scan_versions(after, limit).await)
    }
    async fn change_mark(&self) -> Result<ChangeMark> {
        self.count(self.inner.change_mark().await)
    }
    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
        self.count(self.inner.changed_since(since).await)
    }
    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
        self.count(self.inner.summaries_of(ids).await)
    }
    async fn close(&self) -> Result<()> {
        self.count(self.inner.close().await)
    }
    fn write_stats(&self) -> Option<WriteStats> {
        self.inner.write_stats()
    }
}

/// A cache whose errors are counted.
pub(crate) struct MeasuredCache {
    pub(crate) inner: Arc<dyn CacheStore>,
    pub(crate) metrics: Arc<EngineMetrics>,
}

impl MeasuredCache {
    fn count<T>(&self, r: Result<T>) -> Result<T> {
        self.metrics.cache_errors.count(&r);
        r
    }
}

#[async_trait]
impl CacheStore for MeasuredCache {
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.count(self.inner.get(id).await)
    }
    async fn put(&self, episode: &Episode) -> Result<()> {
        self.count(self.inner.put(episode).await)
    }
    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        self.count(self.inner.invalidate(id).await)
    }
    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        self.count(self.inner.scan(after, limit).await)
    }
    async fn clear(&self) -> Result<()> {
        self.count(self.inner.clear().await)
    }
    fn stats(&self) -> CacheStats {
        self.inner.stats()
    }
    async fn close(&self) -> Result<()> {
        self.count(self.inner.close().await)
    }
}

/// A journal whose errors are counted.
pub(crate) struct MeasuredJournal {
    pub(crate) inner: Arc<dyn Journal>,
    pub(crate) metrics: Arc<EngineMetrics>,
}

impl MeasuredJournal {
    fn count<T>(&self, r: Result<T>) -> Result<T> {
        self.metrics.journal_errors.count(&r);
        r
    }
}

#[async_trait]
impl Journal for MeasuredJournal {
    async fn append(&self, entry: &JournalEntry) -> Result<JournalSeq> {
        self.count(self.inner.append(entry).await)
    }
    async fn read(
        &self,
        after: Option<JournalSeq>,
        limit: usize,
    ) -> Result<Vec<(JournalSeq, JournalEntry)>> {
        self.count(self.inner.read(after, limit).await)
    }
    async fn remove_through(&self, seq: JournalSeq) -> Result<()> {
        self.count(self.inner.remove_through(seq).await)
    }
    async fn depth(&self) -> Result<u64> {
        self.count(self.inner.depth().await)
    }
}
