//! Timestamps: UTC, microsecond precision everywhere.
//!
//! Every timestamp the engine stores is truncated to whole microseconds, so that every backend
//! (binary records, SQL integer columns) round-trips it exactly.

use chrono::{DateTime, TimeZone, Utc};

/// The engine's timestamp type.
pub type Timestamp = DateTime<Utc>;

/// Now, truncated to microseconds.
pub fn now() -> Timestamp {
    truncate(Utc::now())
}

/// `t` truncated to whole microseconds.
pub fn truncate(t: Timestamp) -> Timestamp {
    from_micros(t.timestamp_micros())
}

/// Microseconds since the Unix epoch, the integer form stored by SQL backends.
pub fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`]. Values outside chrono's range clamp to its bounds.
pub fn from_micros(micros: i64) -> Timestamp {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(if micros < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        let t = now();
        assert_eq!(from_micros(to_micros(t)), t);
        assert_eq!(truncate(t), t);
    }
}
