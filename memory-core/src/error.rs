//! The one error type of the engine.
//!
//! Every fallible call in `memory-core` and in the storage crates returns [`Error`]. Backend
//! crates map their own errors (libsql, redb, I/O) into it at their edge, keeping the original as
//! the `source`; no backend type ever appears in a core signature. [`Error::is_transient`] is the
//! single classification used by retry and circuit-breaker decisions.

use std::fmt;
use std::sync::Arc;

/// The broad class of an [`Error`]; decides how callers and the engine react to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The episode (or other object) does not exist.
    NotFound,
    /// The caller's input breaks a rule or a limit; nothing was written.
    InvalidInput,
    /// A version check failed or the object already exists: re-read and retry.
    Conflict,
    /// The episode is completed (or being completed) and accepts no more steps or completion.
    AlreadyCompleted,
    /// Too much concurrent work; retry after a pause.
    Overloaded,
    /// A store is unreachable or refusing work for now (outage, breaker open, full journal).
    Unavailable,
    /// Stored bytes failed validation (checksum, format, truncation); never returned as data.
    Corrupt,
    /// Any other storage failure (disk full, I/O error, constraint broken, SQL error).
    Storage,
    /// The engine is shutting down or shut down and accepts no new work.
    ShuttingDown,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::NotFound,
        ErrorKind::InvalidInput,
        ErrorKind::Conflict,
        ErrorKind::AlreadyCompleted,
        ErrorKind::Overloaded,
        ErrorKind::Unavailable,
        ErrorKind::Corrupt,
        ErrorKind::Storage,
        ErrorKind::ShuttingDown,
    ];

    /// A stable lower-case name, used in metrics labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Conflict => "conflict",
            ErrorKind::AlreadyCompleted => "already_completed",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Storage => "storage",
            ErrorKind::ShuttingDown => "shutting_down",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A limit or rule that an input broke: which field, which limit, which value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field that broke the rule, e.g. `description` or `steps[3].input`.
    pub field: String,
    /// The rule, e.g. `at most 10000 chars` or `characters [a-z0-9_.-]`.
    pub limit: String,
    /// What the caller gave (a length, a count, or a short excerpt).
    pub value: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: limit {}, got {}",
            self.field, self.limit, self.value
        )
    }
}

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The engine's error: a kind, a message, an optional limit violation and the original cause.
///
/// Cheap to clone (the source is shared), so one failure can be handed to every caller that
/// waited on the same batch.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    violation: Option<Box<Violation>>,
    transient: bool,
    source: Option<Source>,
}

impl Error {
    /// A new error of `kind`. Transience defaults to the kind's usual meaning
    /// (`Overloaded` and `Unavailable` are transient, the rest are not).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            violation: None,
            transient: matches!(kind, ErrorKind::Overloaded | ErrorKind::Unavailable),
            source: None,
        }
    }

    /// `NotFound` for an object described by `what`.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found"))
    }

    /// `InvalidInput` naming the field, the limit and the offending value.
    pub fn invalid(
        field: impl Into<String>,
        limit: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let violation = Violation {
            field: field.into(),
            limit: limit.into(),
            value: value.into(),
        };
        let mut e = Self::new(
            ErrorKind::InvalidInput,
            format!("invalid input: {violation}"),
        );
        e.violation = Some(Box::new(violation));
        e
    }

    /// `Conflict` with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// `Corrupt` with a message.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// `Storage` with a message (not transient unless marked with [`Error::transient`]).
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage, message)
    }

    /// `Unavailable` (transient) with a message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Override whether retrying the same call later may succeed.
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message (without the source).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For `InvalidInput`: which field broke which limit with which value.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_deref()
    }

    /// Whether the same call may succeed if retried later (outage, lock timeout, overload).
    /// Drives retries and the circuit breaker; never true for bad input or corruption.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("message", &self.message)
            .field("transient", &self.transient);
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transience_follows_kind_unless_overridden() {
        assert!(Error::unavailable("down").is_transient());
        assert!(Error::new(ErrorKind::Overloaded, "busy").is_transient());
        assert!(!Error::corrupt("bad crc").is_transient());
        assert!(Error::storage("locked").transient(true).is_transient());
    }

    #[test]
    fn invalid_names_field_limit_and_value() {
        let e = Error::invalid("description", "at most 10000 chars", "10001 chars");
        let v = e.violation().expect("violation");
        assert_eq!(v.field, "description");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("10001 chars"), "{e}");
    }

    #[test]
    fn source_is_kept_and_displayed() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::storage("write failed").with_source(io);
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("disk on fire"));
    }
}
