//! Where spilled shards go, and the one thread that reads and writes them.
//!
//! Owns the [`ShardSpill`] trait (the spill target: files in production, memory in tests) and
//! [`SpillIo`], which runs every load (read, decode, rebuild the shard), every save (encode,
//! write) and every fold of queued changes into a file (read twice, write) of spilled shards
//! on one dedicated thread. One thread, so that the large transient buffers of loads and
//! saves, and the content of every shard loaded from a file, come from one allocator arena:
//! with glibc's per-thread arenas, loads spread over query threads left freed shard memory
//! stranded in many arenas (measured in `docs/benchmarks.md`, "Memory budget"). Callers
//! block until their job is done; jobs run one at a time. A second thread asks the allocator
//! to return the memory of spilled shards to the system ([`SpillIo::freed`]). This module
//! must never take an index lock: the threads only run the target's I/O, the decoding and the
//! releases.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};

use super::fold::ShardFold;
use super::image::{ShardLoad, ShardView};
use super::shard::{Pending, Shard, ShardKey};
use super::stats::IndexStats;

/// Where the index puts a shard's content when the memory budget asks for room, and takes it
/// back when the shard is used again. Implementations do blocking I/O; the index calls them
/// with no shard lock held, from the spill thread.
pub(crate) trait ShardSpill: Send + Sync + std::fmt::Debug {
    /// Keep `shard`'s content (replacing any kept earlier for the same shard).
    fn save(&self, shard: ShardView<'_>) -> Result<()>;
    /// The shard whose content was last saved for `load.key`, decoded by `load`.
    fn load(&self, load: ShardLoad) -> Result<Shard>;
    /// Replace the content last saved for `fold`'s shard with that content with `fold`'s
    /// changes applied, without decoding it into a shard; returns the new content's
    /// statistics. On an error the content saved is unchanged.
    fn fold(&self, fold: &ShardFold) -> Result<IndexStats>;
    /// Forget the content of `(namespace, domain)` (no error if there is none).
    fn discard(&self, namespace: &str, domain: &str) -> Result<()>;
    /// The file holding the content last saved for `(namespace, domain)`, for targets that
    /// keep a file per shard and replace it whole, never in place (a snapshot links such a file
    /// instead of writing the shard again); `None` for other targets.
    fn file(&self, _namespace: &str, _domain: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// A directory the index may keep scratch files in (its id directory, under a memory
    /// budget), for targets that keep files and empty their directory at open; `None` for
    /// other targets (the id directory then stays in memory).
    fn scratch_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A spill target and the thread its I/O runs on, and where glibc is the allocator, the thread
/// that hands freed memory back to the system (both end when this is dropped).
pub(crate) struct SpillIo {
    target: Arc<dyn ShardSpill>,
    jobs: Mutex<mpsc::Sender<Job>>,
    /// The release thread's jobs; `None` where [`release_freed_memory`] does nothing.
    releaser: Option<Mutex<mpsc::Sender<Job>>>,
    /// Bytes of shards spilled since the last release was queued.
    freed: AtomicUsize,
    /// A release is queued and has not started.
    release_queued: Arc<AtomicBool>,
    /// Releases run since this was made.
    releases: Arc<AtomicU64>,
}

impl std::fmt::Debug for SpillIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillIo")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A thread named `name` running the jobs sent to it one at a time, until the sender is
/// dropped. A panicking job drops its reply sender: its caller gets an error, and the thread
/// keeps serving the others.
fn worker(name: &str) -> Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for job in rx {
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
        })
        .map_err(|e| Error::storage(format!("cannot start the thread {name}")).with_source(e))?;
    Ok(tx)
}

/// Run `work` on the [`worker`] thread `jobs` feeds and wait for its result.
fn run_on<T: Send + 'static>(
    jobs: &Mutex<mpsc::Sender<Job>>,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (reply, answer) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = reply.send(work());
    });
    jobs.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job)
        .map_err(|_| Error::storage("an index worker thread is gone"))?;
    answer
        .recv()
        .map_err(|_| Error::storage("an index worker thread's job panicked"))?
}

