//! [`View`]: the effective state of one episode as a [`crate::coordinator::ResilientStore`]
//! knows it — the durable store's copy, when it could be read, with the journaled but not yet
//! replayed writes applied on top — and the checks a new journaled write must pass against it.
//!
//! Folding is idempotent: an entry that has already landed in the copy read (replay runs
//! concurrently with readers) is recognised with the rules of [`crate::coordinator::landing`]
//! and not applied twice. Without a copy, only what the journal itself says is known: a
//! journaled create carries the whole episode, a delete says it is gone, a completion carries
//! the whole episode on the condition that the episode is still stored ([`View::Claimed`]: it
//! is taken to carry the stored steps, as the facade's always do, but a delete the journal did
//! not order may have removed the episode, which voids it), appends and updates leave a
//! [`Partial`] picture.
//!
//! Pure: no I/O, no clock, no locks. It never invents a field it does not know; unknown parts
//! stay unknown, and [`View::check`] only refuses what it can prove the durable store would
//! refuse.

use crate::coordinator::landing::{Landing, landing};
use crate::coordinator::write::Write;
use crate::episode::Episode;
use crate::error::{Error, Result};
use crate::id::EpisodeId;
use crate::store::JournalEntry;
use crate::store::rules::{self, StoredState};

/// What the durable store is known to hold for the episode under the journaled writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Base {
    /// Not read (the store is unavailable).
    Unknown,
    /// Read: the stored episode, or `None`.
    Known(Option<Box<Episode>>),
}

impl Base {
    /// The stored copy as read.
    pub(crate) fn known(stored: Option<Episode>) -> Self {
        Base::Known(stored.map(Box::new))
    }
}

/// What is known of an episode whose stored copy is unknown, from its journaled appends and
/// updates alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Partial {
    /// Whether it is completed, if a journaled write says.
    pub(crate) completed: Option<bool>,
    /// Its version, if a journaled update says.
    pub(crate) version: Option<u64>,
    /// Its step count, if a journaled append says.
    pub(crate) step_count: Option<usize>,
}

/// The effective state of one episode.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum View {
    /// Nothing is known (no copy read, no journaled write settles it).
    Unknown,
    /// Known not to exist.
    Absent,
    /// Known exactly.
    Present(Box<Episode>),
    /// The episode as the journal alone gives it (a completion journaled over an unknown
    /// stored copy, and what followed): exact if the episode is still stored, and void if a
    /// delete the journal did not order removed it ([`crate::coordinator::landing::Landing::Void`]).
    /// Served when the copy cannot be read; reading it settles the question.
    Claimed(Box<Episode>),
    /// Exists as far as the journal says; only parts are known.
    Partial(Partial),
    /// The journal and the stored copy contradict each other; replay will stop at this
    /// episode. The reason.
    Inconsistent(String),
}

/// What to do with a write that passed [`View::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Journal it; `existed` is the answer `delete_episode` gives (`true` for other writes
    /// and when existence cannot be known).
    Journal {
        /// `delete_episode`'s answer.
        existed: bool,
    },
    /// A delete of an episode known not to exist: nothing to journal, answer `false`.
    NoOp,
}

impl View {
    /// Fold the journaled `entries` of one episode, oldest first, over `base`.
    ///
    /// Everything before the last journaled delete is irrelevant to the result (the delete
    /// removes whatever was there), so the fold starts from [`View::Absent`] after it.
    pub(crate) fn of(base: Base, entries: &[JournalEntry]) -> View {
        let last_delete = entries
            .iter()
            .rposition(|e| matches!(e, JournalEntry::Delete(_)));
        let (start, rest) = match (last_delete, base) {
            (Some(i), _) => (View::Absent, &entries[i + 1..]),
            (None, Base::Unknown) => (View::Unknown, entries),
            (None, Base::Known(None)) => (View::Absent, entries),
            (None, Base::Known(Some(e))) => (View::Present(e), entries),
        };
        rest.iter().fold(start, View::then)
    }

    /// Whether reading the stored copy could not sharpen this view.
    pub(crate) fn is_settled(&self) -> bool {
        !matches!(self, View::Unknown | View::Partial(_) | View::Claimed(_))
    }

    fn then(self, entry: &JournalEntry) -> View {
        match self {
            View::Inconsistent(_) => self,
            View::Absent => over_known(None, entry),
            View::Present(e) => over_known(Some(*e), entry),
            View::Claimed(e) => match over_known(Some(*e), entry) {
                View::Present(e) => View::Claimed(e),
                other => other,
            },
            View::Unknown => over_unknown(None, entry),
            View::Partial(p) => over_unknown(Some(p), entry),
        }
    }

