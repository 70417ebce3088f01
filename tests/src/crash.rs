//! The crash harness's workload and wire format, shared by the child (`src/bin/crash_child.rs`)
//! and the test that kills it (`tests/crash_recovery.rs`).
//!
//! Everything an episode holds is a pure function of its [`Key`] (seed, task, number), and the
//! key is written into the description, so the test can recompute exactly what any stored
//! episode must contain at any version, acknowledged or not. The child prints one [`Line`] per
//! event; acknowledgements are printed only after the call returned `Ok`. This module does no
//! I/O and never touches an engine.

use std::fmt;
use std::str::FromStr;

use memory_core::{Completion, EpisodeId, EpisodeUpdate, NewStep, Outcome, TaskContext};

/// The namespace every harness episode lives in.
pub const NAMESPACE: &str = "crash";

/// Identifies one episode of the workload: the child's seed, its task, and the task's n-th
/// episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The child's `--seed` (one per round, so keys never repeat in a directory).
    pub seed: u64,
    /// The concurrent task that records the episode.
    pub task: u32,
    /// The episode's number within its task.
    pub n: u32,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.seed, self.task, self.n)
    }
}

/// splitmix64: the harness's one source of seeded choices.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded generator (splitmix64 over a counter).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `range` (which must not be empty).
    pub fn range(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next_u64() % (range.end - range.start)
    }
}

impl Key {
    fn hash(&self, salt: u64) -> u64 {
        mix(self.seed ^ mix(u64::from(self.task) << 32 | u64::from(self.n)) ^ mix(salt))
    }

    /// The description: carries the key, so any stored episode names its own key.
    pub fn description(&self) -> String {
        format!("crash {} {} {}", self.seed, self.task, self.n)
    }

    /// The key a description names, if it is one of the harness's.
    pub fn from_description(description: &str) -> Option<Key> {
        let mut words = description.strip_prefix("crash ")?.split(' ');
        let key = Key {
            seed: words.next()?.parse().ok()?,
            task: words.next()?.parse().ok()?,
            n: words.next()?.parse().ok()?,
        };
        words.next().is_none().then_some(key)
    }

    /// The task context (three domains, two task types: several index shards).
    pub fn context(&self) -> TaskContext {
        TaskContext::new(
            NAMESPACE,
            format!("d{}", self.task % 3),
            format!("t{}", self.n % 2),
        )
    }

    /// How many steps the task records (2 to 6).
    pub fn steps(&self) -> u32 {
        2 + (self.hash(1) % 5) as u32
    }

    /// Whether steps `k` and `k + 1` go in one `log_steps` call (else `log_step` each).
    pub fn grouped(&self, k: u32) -> bool {
        k + 1 < self.steps() && self.hash(100 + u64::from(k)).is_multiple_of(3)
    }

    /// Step `k`: tool, input, output, success and latency all derived from the key; the input
    /// varies in length (up to about 600 bytes) so records differ in size.
    pub fn step(&self, k: u32) -> NewStep {
        let filler = "x".repeat((self.hash(200 + u64::from(k)) % 600) as usize);
        NewStep::new(format!("tool{}", k % 3), format!("in {self} {k} {filler}"))
            .with_output(format!("out {self} {k}"))
            .with_success(k % 4 != 3)
            .with_latency_ms(u64::from(k) * 7)
    }

    /// The step number `input` was derived from, if it is one of this key's step inputs.
    pub fn step_number(&self, input: &str) -> Option<u32> {
        let rest = input.strip_prefix(&format!("in {self} "))?;
        rest.split(' ').next()?.parse().ok()
    }

    /// Whether the task completes the episode (three in four are completed).
    pub fn completes(&self) -> bool {
        self.n % 4 != 3
    }

    /// The completion.
    pub fn completion(&self) -> Completion {
        let outcome = match self.n % 3 {
            0 => Outcome::success(format!("verdict {self}")),
            1 => Outcome::partial(format!("verdict {self}")),
            _ => Outcome::failure(format!("verdict {self}")),
        };
        Completion::from(outcome)
            .with_reward(f64::from(self.n % 10) / 10.0)
            .with_reflection(format!("reflect {self}"))
    }

