//! The storage conformance suite: behaviour every [`DurableStore`], [`CacheStore`] and
//! [`Journal`] implementation must show. Each backend runs it from its own tests:
//!
//! ```text
//! #[tokio::test]
//! async fn conformance() {
//!     let store = MyStore::open(tempdir).await.unwrap();
//!     memory_core::conformance::durable_store(&store).await;
//! }
//! ```
//!
//! Every check uses fresh ids and its own namespace, so one store instance can run the whole
//! suite, and the suite can run on a store that already holds data. Failures panic with a
//! message naming the check, as test assertions do.

use crate::episode::{Episode, NewStep, Outcome, Step, TaskContext};
use crate::error::ErrorKind;
use crate::id::EpisodeId;
use crate::store::{CacheStore, ChangeMark, DurableStore, Journal, JournalEntry, ListRequest};
use crate::time;

/// A unique namespace for one check.
fn namespace(check: &str) -> String {
    format!("conf-{check}-{}", EpisodeId::new().as_uuid().simple())
}

/// A new in-progress episode in `ns`.
pub fn sample_episode(ns: &str) -> Episode {
    let ctx = TaskContext::new(ns, "retail", "refund").with_tags(["orders", "payments"]);
    Episode::new(
        EpisodeId::new(),
        "refund order #W1 ✓ naïve",
        ctx,
        time::now(),
    )
}

/// `n` steps numbered from `from`.
pub fn sample_steps(from: u32, n: u32) -> Vec<Step> {
    (from..from + n)
        .map(|i| {
            let s = NewStep::new(format!("tool_{}", i % 3), format!("{{\"i\":{i}}}"))
                .with_output("ok")
                .with_success(i % 4 != 3)
                .with_latency_ms(u64::from(i) * 7);
            Step::from_new(s, i, time::now())
        })
        .collect()
}

/// `episode` completed with `steps` (the steps replace whatever it carried), next version.
pub fn completed(mut episode: Episode, steps: Vec<Step>) -> Episode {
    episode.steps = steps;
    episode.outcome = Some(Outcome::partial("half done"));
    episode.reward = 0.1 + 0.2; // not exactly representable: must round-trip bit for bit
    episode.reflection = Some("check the order first".into());
    episode.completed_at = Some(time::now());
    episode.version += 1;
    episode
}

/// Run every durable-store check.
pub async fn durable_store(store: &dyn DurableStore) {
    create_and_get_round_trip(store).await;
    create_twice_conflicts(store).await;
    append_steps_rules(store).await;
    complete_is_atomic_and_checked(store).await;
    complete_writes_missing_steps(store).await;
    update_is_compare_and_set(store).await;
    delete_removes_everything(store).await;
    list_is_scoped_paginated_and_complete(store).await;
    scan_summaries_agree_with_episodes(store).await;
    change_mark_moves_with_every_write(store).await;
}

/// Created episodes read back exactly, including steps, unicode and float bits.
pub async fn create_and_get_round_trip(store: &dyn DurableStore) {
    let ns = namespace("roundtrip");
    let e = sample_episode(&ns);
    store.create_episode(&e).await.expect("create");
    let got = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got, e, "a new episode reads back unchanged");

    let mut full = completed(sample_episode(&ns), sample_steps(0, 5));
    full.embedding = Some(vec![0.25, -1.5, f32::MIN_POSITIVE]);
    full.reward = -0.0;
    store.create_episode(&full).await.expect("create completed");
    let got = store
        .get_episode(full.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        got, full,
        "a completed episode with steps reads back unchanged"
    );
    assert_eq!(got.reward.to_bits(), full.reward.to_bits(), "reward bits");

    assert!(
        store
            .get_episode(EpisodeId::new())
            .await
            .expect("get")
            .is_none(),
        "an unknown id is None"
    );
}

/// Creating an existing id is `Conflict` and changes nothing.
pub async fn create_twice_conflicts(store: &dyn DurableStore) {
    let e = sample_episode(&namespace("dup"));
    store.create_episode(&e).await.expect("create");
    let mut other = e.clone();
    other.description = "something else".into();
    let err = store
        .create_episode(&other)
        .await
        .expect_err("second create");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let got = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.description, e.description, "the first create stands");
}

