//! The idempotency rules of replay: has this journal entry already landed in the durable
//! store?
//!
//! A journaled write may already be stored: an ambiguous commit (the store applied it and the
//! connection dropped) was journaled after its error, or a replay applied it and crashed (or
//! failed to trim the journal) before `remove_through`. [`landing`] compares an entry with the
//! stored episode and says whether to apply it whole, skip it, apply only the missing tail of
//! an append, or stop because the two disagree. Pure: no I/O, no clock. It never guesses: any
//! doubt is [`Landing::Diverged`], which replay reports and never skips.

use crate::episode::{Episode, Step};
use crate::store::JournalEntry;
use crate::store::rules;

/// What replay should do with one entry, given what the durable store holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Landing<'a> {
    /// Not stored, and the store would accept it over the stored state: apply it whole.
    Missing,
    /// Fully stored already: skip it.
    Landed,
    /// An append of which a prefix is stored: apply only these steps.
    Tail(&'a [Step]),
    /// The entry changes an episode (append, complete, update) that is not stored: the
    /// durable store would refuse it as `NotFound`, and there is nothing to apply it to.
    ///
    /// It was journaled while the store could not be read, on the journal's word that the
    /// episode exists, and a delete that the journal did not order (a direct one that landed
    /// just before the journal took over, or another writer's) removed the episode first. The
    /// outcome is the one a journaled delete after it would give, the order the two
    /// overlapping calls may take: the entry is void, replay removes it without writing, and
    /// reads see the episode absent.
    Void,
    /// The stored state neither contains the entry nor accepts it; the reason.
    Diverged(String),
}

/// Compare `entry` with the stored episode (`None` when there is none).
///
/// Rules: a `Create` has landed when an episode with the same start time (and, at the same
/// version, the same fields) and the created steps as a prefix is stored; an `AppendSteps`
/// when the stored steps at its `seq`s equal its steps (a stored prefix leaves the tail to
/// apply); a `Complete` or `Update` when the stored version is at least the entry's (at the
/// same version the fields must match); a `Delete` when nothing is stored. An append, a
/// completion or an update of an episode that is not stored is [`Landing::Void`].
pub(crate) fn landing<'a>(entry: &'a JournalEntry, stored: Option<&Episode>) -> Landing<'a> {
    match entry {
        JournalEntry::Create(e) => match stored {
            None => match rules::check_positions(0, e.steps.iter().map(|s| s.seq)) {
                Ok(()) => Landing::Missing,
                Err(err) => Landing::Diverged(format!("episode {}: {err}", e.id)),
            },
            Some(s) if same_origin(s, e) => Landing::Landed,
            Some(_) => Landing::Diverged(format!(
                "episode {} is stored with other content than the journaled create",
                e.id
            )),
        },
        JournalEntry::AppendSteps { id, steps } => {
            let Some(s) = stored else {
                return Landing::Void;
            };
            let Some(first) = steps.first() else {
                return Landing::Diverged(format!("empty append for episode {id}"));
            };
            let start = first.seq as usize;
            let stored_len = s.steps.len();
            if stored_len < start {
                return Landing::Diverged(format!(
                    "episode {id} has {stored_len} steps stored; the append starts at seq {start}"
                ));
            }
            let overlap = (stored_len - start).min(steps.len());
            if s.steps[start..start + overlap] != steps[..overlap] {
                return Landing::Diverged(format!(
                    "episode {id}: stored steps from seq {start} differ from the journaled ones"
                ));
            }
            if overlap == steps.len() {
                Landing::Landed
            } else if s.is_completed() {
                Landing::Diverged(format!("episode {id} is completed; steps cannot follow"))
            } else if overlap == 0 {
                Landing::Missing
            } else {
                Landing::Tail(&steps[overlap..])
            }
        }
        JournalEntry::Complete(e) => {
            let Some(s) = stored else {
                return Landing::Void;
            };
            if let Some(done) = already_versioned(s, e) {
                return done;
            }
            if s.is_completed() {
                Landing::Diverged(format!("episode {} is already completed", e.id))
            } else if e.steps.len() < s.steps.len() {
                Landing::Diverged(format!(
                    "episode {}: completion carries {} steps but {} are stored",
                    e.id,
                    e.steps.len(),
                    s.steps.len()
                ))
            } else if let Err(err) = rules::check_positions(
                s.steps.len(),
                e.steps[s.steps.len()..].iter().map(|s| s.seq),
            ) {
                Landing::Diverged(format!("episode {}: {err}", e.id))
            } else {
                Landing::Missing
            }
        }
        JournalEntry::Update(e) => {
            let Some(s) = stored else {
                return Landing::Void;
            };
            already_versioned(s, e).unwrap_or(Landing::Missing)
        }
        JournalEntry::Delete(_) => match stored {
            None => Landing::Landed,
            Some(_) => Landing::Missing,
        },
    }
}

