//! Index snapshots on disk: one file per shard plus a manifest, versioned and checksummed.
//!
//! Owns the file format and its I/O (blocking `std::fs`; the engine calls it from
//! `spawn_blocking`). A snapshot directory holds `manifest` and one `shard-<hash>-<generation>`
//! file per shard. Every file is `magic (8 bytes) | format version (u32 LE) | index
//! fingerprint (bucket width µs i64 LE, embedding dimension u64 LE, u64::MAX for none) |
//! payload length (u64 LE) | payload (postcard) | CRC-32 of everything before it (u32 LE)`.
//! A shard file's payload is a shard's encoding (`index/image.rs`); the manifest's lists the
//! shards with their file, namespace, domain, statistics and `(id, version)` list, which is
//! all the index needs to serve a shard before its file is read. Writing puts every file under a temporary name,
//! fsyncs it and renames it into place (a spilled shard unchanged since it was spilled is not
//! written again: its spill file, written the same way, is hard-linked under the snapshot's
//! name), fsyncs the directory, puts the manifest the same way, fsyncs the directory again,
//! then deletes the files the new manifest no longer lists: a crash at any point leaves
//! either the old or the new manifest, each with all its files.
//!
//! Opening a snapshot reads and checks only the manifest; each shard file is linked into the
//! spill directory (`spill/`, where the memory budget also puts shards) and read, checked and
//! decoded only when its shard is first used. Every byte read is checked (magic, version,
//! fingerprint, length, CRC) and a refusal says which file and why; a shard's content that
//! passes is validated again as it is decoded. Files are written and read through 64 KiB
//! buffers, the payload encoded into the file and decoded from it as it goes: neither side
//! holds a copy of the file in memory (a decoded value is used only once the whole file's
//! checksum matched), except that a snapshot's file for a loaded shard is its encoding made
//! in memory under the shard's read lock, so that no file is written under a lock. This
//! module must never decide what to do with a refused snapshot (the engine rebuilds) and
//! never touch the index's locks except through `for_each_shard`.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, DeserializeSeed};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::EpisodeId;
use crate::index::{
    IndexStats, Shard, ShardContent, ShardFold, ShardListing, ShardLoad, ShardView,
    SpatiotemporalIndex, SpilledShard,
};
use crate::store::ChangeMark;

/// The format version this build writes and reads (2: the manifest lists each shard's
/// statistics and `(id, version)` list; 3: the manifest begins with the durable store's
/// change mark the snapshot matched, if known; 7: a shard's terms with each document, their
/// frequencies beside them, and each string with its count of documents, so that a shard is
/// decoded straight into its structures).
pub const FORMAT_VERSION: u32 = 7;

const SHARD_MAGIC: &[u8; 8] = b"MEMIDXS1";
const MANIFEST_MAGIC: &[u8; 8] = b"MEMIDXM1";
const MANIFEST: &str = "manifest";
/// Bytes before the payload: magic, version, fingerprint (2 × 8), payload length.
const HEADER: usize = 8 + 4 + 16 + 8;

/// What a written snapshot holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Shard files.
    pub shards: usize,
    /// Episodes over all shards.
    pub episodes: usize,
    /// Bytes of all files (manifest included).
    pub bytes: u64,
    /// Of the shard files, those linked from the spill file of a shard spilled and unchanged
    /// since, not written again.
    pub linked: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ManifestEntry {
    namespace: String,
    domain: String,
    file: String,
    stats: IndexStats,
    versions: Vec<(EpisodeId, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    /// First, so that [`SnapshotDir::durable_mark`] reads it without the rest.
    durable_mark: Option<ChangeMark>,
    generation: u64,
    shards: Vec<ManifestEntry>,
}

/// An opened snapshot (see [`SnapshotDir::open`]).
#[derive(Debug)]
pub(crate) struct OpenedSnapshot {
    /// Every shard, still spilled.
    pub(crate) shards: Vec<SpilledShard>,
    /// The durable store's change mark the snapshot was written with, if any.
    pub(crate) durable_mark: Option<ChangeMark>,
}

/// The settings a shard's encoding depends on: files of an index with other settings are
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    bucket_width: i64,
    embedding_dimension: u64,
}

impl Fingerprint {
    fn of(index: &SpatiotemporalIndex) -> Result<Self> {
        let config = index.config();
        Ok(Self {
            bucket_width: config.bucket_width_micros().ok_or_else(|| {
                Error::invalid("index.temporal_bucket_width", "fits in i64 µs", "too large")
            })?,
            embedding_dimension: config.embedding_dimension.map_or(u64::MAX, |d| d as u64),
        })
    }
}

/// A snapshot directory.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    path: PathBuf,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::storage(what).with_source(e)
}