/// Steps append in order; gaps, repeats, unknown and completed episodes are refused whole.
pub async fn append_steps_rules(store: &dyn DurableStore) {
    let ns = namespace("append");
    let e = sample_episode(&ns);
    store.create_episode(&e).await.expect("create");
    store
        .append_steps(e.id, &sample_steps(0, 3))
        .await
        .expect("append 0..3");
    store
        .append_steps(e.id, &sample_steps(3, 1))
        .await
        .expect("append 3");

    let err = store
        .append_steps(e.id, &sample_steps(5, 2))
        .await
        .expect_err("gap");
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "a gap is a conflict: {err}"
    );
    let err = store
        .append_steps(e.id, &sample_steps(2, 2))
        .await
        .expect_err("repeat");
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "a repeat is a conflict: {err}"
    );

    let got = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        got.steps,
        sample_steps_like(&got.steps, 4),
        "4 steps in order"
    );
    assert_eq!(got.version, e.version, "steps do not change the version");

    let err = store
        .append_steps(EpisodeId::new(), &sample_steps(0, 1))
        .await
        .expect_err("unknown");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let done = completed(got.clone(), got.steps.clone());
    store.complete_episode(&done).await.expect("complete");
    let err = store
        .append_steps(e.id, &sample_steps(4, 1))
        .await
        .expect_err("after completion");
    assert_eq!(err.kind(), ErrorKind::AlreadyCompleted, "{err}");
}

/// Checks that `steps` has `n` entries with seq 0..n, returning it for comparison.
fn sample_steps_like(steps: &[Step], n: usize) -> Vec<Step> {
    assert_eq!(steps.len(), n, "step count");
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s.seq as usize, i, "steps come back in seq order");
    }
    steps.to_vec()
}

/// Completion needs the next version and an in-progress episode; a refused completion
/// changes nothing.
pub async fn complete_is_atomic_and_checked(store: &dyn DurableStore) {
    let ns = namespace("complete");
    let e = sample_episode(&ns);
    store.create_episode(&e).await.expect("create");
    let steps = sample_steps(0, 2);
    store.append_steps(e.id, &steps).await.expect("append");

    let mut wrong_version = completed(e.clone(), steps.clone());
    wrong_version.version += 1;
    let err = store
        .complete_episode(&wrong_version)
        .await
        .expect_err("version skip");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let err = store
        .complete_episode(&completed(e.clone(), Vec::new()))
        .await
        .expect_err("fewer steps than stored");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let still = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    assert!(!still.is_completed(), "refused completions change nothing");
    assert_eq!(still.steps, steps);

    let done = completed(e.clone(), steps.clone());
    store.complete_episode(&done).await.expect("complete");
    let got = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got, done, "the completed episode reads back exactly");

    let mut again = done.clone();
    again.version += 1;
    let err = store.complete_episode(&again).await.expect_err("twice");
    assert_eq!(err.kind(), ErrorKind::AlreadyCompleted, "{err}");

    let err = store
        .complete_episode(&completed(sample_episode(&ns), Vec::new()))
        .await
        .expect_err("unknown");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// A completion may carry steps the store has not seen yet; it writes them in the same
/// transaction.
pub async fn complete_writes_missing_steps(store: &dyn DurableStore) {
    let e = sample_episode(&namespace("complete-steps"));
    store.create_episode(&e).await.expect("create");
    store
        .append_steps(e.id, &sample_steps(0, 2))
        .await
        .expect("append");
    let stored = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    let mut all = stored.steps.clone();
    all.extend(sample_steps(2, 3));
    let done = completed(stored, all);
    store.complete_episode(&done).await.expect("complete");
    let got = store
        .get_episode(done.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.steps.len(), 5);
    assert_eq!(got, done);
}

