//! Where spilled shards go, and the one thread that reads and writes them.
//!
//! Owns the [`ShardSpill`] trait (the spill target: files in production, memory in tests) and
//! [`SpillIo`], which runs every load (read, decode, rebuild the shard) and every save (encode,
//! write) of spilled shards on one dedicated thread. One thread, so that the large transient
//! buffers of loads and saves, and the content of every shard loaded from a file, come from
//! one allocator arena: with glibc's per-thread arenas, loads spread over query threads left
//! freed shard memory stranded in many arenas (measured in `docs/benchmarks.md`, "Memory
//! budget"). Callers block until their job is done; jobs run one at a time. This module must
//! never take an index lock: the thread only runs the target's I/O and the decoding.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};

use super::image::ShardImage;
use super::shard::{Shard, ShardKey};

/// Where the index puts a shard's content when the memory budget asks for room, and takes it
/// back when the shard is used again. Implementations do blocking I/O; the index calls them
/// with no shard lock held, from the spill thread.
pub(crate) trait ShardSpill: Send + Sync + std::fmt::Debug {
    /// Keep `image` (replacing any earlier image of the same shard).
    fn save(&self, image: &ShardImage) -> Result<()>;
    /// The image last saved for `(namespace, domain)`.
    fn load(&self, namespace: &str, domain: &str) -> Result<ShardImage>;
    /// Forget the image of `(namespace, domain)` (no error if there is none).
    fn discard(&self, namespace: &str, domain: &str) -> Result<()>;
}

type Job = Box<dyn FnOnce() + Send>;

/// A spill target and the thread its I/O runs on (ends when this is dropped).
pub(crate) struct SpillIo {
    target: Arc<dyn ShardSpill>,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for SpillIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillIo")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl SpillIo {
    /// Start the spill thread for `target`.
    pub(crate) fn new(target: Arc<dyn ShardSpill>) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("memory-index-spill".into())
            .spawn(move || {
                for job in rx {
                    // A panicking job drops its reply sender: its caller gets an error, and
                    // the thread keeps serving the others.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(|e| Error::storage("cannot start the index spill thread").with_source(e))?;
        Ok(Self {
            target,
            jobs: Mutex::new(tx),
        })
    }

    /// Run `work` on the spill thread and wait for its result.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| Error::storage("the index spill thread is gone"))?;
        answer
            .recv()
            .map_err(|_| Error::storage("an index spill job panicked"))?
    }

    /// The shard last saved for `key`, read, decoded and rebuilt on the spill thread.
    pub(crate) fn load(
        &self,
        key: &ShardKey,
        bucket_width: i64,
        embedding_dimension: Option<usize>,
    ) -> Result<Shard> {
        let target = self.target.clone();
        let (namespace, domain) = (key.namespace.clone(), key.domain.clone());
        self.run(move || {
            let image = target.load(&namespace, &domain)?;
            Shard::from_image(image, bucket_width, embedding_dimension)
        })
    }

    /// Forget the image of `key`, on the spill thread (after any job queued before).
    pub(crate) fn discard(&self, key: &ShardKey) -> Result<()> {
        let target = self.target.clone();
        let (namespace, domain) = (key.namespace.clone(), key.domain.clone());
        self.run(move || target.discard(&namespace, &domain))
    }

    /// Save `image` on the spill thread (where it is also dropped).
    pub(crate) fn save(&self, image: ShardImage) -> Result<()> {
        let target = self.target.clone();
        self.run(move || target.save(&image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the thread each load ran on; panics on namespace "boom".
    #[derive(Debug, Default)]
    struct Panicky {
        threads: Mutex<Vec<Option<String>>>,
    }

    impl ShardSpill for Panicky {
        fn save(&self, _: &ShardImage) -> Result<()> {
            Ok(())
        }
        fn load(&self, namespace: &str, _: &str) -> Result<ShardImage> {
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
        let e = io.load(&key("boom"), 1, None).unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
        let e = io.load(&key("ns"), 1, None).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{e}");
        let spill_thread = Some("memory-index-spill".to_owned());
        assert_eq!(
            *target.threads.lock().unwrap(),
            vec![spill_thread.clone(), spill_thread],
            "both loads ran on the spill thread"
        );
    }
}
