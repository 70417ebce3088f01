//! Episode identifiers: UUID v7 newtypes, time-ordered, checked on construction.
//!
//! This module owns the only way to make an [`EpisodeId`]; no API takes a bare `Uuid` or
//! `String` for an episode.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, de};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The id of one episode: a UUID version 7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "Uuid")]
pub struct EpisodeId(Uuid);

impl EpisodeId {
    /// A fresh id for an episode starting now.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wrap an existing UUID; fails unless it is version 7.
    pub fn from_uuid(uuid: Uuid) -> Result<Self> {
        if uuid.get_version_num() == 7 {
            Ok(Self(uuid))
        } else {
            Err(Error::invalid(
                "episode_id",
                "a UUID version 7",
                format!("version {} ({uuid})", uuid.get_version_num()),
            ))
        }
    }

    /// Rebuild from the 16 bytes of [`EpisodeId::to_bytes`]; fails unless version 7.
    pub fn from_bytes(bytes: [u8; 16]) -> Result<Self> {
        Self::from_uuid(Uuid::from_bytes(bytes))
    }

    /// The 16 big-endian bytes; their byte order is the id order.
    pub fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

/// The ids in `(after, through]`, in id order: one page of an id-ordered paged read (see
/// `store::Page`). `None` leaves that end open; the default holds every id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IdRange {
    pub(crate) after: Option<EpisodeId>,
    pub(crate) through: Option<EpisodeId>,
}

impl IdRange {
    /// Whether `id` lies in the range.
    pub(crate) fn holds(&self, id: EpisodeId) -> bool {
        self.after.is_none_or(|a| id > a) && self.through.is_none_or(|t| id <= t)
    }
}

impl Default for EpisodeId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<Uuid> for EpisodeId {
    type Error = Error;
    fn try_from(uuid: Uuid) -> Result<Self> {
        Self::from_uuid(uuid)
    }
}

impl<'de> Deserialize<'de> for EpisodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if d.is_human_readable() {
            return Self::from_uuid(Uuid::deserialize(d)?).map_err(de::Error::custom);
        }
        // Asked for as an owned buffer, not borrowed from the input: a reader that decodes a
        // file as it reads it (index snapshots) has no input to lend.
        d.deserialize_byte_buf(IdBytes)
    }
}

/// The 16 bytes of an [`EpisodeId`] in a binary format.
struct IdBytes;

impl de::Visitor<'_> for IdBytes {
    type Value = EpisodeId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the 16 bytes of a UUID version 7")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<EpisodeId, E> {
        let bytes = v
            .try_into()
            .map_err(|_| E::invalid_length(v.len(), &self))?;
        EpisodeId::from_bytes(bytes).map_err(E::custom)
    }
}

impl From<EpisodeId> for Uuid {
    fn from(id: EpisodeId) -> Uuid {
        id.0
    }
}

impl FromStr for EpisodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let uuid = Uuid::parse_str(s).map_err(|e| {
            Error::invalid("episode_id", "a UUID string", truncate_for_message(s)).with_source(e)
        })?;
        Self::from_uuid(uuid)
    }
}

impl fmt::Display for EpisodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EpisodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EpisodeId({})", self.0)
    }
}

/// At most 64 chars of `s`, for quoting caller input inside an error message.
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_and_time_ordered() {
        let a = EpisodeId::new();
        let b = EpisodeId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b, "{a} !< {b}");
        assert!(a.to_bytes() < b.to_bytes());
    }

    #[test]
    fn rejects_other_versions() {
        let v4 = Uuid::from_bytes([0x11; 16]);
        assert!(EpisodeId::from_uuid(v4).is_err());
        assert!("not-a-uuid".parse::<EpisodeId>().is_err());
        let a = EpisodeId::new();
        assert_eq!(a.to_string().parse::<EpisodeId>().unwrap(), a);
        assert_eq!(EpisodeId::from_bytes(a.to_bytes()).unwrap(), a);
    }

    #[test]
    fn ids_round_trip_through_serde_and_other_versions_are_refused() {
        let a = EpisodeId::new();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
        assert_eq!(serde_json::from_str::<EpisodeId>(&json).unwrap(), a);
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<EpisodeId>(&bytes).unwrap(), a);
        let v4 = Uuid::from_bytes([0x11; 16]);
        assert!(serde_json::from_str::<EpisodeId>(&format!("\"{v4}\"")).is_err());
        let v4_bytes = postcard::to_allocvec(&v4).unwrap();
        assert!(postcard::from_bytes::<EpisodeId>(&v4_bytes).is_err());
        // 15 bytes: a length byte, then the bytes.
        let short: Vec<u8> = std::iter::once(15)
            .chain(a.to_bytes()[..15].iter().copied())
            .collect();
        assert!(postcard::from_bytes::<EpisodeId>(&short).is_err());
    }
}