/// A stable 64-bit hash of a shard's key (FNV-1a), for file names.
fn shard_hash(namespace: &str, domain: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in namespace.bytes().chain([0xff]).chain(domain.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A writer or reader that checksums and counts what passes through it.
struct Summing<W> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Summing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// The header of a file whose payload is `len` bytes.
fn header(magic: &[u8; 8], fp: Fingerprint, len: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&fp.bucket_width.to_le_bytes());
    h[20..28].copy_from_slice(&fp.embedding_dimension.to_le_bytes());
    h[28..].copy_from_slice(&len.to_le_bytes());
    h
}

/// Write the whole file to `f`: the header, the payload `payload` writes, produced straight
/// into the file (no copy of it in memory: a shard's file is about the size of the shard),
/// then the checksum of header and payload; the header's length field is filled in last. The
/// checksum is taken over the buffer's 64 KiB writes, not over each value's few bytes.
/// Returns the file's length.
fn write_file(
    f: &mut File,
    magic: &[u8; 8],
    fp: Fingerprint,
    payload: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    f.write_all(&header(magic, fp, 0))?;
    let summing = Summing {
        inner: &mut *f,
        crc: crc32fast::Hasher::new(),
        len: 0,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, summing);
    payload(&mut out)?;
    let Summing {
        crc: payload, len, ..
    } = out.into_inner().map_err(|e| e.into_error())?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header(magic, fp, len));
    crc.combine(&payload);
    f.write_all(&crc.finalize().to_le_bytes())?;
    f.seek(SeekFrom::Start((HEADER - 8) as u64))?;
    f.write_all(&len.to_le_bytes())?;
    Ok(HEADER as u64 + len + 4)
}

/// The error for the snapshot file `name`, refused for the reason given.
fn refusal(name: &str) -> impl Fn(String) -> Error + '_ {
    move |why| Error::corrupt(format!("index snapshot file {name}: {why}"))
}

/// Read the file at `path`, checking everything, and decode its payload as it is read: no
/// copy of the file is held (a shard's file is about the size of the shard, and loads run
/// beside the index). The checksum is compared once the payload is read, decoded or not, so
/// a damaged file is refused as damaged rather than as undecodable; the error says which
/// file and what is wrong.
fn read_decoded<T: DeserializeOwned>(
    magic: &[u8; 8],
    fp: Fingerprint,
    path: &Path,
    name: &str,
) -> Result<T> {
    read_seeded(magic, fp, path, name, |_| {
        Plain::<T>(std::marker::PhantomData)
    })
}

/// A value decoded as it is, never refused.
struct Plain<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Plain<T> {
    type Value = std::result::Result<T, String>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        T::deserialize(d).map(Ok)
    }
}

/// [`read_decoded`], decoding with the seed `seed` makes of the payload's length; the seed may
/// refuse what it decoded, with its reason (reported as the file's refusal).
fn read_seeded<T, S: for<'de> DeserializeSeed<'de, Value = std::result::Result<T, String>>>(
    magic: &[u8; 8],
    fp: Fingerprint,
    path: &Path,
    name: &str,
    seed: impl FnOnce(u64) -> S,
) -> Result<T> {
    let bad = refusal(name);
    let unreadable = |e: std::io::Error| {
        Error::corrupt(format!("index snapshot file {} unreadable", path.display())).with_source(e)
    };
    let mut f = File::open(path).map_err(unreadable)?;
    let file_len = f.metadata().map_err(unreadable)?.len();
    if file_len < (HEADER + 4) as u64 {
        return Err(bad(format!("{file_len} bytes, shorter than a header")));
    }
    let mut head = [0u8; HEADER];
    f.read_exact(&mut head).map_err(unreadable)?;
    let len = check_header(magic, fp, &head, name)? as u64;
    let announced = len.saturating_add((HEADER + 4) as u64);
    if file_len != announced {
        return Err(bad(format!(
            "{file_len} bytes, the header announces {announced}"
        )));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    let mut input = FileInput {
        file: Summing {
            inner: f.take(len),
            crc,
            len: 0,
        },
        buf: vec![0; 1 << 16].into_boxed_slice(),
        at: 0,
        end: 0,
        temp: Vec::new(),
    };
    let decoded = seed(len).deserialize(&mut postcard::Deserializer::from_flavor(&mut input));
    // What the decoder left unread still counts for the checksum.
    let unread = (input.end - input.at) as u64
        + std::io::copy(&mut input.file, &mut std::io::sink()).map_err(unreadable)?;
    let Summing { inner, crc, .. } = input.file;
    let mut f = inner.into_inner();
    let mut stored = [0u8; 4];
    f.read_exact(&mut stored).map_err(unreadable)?;
    if crc.finalize() != u32::from_le_bytes(stored) {
        return Err(bad("checksum mismatch".into()));
    }
    let value = decoded
        .map_err(|e| bad(format!("undecodable payload: {e}")))?
        .map_err(&bad)?;
    if unread > 0 {
        return Err(bad(format!(
            "{unread} bytes of the payload after its content"
        )));
    }
    Ok(value)
}

/// A postcard input reading a file's payload through a 64 KiB buffer as the decoder asks for
/// it. A value the decoder needs whole (a string, a float) is lent from the buffer, or copied
/// into `temp` (grown to the longest such value) when it straddles a refill; a length beyond
/// what is left of the payload is refused before anything is allocated for it. Nothing is
/// lent for the input's whole lifetime (decoded values own their strings), so borrowed takes are
/// refused.
struct FileInput {
    /// The rest of the payload, checksummed as it is read.
    file: Summing<std::io::Take<File>>,
    buf: Box<[u8]>,
    /// `buf[at..end]` is read and not yet taken.
    at: usize,
    end: usize,
    temp: Vec<u8>,
}

impl FileInput {
    /// Refill the buffer once it is all taken; false at the end of the payload.
    fn refill(&mut self) -> postcard::Result<bool> {
        debug_assert_eq!(self.at, self.end);
        self.end = self
            .file
            .read(&mut self.buf)
            .map_err(|_| postcard::Error::DeserializeUnexpectedEnd)?;
        self.at = 0;
        Ok(self.end > 0)
    }
}

impl<'de> postcard::de_flavors::Flavor<'de> for &'de mut FileInput {
    type Remainder = ();
    type Source = ();

    fn pop(&mut self) -> postcard::Result<u8> {
        if self.at == self.end && !self.refill()? {
            return Err(postcard::Error::DeserializeUnexpectedEnd);
        }
        self.at += 1;
        Ok(self.buf[self.at - 1])
    }

    fn try_take_n(&mut self, _: usize) -> postcard::Result<&'de [u8]> {
        Err(postcard::Error::DeserializeBadEncoding)
    }

    fn try_take_n_temp<'a>(&'a mut self, ct: usize) -> postcard::Result<&'a [u8]>
    where
        'de: 'a,
    {
        let buffered = self.end - self.at;
        if ct <= buffered {
            self.at += ct;
            return Ok(&self.buf[self.at - ct..self.at]);
        }
        if (ct - buffered) as u64 > self.file.inner.limit() {
            return Err(postcard::Error::DeserializeUnexpectedEnd);
        }
        self.temp.clear();
        self.temp.extend_from_slice(&self.buf[self.at..self.end]);
        self.temp.resize(ct, 0);
        self.at = self.end;
        self.file
            .read_exact(&mut self.temp[buffered..])
            .map_err(|_| postcard::Error::DeserializeUnexpectedEnd)?;
        Ok(&self.temp)
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Check the header at the start of `bytes` (at least [`HEADER`] long): magic, format
/// version, fingerprint; returns the payload length it announces.
fn check_header(magic: &[u8; 8], fp: Fingerprint, bytes: &[u8], name: &str) -> Result<usize> {
    let bad = refusal(name);
    if &bytes[..8] != magic {
        return Err(bad(
            "not a snapshot file of this kind (magic bytes differ)".into()
        ));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    let version = u32::from_le_bytes(v);
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        )));
    }
    let found = Fingerprint {
        bucket_width: u64_at(12) as i64,
        embedding_dimension: u64_at(20),
    };
    if found != fp {
        return Err(bad(format!(
            "written for other index settings ({found:?}, now {fp:?})"
        )));
    }
    Ok(usize::try_from(u64_at(28)).unwrap_or(usize::MAX))
}