    /// How many updates follow the completion (0 to 2).
    pub fn updates(&self) -> u32 {
        if self.completes() {
            (self.hash(2) % 3) as u32
        } else {
            0
        }
    }

    /// Update `u` (1-based); each replaces tags, reflection and reward.
    pub fn update(&self, u: u32) -> EpisodeUpdate {
        EpisodeUpdate::default()
            .tags([format!("u{u}"), format!("s{}", self.seed)])
            .reflection(format!("update {self} {u}"))
            .reward(f64::from(u) / 4.0)
    }

    /// Whether the task deletes the episode once its updates are done (about one in five
    /// completed episodes).
    pub fn deleted(&self) -> bool {
        self.completes() && self.hash(3).is_multiple_of(5)
    }

    /// The highest version the workload can bring this episode to.
    pub fn last_version(&self) -> u64 {
        if self.completes() {
            2 + u64::from(self.updates())
        } else {
            1
        }
    }

    /// What a completed episode holds at `version` (2: the completion; 2 + u: after update
    /// u): `(outcome, reward, reflection, tags)`. `None` for a version the workload never
    /// writes.
    pub fn completed_at_version(
        &self,
        version: u64,
    ) -> Option<(Outcome, f64, Option<String>, Vec<String>)> {
        if !self.completes() || version < 2 || version > self.last_version() {
            return None;
        }
        let c = self.completion();
        let mut episode = memory_core::Episode::new(
            EpisodeId::new(),
            self.description(),
            self.context(),
            memory_core::time::now(),
        );
        episode.reward = c.reward.unwrap_or_default();
        episode.reflection = c.reflection;
        for u in 1..=(version - 2) as u32 {
            self.update(u).apply_to(&mut episode);
        }
        Some((
            c.outcome,
            episode.reward,
            episode.reflection,
            episode.context.tags,
        ))
    }
}

/// One line of the child's stdout.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// The engine is open; the workload starts.
    Ready,
    /// `start_episode` acknowledged.
    Start(EpisodeId, Key),
    /// `log_step` or `log_steps` acknowledged: `(seq, k)` for each step of the call.
    Steps(EpisodeId, Vec<(u32, u32)>),
    /// `complete_episode` acknowledged at this version.
    Complete(EpisodeId, u64),
    /// `update_episode` (the u-th) acknowledged at this version.
    Update(EpisodeId, u64, u32),
    /// `delete_episode` acknowledged (`Ok(true)`).
    Delete(EpisodeId),
    /// A call failed (nothing acknowledged): operation, episode (if known), error kind.
    Failed(String, Option<EpisodeId>, String),
    /// Something the test uses to tell where the kill landed (`outage-on`, `outage-off`,
    /// `journaling`, `replaying`, `drained`, `reconcile-begin`, `reconcile-end <repairs>`).
    Event(String),
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Ready => write!(f, "READY"),
            Line::Start(id, k) => write!(f, "ACK start {id} {} {} {}", k.seed, k.task, k.n),
            Line::Steps(id, steps) => {
                write!(f, "ACK step {id}")?;
                for (seq, k) in steps {
                    write!(f, " {seq}:{k}")?;
                }
                Ok(())
            }
            Line::Complete(id, v) => write!(f, "ACK complete {id} {v}"),
            Line::Update(id, v, u) => write!(f, "ACK update {id} {v} {u}"),
            Line::Delete(id) => write!(f, "ACK delete {id}"),
            Line::Failed(op, id, kind) => match id {
                Some(id) => write!(f, "ERR {op} {id} {kind}"),
                None => write!(f, "ERR {op} - {kind}"),
            },
            Line::Event(e) => write!(f, "EVENT {e}"),
        }
    }
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine(pub String);

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unparsable child line {:?}", self.0)
    }
}

impl std::error::Error for BadLine {}

