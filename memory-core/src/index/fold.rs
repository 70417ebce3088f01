//! Changes queued on a spilled shard, folded into its file without loading the shard.
//!
//! Owns [`ShardFold`]: the new file is the old one with the changes applied, written as the
//! old one streams past, in the same encoding ([`super::image`]). Two passes over the old
//! file, because the encoding lists each string with its count of documents before the
//! documents: the first ([`ShardFold::plan`]) checks the file as a load would (except for an
//! episode listed twice, which the next load still refuses) and counts what the strings will
//! hold once the changes are applied; the second ([`FoldPlan::write`]) reads the file again
//! and writes the strings, then the documents the changes leave as they were (their ids
//! renumbered), then the documents the changes bring. What it holds meanwhile: the changes,
//! the strings with a few bytes each, and a few bytes per (task type, time bucket), never the
//! documents. So the memory budget's job can fold a long queue into a file whatever the
//! shard's size (`SpatiotemporalIndex::enforce_budget`). This module must never do I/O: files
//! are the caller's.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::sync::Arc;

use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::id::EpisodeId;

use super::cluster::bucket_of;
use super::document::{FieldLen, FieldTf, narrow_len};
use super::image::{
    COUNTS_DIFFER, DocIds, DocRecord, DocSink, Head, ShardLoad, Skipped, Strings, check_doc,
    interners, next, next_docs, renumber,
};
use super::interner::{Interner, Sym};
use super::postings::MAX_SLOTS;
use super::shard::{LoadedDoc, Pending};
use super::stats::IndexStats;

/// The changes queued on a spilled shard, to fold into its file.
#[derive(Debug)]
pub(crate) struct ShardFold {
    load: ShardLoad,
    /// Shared with the shard, which keeps them queued until the fold is done.
    changes: Arc<Vec<Pending>>,
    /// Each episode the changes touch: the position in `changes` of its last upsert, or `None`
    /// if its last change removes it.
    last: HashMap<EpisodeId, Option<usize>>,
}

impl ShardFold {
    /// The fold of `changes` (oldest first) into the file of the shard `load` describes.
    pub(crate) fn new(load: ShardLoad, changes: Arc<Vec<Pending>>) -> Self {
        let mut last = HashMap::with_capacity(changes.len());
        for (at, change) in changes.iter().enumerate() {
            match change {
                Pending::Upsert(d) => last.insert(d.id, Some(at)),
                Pending::Remove(id) => last.insert(*id, None),
            };
        }
        Self {
            load,
            changes,
            last,
        }
    }

    /// Which shard.
    pub(crate) fn load(&self) -> &ShardLoad {
        &self.load
    }

    /// The first pass, over a payload of `payload_len` bytes: the seed that checks it and
    /// plans the new file.
    pub(crate) fn plan(&self, payload_len: u64) -> PlanSeed<'_> {
        PlanSeed {
            fold: self,
            payload_len,
        }
    }

    /// The upserts the changes leave standing, oldest first.
    fn upserts(&self) -> impl Iterator<Item = &super::document::Draft> {
        self.changes
            .iter()
            .enumerate()
            .filter_map(|(at, change)| match change {
                Pending::Upsert(d) if self.last.get(&d.id) == Some(&Some(at)) => Some(d),
                _ => None,
            })
    }

    /// Fold into `bytes`, a whole payload (test spill targets keep shards in memory): the new
    /// payload and the statistics of its content.
    #[cfg(test)]
    pub(crate) fn fold_bytes(&self, bytes: &[u8]) -> crate::error::Result<(Vec<u8>, IndexStats)> {
        use crate::error::Error;
        let len = bytes.len() as u64;
        let decode = |e: postcard::Error| Error::corrupt(format!("undecodable shard content: {e}"));
        let plan = self
            .plan(len)
            .deserialize(&mut postcard::Deserializer::from_bytes(bytes))
            .map_err(decode)?
            .map_err(Error::corrupt)?;
        let mut out = Vec::new();
        plan.write(self, &mut out)
            .deserialize(&mut postcard::Deserializer::from_bytes(bytes))
            .map_err(decode)?
            .map_err(Error::corrupt)?;
        Ok((out, plan.stats))
    }
}

/// What the first pass found: the new file's strings and how many documents it lists.
#[derive(Debug)]
pub(crate) struct FoldPlan {
    /// Terms, tags, task types, with their counts once the changes are applied (the old
    /// file's ids kept, the new strings' ids added).
    strings: [Interner; 3],
    /// Per table, the ids of `strings` renumbered densely, as the new file numbers them.
    renumbered: [Vec<u32>; 3],
    docs: usize,
    stats: IndexStats,
}

impl FoldPlan {
    /// The statistics of the new file's content.
    pub(crate) fn stats(&self) -> IndexStats {
        self.stats
    }