    /// Whether the durable store, holding this view, would accept `write`; `Ok` says what to
    /// do with it. Errors are the ones the store would return (same kinds and messages).
    pub(crate) fn check(&self, write: Write<'_>) -> Result<Verdict> {
        let id = write.id();
        match self {
            View::Present(s) | View::Claimed(s) => check_known(id, Some(StoredState::of(s)), write),
            View::Absent => check_known(id, None, write),
            View::Partial(p) => check_partial(id, *p, write),
            View::Unknown => check_unknown(id, write),
            View::Inconsistent(why) => match write {
                Write::Delete(_) => Ok(Verdict::Journal { existed: true }),
                _ => Err(Error::conflict(format!(
                    "episode {id}: journaled writes disagree with the durable store ({why}); \
                     only a delete is accepted until this is resolved"
                ))),
            },
        }
    }
}

/// Apply `entry` over a known stored state (idempotently).
fn over_known(stored: Option<Episode>, entry: &JournalEntry) -> View {
    match (landing(entry, stored.as_ref()), stored) {
        (Landing::Diverged(why), _) => View::Inconsistent(why),
        (Landing::Landed, stored) => stored.map_or(View::Absent, |s| View::Present(Box::new(s))),
        // Nothing to apply the change to (`Tail` needs a stored copy, so never meets `None`).
        (Landing::Void, _) | (Landing::Tail(_), None) => View::Absent,
        (Landing::Tail(tail), Some(mut s)) => {
            s.steps.extend_from_slice(tail);
            View::Present(Box::new(s))
        }
        (Landing::Missing, stored) => match (entry, stored) {
            (JournalEntry::Create(e), _) => View::Present(Box::new(e.clone())),
            // A change over nothing stored is `Void` above, never `Missing`.
            (JournalEntry::Delete(_), _) | (_, None) => View::Absent,
            (JournalEntry::AppendSteps { steps, .. }, Some(mut s)) => {
                s.steps.extend_from_slice(steps);
                View::Present(Box::new(s))
            }
            (JournalEntry::Complete(e), Some(s)) => {
                let stored_len = s.steps.len();
                let mut next = e.clone();
                next.steps = s.steps;
                next.steps.extend_from_slice(&e.steps[stored_len..]);
                View::Present(Box::new(next))
            }
            (JournalEntry::Update(e), Some(s)) => View::Present(Box::new(Episode {
                steps: s.steps,
                ..e.clone()
            })),
        },
    }
}

/// Apply `entry` when the stored copy is unknown; `partial` is `Some` when earlier journaled
/// writes say the episode exists.
fn over_unknown(partial: Option<Partial>, entry: &JournalEntry) -> View {
    let id = entry.episode_id();
    let broken = |why: &str| View::Inconsistent(format!("episode {id}: {why}"));
    match entry {
        JournalEntry::Create(e) => match partial {
            None => View::Present(Box::new(e.clone())),
            Some(_) => broken("created after other journaled writes"),
        },
        JournalEntry::AppendSteps { steps, .. } => {
            let mut p = partial.unwrap_or_default();
            let start = steps.first().map_or(0, |s| s.seq as usize);
            if p.completed == Some(true) {
                return broken("steps journaled after its completion");
            }
            if p.step_count.is_some_and(|n| n != start) {
                return broken("journaled appends leave a gap");
            }
            p.step_count = Some(start + steps.len());
            p.completed = Some(false);
            View::Partial(p)
        }
        JournalEntry::Complete(e) => {
            let p = partial.unwrap_or_default();
            if p.completed == Some(true) {
                return broken("completed twice");
            }
            if p.version
                .is_some_and(|v| v.checked_add(1) != Some(e.version))
            {
                return broken("journaled versions do not chain");
            }
            if p.step_count.is_some_and(|n| e.steps.len() < n) {
                return broken("completion carries fewer steps than were appended");
            }
            View::Claimed(Box::new(e.clone()))
        }
        JournalEntry::Update(e) => {
            let mut p = partial.unwrap_or_default();
            if p.version
                .is_some_and(|v| v.checked_add(1) != Some(e.version))
            {
                return broken("journaled versions do not chain");
            }
            p.version = Some(e.version);
            p.completed = Some(e.is_completed());
            View::Partial(p)
        }
        JournalEntry::Delete(_) => View::Absent,
    }
}

