//! `Arc<S>` is a store wherever `S` is, so a test or an embedding application can keep a handle
//! to a store it has handed to the engine.

use std::sync::Arc;

use async_trait::async_trait;

use crate::episode::{Episode, EpisodeSummary, Step};
use crate::error::Result;
use crate::id::EpisodeId;
use crate::store::cache::{CacheStats, CacheStore, CachedVersion};
use crate::store::durable::{ChangeMark, DurableStore, ListRequest, Page, WriteStats};
use crate::store::journal::{Journal, JournalEntry, JournalSeq};

#[async_trait]
impl<S: DurableStore + ?Sized> DurableStore for Arc<S> {
    async fn create_episode(&self, episode: &Episode) -> Result<()> {
        (**self).create_episode(episode).await
    }
    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()> {
        (**self).append_steps(id, steps).await
    }
    async fn complete_episode(&self, episode: &Episode) -> Result<()> {
        (**self).complete_episode(episode).await
    }
    async fn update_episode(&self, episode: &Episode) -> Result<()> {
        (**self).update_episode(episode).await
    }
    async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        (**self).delete_episode(id).await
    }
    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>> {
        (**self).get_episode(id).await
    }
    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>> {
        (**self).list_episodes(request).await
    }
    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        (**self).scan_summaries(after, limit).await
    }
    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        (**self).scan_versions(after, limit).await
    }
    async fn change_mark(&self) -> Result<ChangeMark> {
        (**self).change_mark().await
    }
    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
        (**self).changed_since(since).await
    }
    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
        (**self).summaries_of(ids).await
    }
    async fn close(&self) -> Result<()> {
        (**self).close().await
    }
    fn write_stats(&self) -> Option<WriteStats> {
        (**self).write_stats()
    }
}

#[async_trait]
impl<S: CacheStore + ?Sized> CacheStore for Arc<S> {
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        (**self).get(id).await
    }
    async fn put(&self, episode: &Episode) -> Result<()> {
        (**self).put(episode).await
    }
    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        (**self).invalidate(id).await
    }
    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        (**self).scan(after, limit).await
    }
    async fn clear(&self) -> Result<()> {
        (**self).clear().await
    }
    fn stats(&self) -> CacheStats {
        (**self).stats()
    }
    async fn close(&self) -> Result<()> {
        (**self).close().await
    }
}

#[async_trait]
impl<S: Journal + ?Sized> Journal for Arc<S> {
    async fn append(&self, entry: &JournalEntry) -> Result<JournalSeq> {
        (**self).append(entry).await
    }
    async fn read(
        &self,
        after: Option<JournalSeq>,
        limit: usize,
    ) -> Result<Vec<(JournalSeq, JournalEntry)>> {
        (**self).read(after, limit).await
    }
    async fn remove_through(&self, seq: JournalSeq) -> Result<()> {
        (**self).remove_through(seq).await
    }
    async fn depth(&self) -> Result<u64> {
        (**self).depth().await
    }
}