impl SpillIo {
    /// Start the spill thread for `target` (and the release thread, where it does anything).
    pub(crate) fn new(target: Arc<dyn ShardSpill>) -> Result<Self> {
        let releaser = if RELEASES_MEMORY {
            Some(Mutex::new(worker("memory-index-release")?))
        } else {
            None
        };
        Ok(Self {
            target,
            jobs: Mutex::new(worker("memory-index-spill")?),
            releaser,
            freed: AtomicUsize::new(0),
            release_queued: Arc::new(AtomicBool::new(false)),
            releases: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Count `bytes` of a spilled shard as freed, and once `every` bytes or more were freed
    /// since the last release, have the release thread hand freed memory back to the system,
    /// not waited for (one queued at a time). Its own thread, so that loads do not queue
    /// behind it (`docs/benchmarks.md`, "Freed memory handed back to the system").
    pub(crate) fn freed(&self, bytes: usize, every: usize) {
        let Some(releaser) = &self.releaser else {
            return;
        };
        let total = self.freed.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if total < every || self.release_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        self.freed.fetch_sub(total, Ordering::AcqRel);
        let (queued, releases) = (self.release_queued.clone(), self.releases.clone());
        let job: Job = Box::new(move || {
            queued.store(false, Ordering::Release);
            release_freed_memory();
            releases.fetch_add(1, Ordering::Relaxed);
        });
        let sent = releaser
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job);
        if sent.is_err() {
            // No thread: nothing will run it, so let the next spill try again.
            self.release_queued.store(false, Ordering::Release);
        }
    }

    /// Wait for every release queued so far.
    #[cfg(test)]
    pub(crate) fn settle(&self) {
        if let Some(releaser) = &self.releaser {
            run_on(releaser, || Ok(())).unwrap();
        }
    }

    /// Releases of freed memory run since this was made.
    pub(crate) fn releases(&self) -> u64 {
        self.releases.load(Ordering::Relaxed)
    }

    /// Run `work` on the spill thread and wait for its result.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        run_on(&self.jobs, work)
    }

    /// The shard last saved for `load.key`, read and decoded on the spill thread.
    pub(crate) fn load(&self, load: ShardLoad) -> Result<Shard> {
        let target = self.target.clone();
        self.run(move || target.load(load))
    }

    /// Fold `changes` (oldest first) into the content last saved for `load.key`, on the spill
    /// thread ([`ShardSpill::fold`]); returns the new content's statistics.
    pub(crate) fn fold(&self, load: ShardLoad, changes: Arc<Vec<Pending>>) -> Result<IndexStats> {
        let target = self.target.clone();
        self.run(move || target.fold(&ShardFold::new(load, changes)))
    }

    /// Forget the content of `key`, on the spill thread (after any job queued before).
    pub(crate) fn discard(&self, key: &ShardKey) -> Result<()> {
        let target = self.target.clone();
        let (namespace, domain) = (key.namespace.clone(), key.domain.clone());
        self.run(move || target.discard(&namespace, &domain))
    }

    /// The target's scratch directory, if it keeps files ([`ShardSpill::scratch_dir`]).
    pub(crate) fn scratch_dir(&self) -> Option<std::path::PathBuf> {
        self.target.scratch_dir()
    }

    /// The target's file of `key`'s content, if it keeps files ([`ShardSpill::file`]).
    pub(crate) fn file(&self, key: &ShardKey) -> Option<std::path::PathBuf> {
        self.target.file(&key.namespace, &key.domain)
    }

    /// Save `shard`, the content of `key`, on the spill thread, where it is dropped once saved
    /// (the memory it frees goes back to the arena it was loaded into). If it cannot be saved
    /// it is handed back with the error: the content is never lost, even to a panicking target.
    pub(crate) fn save(
        &self,
        key: &ShardKey,
        shard: Shard,
    ) -> std::result::Result<(), (Error, Box<Shard>)> {
        let shared = Arc::new(shard);
        let (target, key, job) = (self.target.clone(), key.clone(), shared.clone());
        let saved = self.run(move || target.save(ShardView::new(&key, &job)));
        // `run` returns once the job has run, panicked or was refused: its handle is dropped
        // by then in each case, so the content is ours alone again.
        let Some(shard) = Arc::into_inner(shared) else {
            unreachable!("a spill job outlived its reply");
        };
        match saved {
            Ok(()) => {
                // Nothing is lost if this cannot run: the content is dropped here instead.
                let _ = self.run(move || {
                    drop(shard);
                    Ok(())
                });
                Ok(())
            }
            Err(e) => Err((e, Box::new(shard))),
        }
    }
}

/// Whether [`release_freed_memory`] does anything here: with glibc's allocator only.
const RELEASES_MEMORY: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// Ask glibc's allocator to return the free pages of every arena to the system. glibc gives
/// back freed memory only from the top of an arena's heap, so the pages of a spilled shard,
/// freed among live allocations, stay resident until the arena reuses them; across the
/// arenas of many threads that kept the RSS 0.8 to 1.2 GiB above the live heap at 2M episodes
/// with a 512 MiB budget (`docs/benchmarks.md`, "Memory budget"). `malloc_trim(0)` walks each
/// arena's free chunks under that arena's lock and advises the kernel to drop their pages.
/// The only `unsafe` in the library (the bench binary has one more, for its allocator).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: `malloc_trim` takes no pointer and only changes the allocator's own free
    // chunks, under the allocator's locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return freed memory themselves, or offer no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the thread each load ran on; panics on namespace "boom".
    #[derive(Debug, Default)]
    struct Panicky {
        threads: Mutex<Vec<Option<String>>>,
    }

    impl ShardSpill for Panicky {
        fn save(&self, _: ShardView<'_>) -> Result<()> {
            Ok(())
        }
        fn fold(&self, _: &ShardFold) -> Result<IndexStats> {
            Err(Error::corrupt("nothing saved"))
        }
        fn load(&self, load: ShardLoad) -> Result<Shard> {
            let namespace = &*load.key.namespace;
            let name = std::thread::current().name().map(str::to_owned);
            self.threads.lock().unwrap().push(name);
            if namespace == "boom" {
                panic!("a spill target bug");
            }
            Err(Error::corrupt("nothing saved"))
        }
        fn discard(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_thread_keeps_serving() {
        let target = Arc::new(Panicky::default());
        let io = SpillIo::new(target.clone()).unwrap();
        let key = |ns: &str| ShardKey {
            namespace: Arc::from(ns),
            domain: Arc::from("d"),
        };
        let load = |ns: &str| ShardLoad {
            key: key(ns),
            bucket_width: 1,
            embedding_dimension: None,
        };
        let e = io.load(load("boom")).unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
        let e = io.load(load("ns")).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{e}");
        let spill_thread = Some("memory-index-spill".to_owned());
        assert_eq!(
            *target.threads.lock().unwrap(),
            vec![spill_thread.clone(), spill_thread],
            "both loads ran on the spill thread"
        );
    }
}