fn check_known(id: EpisodeId, stored: Option<StoredState>, write: Write<'_>) -> Result<Verdict> {
    let journal = Verdict::Journal { existed: true };
    match write {
        Write::Create(e) => {
            rules::check_create(id, stored.is_some(), rules::seqs(&e.steps))?;
            Ok(journal)
        }
        Write::AppendSteps(_, steps) => {
            rules::check_append(id, &rules::require(id, stored)?, rules::seqs(steps))?;
            Ok(journal)
        }
        Write::Complete(e) => {
            let given: Vec<u32> = rules::seqs(&e.steps).collect();
            rules::check_complete(id, &rules::require(id, stored)?, e.version, &given)?;
            Ok(journal)
        }
        Write::Update(e) => {
            rules::check_version(id, rules::require(id, stored)?.version, e.version)?;
            Ok(journal)
        }
        Write::Delete(_) => Ok(if stored.is_some() {
            journal
        } else {
            Verdict::NoOp
        }),
    }
}

/// Check against the known parts only; every unknown part is assumed to be whatever lets the
/// write through (the durable store has the last word at replay).
fn check_partial(id: EpisodeId, p: Partial, write: Write<'_>) -> Result<Verdict> {
    let journal = Verdict::Journal { existed: true };
    match write {
        Write::Create(_) => Err(Error::conflict(format!("episode {id} already exists"))),
        Write::AppendSteps(_, steps) => {
            let assumed = StoredState {
                completed: p.completed == Some(true),
                version: p.version.unwrap_or(0),
                step_count: p
                    .step_count
                    .unwrap_or_else(|| steps.first().map_or(0, |s| s.seq as usize)),
            };
            rules::check_append(id, &assumed, rules::seqs(steps))?;
            Ok(journal)
        }
        Write::Complete(e) => {
            let assumed = StoredState {
                completed: p.completed == Some(true),
                version: p.version.unwrap_or_else(|| e.version.saturating_sub(1)),
                step_count: p.step_count.unwrap_or(e.steps.len()),
            };
            let given: Vec<u32> = rules::seqs(&e.steps).collect();
            rules::check_complete(id, &assumed, e.version, &given)?;
            Ok(journal)
        }
        Write::Update(e) => match p.version {
            Some(v) => {
                rules::check_version(id, v, e.version)?;
                Ok(journal)
            }
            None => Err(unverifiable_update(id)),
        },
        Write::Delete(_) => Ok(journal),
    }
}

/// An update is a compare-and-set: acknowledging one whose version cannot be checked could
/// acknowledge two writers of the same version, and replay would then refuse one of them.
fn unverifiable_update(id: EpisodeId) -> Error {
    Error::unavailable(format!(
        "episode {id}: its version cannot be checked while the durable store is unreachable; \
         retry the update later"
    ))
}

