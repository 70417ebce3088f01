//! The index's structural settings: what cannot change without rebuilding it.
//!
//! Owns [`IndexConfig`] and its validation. Scoring settings (weights, BM25 parameters) are not
//! here: they are read per query from `RetrievalConfig` and can change without a rebuild. This
//! module must never hold runtime state.

use std::time::Duration;

use crate::error::{Error, Result};

/// Settings fixed for the life of a [`SpatiotemporalIndex`](super::SpatiotemporalIndex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// Width of a temporal cluster (the time bucket episodes are grouped in by `started_at`,
    /// the third level of the hierarchy). Default 7 days. At least 1 second.
    pub temporal_bucket_width: Duration,
    /// The embedding dimension. `None` (default): summaries carrying an embedding are refused,
    /// as `Limits::embedding_dimension` refuses them. `Some(d)`: every embedding must have
    /// exactly `d` finite components.
    pub embedding_dimension: Option<usize>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            temporal_bucket_width: Duration::from_secs(7 * 24 * 3600),
            embedding_dimension: None,
        }
    }
}

impl IndexConfig {
    /// Check every setting; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.temporal_bucket_width < Duration::from_secs(1) {
            return Err(Error::invalid(
                "index.temporal_bucket_width",
                "at least 1 s",
                format!("{:?}", self.temporal_bucket_width),
            ));
        }
        if self.bucket_width_micros().is_none() {
            return Err(Error::invalid(
                "index.temporal_bucket_width",
                format!("at most {} µs", i64::MAX),
                format!("{:?}", self.temporal_bucket_width),
            ));
        }
        if self.embedding_dimension == Some(0) {
            return Err(Error::invalid(
                "index.embedding_dimension",
                "at least 1",
                "0",
            ));
        }
        Ok(())
    }

    /// The bucket width in microseconds, if it fits an `i64`.
    pub(crate) fn bucket_width_micros(&self) -> Option<i64> {
        i64::try_from(self.temporal_bucket_width.as_micros()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        IndexConfig::default().validate().unwrap();
        let c = IndexConfig {
            temporal_bucket_width: Duration::from_millis(10),
            ..IndexConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.violation().unwrap().field, "index.temporal_bucket_width");
        let c = IndexConfig {
            embedding_dimension: Some(0),
            ..IndexConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