    /// The second pass, over the same payload: the seed that writes the new payload into
    /// `out` as it decodes the old one.
    pub(crate) fn write<'a>(
        &'a self,
        fold: &'a ShardFold,
        out: &'a mut dyn Write,
    ) -> WriteSeed<'a> {
        WriteSeed {
            plan: self,
            fold,
            out,
        }
    }
}

/// The first pass ([`ShardFold::plan`]); a refusal of the file is the inner error.
pub(crate) struct PlanSeed<'a> {
    fold: &'a ShardFold,
    payload_len: u64,
}

impl<'de> DeserializeSeed<'de> for PlanSeed<'_> {
    type Value = Result<FoldPlan, String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_tuple(6, self)
    }
}

impl<'de> Visitor<'de> for PlanSeed<'_> {
    type Value = Result<FoldPlan, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a shard")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Head {
            namespace,
            domain,
            strings,
        } = match Head::read(&mut seq, &self.fold.load.key, self.payload_len)? {
            Ok(head) => head,
            Err(why) => return Ok(Err(why)),
        };
        let bad = |what: &str| format!("shard ({namespace:?}, {domain:?}): {what}");
        let counts = strings
            .each_ref()
            .map(|l| l.iter().map(|(_, n)| *n).collect::<Vec<u32>>());
        let strings = match interners(strings) {
            Ok(strings) => strings,
            Err(why) => return Ok(Err(bad(why))),
        };
        let mut planner = Planner {
            fold: self.fold,
            seen: counts.each_ref().map(|c| vec![0; c.len()]),
            strings,
            stats: IndexStats {
                shards: 1,
                ..IndexStats::default()
            },
            clusters: HashSet::new(),
        };
        let docs = next_docs(&mut seq, &mut planner, self.payload_len)?;
        Ok(docs
            .and_then(|()| planner.finish(&counts))
            .map_err(|why| bad(&why)))
    }
}

/// The first pass in progress.
struct Planner<'a> {
    fold: &'a ShardFold,
    /// Per term, tag and task type id of the old file: the documents holding it, counted as
    /// they come, to compare with the counts the strings came with.
    seen: [Vec<u32>; 3],
    /// The old file's strings, less the documents the changes replace or remove.
    strings: [Interner; 3],
    stats: IndexStats,
    /// The (task type id, time bucket) pairs of the documents kept and brought.
    clusters: HashSet<(Sym, i64)>,
}

impl Planner<'_> {
    /// Count a document of the new file.
    fn count(&mut self, task_type: Sym, len: FieldLen, terms: usize, embedded: bool, at: i64) {
        let s = &mut self.stats;
        s.episodes += 1;
        s.postings += terms as u64;
        s.embeddings += u64::from(embedded);
        s.field_tokens += len.iter().map(|l| u64::from(*l)).sum::<u64>();
        self.clusters
            .insert((task_type, bucket_of(at, self.fold.load.bucket_width)));
    }

    /// The plan, once the old file's counts matched its documents: the changes' documents
    /// counted in.
    fn finish(mut self, counts: &[Vec<u32>; 3]) -> Result<FoldPlan, String> {
        if self.seen != *counts {
            return Err(COUNTS_DIFFER.into());
        }
        let fold = self.fold;
        for d in fold.upserts() {
            let [terms, tags, task_types] = &mut self.strings;
            for (text, _) in &d.terms {
                terms.acquire(text);
            }
            for text in &d.tags {
                tags.acquire(text);
            }
            let task_type = task_types.acquire(&d.task_type);
            let len = narrow_len(&d.field_len);
            self.count(
                task_type,
                len,
                d.terms.len(),
                d.embedding.is_some(),
                d.started_at,
            );
        }
        let docs = self.stats.episodes;
        if docs > MAX_SLOTS {
            return Err("more documents than a shard holds".into());
        }
        let [terms, tags, task_types] = &self.strings;
        self.stats.task_types = task_types.len();
        self.stats.clusters = self.clusters.len();
        self.stats.tree_points = docs;
        self.stats.terms = terms.len();
        self.stats.tags = tags.len();
        Ok(FoldPlan {
            renumbered: self.strings.each_ref().map(renumber),
            strings: self.strings,
            docs,
            stats: self.stats,
        })
    }
}

impl DocSink for Planner<'_> {
    fn begin(&mut self, _count: usize) {}

    fn doc(&mut self, d: LoadedDoc, ids: &DocIds) -> Result<(), String> {
        check_doc(&d, ids, &mut self.seen, self.fold.load.embedding_dimension)?;
        if self.fold.last.contains_key(&d.id) {
            // Replaced or removed: its strings lose it (ids checked in range above).
            let [terms, tags, task_types] = &mut self.strings;
            ids.terms.iter().for_each(|(t, _)| terms.release(*t));
            ids.tags.iter().for_each(|t| tags.release(*t));
            task_types.release(d.task_type);
        } else {
            let embedded = d.embedding.is_some();
            self.count(d.task_type, d.len, ids.terms.len(), embedded, d.started_at);
        }
        Ok(())
    }
}