impl FromStr for Line {
    type Err = BadLine;

    fn from_str(s: &str) -> Result<Self, BadLine> {
        let bad = || BadLine(s.to_owned());
        let words: Vec<&str> = s.split(' ').collect();
        let id = |w: &str| w.parse::<EpisodeId>().map_err(|_| bad());
        let num = |w: &str| w.parse::<u64>().map_err(|_| bad());
        let small = |w: &str| w.parse::<u32>().map_err(|_| bad());
        Ok(match words.as_slice() {
            ["READY"] => Line::Ready,
            ["ACK", "start", i, seed, task, n] => Line::Start(
                id(i)?,
                Key {
                    seed: num(seed)?,
                    task: small(task)?,
                    n: small(n)?,
                },
            ),
            ["ACK", "step", i, pairs @ ..] if !pairs.is_empty() => {
                let mut steps = Vec::with_capacity(pairs.len());
                for p in pairs {
                    let (seq, k) = p.split_once(':').ok_or_else(bad)?;
                    steps.push((small(seq)?, small(k)?));
                }
                Line::Steps(id(i)?, steps)
            }
            ["ACK", "complete", i, v] => Line::Complete(id(i)?, num(v)?),
            ["ACK", "update", i, v, u] => Line::Update(id(i)?, num(v)?, small(u)?),
            ["ACK", "delete", i] => Line::Delete(id(i)?),
            ["ERR", op, "-", kind] => Line::Failed((*op).to_owned(), None, (*kind).to_owned()),
            ["ERR", op, i, kind] => {
                Line::Failed((*op).to_owned(), Some(id(i)?), (*kind).to_owned())
            }
            ["EVENT", rest @ ..] if !rest.is_empty() => Line::Event(rest.join(" ")),
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let id = EpisodeId::new();
        let key = Key {
            seed: 7,
            task: 3,
            n: 11,
        };
        for line in [
            Line::Ready,
            Line::Start(id, key),
            Line::Steps(id, vec![(0, 0), (1, 1)]),
            Line::Complete(id, 2),
            Line::Update(id, 4, 2),
            Line::Delete(id),
            Line::Failed("step".into(), Some(id), "Unavailable".into()),
            Line::Failed("start".into(), None, "Unavailable".into()),
            Line::Event("outage-on".into()),
        ] {
            assert_eq!(line.to_string().parse::<Line>(), Ok(line));
        }
        assert!("ACK step".parse::<Line>().is_err());
        assert!("ACK start 1 2".parse::<Line>().is_err());
    }

    #[test]
    fn the_key_is_recovered_from_what_it_derives() {
        let key = Key {
            seed: 99,
            task: 5,
            n: 4,
        };
        assert_eq!(Key::from_description(&key.description()), Some(key));
        assert_eq!(Key::from_description("crash 1 2"), None);
        for k in 0..key.steps() {
            assert_eq!(key.step_number(&key.step(k).input), Some(k));
        }
        let other = Key { n: 40, ..key };
        assert_eq!(other.step_number(&key.step(0).input), None);
    }

    #[test]
    fn versions_follow_completion_then_updates() {
        let key = (0..)
            .map(|n| Key {
                seed: 1,
                task: 0,
                n,
            })
            .find(|k| k.updates() == 2)
            .unwrap();
        assert_eq!(key.last_version(), 4);
        let (_, reward, reflection, tags) = key.completed_at_version(2).unwrap();
        assert_eq!(reward, f64::from(key.n % 10) / 10.0);
        assert_eq!(reflection, Some(format!("reflect {key}")));
        assert!(tags.is_empty());
        let (_, reward, reflection, tags) = key.completed_at_version(4).unwrap();
        assert_eq!(reward, 0.5);
        assert_eq!(reflection, Some(format!("update {key} 2")));
        assert_eq!(tags, vec!["u2".to_owned(), "s1".to_owned()]);
        assert!(key.completed_at_version(5).is_none());
        assert!(key.completed_at_version(1).is_none());
    }
}