/// Updates need the next version; a stale one is `Conflict`; steps are untouched.
pub async fn update_is_compare_and_set(store: &dyn DurableStore) {
    let ns = namespace("update");
    let e = sample_episode(&ns);
    store.create_episode(&e).await.expect("create");
    store
        .append_steps(e.id, &sample_steps(0, 2))
        .await
        .expect("append");
    let stored = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");

    let mut next = stored.clone();
    next.context.tags = vec!["retagged".into()];
    next.reflection = Some("learned".into());
    next.version += 1;
    next.steps.clear(); // updates never touch steps, whatever they carry
    store.update_episode(&next).await.expect("update");
    let got = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.context.tags, vec!["retagged".to_string()]);
    assert_eq!(got.version, stored.version + 1);
    assert_eq!(got.steps, stored.steps, "steps untouched by update");

    let err = store.update_episode(&next).await.expect_err("stale");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let mut unknown = sample_episode(&ns);
    unknown.version = 2;
    let err = store.update_episode(&unknown).await.expect_err("unknown");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// The change mark moves with every write that takes effect (create, append, complete,
/// update, delete) and stays put across reads and refused writes; `changed_since` a mark
/// lists exactly the episodes written after it, and knows no mark the store did not return.
/// The store must have no other writer meanwhile.
pub async fn change_mark_moves_with_every_write(store: &dyn DurableStore) {
    let ns = namespace("mark");
    let start = store.change_mark().await.expect("mark");
    let e = sample_episode(&ns);
    store.create_episode(&e).await.expect("create");
    let mark = moved(store, start, e.id, "a create").await;
    store
        .append_steps(e.id, &sample_steps(0, 2))
        .await
        .expect("append");
    let mark = moved(store, mark, e.id, "a step append").await;
    let done = completed(e.clone(), sample_steps(0, 2));
    store.complete_episode(&done).await.expect("complete");
    let mark = moved(store, mark, e.id, "a completion").await;
    let mut next = done.clone();
    next.reflection = Some("again".into());
    next.version += 1;
    store.update_episode(&next).await.expect("update");
    let mark = moved(store, mark, e.id, "an update").await;
    let other = sample_episode(&ns);
    store.create_episode(&other).await.expect("create");
    let mark = moved(store, mark, other.id, "another create").await;

    store.get_episode(e.id).await.expect("get");
    store.scan_versions(None, 10).await.expect("scan");
    store.summaries_of(&[e.id]).await.expect("summaries");
    store
        .update_episode(&next)
        .await
        .expect_err("a stale update is refused");
    store.create_episode(&e).await.expect_err("a second create");
    assert_eq!(
        store.change_mark().await.expect("mark"),
        mark,
        "reads and refused writes moved the change mark"
    );
    assert_eq!(
        store.changed_since(mark).await.expect("changes"),
        Some(Vec::new())
    );
    assert!(store.delete_episode(e.id).await.expect("delete"));
    let mark = moved(store, mark, e.id, "a delete").await;

    let mut since_start = store
        .changed_since(start)
        .await
        .expect("changes")
        .expect("the start is remembered");
    since_start.sort();
    let mut both = vec![e.id, other.id];
    both.sort();
    assert_eq!(since_start, both, "each episode written since, once");
    for unknown in [
        ChangeMark {
            mark: mark.mark.wrapping_add(1),
            ..mark
        },
        ChangeMark {
            seq: mark.seq + 1,
            ..mark
        },
        ChangeMark {
            mark: start.mark.wrapping_add(1),
            ..start
        },
    ] {
        assert_eq!(
            store.changed_since(unknown).await.expect("changes"),
            None,
            "{unknown:?} is not a mark of this store (now {mark:?})"
        );
    }
}

/// Check that a write of `id` moved the change mark from `before` and that `changed_since`
/// `before` lists `id` alone; returns the new mark.
async fn moved(
    store: &dyn DurableStore,
    before: ChangeMark,
    id: EpisodeId,
    what: &str,
) -> ChangeMark {
    let now = store.change_mark().await.expect("mark");
    assert_ne!(now, before, "the change mark did not move after {what}");
    assert_eq!(
        store.changed_since(before).await.expect("changes"),
        Some(vec![id]),
        "changes since the mark before {what}"
    );
    now
}