/// Nothing is known of the episode: only the write's own shape can be checked.
fn check_unknown(id: EpisodeId, write: Write<'_>) -> Result<Verdict> {
    match write {
        Write::Create(e) => rules::check_create(id, false, rules::seqs(&e.steps))?,
        Write::AppendSteps(_, steps) => {
            let assumed = StoredState {
                completed: false,
                version: 0,
                step_count: steps.first().map_or(0, |s| s.seq as usize),
            };
            rules::check_append(id, &assumed, rules::seqs(steps))?;
        }
        Write::Update(_) => return Err(unverifiable_update(id)),
        Write::Complete(_) | Write::Delete(_) => {}
    }
    Ok(Verdict::Journal { existed: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{completed, sample_episode, sample_steps};
    use crate::error::ErrorKind;

    fn append(id: EpisodeId, from: u32, n: u32) -> JournalEntry {
        JournalEntry::AppendSteps {
            id,
            steps: sample_steps(from, n),
        }
    }

    #[test]
    fn a_journaled_create_is_known_whole_without_the_store() {
        let e = sample_episode("ns");
        let entries = vec![JournalEntry::Create(e.clone()), append(e.id, 0, 2)];
        let View::Present(got) = View::of(Base::Unknown, &entries) else {
            panic!("expected a present view");
        };
        assert_eq!(got.steps.len(), 2);
        assert_eq!(got.description, e.description);
    }

    #[test]
    fn folding_over_a_copy_that_already_has_some_entries_applies_them_once() {
        let e = sample_episode("ns");
        let steps = sample_steps(0, 3);
        let entries = vec![
            JournalEntry::Create(e.clone()),
            JournalEntry::AppendSteps {
                id: e.id,
                steps: steps[..2].to_vec(),
            },
            JournalEntry::AppendSteps {
                id: e.id,
                steps: steps[2..].to_vec(),
            },
        ];
        let mut stored = e.clone();
        stored.steps = steps[..2].to_vec();
        let View::Present(got) = View::of(Base::known(Some(stored)), &entries) else {
            panic!("expected a present view");
        };
        assert_eq!(got.steps, steps);
    }

    #[test]
    fn appends_over_an_unknown_copy_are_partial_and_checked_for_gaps() {
        let id = sample_episode("ns").id;
        let v = View::of(Base::Unknown, &[append(id, 4, 2)]);
        assert_eq!(
            v,
            View::Partial(Partial {
                completed: Some(false),
                version: None,
                step_count: Some(6)
            })
        );
        assert!(!v.is_settled());
        let next = sample_steps(6, 1);
        assert!(v.check(Write::AppendSteps(id, &next)).is_ok());
        let gap = sample_steps(7, 1);
        assert_eq!(
            v.check(Write::AppendSteps(id, &gap)).unwrap_err().kind(),
            ErrorKind::Conflict
        );
    }

    #[test]
    fn a_completion_over_an_unknown_copy_is_claimed_until_the_copy_is_read() {
        let all = sample_steps(0, 3);
        let mut e = sample_episode("ns");
        e.steps = all[..2].to_vec();
        let done = completed(e.clone(), all.clone());
        let entries = vec![
            JournalEntry::AppendSteps {
                id: e.id,
                steps: all[2..].to_vec(),
            },
            JournalEntry::Complete(done.clone()),
        ];
        let claimed = View::of(Base::Unknown, &entries);
        assert_eq!(claimed, View::Claimed(Box::new(done.clone())));
        assert!(!claimed.is_settled(), "a read can still void it");
        assert_eq!(
            claimed
                .check(Write::AppendSteps(e.id, &sample_steps(3, 1)))
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyCompleted,
            "checked as the episode it claims"
        );
        assert_eq!(
            View::of(Base::known(Some(e.clone())), &entries),
            View::Present(Box::new(done))
        );
        // A delete the journal did not order removed the episode: the changes are void.
        let void = View::of(Base::known(None), &entries);
        assert_eq!(void, View::Absent);
        assert_eq!(
            void.check(Write::AppendSteps(e.id, &sample_steps(3, 1)))
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn a_journaled_delete_settles_everything_before_it() {
        let e = sample_episode("ns");
        let entries = vec![append(e.id, 0, 1), JournalEntry::Delete(e.id)];
        let v = View::of(Base::known(None), &entries);
        assert_eq!(v, View::Absent);
        assert_eq!(v.check(Write::Delete(e.id)).unwrap(), Verdict::NoOp);
        assert_eq!(
            v.check(Write::AppendSteps(e.id, &sample_steps(1, 1)))
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        let again = vec![JournalEntry::Delete(e.id), JournalEntry::Create(e.clone())];
        assert!(matches!(View::of(Base::Unknown, &again), View::Present(_)));
    }

    #[test]
    fn checks_follow_the_store_rules_on_a_known_episode() {
        let e = sample_episode("ns");
        let v = View::of(Base::Unknown, &[JournalEntry::Create(e.clone())]);
        assert_eq!(
            v.check(Write::Create(&e)).unwrap_err().kind(),
            ErrorKind::Conflict
        );
        let done = completed(e.clone(), vec![]);
        assert!(v.check(Write::Complete(&done)).is_ok());
        let v = View::of(
            Base::Unknown,
            &[
                JournalEntry::Create(e.clone()),
                JournalEntry::Complete(done.clone()),
            ],
        );
        assert_eq!(
            v.check(Write::AppendSteps(e.id, &sample_steps(0, 1)))
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyCompleted
        );
        assert_eq!(
            v.check(Write::Complete(&done)).unwrap_err().kind(),
            ErrorKind::AlreadyCompleted
        );
    }

    #[test]
    fn an_inconsistent_episode_accepts_only_a_delete() {
        let e = sample_episode("ns");
        let mut other = e.clone();
        other.description = "other".into();
        let v = View::of(Base::known(Some(other)), &[JournalEntry::Create(e.clone())]);
        assert!(matches!(v, View::Inconsistent(_)));
        assert!(v.is_settled());
        assert!(v.check(Write::Delete(e.id)).is_ok());
        assert!(
            v.check(Write::AppendSteps(e.id, &sample_steps(0, 1)))
                .is_err()
        );
    }
}