/// The second pass ([`FoldPlan::write`]); a refusal (of the old file, or a failed write) is
/// the inner error.
pub(crate) struct WriteSeed<'a> {
    plan: &'a FoldPlan,
    fold: &'a ShardFold,
    out: &'a mut dyn Write,
}

impl WriteSeed<'_> {
    /// Append `value`'s encoding to the new payload.
    fn put<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), String> {
        postcard::to_io(value, &mut *self.out)
            .map(drop)
            .map_err(|e| format!("the folded file could not be written: {e}"))
    }

    /// The new file's id of the string `old` of table `table`; kept documents' strings are
    /// all kept.
    fn renumber(&self, table: usize, old: Sym) -> Result<u32, String> {
        match self.plan.renumbered[table].get(old as usize) {
            Some(&new) if new != u32::MAX => Ok(new),
            _ => Err("a kept document holds a string that was dropped".into()),
        }
    }

    /// The new file's id of `text` in table `table`, a string of a document the changes bring.
    fn id_of(&self, table: usize, text: &str) -> Result<u32, String> {
        let old = self.plan.strings[table]
            .get(text)
            .ok_or("a new document's string was not counted")?;
        self.renumber(table, old)
    }

    /// Write the documents the changes bring, after the kept ones.
    fn write_upserts(&mut self) -> Result<usize, String> {
        let (mut tags, mut terms) = (Vec::new(), Vec::new());
        let mut written = 0;
        for d in self.fold.upserts() {
            tags.clear();
            for text in &d.tags {
                tags.push(self.id_of(1, text)?);
            }
            tags.sort_unstable();
            terms.clear();
            for (text, tf) in &d.terms {
                terms.push((self.id_of(0, text)?, *tf));
            }
            terms.sort_unstable_by_key(|(id, _)| *id);
            let record = DocRecord {
                id: d.id,
                version: d.version,
                task_type: self.id_of(2, &d.task_type)?,
                len: narrow_len(&d.field_len),
                outcome: d.outcome,
                reward: d.reward,
                started_at: d.started_at,
                completed_at: d.completed_at,
                embedding: d.embedding.as_deref(),
                tags: &tags,
                terms: &terms,
            };
            self.put(&record)?;
            written += 1;
        }
        Ok(written)
    }
}

impl<'de> DeserializeSeed<'de> for WriteSeed<'_> {
    type Value = Result<(), String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_tuple(6, self)
    }
}

impl<'de> Visitor<'de> for WriteSeed<'_> {
    type Value = Result<(), String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a shard")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        let namespace: String = next(&mut seq)?;
        let domain: String = next(&mut seq)?;
        for _ in 0..3 {
            next::<Skipped<(String, u32)>, _>(&mut seq)?;
        }
        let [terms, tags, task_types] = &self.plan.strings;
        // A tuple is its elements one after another, a sequence its length then its
        // elements: the documents' length here, the documents as they are written.
        let head = (
            &namespace,
            &domain,
            Strings(terms),
            Strings(tags),
            Strings(task_types),
            self.plan.docs,
        );
        if let Err(why) = self.put(&head) {
            return Ok(Err(why));
        }
        let mut kept = Kept {
            seed: &mut self,
            written: 0,
            tags: Vec::new(),
            terms: Vec::new(),
        };
        if let Err(why) = next_docs(&mut seq, &mut kept, u64::MAX)? {
            return Ok(Err(why));
        }
        let written = kept.written;
        Ok(self.write_upserts().and_then(|brought| {
            if written + brought == self.plan.docs {
                Ok(())
            } else {
                Err("the file changed between the fold's two passes".into())
            }
        }))
    }
}

/// The second pass's kept documents, written as they are decoded.
struct Kept<'a, 'b> {
    seed: &'a mut WriteSeed<'b>,
    written: usize,
    /// The current document's ids as renumbered (reused from one to the next).
    tags: Vec<u32>,
    terms: Vec<(u32, FieldTf)>,
}

impl DocSink for Kept<'_, '_> {
    fn begin(&mut self, _count: usize) {}

    fn doc(&mut self, d: LoadedDoc, ids: &DocIds) -> Result<(), String> {
        let seed = &mut *self.seed;
        if seed.fold.last.contains_key(&d.id) {
            return Ok(());
        }
        self.tags.clear();
        for t in &ids.tags {
            self.tags.push(seed.renumber(1, *t)?);
        }
        self.terms.clear();
        for (t, tf) in &ids.terms {
            self.terms.push((seed.renumber(0, *t)?, *tf));
        }
        let record = DocRecord {
            id: d.id,
            version: d.version,
            task_type: seed.renumber(2, d.task_type)?,
            len: d.len,
            outcome: d.outcome,
            reward: d.reward,
            started_at: d.started_at,
            completed_at: d.completed_at,
            embedding: d.embedding.as_deref(),
            tags: &self.tags,
            terms: &self.terms,
        };
        seed.put(&record)?;
        self.written += 1;
        Ok(())
    }
}