/// Delete removes the episode, its steps and its summary; deleting twice is `Ok(false)`.
pub async fn delete_removes_everything(store: &dyn DurableStore) {
    let ns = namespace("delete");
    let e = sample_episode(&ns);
    store.create_episode(&e).await.expect("create");
    store
        .append_steps(e.id, &sample_steps(0, 2))
        .await
        .expect("append");
    assert!(store.delete_episode(e.id).await.expect("delete"));
    assert!(!store.delete_episode(e.id).await.expect("delete again"));
    assert!(store.get_episode(e.id).await.expect("get").is_none());
    let page = store
        .list_episodes(&ListRequest {
            namespace: ns,
            after: None,
            limit: 10,
        })
        .await
        .expect("list");
    assert!(page.items.is_empty(), "deleted episodes are not listed");
    let mut after = None;
    loop {
        let page = store.scan_summaries(after, 500).await.expect("scan");
        assert!(
            page.items.iter().all(|s| s.id != e.id),
            "deleted episodes leave no summary"
        );
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    // Re-creating the id after delete starts clean.
    store.create_episode(&e).await.expect("re-create");
    let got = store
        .get_episode(e.id)
        .await
        .expect("get")
        .expect("present");
    assert!(got.steps.is_empty(), "no steps survive a delete");
}

/// Listing returns only the namespace's episodes, in id order, every one exactly once.
pub async fn list_is_scoped_paginated_and_complete(store: &dyn DurableStore) {
    let ns = namespace("list");
    let other = namespace("list-other");
    let mut ids = Vec::new();
    for i in 0..23 {
        let e = sample_episode(&ns);
        store.create_episode(&e).await.expect("create");
        ids.push(e.id);
        if i % 5 == 0 {
            store
                .create_episode(&sample_episode(&other))
                .await
                .expect("create other");
        }
    }
    for limit in [1, 5, 23, 100] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_episodes(&ListRequest {
                    namespace: ns.clone(),
                    after,
                    limit,
                })
                .await
                .expect("list");
            assert!(page.items.len() <= limit, "page within limit");
            assert!(
                page.items.iter().all(|e| e.context.namespace == ns),
                "only the asked namespace"
            );
            seen.extend(page.items.iter().map(|e| e.id));
            match page.next_after {
                Some(n) => {
                    assert_eq!(page.items.len(), limit, "a non-final page is full");
                    after = Some(n);
                }
                None => break,
            }
        }
        assert_eq!(seen, ids, "limit {limit}: every episode once, in id order");
    }
    let empty = store
        .list_episodes(&ListRequest {
            namespace: namespace("list-empty"),
            after: None,
            limit: 10,
        })
        .await
        .expect("list empty");
    assert!(empty.items.is_empty() && empty.next_after.is_none());
}