impl SnapshotDir {
    /// The snapshot directory at `path` (created when a snapshot is first written).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a snapshot (its manifest) is present; says nothing of its validity.
    pub(crate) fn is_present(&self) -> bool {
        self.path.join(MANIFEST).exists()
    }

    /// Write every shard of `index` and a new manifest, replacing the previous snapshot
    /// atomically (see the module docs). Shards are read one at a time under their read lock;
    /// writes made meanwhile may be in some shard files and not others, which the engine's
    /// comparison with the durable store at load repairs. `durable_mark` is the durable
    /// store's change mark when the caller knows `index` holds every write made before that
    /// mark was read (the engine's `Inner::settled_mark`), else `None`.
    pub fn write(
        &self,
        index: &SpatiotemporalIndex,
        durable_mark: Option<ChangeMark>,
    ) -> Result<SnapshotStats> {
        fs::create_dir_all(&self.path).map_err(io(format!("creating {}", self.path.display())))?;
        let fp = Fingerprint::of(index)?;
        let generation = self.read_manifest(fp).map_or(0, |m| m.generation) + 1;
        let mut stats = SnapshotStats::default();
        let mut shards = Vec::new();
        let file_of = |namespace: &str, domain: &str| {
            format!("shard-{:016x}-{generation}", shard_hash(namespace, domain))
        };
        index.for_each_shard(|content, shard_stats| {
            let (namespace, domain, file, versions) = match content {
                ShardContent::Encoded {
                    namespace,
                    domain,
                    versions,
                    bytes,
                } => {
                    let file = file_of(&namespace, &domain);
                    stats.bytes +=
                        self.put_with(&file, SHARD_MAGIC, fp, |w| w.write_all(&bytes))?;
                    (namespace, domain, file, versions)
                }
                ShardContent::File {
                    namespace,
                    domain,
                    path,
                } => {
                    // A spilled shard unchanged since: its spill file is linked, not written
                    // again, and its episodes are listed from it (checked whole).
                    let name = path.display().to_string();
                    let listing: ShardListing = read_decoded(SHARD_MAGIC, fp, &path, &name)?;
                    if listing.namespace != namespace
                        || listing.domain != domain
                        || listing.versions.len() != shard_stats.episodes
                    {
                        return Err(Error::corrupt(format!(
                            "spilled shard file {name} does not hold its shard"
                        )));
                    }
                    let file = file_of(&namespace, &domain);
                    let target = self.path.join(&file);
                    link_or_copy(&path, &target)
                        .map_err(io(format!("linking {name} into {}", self.path.display())))?;
                    stats.bytes += fs::metadata(&target)
                        .map_err(io(format!("reading {}", target.display())))?
                        .len();
                    stats.linked += 1;
                    (namespace, domain, file, listing.versions)
                }
            };
            stats.shards += 1;
            stats.episodes += versions.len();
            shards.push(ManifestEntry {
                versions,
                namespace,
                domain,
                file,
                stats: shard_stats,
            });
            Ok(())
        })?;
        // Every shard file's name durable before the manifest that lists them.
        sync_dir(&self.path)?;
        let keep: Vec<String> = shards.iter().map(|e| e.file.clone()).collect();
        let manifest = Manifest {
            durable_mark,
            generation,
            shards,
        };
        stats.bytes += self.put(MANIFEST, MANIFEST_MAGIC, fp, &manifest)?;
        sync_dir(&self.path)?;
        // The new manifest is durable: files it does not list belong to older snapshots.
        if let Ok(entries) = fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name != MANIFEST && !keep.contains(&name) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(stats)
    }

