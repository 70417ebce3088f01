//! The crate edge for errors: every redb, I/O and task failure becomes a
//! [`memory_core::Error`] here, with the original kept as its `source`.
//!
//! Nothing outside this module matches on redb error types, and no redb type leaves the crate.

use memory_core::{Error, ErrorKind};

/// Map a redb failure (any of its error types) during `context` into the engine's error.
///
/// Classification:
/// - `Corrupted` (redb's own page checksums or structure) is `Corrupt`, and so is an I/O error
///   of kind `InvalidData`, which redb raises for a file that is not a redb database (a damaged
///   header).
/// - Everything else is `Storage` and not transient: after an I/O failure redb refuses further
///   writes (`PreviousIo`) until the file is reopened, so retrying the same call cannot help.
pub(crate) fn from_redb(context: &str, err: impl Into<redb::Error>) -> Error {
    let err: redb::Error = err.into();
    let kind = match &err {
        redb::Error::Corrupted(_) => ErrorKind::Corrupt,
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => ErrorKind::Corrupt,
        _ => ErrorKind::Storage,
    };
    let detail = match &err {
        redb::Error::DatabaseAlreadyOpen => {
            " (the file is already open: share one RedbCache per file and process)"
        }
        redb::Error::PreviousIo => " (an earlier I/O error poisoned the file; reopen it)",
        _ => "",
    };
    Error::new(kind, format!("redb: {context}{detail}"))
        .transient(false)
        .with_source(err)
}

/// Map the failure of a blocking task (a panic inside it, or runtime shutdown).
pub(crate) fn from_join(context: &str, err: tokio::task::JoinError) -> Error {
    Error::storage(format!("redb: {context}: blocking task failed")).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupted_maps_to_corrupt_and_keeps_the_source() {
        let e = from_redb("read", redb::StorageError::Corrupted("bad page".into()));
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(!e.is_transient());
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("bad page"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_redb_database_is_corrupt() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "Not a redb database: magic number mismatch",
        );
        let e = from_redb("open", redb::StorageError::Io(io));
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("magic number"), "{e}");
    }

    #[test]
    fn io_maps_to_storage_and_already_open_says_why() {
        let io = std::io::Error::other("disk on fire");
        let e = from_redb("commit", redb::StorageError::Io(io));
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert!(e.to_string().contains("disk on fire"), "{e}");
        let e = from_redb("open", redb::DatabaseError::DatabaseAlreadyOpen);
        assert!(e.message().contains("already open"), "{e}");
    }
}