/// Summaries exist for every episode, in id order, and match `Episode::summary`.
pub async fn scan_summaries_agree_with_episodes(store: &dyn DurableStore) {
    let ns = namespace("scan");
    let a = sample_episode(&ns);
    store.create_episode(&a).await.expect("create a");
    store
        .append_steps(a.id, &sample_steps(0, 3))
        .await
        .expect("append");
    let a_stored = store
        .get_episode(a.id)
        .await
        .expect("get")
        .expect("present");
    let a_done = completed(a_stored.clone(), a_stored.steps.clone());
    store.complete_episode(&a_done).await.expect("complete");
    let b = sample_episode(&ns);
    store.create_episode(&b).await.expect("create b");

    let mut found = Vec::new();
    let mut after = None;
    let mut last = None;
    loop {
        let page = store.scan_summaries(after, 7).await.expect("scan");
        for s in &page.items {
            assert!(last < Some(s.id), "ascending id order");
            last = Some(s.id);
            if s.id == a.id || s.id == b.id {
                found.push(s.clone());
            }
        }
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let a_now = store
        .get_episode(a.id)
        .await
        .expect("get")
        .expect("present");
    let b_now = store
        .get_episode(b.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(found, vec![a_now.summary(), b_now.summary()]);
    assert_eq!(found[0].step_count, 3);
    assert!(found[0].outcome.is_some() && found[1].outcome.is_none());
}

/// Run every cache check. `corrupt` damages the stored record of an id in place (flip bytes
/// on disk or through a test hook) and returns whether it found one.
pub async fn cache_store<C, F>(cache: &C, corrupt: F)
where
    C: CacheStore + ?Sized,
    F: Fn(EpisodeId) -> bool,
{
    let ns = namespace("cache");
    let e = completed(sample_episode(&ns), sample_steps(0, 3));
    assert!(cache.get(e.id).await.expect("get").is_none(), "miss first");
    let before = cache.stats();
    cache.put(&e).await.expect("put");
    assert_eq!(cache.get(e.id).await.expect("get"), Some(e.clone()), "hit");
    let after = cache.stats();
    assert!(after.hits > before.hits, "hits counted");
    assert!(after.entries >= 1 && after.bytes > 0, "size counted");

    // Monotonic: an older version never replaces a newer one.
    let mut newer = e.clone();
    newer.version += 1;
    newer.reflection = Some("newer".into());
    cache.put(&newer).await.expect("put newer");
    cache.put(&e).await.expect("put older");
    assert_eq!(
        cache.get(e.id).await.expect("get"),
        Some(newer.clone()),
        "older put ignored"
    );

    // Scan sees the entry with its version.
    let mut seen = None;
    let mut after_id = None;
    loop {
        let page = cache.scan(after_id, 100).await.expect("scan");
        if let Some(v) = page.items.iter().find(|v| v.id == e.id) {
            seen = Some(*v);
        }
        match page.next_after {
            Some(n) => after_id = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.and_then(|v| v.version), Some(newer.version));

    // Corruption is reported, never returned as data.
    assert!(corrupt(e.id), "the corrupt hook found the entry");
    let err = cache.get(e.id).await.expect_err("corrupt entry");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(cache.stats().corrupt >= 1, "corruption counted");
    let page = cache.scan(None, usize::MAX).await.expect("scan");
    let v = page.items.iter().find(|v| v.id == e.id).expect("listed");
    assert_eq!(v.version, None, "scan marks the damaged entry");
    // A repair put replaces the damaged record.
    cache.put(&newer).await.expect("repair put");
    assert_eq!(cache.get(e.id).await.expect("get"), Some(newer.clone()));

    cache.invalidate(e.id).await.expect("invalidate");
    assert!(cache.get(e.id).await.expect("get").is_none(), "invalidated");
    cache
        .invalidate(e.id)
        .await
        .expect("invalidate twice is fine");

    cache.put(&e).await.expect("put");
    cache.clear().await.expect("clear");
    assert!(cache.get(e.id).await.expect("get").is_none(), "cleared");
    assert_eq!(cache.stats().entries, 0);
}

/// Run every journal check on an empty journal.
pub async fn journal(journal: &dyn Journal) {
    assert_eq!(journal.depth().await.expect("depth"), 0, "starts empty");
    let ns = namespace("journal");
    let e = sample_episode(&ns);
    let entries = vec![
        JournalEntry::Create(e.clone()),
        JournalEntry::AppendSteps {
            id: e.id,
            steps: sample_steps(0, 2),
        },
        JournalEntry::Complete(completed(e.clone(), sample_steps(0, 2))),
        JournalEntry::Update(e.clone()),
        JournalEntry::Delete(e.id),
    ];
    let mut seqs = Vec::new();
    for entry in &entries {
        seqs.push(journal.append(entry).await.expect("append"));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    assert_eq!(journal.depth().await.expect("depth"), 5);

    let all = journal.read(None, 100).await.expect("read");
    assert_eq!(all.iter().map(|(s, _)| *s).collect::<Vec<_>>(), seqs);
    assert_eq!(
        all.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        entries,
        "entries read back exactly, in order"
    );
    let page = journal.read(Some(seqs[1]), 2).await.expect("read page");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].0, seqs[2]);

    journal.remove_through(seqs[2]).await.expect("remove");
    assert_eq!(journal.depth().await.expect("depth"), 2);
    let rest = journal.read(None, 100).await.expect("read");
    assert_eq!(rest.first().map(|(s, _)| *s), Some(seqs[3]));

    let next = journal
        .append(&JournalEntry::Delete(EpisodeId::new()))
        .await
        .expect("append");
    assert!(next > seqs[4], "sequence numbers are never reused");
    journal.remove_through(next).await.expect("remove all");
    assert_eq!(journal.depth().await.expect("depth"), 0);
}