    /// Open the snapshot for `index` without reading its shard files: check the manifest,
    /// link (or, where links are unsupported, copy) each shard file into `spill`, where the
    /// index reads it when the shard is first used, and return what the index needs to serve
    /// the shards until then. `Ok(None)` when there is no snapshot. Any problem (a damaged
    /// manifest, a missing shard file, another format version, other index settings) is an
    /// error that says which file and why: such a snapshot must not be used.
    pub(crate) fn open(
        &self,
        index: &SpatiotemporalIndex,
        spill: &SpillDir,
    ) -> Result<Option<OpenedSnapshot>> {
        let fp = Fingerprint::of(index)?;
        if !self.is_present() {
            return Ok(None);
        }
        let manifest = self.read_manifest(fp)?;
        let mut shards = Vec::with_capacity(manifest.shards.len());
        for entry in manifest.shards {
            spill.adopt(
                &self.path.join(&entry.file),
                &entry.namespace,
                &entry.domain,
            )?;
            shards.push(SpilledShard {
                namespace: entry.namespace,
                domain: entry.domain,
                stats: entry.stats,
                versions: entry.versions,
            });
        }
        Ok(Some(OpenedSnapshot {
            shards,
            durable_mark: manifest.durable_mark,
        }))
    }

    /// The durable store's change mark the manifest was written with, read from the first
    /// bytes of the manifest alone (so it can be compared with the durable store while the
    /// manifest is read whole): `None` when there is none, or no readable manifest of this
    /// format for `index`. Unchecked by the checksum; [`SnapshotDir::open`] returns the
    /// checked one.
    pub(crate) fn durable_mark(&self, index: &SpatiotemporalIndex) -> Option<ChangeMark> {
        let fp = Fingerprint::of(index).ok()?;
        let mut start = Vec::new();
        File::open(self.path.join(MANIFEST))
            .and_then(|f| f.take((HEADER + 21) as u64).read_to_end(&mut start))
            .ok()?;
        if start.len() < HEADER {
            return None;
        }
        check_header(MANIFEST_MAGIC, fp, &start, MANIFEST).ok()?;
        postcard::take_from_bytes::<Option<ChangeMark>>(&start[HEADER..])
            .ok()?
            .0
    }

    fn read_manifest(&self, fp: Fingerprint) -> Result<Manifest> {
        read_decoded(MANIFEST_MAGIC, fp, &self.path.join(MANIFEST), MANIFEST)
    }

    /// Write the file for `value` to `name` atomically: temporary file, fsync, rename.
    /// Returns its length.
    fn put<T: Serialize>(
        &self,
        name: &str,
        magic: &[u8; 8],
        fp: Fingerprint,
        value: &T,
    ) -> Result<u64> {
        self.put_with(name, magic, fp, |w| {
            postcard::to_io(value, w)
                .map(drop)
                .map_err(std::io::Error::other)
        })
    }

    /// Write the file whose payload `payload` writes to `name` atomically, as [`Self::put`].
    fn put_with(
        &self,
        name: &str,
        magic: &[u8; 8],
        fp: Fingerprint,
        payload: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<u64> {
        let tmp = self.path.join(format!("{name}.tmp"));
        let target = self.path.join(name);
        let mut f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
        let len = write_file(&mut f, magic, fp, payload)
            .and_then(|len| f.sync_all().map(|()| len))
            .map_err(io(format!("writing {}", tmp.display())))?;
        fs::rename(&tmp, &target).map_err(io(format!("renaming {}", tmp.display())))?;
        Ok(len)
    }
}

/// Spilled shards (the memory budget's), one file per shard in `<snapshot dir>/spill/`, in the
/// snapshot file format; a file is replaced atomically each time its shard is spilled again.
#[derive(Debug)]
pub(crate) struct SpillDir {
    dir: SnapshotDir,
    fp: Fingerprint,
}

impl SpillDir {
    /// Spill files for `index` under `snapshots/spill`, created now and emptied: spill files
    /// of an earlier run are never read (the index is opened from the snapshot or rebuilt).
    pub(crate) fn new(snapshots: &SnapshotDir, index: &SpatiotemporalIndex) -> Result<Self> {
        let dir = SnapshotDir::new(snapshots.path().join("spill"));
        let path = dir.path();
        fs::create_dir_all(path).map_err(io(format!("creating {}", path.display())))?;
        for entry in fs::read_dir(path).map_err(io(format!("listing {}", path.display())))? {
            let entry = entry.map_err(io(format!("listing {}", path.display())))?;
            fs::remove_file(entry.path())
                .map_err(io(format!("removing {}", entry.path().display())))?;
        }
        Ok(Self {
            dir,
            fp: Fingerprint::of(index)?,
        })
    }

