//! The id directory's merged entries in a file, once a memory budget applies: the index's
//! memory then holds only a fence id per block of entries and the changes since the last
//! merge, so the directory no longer grows with the episodes inside the index's share.
//!
//! Owns the file's layout and its reads: fixed records of 28 bytes (the id's 16 bytes, which
//! sort as the ids do, the shard's number in the file's table of shards, `u32` little-endian,
//! and the version, `u64` little-endian), sorted by id, no id twice; in memory, the first id of
//! each block of [`BLOCK`] records and the table of shards. A file is written once, whole, by
//! [`DirFile::write`] and never changed; a merge writes a new one. A file is scratch: nothing
//! reads it after the process ends (the spill directory is emptied at open), so it is neither
//! synced nor checksummed, and it is removed when dropped. Every record read is checked (a
//! version 7 id, a known shard number): a damaged file is an error, never an entry.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::id::{EpisodeId, IdRange};

use super::cell::ShardCell;
use super::directory::Located;
use super::footprint;

/// Bytes of one record.
const RECORD: usize = 28;
/// Records a fence covers: one read of 3,584 bytes finds an id.
const BLOCK: usize = 128;

/// A written directory file.
#[derive(Debug)]
pub(crate) struct DirFile {
    path: PathBuf,
    /// Reads seek it, so they take turns.
    file: Mutex<File>,
    len: usize,
    /// The first id of each block.
    fences: Vec<EpisodeId>,
    /// The shards the records name, by number.
    homes: Vec<Arc<ShardCell>>,
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let message = format!("{what} the index directory file {}", path.display());
    move |e| Error::storage(message).with_source(e)
}

/// Removes a file unless defused: a write that fails leaves nothing behind.
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

impl DirFile {
    /// Write `entries` (ascending ids, no id twice, else an error) to a new file at `path`.
    pub(crate) fn write(
        path: PathBuf,
        entries: impl Iterator<Item = Result<(EpisodeId, Located)>>,
    ) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error("creating", &path))?;
        let mut unfinished = Unfinished(Some(path.clone()));
        let mut out = BufWriter::with_capacity(64 << 10, &file);
        let mut numbers: HashMap<*const ShardCell, u32> = HashMap::new();
        let (mut homes, mut fences, mut len) = (Vec::new(), Vec::new(), 0);
        let mut last: Option<EpisodeId> = None;
        for entry in entries {
            let (id, at) = entry?;
            if last.is_some_and(|l| l >= id) {
                return Err(Error::storage(
                    "index directory entries out of order (a bug)",
                ));
            }
            last = Some(id);
            if len % BLOCK == 0 {
                footprint::reserve_one(&mut fences);
                fences.push(id);
            }
            let home = match numbers.get(&Arc::as_ptr(&at.cell)) {
                Some(home) => *home,
                None => {
                    let home = u32::try_from(homes.len()).map_err(|_| {
                        Error::storage("more shards than an index directory file can number")
                    })?;
                    numbers.insert(Arc::as_ptr(&at.cell), home);
                    homes.push(at.cell.clone());
                    home
                }
            };
            let mut record = [0u8; RECORD];
            record[..16].copy_from_slice(&id.to_bytes());
            record[16..20].copy_from_slice(&home.to_le_bytes());
            record[20..].copy_from_slice(&at.version.to_le_bytes());
            out.write_all(&record).map_err(io_error("writing", &path))?;
            len += 1;
        }
        out.flush().map_err(io_error("writing", &path))?;
        drop(out);
        unfinished.0 = None;
        fences.shrink_to_fit();
        homes.shrink_to_fit();
        Ok(Self {
            file: Mutex::new(file),
            path,
            len,
            fences,
            homes,
        })
    }

    /// Entries in the file.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Estimated heap bytes (the fences and the table of shards).
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::vec::<EpisodeId>(self.fences.capacity())
            + footprint::vec::<Arc<ShardCell>>(self.homes.capacity())
    }

    fn decode(&self, record: &[u8]) -> Result<(EpisodeId, Located)> {
        let damaged = |what: &str| {
            Error::corrupt(format!(
                "index directory file {}: {what}",
                self.path.display()
            ))
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&record[..16]);
        let id =
            EpisodeId::from_bytes(id).map_err(|_| damaged("a record's id is no UUID version 7"))?;
        let mut home = [0u8; 4];
        home.copy_from_slice(&record[16..20]);
        let cell = self
            .homes
            .get(u32::from_le_bytes(home) as usize)
            .ok_or_else(|| damaged("a record names no shard of the file"))?
            .clone();
        let mut version = [0u8; 8];
        version.copy_from_slice(&record[20..RECORD]);
        let version = u64::from_le_bytes(version);
        Ok((id, Located { cell, version }))
    }

    /// Read the records of `block` into `buf`; returns how many there are.
    fn read_block(&self, block: usize, buf: &mut [u8; BLOCK * RECORD]) -> Result<usize> {
        let first = block * BLOCK;
        let n = BLOCK.min(self.len - first);
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.seek(SeekFrom::Start((first * RECORD) as u64))
            .and_then(|_| file.read_exact(&mut buf[..n * RECORD]))
            .map_err(io_error("reading", &self.path))?;
        Ok(n)
    }

    /// Where `id` is, if the file holds it: one read of its block.
    pub(crate) fn get(&self, id: EpisodeId) -> Result<Option<Located>> {
        let Some(block) = self.fences.partition_point(|f| *f <= id).checked_sub(1) else {
            return Ok(None);
        };
        let mut buf = [0u8; BLOCK * RECORD];
        let key = id.to_bytes();
        let (mut lo, mut hi) = (0, self.read_block(block, &mut buf)?);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let record = &buf[mid * RECORD..(mid + 1) * RECORD];
            match record[..16].cmp(&key[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.decode(record).map(|(_, l)| Some(l)),
            }
        }
        Ok(None)
    }

    /// Hand each entry in `range` to `each`, in id order (reads from the block holding the
    /// range's start to the one holding its end).
    pub(crate) fn for_each_in(
        &self,
        range: IdRange,
        mut each: impl FnMut(EpisodeId, Located),
    ) -> Result<()> {
        let mut block = range.after.map_or(0, |a| {
            self.fences.partition_point(|f| *f <= a).saturating_sub(1)
        });
        let mut buf = [0u8; BLOCK * RECORD];
        while block < self.fences.len() {
            if range.through.is_some_and(|t| self.fences[block] > t) {
                break;
            }
            let n = self.read_block(block, &mut buf)?;
            for record in buf[..n * RECORD].chunks_exact(RECORD) {
                let (id, at) = self.decode(record)?;
                if range.holds(id) {
                    each(id, at);
                }
            }
            block += 1;
        }
        Ok(())
    }

    /// Every entry in id order, read through a handle of its own (a merge reads the file on
    /// the spill thread while lookups go on).
    pub(crate) fn entries(self: &Arc<Self>) -> Result<Entries> {
        let file = File::open(&self.path).map_err(io_error("opening", &self.path))?;
        Ok(Entries {
            file: self.clone(),
            reader: BufReader::with_capacity(64 << 10, file),
            left: self.len,
        })
    }
}

