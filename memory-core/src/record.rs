//! The versioned, checksummed binary form of everything stored as bytes.
//!
//! Layout: `[format: u8][kind: u8][postcard payload][crc32 of all preceding bytes, LE u32]`.
//!
//! postcard has no field tags, so a changed struct would silently misread old bytes. The format
//! byte makes every change explicit: whoever changes the serialized shape of a recorded type
//! bumps [`FORMAT`], keeps a frozen copy of the old types, and decodes old formats through it.
//! The fixture test below fails if the shape changes without that. Truncated, altered, foreign
//! or trailing-garbage bytes always decode to a `Corrupt` error, never to a value or a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The current record format.
pub const FORMAT: u8 = 1;

/// What a record holds; stored so one kind is never decoded as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// An [`crate::Episode`].
    Episode = 1,
    /// A [`crate::store::JournalEntry`].
    JournalEntry = 2,
    /// An [`crate::EpisodeSummary`].
    Summary = 3,
}

const HEADER: usize = 2;
const TRAILER: usize = 4;

/// Encode `value` as a record of `kind`.
pub fn encode<T: Serialize>(kind: RecordKind, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT, kind as u8];
    out = postcard::to_extend(value, out)
        .map_err(|e| Error::storage(format!("cannot encode {kind:?} record")).with_source(e))?;
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decode a record of `kind`; any damage is `Corrupt`.
pub fn decode<T: DeserializeOwned>(kind: RecordKind, bytes: &[u8]) -> Result<T> {
    if bytes.len() < HEADER + TRAILER {
        return Err(Error::corrupt(format!(
            "{kind:?} record truncated: {} bytes",
            bytes.len()
        )));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - TRAILER);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(crc_bytes);
    if crc32fast::hash(body) != u32::from_le_bytes(crc) {
        return Err(Error::corrupt(format!("{kind:?} record checksum mismatch")));
    }
    if body[0] != FORMAT {
        return Err(Error::corrupt(format!(
            "{kind:?} record has unknown format {} (this build reads {FORMAT})",
            body[0]
        )));
    }
    if body[1] != kind as u8 {
        return Err(Error::corrupt(format!(
            "expected a {kind:?} record, found kind {}",
            body[1]
        )));
    }
    let (value, rest) = postcard::take_from_bytes(&body[HEADER..])
        .map_err(|e| Error::corrupt(format!("{kind:?} record does not decode")).with_source(e))?;
    if !rest.is_empty() {
        return Err(Error::corrupt(format!(
            "{kind:?} record has {} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::{Episode, NewStep, Outcome, Step, TaskContext};
    use crate::error::ErrorKind;
    use crate::id::EpisodeId;
    use crate::time;
    use proptest::prelude::*;

    /// A fixed episode whose format-1 bytes are pinned below.
    fn fixture() -> Episode {
        let id = EpisodeId::from_bytes([
            0x01, 0x93, 0x00, 0x00, 0x00, 0x00, 0x70, 0x00, 0x80, 0x00, 0, 0, 0, 0, 0, 1,
        ])
        .unwrap();
        let t = time::from_micros(1_750_000_000_000_000);
        let mut e = Episode::new(
            id,
            "refund order",
            TaskContext::new("ns", "retail", "refund").with_tags(["a"]),
            t,
        );
        e.steps
            .push(Step::from_new(NewStep::new("get", "{}"), 0, t));
        e.outcome = Some(Outcome::success("ok"));
        e.reward = 0.75;
        e.completed_at = Some(t);
        e.version = 2;
        e
    }

    /// The format-1 bytes of `fixture()`, pinned when format 1 was defined.
    const FIXTURE_HEX: &str = concat!(
        "01011001930000000070008000000000000001026e730672657461696c06726566756e64",
        "01016100000c726566756e64206f7264657201000367657403676574027b7d0001008080",
        "db85b4e79b060100026f6b000000000000e83f00008080db85b4e79b06018080db85b4e7",
        "9b0602cc419680",
    );

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn format_1_fixture_still_decodes() {
        let bytes = encode(RecordKind::Episode, &fixture()).unwrap();
        assert_eq!(
            hex(&bytes),
            FIXTURE_HEX,
            "the format-1 layout changed: bump FORMAT and decode old records explicitly"
        );
        let back: Episode = decode(RecordKind::Episode, &bytes).unwrap();
        assert_eq!(back, fixture());
    }

    #[test]
    fn wrong_kind_and_unknown_format_are_corrupt() {
        let mut bytes = encode(RecordKind::Episode, &fixture()).unwrap();
        let e = decode::<Episode>(RecordKind::JournalEntry, &bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        bytes[0] = 9;
        let n = bytes.len();
        let crc = crc32fast::hash(&bytes[..n - 4]).to_le_bytes();
        bytes[n - 4..].copy_from_slice(&crc);
        let e = decode::<Episode>(RecordKind::Episode, &bytes).unwrap_err();
        assert!(e.to_string().contains("unknown format 9"), "{e}");
    }

    proptest! {
        #[test]
        fn round_trip_is_identity(
            desc in "\\PC{1,200}",
            reward in proptest::num::f64::ANY,
            steps in 0usize..20,
            payload in "\\PC{0,100}",
        ) {
            let mut e = fixture();
            e.description = desc;
            e.reward = reward;
            e.steps = (0..steps)
                .map(|i| Step::from_new(NewStep::new("tool", payload.clone()), i as u32, time::now()))
                .collect();
            let bytes = encode(RecordKind::Episode, &e).unwrap();
            let back: Episode = decode(RecordKind::Episode, &bytes).unwrap();
            prop_assert_eq!(back.reward.to_bits(), e.reward.to_bits());
            if reward.is_nan() {
                e.reward = 0.0;
                let mut b = back.clone();
                b.reward = 0.0;
                prop_assert_eq!(b, e);
            } else {
                prop_assert_eq!(back, e);
            }
        }

        #[test]
        fn truncation_is_corrupt(cut in 0usize..200) {
            let bytes = encode(RecordKind::Episode, &fixture()).unwrap();
            let cut = cut % bytes.len();
            let e = decode::<Episode>(RecordKind::Episode, &bytes[..cut]).unwrap_err();
            prop_assert_eq!(e.kind(), ErrorKind::Corrupt);
        }

        #[test]
        fn any_bit_flip_is_corrupt(pos in 0usize..10_000, bit in 0u8..8) {
            let mut bytes = encode(RecordKind::Episode, &fixture()).unwrap();
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            let e = decode::<Episode>(RecordKind::Episode, &bytes).unwrap_err();
            prop_assert_eq!(e.kind(), ErrorKind::Corrupt);
        }

        #[test]
        fn random_bytes_never_decode_to_a_different_value(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            // A decode may only succeed when the bytes are exactly a record of that value.
            if let Ok(e) = decode::<Episode>(RecordKind::Episode, &bytes) {
                prop_assert_eq!(encode(RecordKind::Episode, &e).unwrap(), bytes);
            }
        }
    }
}