    fn name(namespace: &str, domain: &str) -> String {
        format!("shard-{:016x}", shard_hash(namespace, domain))
    }

    /// Make the snapshot shard file `file` the spilled content of `(namespace, domain)`: a hard
    /// link (no copy; later snapshots may delete `file`'s name, the link keeps the content), or
    /// a copy where links are unsupported. Only the file's length is checked here; the rest
    /// when it is loaded.
    fn adopt(&self, file: &Path, namespace: &str, domain: &str) -> Result<()> {
        let len = fs::metadata(file)
            .map_err(|e| {
                Error::corrupt(format!("index snapshot file {} unreadable", file.display()))
                    .with_source(e)
            })?
            .len();
        if len < (HEADER + 4) as u64 {
            return Err(Error::corrupt(format!(
                "index snapshot file {}: {len} bytes, shorter than a header",
                file.display()
            )));
        }
        let target = self.dir.path().join(Self::name(namespace, domain));
        link_or_copy(file, &target).map_err(io(format!(
            "linking {} into the spill directory",
            file.display()
        )))
    }
}

impl crate::index::ShardSpill for SpillDir {
    fn save(&self, shard: ShardView<'_>) -> Result<()> {
        let name = Self::name(shard.namespace(), shard.domain());
        self.dir
            .put(&name, SHARD_MAGIC, self.fp, &shard)
            .map(|_| ())
    }

    fn discard(&self, namespace: &str, domain: &str) -> Result<()> {
        let path = self.dir.path().join(Self::name(namespace, domain));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("removing {}", path.display()))(e))
            }
            _ => Ok(()),
        }
    }

    fn file(&self, namespace: &str, domain: &str) -> Option<PathBuf> {
        Some(self.dir.path().join(Self::name(namespace, domain)))
    }

    fn scratch_dir(&self) -> Option<PathBuf> {
        Some(self.dir.path().to_path_buf())
    }

    fn load(&self, load: ShardLoad) -> Result<Shard> {
        let name = Self::name(&load.key.namespace, &load.key.domain);
        let path = self.dir.path().join(&name);
        read_seeded(SHARD_MAGIC, self.fp, &path, &name, |payload_len| {
            load.of_len(payload_len)
        })
    }

    /// Two reads of the file (a plan, then the new file written as the old one is read
    /// again), each checked as a load checks it; the new file replaces the old one
    /// atomically, as a save does.
    fn fold(&self, fold: &ShardFold) -> Result<IndexStats> {
        let key = &fold.load().key;
        let name = Self::name(&key.namespace, &key.domain);
        let path = self.dir.path().join(&name);
        let plan = read_seeded(SHARD_MAGIC, self.fp, &path, &name, |len| fold.plan(len))?;
        self.dir.put_with(&name, SHARD_MAGIC, self.fp, |out| {
            read_seeded(SHARD_MAGIC, self.fp, &path, &name, |_| {
                plan.write(fold, out)
            })
            .map_err(std::io::Error::other)
        })?;
        Ok(plan.stats())
    }
}

