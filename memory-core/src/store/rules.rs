//! The write rules of the [`crate::store::DurableStore`] contract, shared by every backend so
//! all of them refuse the same writes with the same error kinds and messages.
//!
//! Pure functions over a backend's view of the stored episode ([`StoredState`]); they never do
//! I/O. A backend reads the state inside its write transaction, asks these functions, and
//! writes only on `Ok`.

use crate::episode::{Episode, Step};
use crate::error::{Error, ErrorKind, Result};
use crate::id::EpisodeId;

/// What the rules need to know of a stored episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredState {
    /// Whether it has an outcome.
    pub completed: bool,
    /// Its version.
    pub version: u64,
    /// How many steps are stored.
    pub step_count: usize,
}

impl StoredState {
    /// The rules' view of a whole stored episode.
    pub fn of(episode: &Episode) -> Self {
        Self {
            completed: episode.is_completed(),
            version: episode.version,
            step_count: episode.steps.len(),
        }
    }
}

/// The sequence numbers of `steps`, as the rules take them.
pub fn seqs(steps: &[Step]) -> impl Iterator<Item = u32> + '_ {
    steps.iter().map(|s| s.seq)
}

/// `NotFound` unless the episode exists (`stored` is whatever the backend read for it).
pub fn require<T>(id: EpisodeId, stored: Option<T>) -> Result<T> {
    stored.ok_or_else(|| Error::not_found(format!("episode {id}")))
}

/// Steps written with a whole episode (create, or the new tail of a completion) must sit at
/// their positions: the `i`-th has `seq == first + i`. `InvalidInput` otherwise.
pub fn check_positions(first: usize, seqs: impl IntoIterator<Item = u32>) -> Result<()> {
    for (i, seq) in seqs.into_iter().enumerate() {
        let position = first + i;
        if seq as usize != position {
            return Err(Error::invalid(
                format!("steps[{position}].seq"),
                format!("equal to its position {position}"),
                seq.to_string(),
            ));
        }
    }
    Ok(())
}

/// `create_episode`: `Conflict` if the id exists; steps at their positions.
pub fn check_create(
    id: EpisodeId,
    exists: bool,
    seqs: impl IntoIterator<Item = u32>,
) -> Result<()> {
    if exists {
        return Err(Error::conflict(format!("episode {id} already exists")));
    }
    check_positions(0, seqs)
}

/// `append_steps`: the episode is in progress and `seqs` (non-empty) continue from the stored
/// count.
pub fn check_append(
    id: EpisodeId,
    stored: &StoredState,
    seqs: impl IntoIterator<Item = u32>,
) -> Result<()> {
    if stored.completed {
        return Err(Error::new(
            ErrorKind::AlreadyCompleted,
            format!("episode {id} is completed; no more steps"),
        ));
    }
    let mut n = 0;
    for (i, seq) in seqs.into_iter().enumerate() {
        let expected = stored.step_count + i;
        if seq as usize != expected {
            return Err(Error::conflict(format!(
                "episode {id}: step seq {seq} given where {expected} was expected"
            )));
        }
        n += 1;
    }
    if n == 0 {
        return Err(Error::invalid("steps", "at least 1 step", "0 steps"));
    }
    Ok(())
}

/// The "writes carry the next version" rule: `Conflict` unless `next == stored + 1`.
pub fn check_version(id: EpisodeId, stored: u64, next: u64) -> Result<()> {
    if stored.checked_add(1) != Some(next) {
        return Err(Error::conflict(format!(
            "episode {id}: version {next} written over stored version {stored}"
        )));
    }
    Ok(())
}

/// `complete_episode`: in progress, next version, and at least as many steps as are stored;
/// the steps beyond the stored ones must sit at their positions.
pub fn check_complete(
    id: EpisodeId,
    stored: &StoredState,
    next_version: u64,
    seqs: &[u32],
) -> Result<()> {
    if stored.completed {
        return Err(Error::new(
            ErrorKind::AlreadyCompleted,
            format!("episode {id} is already completed"),
        ));
    }
    check_version(id, stored.version, next_version)?;
    if seqs.len() < stored.step_count {
        return Err(Error::conflict(format!(
            "episode {id}: completion carries {} steps but {} are stored",
            seqs.len(),
            stored.step_count
        )));
    }
    check_positions(stored.step_count, seqs[stored.step_count..].iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(completed: bool) -> StoredState {
        StoredState {
            completed,
            version: 1,
            step_count: 2,
        }
    }

    #[test]
    fn append_rules() {
        let id = EpisodeId::new();
        check_append(id, &state(false), [2, 3]).unwrap();
        let kind = |r: Result<()>| r.unwrap_err().kind();
        assert_eq!(
            kind(check_append(id, &state(false), [3])),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(check_append(id, &state(false), [1])),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(check_append(id, &state(false), [])),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(check_append(id, &state(true), [2])),
            ErrorKind::AlreadyCompleted
        );
    }

    #[test]
    fn complete_rules() {
        let id = EpisodeId::new();
        check_complete(id, &state(false), 2, &[0, 1, 2]).unwrap();
        let kind = |r: Result<()>| r.unwrap_err().kind();
        assert_eq!(
            kind(check_complete(id, &state(false), 3, &[0, 1])),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(check_complete(id, &state(false), 2, &[0])),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(check_complete(id, &state(false), 2, &[0, 1, 5])),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(check_complete(id, &state(true), 2, &[0, 1])),
            ErrorKind::AlreadyCompleted
        );
    }

    #[test]
    fn create_rules() {
        let id = EpisodeId::new();
        check_create(id, false, [0, 1]).unwrap();
        assert_eq!(
            check_create(id, true, []).unwrap_err().kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            check_create(id, false, [1]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
