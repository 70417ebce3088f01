//! Mapping libsql errors into [`memory_core::Error`] at this crate's edge.
//!
//! Every libsql call's error passes through [`db_error`], which classifies it by SQLite's
//! primary result code and keeps the original as the `source`. This module must never let a
//! libsql type escape into a public signature, and never invents data: bad stored values are
//! reported by the codec as `Corrupt`.

use std::fmt::Display;

use memory_core::{Error, ErrorKind};

/// SQLite primary result codes this crate distinguishes (`sqlite3.h`).
mod code {
    pub const BUSY: i32 = 5;
    pub const LOCKED: i32 = 6;
    pub const NOMEM: i32 = 7;
    pub const READONLY: i32 = 8;
    pub const IOERR: i32 = 10;
    pub const CORRUPT: i32 = 11;
    pub const FULL: i32 = 13;
    pub const CANTOPEN: i32 = 14;
    pub const PROTOCOL: i32 = 15;
    pub const CONSTRAINT: i32 = 19;
    pub const NOTADB: i32 = 26;
}

/// Map a libsql error raised while doing `context` into the engine's error.
///
/// - `SQLITE_BUSY`/`SQLITE_LOCKED`/`SQLITE_PROTOCOL` ("database is locked"): `Storage`,
///   **transient** (a retry after the other holder lets go may succeed).
/// - `SQLITE_CORRUPT`/`SQLITE_NOTADB`: `Corrupt`.
/// - Everything else (disk full, I/O, constraint, SQL errors, misuse): `Storage`, not transient.
pub(crate) fn db_error(context: impl Display, err: libsql::Error) -> Error {
    let mapped = match &err {
        libsql::Error::SqliteFailure(code, message) => {
            let primary = code & 0xff;
            let what = match primary {
                code::BUSY | code::LOCKED | code::PROTOCOL => {
                    return Error::storage(format!(
                        "{context}: database is locked by another connection or process \
                         (SQLite code {code}: {message})"
                    ))
                    .transient(true)
                    .with_source(err);
                }
                code::CORRUPT | code::NOTADB => {
                    return Error::corrupt(format!(
                        "{context}: the database file is damaged or not a database \
                         (SQLite code {code}: {message})"
                    ))
                    .with_source(err);
                }
                code::FULL => "disk or database full",
                code::IOERR => "I/O error",
                code::CANTOPEN => "cannot open the database file",
                code::READONLY => "the database is read-only",
                code::CONSTRAINT => "constraint violated",
                code::NOMEM => "out of memory",
                _ => "SQL error",
            };
            Error::storage(format!("{context}: {what} (SQLite code {code}: {message})"))
        }
        libsql::Error::RemoteSqliteFailure(code, _, message) => {
            return db_error(
                context,
                libsql::Error::SqliteFailure(*code, message.clone()),
            );
        }
        libsql::Error::ConnectionFailed(_)
        | libsql::Error::Hrana(_)
        | libsql::Error::WriteDelegation(_)
        | libsql::Error::Replication(_)
        | libsql::Error::Sync(_) => return network_error(context, err),
        other => Error::storage(format!("{context}: {other}")),
    };
    mapped.with_source(err)
}

/// An error from the network client (remote server, embedded replica). libsql keeps its
/// protocol error types private, so the kind is read from the message: an SQL error the
/// server reports (`code: "SQLITE_…"`) is classified by that code like a local one; a refused
/// credential (HTTP 401/403) is permanent (retrying cannot fix it); anything else (refused
/// connection, reset, timeout, closed stream, bad gateway) is `Unavailable`, transient.
fn network_error(context: impl Display, err: libsql::Error) -> Error {
    let text = err.to_string();
    if let Some(code) = server_sql_code(&text) {
        let sqlite = match code {
            "SQLITE_BUSY" => 5,
            "SQLITE_LOCKED" => 6,
            "SQLITE_CONSTRAINT" => 19,
            "SQLITE_CORRUPT" => 11,
            "SQLITE_NOTADB" => 26,
            "SQLITE_FULL" => 13,
            "SQLITE_READONLY" => 8,
            _ => 1,
        };
        let mapped = db_error(
            format!("{context} (on the server)"),
            libsql::Error::SqliteFailure(sqlite, text.clone()),
        );
        return mapped.with_source(err);
    }
    let refused = ["401", "403", "Unauthorized", "Forbidden"]
        .iter()
        .any(|t| text.contains(t));
    if refused {
        return Error::storage(format!(
            "{context}: the server refused the credentials (check the auth token): {text}"
        ))
        .with_source(err);
    }
    Error::unavailable(format!(
        "{context}: the server is unreachable or failed: {text}"
    ))
    .with_source(err)
}

/// The `SQLITE_…` code name in a server error message, if it carries one.
fn server_sql_code(text: &str) -> Option<&str> {
    let start = text.find("SQLITE_")?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The error every write gets once the store is closing or closed.
pub(crate) fn shutting_down() -> Error {
    Error::new(
        ErrorKind::ShuttingDown,
        "the turso store is closed or closing; it accepts no new work",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_transient_and_keeps_source() {
        let e = db_error(
            "begin",
            libsql::Error::SqliteFailure(5, "database is locked".into()),
        );
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert!(e.is_transient());
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("database is locked"), "{e}");
        // Extended codes (SQLITE_BUSY_SNAPSHOT = 517) classify by their primary code.
        assert!(db_error("x", libsql::Error::SqliteFailure(517, "busy".into())).is_transient());
    }

    #[test]
    fn network_failures_are_transient_and_server_sql_errors_are_not() {
        let down = db_error(
            "write",
            libsql::Error::ConnectionFailed("connection refused".into()),
        );
        assert_eq!(down.kind(), ErrorKind::Unavailable);
        assert!(down.is_transient());
        let sql = db_error(
            "write",
            libsql::Error::Hrana(
                "stream error: `Error { message: \"UNIQUE constraint failed\", code: \"SQLITE_CONSTRAINT\" }`"
                    .into(),
            ),
        );
        assert_eq!(sql.kind(), ErrorKind::Storage);
        assert!(!sql.is_transient(), "{sql}");
        let busy = db_error("w", libsql::Error::Hrana("code: \"SQLITE_BUSY\"".into()));
        assert!(busy.is_transient());
        let auth = db_error(
            "w",
            libsql::Error::Hrana("http error: `401 Unauthorized`".into()),
        );
        assert!(!auth.is_transient());
        assert!(auth.to_string().contains("credentials"), "{auth}");
        let remote = db_error(
            "w",
            libsql::Error::RemoteSqliteFailure(19, 2067, "unique".into()),
        );
        assert!(!remote.is_transient());
    }

    #[test]
    fn full_and_constraint_are_permanent_storage_errors() {
        for code in [13, 19, 1, 10] {
            let e = db_error("write", libsql::Error::SqliteFailure(code, "m".into()));
            assert_eq!(e.kind(), ErrorKind::Storage);
            assert!(!e.is_transient());
        }
        let e = db_error("read", libsql::Error::SqliteFailure(26, "not a db".into()));
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let e = db_error("x", libsql::Error::InvalidUTF8Path);
        assert_eq!(e.kind(), ErrorKind::Storage);
    }
}