/// Make `target` name the content of `file`: a hard link (files here are replaced whole,
/// never changed in place, so a link keeps the content whatever happens to `file`'s name), or
/// where links are unsupported a copy, synced. Replaces any `target`.
fn link_or_copy(file: &Path, target: &Path) -> std::io::Result<()> {
    let _ = fs::remove_file(target);
    fs::hard_link(file, target).or_else(|_| {
        fs::copy(file, target)?;
        File::open(target)?.sync_all()
    })
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::{EpisodeSummary, OutcomeKind, TaskContext};
    use crate::id::EpisodeId;
    use crate::index::IndexConfig;
    use crate::time;

    fn index_with(n: usize) -> SpatiotemporalIndex {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        fill(&index, n);
        index
    }

    /// Index `n` new episodes in domains d0, d1, d2 in turn.
    fn fill(index: &SpatiotemporalIndex, n: usize) {
        for i in 0..n {
            index
                .insert(&EpisodeSummary {
                    id: EpisodeId::new(),
                    version: 1,
                    context: TaskContext::new("ns", format!("d{}", i % 3), "t").with_tags(["tag"]),
                    description: format!("refund lamp number {i}"),
                    tools: vec!["lookup_order".into()],
                    step_count: 1,
                    successful_steps: 1,
                    outcome: Some(OutcomeKind::Success),
                    reward: 1.0,
                    embedding: None,
                    started_at: time::now(),
                    completed_at: Some(time::now()),
                })
                .unwrap();
        }
    }

    /// A new episode of domain `domain`, number `i` in its text and times, at version 1.
    fn numbered(i: usize, domain: &str) -> EpisodeSummary {
        EpisodeSummary {
            id: EpisodeId::new(),
            version: 1,
            context: TaskContext::new("ns", domain, "t"),
            description: format!("refund lamp number {i}"),
            tools: vec![],
            step_count: 1,
            successful_steps: 1,
            outcome: Some(OutcomeKind::Success),
            reward: 1.0,
            embedding: None,
            started_at: time::from_micros(i as i64),
            completed_at: Some(time::from_micros(i as i64 + 1)),
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A fresh index with a spill directory under `dir`, and that spill directory.
    fn fresh(
        dir: &SnapshotDir,
        config: IndexConfig,
    ) -> (SpatiotemporalIndex, std::sync::Arc<SpillDir>) {
        let index = SpatiotemporalIndex::new(config).unwrap();
        let spill = std::sync::Arc::new(SpillDir::new(dir, &index).unwrap());
        index.set_spill(spill.clone()).unwrap();
        (index, spill)
    }

    fn sorted_versions(index: &SpatiotemporalIndex) -> Vec<(EpisodeId, u64)> {
        let mut v = index.versions().unwrap();
        v.sort();
        v
    }

    #[test]
    fn a_snapshot_opens_spilled_loads_on_use_and_replaces_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::new(tmp.path().join("snap"));
        let index = index_with(30);
        let (opened, spill) = fresh(&dir, IndexConfig::default());
        assert!(
            dir.open(&opened, &spill).unwrap().is_none(),
            "no snapshot yet"
        );
        // The longest encoding of a mark: what `durable_mark` reads must hold it.
        let mark = ChangeMark {
            seq: u64::MAX - 3,
            mark: u64::MAX - 5,
        };
        let stats = dir.write(&index, Some(mark)).unwrap();
        assert_eq!((stats.shards, stats.episodes), (3, 30));
        assert_eq!(dir.durable_mark(&opened), Some(mark));
        let (other, other_spill) = fresh(&dir, IndexConfig::default());
        let marked = dir.open(&other, &other_spill).unwrap().unwrap();
        assert_eq!(marked.durable_mark, Some(mark));
        let first = files(dir.path());
        dir.write(&index, None).unwrap();
        assert_eq!(
            dir.durable_mark(&opened),
            None,
            "the newer manifest has none"
        );
        let second = files(dir.path());
        assert_eq!(
            second.len(),
            5,
            "manifest, spill/ and 3 shard files: {second:?}"
        );
        assert_ne!(first, second, "a new generation replaces the old files");
        let shards = dir.open(&opened, &spill).unwrap().unwrap().shards;
        assert_eq!(opened.install_spilled(shards).unwrap(), 30);
        // Served from the manifest before any shard file is read.
        assert_eq!(opened.spilled_shards(), 3);
        assert_eq!(sorted_versions(&opened), sorted_versions(&index));
        assert_eq!(opened.stats(), index.stats());
        // A newer snapshot deletes the files the spill directory links to: still readable.
        dir.write(&index, None).unwrap();
        let mut loads = 0;
        while opened.load_one_spilled().unwrap() {
            loads += 1;
        }
        assert_eq!((loads, opened.spilled_shards()), (3, 0));
        assert!(
            files(&dir.path().join("spill")).is_empty(),
            "without a budget, a loaded shard's spill file is removed"
        );
        assert_eq!(opened.stats(), index.stats());
        assert_eq!(sorted_versions(&opened), sorted_versions(&index));
    }

    #[test]
    fn an_episode_listed_by_two_shards_is_kept_at_its_newer_version() {
        // Without a budget the directory is built in memory; with one, straight into its file.
        for budget in [0, 1 << 20] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = SnapshotDir::new(tmp.path());
            let (index, _spill) = fresh(&dir, IndexConfig::default());
            index.set_budget(budget);
            let [moved, tied, alone] = std::array::from_fn(|_| EpisodeId::new());
            let shard = |domain: &str, versions: Vec<(EpisodeId, u64)>| SpilledShard {
                namespace: "ns".into(),
                domain: domain.into(),
                stats: IndexStats::default(),
                versions,
            };
            let installed = index
                .install_spilled(vec![
                    shard("a", vec![(moved, 2), (tied, 5), (alone, 1)]),
                    shard("b", vec![(tied, 5), (moved, 3)]),
                ])
                .unwrap();
            assert_eq!(installed, 3);
            assert_eq!(index.directory_on_file(), budget > 0);
            assert_eq!(index.contains(moved).unwrap(), Some(3));
            assert_eq!(index.contains(tied).unwrap(), Some(5));
            assert_eq!(index.contains(alone).unwrap(), Some(1));
            let mut held = index.versions().unwrap();
            held.sort();
            let mut expected = vec![(moved, 3), (tied, 5), (alone, 1)];
            expected.sort();
            assert_eq!(held, expected);
            // The copies not kept are removed from their shards when those load.
            for d in ["a", "b"] {
                let cell = index.shards_of("ns", Some(d)).pop().unwrap();
                assert_eq!(cell.read(index.waits()).pending_len(), 1, "{d}");
            }
        }
    }

    #[test]
    fn a_queue_folds_into_its_spill_file_and_a_damaged_file_stays_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::new(tmp.path());
        let (index, _spill) = fresh(&dir, IndexConfig::default());
        let reference = index_with(0);
        let summaries = |n: usize| {
            (0..n)
                .map(|i| numbered(i, &format!("d{}", i % 3)))
                .collect::<Vec<_>>()
        };
        let first = summaries(30);
        for s in &first {
            index.insert(s).unwrap();
            reference.insert(s).unwrap();
        }
        index.set_budget(1);
        assert_eq!(index.enforce_budget().unwrap(), 3, "every shard spilled");
        let path = tmp.path().join("spill").join(SpillDir::name("ns", "d0"));
        // Changes queued on every shard; d0's file damaged: its fold fails, the others'
        // run, and the damaged file is neither replaced nor loaded.
        for s in summaries(6) {
            index.insert(&s).unwrap();
            reference.insert(&s).unwrap();
        }
        assert!(index.remove(first[0].id).unwrap() && reference.remove(first[0].id).unwrap());
        let good = fs::read(&path).unwrap();
        let mut damaged = good.clone();
        damaged[HEADER + 3] ^= 0x40;
        fs::write(&path, &damaged).unwrap();
        let e = index.enforce_budget().unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{e}");
        assert_eq!(fs::read(&path).unwrap(), damaged);
        fs::write(&path, &good).unwrap();
        while index.shard_moves().folds < 3 {
            index.enforce_budget().unwrap();
        }
        assert_eq!(index.shard_moves().loads, 0, "no shard was loaded to fold");
        assert_ne!(fs::read(&path).unwrap(), good, "the file holds the changes");
        assert_eq!(index.stats(), reference.stats());
        index.set_budget(0);
        while index.load_one_spilled().unwrap() {}
        assert_eq!(index.stats(), reference.stats());
        assert_eq!(sorted_versions(&index), sorted_versions(&reference));
    }

    #[test]
    fn under_a_budget_the_id_directory_moves_to_a_file_and_answers_as_before() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::new(tmp.path());
        let (index, _spill) = fresh(&dir, IndexConfig::default());
        let reference = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let both = |s: &EpisodeSummary| {
            let a = index.insert(s).unwrap();
            assert_eq!(a, reference.insert(s).unwrap(), "{}", s.id);
        };
        let held: Vec<EpisodeSummary> = (0..3_000)
            .map(|i| numbered(i, &format!("d{}", i % 3)))
            .collect();
        held.iter().for_each(both);
        let in_memory = index.budgeted_bytes();
        // A budget the index fits: nothing spills, but the directory goes to a file.
        index.set_budget(usize::MAX / 2);
        assert_eq!(index.enforce_budget().unwrap(), 0);
        assert!(index.directory_on_file());
        let spill_files = || files(&tmp.path().join("spill"));
        assert_eq!(spill_files(), ["directory-0"]);
        let on_file = index.budgeted_bytes();
        assert!(
            in_memory - on_file >= 3_000 * 28,
            "{in_memory} -> {on_file} bytes"
        );
        // Replacements (newer, and older: refused), moves to another domain, removals, new
        // episodes: read through the changes, then through a second file.
        for (k, s) in held.iter().enumerate() {
            let mut s = s.clone();
            match k % 5 {
                0 => s.version = 2,
                1 => s.version = 0,
                2 => s.context.domain = "moved".into(),
                3 => {
                    assert_eq!(index.remove(s.id).unwrap(), reference.remove(s.id).unwrap());
                    continue;
                }
                _ => s = numbered(k, "d0"),
            }
            both(&s);
        }
        for s in held.iter().step_by(7) {
            assert_eq!(
                index.contains(s.id).unwrap(),
                reference.contains(s.id).unwrap()
            );
        }
        assert_eq!(sorted_versions(&index), sorted_versions(&reference));
        assert_eq!(index.enforce_budget().unwrap(), 0);
        assert_eq!(spill_files(), ["directory-1"], "the first file removed");
        assert_eq!(sorted_versions(&index), sorted_versions(&reference));
        assert_eq!(index.len(), reference.len());
        assert_eq!(index.stats(), reference.stats());
        for s in &held {
            assert_eq!(
                index.contains(s.id).unwrap(),
                reference.contains(s.id).unwrap()
            );
        }
    }

    #[test]
    fn a_snapshot_links_the_files_of_spilled_shards_unchanged_since() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::new(tmp.path());
        let (index, _spill) = fresh(&dir, IndexConfig::default());
        fill(&index, 30);
        index.set_budget(1);
        assert_eq!(index.enforce_budget().unwrap(), 3, "every shard spilled");
        // d1 and d2 loaded again; then a change queued on d0, folded into its file, which is
        // then linked, and one made to d1, whose content is written. d2's file still holds
        // its content: linked.
        for d in ["d1", "d2"] {
            let cell = index.shards_of("ns", Some(d)).pop().unwrap();
            index.ensure_loaded(&cell).unwrap();
        }
        fill(&index, 2);
        let stats = dir.write(&index, None).unwrap();
        assert_eq!((stats.shards, stats.episodes, stats.linked), (3, 32, 2));
        assert_eq!(index.shard_moves().folds, 1);
        let inode = |path: PathBuf| fs::metadata(path).unwrap().ino();
        for d in ["d0", "d1", "d2"] {
            let spilled = inode(tmp.path().join("spill").join(SpillDir::name("ns", d)));
            let written = inode(
                tmp.path()
                    .join(format!("shard-{:016x}-1", shard_hash("ns", d))),
            );
            assert_eq!(spilled == written, d != "d1", "{d}: linked unless changed");
        }
        // The reference: `index` whole again (before the next spill directory empties it).
        index.set_budget(0);
        while index.load_one_spilled().unwrap() {}
        let (opened, spill) = fresh(&dir, IndexConfig::default());
        let shards = dir.open(&opened, &spill).unwrap().unwrap().shards;
        assert_eq!(opened.install_spilled(shards).unwrap(), 32);
        while opened.load_one_spilled().unwrap() {}
        assert_eq!(sorted_versions(&opened), sorted_versions(&index));
        assert_eq!(opened.stats(), index.stats());
    }

    #[test]
    fn damaged_snapshots_are_refused_with_a_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::new(tmp.path());
        let index = index_with(10);
        dir.write(&index, None).unwrap();
        let shard = files(tmp.path())
            .into_iter()
            .find(|f| f.starts_with("shard-"))
            .unwrap();
        let path = tmp.path().join(&shard);
        let good = fs::read(&path).unwrap();
        // Refused at open: what open reads (the manifest, the shard files' presence).
        let refused_at_open = |why: &str| {
            let (opened, spill) = fresh(&dir, IndexConfig::default());
            let e = dir.open(&opened, &spill).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{why}: {e}");
            e.to_string()
        };
        // Refused when the shard is first loaded: the shard file's content.
        let refused_at_load = |why: &str| {
            let (opened, spill) = fresh(&dir, IndexConfig::default());
            let shards = dir.open(&opened, &spill).unwrap().unwrap().shards;
            opened.install_spilled(shards).unwrap();
            let e = loop {
                match opened.load_one_spilled() {
                    Ok(true) => {}
                    Ok(false) => panic!("{why}: every shard loaded"),
                    Err(e) => break e,
                }
            };
            assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{why}: {e}");
            e.to_string()
        };
        let mut flipped = good.clone();
        flipped[HEADER + 3] ^= 0x40;
        fs::write(&path, &flipped).unwrap();
        assert!(refused_at_load("flipped").contains("checksum"));
        fs::write(&path, &good[..good.len() - 9]).unwrap();
        assert!(refused_at_load("truncated").contains("announces"));
        let mut other_version = good.clone();
        other_version[8] = 9;
        fs::write(&path, &other_version).unwrap();
        assert!(refused_at_load("version").contains("format version"));
        fs::write(&path, &good[..HEADER]).unwrap();
        assert!(refused_at_open("cut short").contains("shorter than a header"));
        fs::remove_file(&path).unwrap();
        assert!(refused_at_open("missing").contains("unreadable"));
        fs::write(&path, &good).unwrap();
        let manifest = tmp.path().join(MANIFEST);
        let good_manifest = fs::read(&manifest).unwrap();
        let mut flipped = good_manifest.clone();
        flipped[HEADER + 1] ^= 0x01;
        fs::write(&manifest, &flipped).unwrap();
        assert!(refused_at_open("manifest flipped").contains("checksum"));
        fs::write(&manifest, &good_manifest).unwrap();
        let (opened, spill) = fresh(&dir, IndexConfig::default());
        let shards = dir.open(&opened, &spill).unwrap().unwrap().shards;
        assert_eq!(opened.install_spilled(shards).unwrap(), 10);
        while opened.load_one_spilled().unwrap() {}
        assert_eq!(opened.stats(), index.stats());
        let (other, spill) = fresh(
            &dir,
            IndexConfig {
                embedding_dimension: Some(4),
                ..IndexConfig::default()
            },
        );
        let e = dir.open(&other, &spill).unwrap_err();
        assert!(e.to_string().contains("other index settings"), "{e}");
    }

    /// A file of `good`'s header with `payload`, its length and checksum made to match.
    fn refile(good: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut file = good[..HEADER - 8].to_vec();
        file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        file.extend_from_slice(payload);
        let crc = crc32fast::hash(&file);
        file.extend_from_slice(&crc.to_le_bytes());
        file
    }

    #[test]
    fn files_are_decoded_as_they_are_read_and_checked_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::new(tmp.path());
        let fp = Fingerprint {
            bucket_width: 1,
            embedding_dimension: 3,
        };
        // Strings longer than the read buffer, ids, floats.
        let value = (
            "x".repeat(1 << 20),
            vec![EpisodeId::new(), EpisodeId::new()],
            vec![0.5f32, -1.25, 3.0],
            "y".repeat(100_000),
        );
        fs::create_dir_all(tmp.path()).unwrap();
        dir.put("value", SHARD_MAGIC, fp, &value).unwrap();
        let path = tmp.path().join("value");
        let read = |why: &str| -> Result<(String, Vec<EpisodeId>, Vec<f32>, String)> {
            read_decoded(SHARD_MAGIC, fp, &path, why)
        };
        assert_eq!(read("whole").unwrap(), value);
        let good = fs::read(&path).unwrap();
        let payload = &good[HEADER..good.len() - 4];
        // Checksummed, but bytes follow the content.
        fs::write(&path, refile(&good, &[payload, &[0]].concat())).unwrap();
        let e = read("longer").unwrap_err().to_string();
        assert!(
            e.contains("1 bytes of the payload after its content"),
            "{e}"
        );
        // Checksummed, but the content ends early.
        fs::write(&path, refile(&good, &payload[..payload.len() / 2])).unwrap();
        let e = read("cut").unwrap_err().to_string();
        assert!(e.contains("undecodable"), "{e}");
        // Damaged: the decoder stops early at a string length past the end, yet the damage is
        // reported as such.
        let mut damaged = good.clone();
        damaged[HEADER] = 0xff;
        damaged[HEADER + 1] = 0xff;
        fs::write(&path, &damaged).unwrap();
        let e = read("damaged").unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
    }
}