/// For a versioned write (`Complete`, `Update`) of `e` over stored `s`: `Some(Landed)` when
/// `s` already has its version (or a later one), `Some(Diverged)` when the versions do not
/// chain or the same version holds other fields, `None` when `e` is exactly the next version.
fn already_versioned<'a>(s: &Episode, e: &Episode) -> Option<Landing<'a>> {
    if s.version > e.version {
        return Some(Landing::Landed);
    }
    if s.version == e.version {
        return Some(if same_fields(s, e) {
            Landing::Landed
        } else {
            Landing::Diverged(format!(
                "episode {} is stored at version {} with other fields than the journaled write",
                e.id, e.version
            ))
        });
    }
    if s.version.checked_add(1) != Some(e.version) {
        return Some(Landing::Diverged(format!(
            "episode {}: journaled version {} does not follow stored version {}",
            e.id, e.version, s.version
        )));
    }
    None
}

/// The stored episode is the one `e` created: same start, the created steps as a prefix, and
/// at the same version the same fields.
fn same_origin(s: &Episode, e: &Episode) -> bool {
    s.started_at == e.started_at
        && s.steps.len() >= e.steps.len()
        && s.steps[..e.steps.len()] == e.steps[..]
        && (s.version != e.version || same_fields(s, e))
}

/// Every episode-level field equal (floats bit for bit); steps are not compared.
fn same_fields(s: &Episode, e: &Episode) -> bool {
    let bits = |v: &Option<Vec<f32>>| {
        v.as_ref()
            .map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    s.id == e.id
        && s.version == e.version
        && s.context == e.context
        && s.description == e.description
        && s.outcome == e.outcome
        && s.reward.to_bits() == e.reward.to_bits()
        && s.reflection == e.reflection
        && bits(&s.embedding) == bits(&e.embedding)
        && s.started_at == e.started_at
        && s.completed_at == e.completed_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{completed, sample_episode, sample_steps};

    fn with_steps(mut e: Episode, n: u32) -> Episode {
        e.steps = sample_steps(0, n);
        e
    }

    #[test]
    fn create_lands_when_the_same_episode_is_stored() {
        let e = sample_episode("ns");
        let entry = JournalEntry::Create(e.clone());
        assert_eq!(landing(&entry, None), Landing::Missing);
        assert_eq!(landing(&entry, Some(&e)), Landing::Landed);
        let grown = with_steps(e.clone(), 3);
        assert_eq!(
            landing(&entry, Some(&grown)),
            Landing::Landed,
            "steps added later"
        );
        let done = completed(e.clone(), vec![]);
        assert_eq!(
            landing(&entry, Some(&done)),
            Landing::Landed,
            "completed later"
        );
        let mut other = e.clone();
        other.description = "someone else's".into();
        assert!(matches!(
            landing(&entry, Some(&other)),
            Landing::Diverged(_)
        ));
    }

    #[test]
    fn append_applies_only_the_missing_tail() {
        let e = sample_episode("ns");
        let steps = sample_steps(0, 4);
        let entry = JournalEntry::AppendSteps {
            id: e.id,
            steps: steps[2..].to_vec(),
        };
        let mut stored = e.clone();
        stored.steps = steps[..2].to_vec();
        assert_eq!(landing(&entry, Some(&stored)), Landing::Missing);
        stored.steps = steps[..3].to_vec();
        assert_eq!(landing(&entry, Some(&stored)), Landing::Tail(&steps[3..]));
        stored.steps = steps.clone();
        assert_eq!(landing(&entry, Some(&stored)), Landing::Landed);
        stored.steps = steps[..1].to_vec();
        assert!(
            matches!(landing(&entry, Some(&stored)), Landing::Diverged(_)),
            "gap"
        );
        let mut changed = steps.clone();
        changed[2].output = "different".into();
        stored.steps = changed;
        assert!(matches!(
            landing(&entry, Some(&stored)),
            Landing::Diverged(_)
        ));
        assert_eq!(landing(&entry, None), Landing::Void);
    }

    #[test]
    fn versioned_writes_land_at_their_version_or_later() {
        let e = with_steps(sample_episode("ns"), 2);
        let done = completed(e.clone(), sample_steps(0, 3));
        let entry = JournalEntry::Complete(done.clone());
        assert_eq!(landing(&entry, Some(&e)), Landing::Missing);
        assert_eq!(landing(&entry, Some(&done)), Landing::Landed);
        let mut later = done.clone();
        later.version += 1;
        later.reflection = Some("updated".into());
        assert_eq!(landing(&entry, Some(&later)), Landing::Landed);
        let mut same_version_other = done.clone();
        same_version_other.reward = 0.9;
        assert!(matches!(
            landing(&entry, Some(&same_version_other)),
            Landing::Diverged(_)
        ));
        let mut behind = e.clone();
        behind.version = 0;
        assert!(matches!(
            landing(&entry, Some(&behind)),
            Landing::Diverged(_)
        ));

        let mut update = done.clone();
        update.version += 1;
        update.reflection = Some("second thoughts".into());
        let entry = JournalEntry::Update(update.clone());
        assert_eq!(landing(&entry, Some(&done)), Landing::Missing);
        assert_eq!(landing(&entry, Some(&update)), Landing::Landed);
        assert_eq!(landing(&entry, None), Landing::Void);
        assert_eq!(landing(&JournalEntry::Complete(done), None), Landing::Void);
    }

    #[test]
    fn delete_lands_when_nothing_is_stored() {
        let e = sample_episode("ns");
        let entry = JournalEntry::Delete(e.id);
        assert_eq!(landing(&entry, None), Landing::Landed);
        assert_eq!(landing(&entry, Some(&e)), Landing::Missing);
    }
}
