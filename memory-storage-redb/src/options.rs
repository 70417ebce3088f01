//! [`RedbOptions`]: the settings of one redb file (cache bound, page cache, open-time check).
//!
//! A plain struct with documented defaults and one [`RedbOptions::validate`]. This module only
//! describes settings; it never touches a file.

use memory_core::{Error, Result};

/// Settings for [`crate::RedbCache::open`].
///
/// ```
/// use memory_storage_redb::RedbOptions;
///
/// let options = RedbOptions {
///     max_cache_bytes: 64 * 1024 * 1024,
///     ..RedbOptions::default()
/// };
/// options.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedbOptions {
    /// Upper bound of the episode cache, in bytes: the sum of the encoded record sizes of the
    /// cached episodes (keys and redb's own page overhead are not counted). A `put` that would
    /// exceed it first evicts the least-recently-used entries. A single record larger than the
    /// bound is not cached at all. The journal is never bounded or evicted.
    ///
    /// Default: 256 MiB. Must be at least 1.
    pub max_cache_bytes: u64,

    /// Memory redb may use to cache file pages (its own page cache, separate from the
    /// episode cache bound above).
    ///
    /// Default: 64 MiB (redb's own default is 1 GiB).
    pub page_cache_bytes: usize,

    /// Verify the checksum of every page of the file when opening, so that a file damaged
    /// outside redb fails to open with `Corrupt` instead of being trusted (redb documents that a
    /// plain open of such a file may panic). Costs one read of the whole file per open.
    ///
    /// Default: `true`.
    pub check_integrity_on_open: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            max_cache_bytes: 256 * 1024 * 1024,
            page_cache_bytes: 64 * 1024 * 1024,
            check_integrity_on_open: true,
        }
    }
}

impl RedbOptions {
    /// Check the settings; `InvalidInput` naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.max_cache_bytes == 0 {
            return Err(Error::invalid("max_cache_bytes", "at least 1", "0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memory_core::ErrorKind;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let o = RedbOptions::default();
        assert_eq!(o.max_cache_bytes, 256 << 20);
        assert_eq!(o.page_cache_bytes, 64 << 20);
        assert!(o.check_integrity_on_open);
        o.validate().unwrap();
    }

    #[test]
    fn zero_bound_is_rejected_naming_the_field() {
        let o = RedbOptions {
            max_cache_bytes: 0,
            ..RedbOptions::default()
        };
        let e = o.validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.violation().unwrap().field, "max_cache_bytes");
    }
}