impl Drop for DirFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A [`DirFile`]'s entries in id order.
pub(crate) struct Entries {
    file: Arc<DirFile>,
    reader: BufReader<File>,
    left: usize,
}

impl Iterator for Entries {
    type Item = Result<(EpisodeId, Located)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut record = [0u8; RECORD];
        Some(
            self.reader
                .read_exact(&mut record)
                .map_err(io_error("reading", &self.file.path))
                .and_then(|()| self.file.decode(&record)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::directory::tests::cell;

    #[test]
    fn a_file_answers_every_lookup_range_and_scan_as_written_and_refuses_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let cells = [cell("a"), cell("b"), cell("c")];
        let mut ids: Vec<EpisodeId> = (0..1_000).map(|_| EpisodeId::new()).collect();
        ids.sort();
        let held: Vec<(EpisodeId, usize, u64)> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(i, id)| (*id, i % 3, i as u64 * 7))
            .collect();
        let path = dir.join("directory-0");
        let file = Arc::new(
            DirFile::write(
                path.clone(),
                held.iter().map(|(id, c, v)| {
                    Ok((
                        *id,
                        Located {
                            cell: cells[*c].clone(),
                            version: *v,
                        },
                    ))
                }),
            )
            .unwrap(),
        );
        assert_eq!(file.len, held.len());
        assert_eq!(file.homes.len(), 2, "only the shards named");
        for (i, id) in ids.iter().enumerate() {
            let got = file.get(*id).unwrap();
            match held.iter().find(|(h, _, _)| h == id) {
                Some((_, c, v)) => {
                    let got = got.expect("held");
                    assert!(
                        Arc::ptr_eq(&got.cell, &cells[*c]) && got.version == *v,
                        "{i}"
                    );
                }
                None => assert!(got.is_none(), "{i}"),
            }
        }
        let range = IdRange {
            after: Some(ids[200]),
            through: Some(ids[700]),
        };
        let mut seen = Vec::new();
        file.for_each_in(range, |id, at| seen.push((id, at.version)))
            .unwrap();
        let expect: Vec<(EpisodeId, u64)> = held
            .iter()
            .filter(|(id, _, _)| range.holds(*id))
            .map(|(id, _, v)| (*id, *v))
            .collect();
        assert_eq!(seen, expect);
        let all: Vec<(EpisodeId, u64)> = file
            .entries()
            .unwrap()
            .map(|e| e.map(|(id, at)| (id, at.version)))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(all.len(), held.len());
        assert!(all.iter().zip(&held).all(|(a, h)| a.0 == h.0 && a.1 == h.2));
        // Out of order: refused, nothing left behind.
        let unsorted = [ids[5], ids[4]].map(|id| {
            Ok((
                id,
                Located {
                    cell: cells[0].clone(),
                    version: 1,
                },
            ))
        });
        let bad = dir.join("directory-1");
        assert!(DirFile::write(bad.clone(), unsorted.into_iter()).is_err());
        assert!(!bad.exists());
        // A record's shard number damaged on disk: an error, not an entry.
        let mut bytes = fs::read(&path).unwrap();
        bytes[RECORD * 10 + 16] = 0xff;
        fs::write(&path, &bytes).unwrap();
        let e = file.get(held[10].0).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{e}");
        drop(file);
        assert!(!path.exists(), "removed when dropped");
    }
}
