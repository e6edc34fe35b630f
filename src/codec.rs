//! The byte layout of stored records: the only place that knows it.
//!
//! A record is one format-version byte followed by the bincode 2 encoding
//! (standard config: little-endian varints) of [`StoredEvent`], whose dates
//! and timestamps are integers. A record written by any release must decode
//! in every later one: a new layout gets a new version byte and an upcaster
//! here, and old versions never stop decoding. The golden-bytes test in
//! `tests/golden.rs` pins version 1. The log stores records in blocks (see
//! [`encode_block`]); derived indexes have their own version
//! ([`DERIVED_VERSION`]) and are rebuilt rather than upcast. This module must never change the meaning
//! of a version that has shipped.

use uuid::Uuid;

use crate::event::{Event, StoredEvent};
use crate::value::{Date, Timestamp};

/// The format version written by this release.
pub const FORMAT_VERSION: u8 = 1;

/// The largest record body the decoder accepts (a guard against damaged lengths).
const MAX_RECORD: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD>()
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is empty.
    #[error("empty record")]
    Empty,
    /// The version byte names a format this release does not know.
    #[error("unknown format version {0} (this release reads version {FORMAT_VERSION})")]
    UnknownVersion(u8),
    /// The body does not decode as a record of its version.
    #[error("damaged record body: {0}")]
    Body(String),
    /// Bytes remain after the record.
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
}

/// Encodes a record: version byte, then the bincode body.
pub fn encode(rec: &StoredEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_VERSION);
    // Encoding plain owned data into a Vec cannot fail; an empty body would be
    // caught by `decode` and `verify` rather than silently accepted.
    if let Ok(body) = bincode::serde::encode_to_vec(rec, config()) {
        out.extend_from_slice(&body);
    }
    out
}

/// Decodes a record of any known format version.
///
/// # Errors
/// [`DecodeError`] when the bytes are empty, of an unknown version, damaged,
/// or followed by trailing bytes.
pub fn decode(bytes: &[u8]) -> Result<StoredEvent, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    match version {
        1 => decode_v1(body),
        other => Err(DecodeError::UnknownVersion(other)),
    }
}

/// The fields of a version-1 record before its two hashes. bincode writes a
/// `[u8; 32]` as 32 raw bytes, so a record's last 64 bytes are `prev_hash`
/// and `hash`; decoding the rest as this struct and copying those bytes
/// skips serde's byte-at-a-time array decoding (a sixth of `verify`).
#[derive(serde::Deserialize)]
struct HeadV1 {
    seq: u64,
    id: Uuid,
    recorded_at: Timestamp,
    effective: Option<Date>,
    source: Option<String>,
    note: Option<String>,
    event: Event,
}

fn decode_v1(body: &[u8]) -> Result<StoredEvent, DecodeError> {
    decode_v1_split(body).map_or_else(|| decode_v1_whole(body), Ok)
}

/// The fast path of [`decode_v1`]: `None` unless [`HeadV1`] decodes all of
/// the body but its last 64 bytes, in which case [`decode_v1_whole`] would
/// decode the very same fields followed by those bytes. Anything else
/// (damage included) goes through the whole decoding, so the results and
/// the errors are exactly its own.
fn decode_v1_split(body: &[u8]) -> Option<StoredEvent> {
    let (head, hashes) = body.split_at_checked(body.len().checked_sub(64)?)?;
    let (prev_hash, hash) = hashes.split_at(32);
    let (h, used): (HeadV1, usize) = bincode::serde::decode_from_slice(head, config()).ok()?;
    if used != head.len() {
        return None;
    }
    let HeadV1 { seq, id, recorded_at, effective, source, note, event } = h;
    Some(StoredEvent {
        seq,
        id,
        recorded_at,
        effective,
        source,
        note,
        event,
        prev_hash: prev_hash.try_into().ok()?,
        hash: hash.try_into().ok()?,
    })
}

fn decode_v1_whole(body: &[u8]) -> Result<StoredEvent, DecodeError> {
    let (rec, used): (StoredEvent, usize) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| DecodeError::Body(e.to_string()))?;
    if used != body.len() {
        return Err(DecodeError::Trailing(body.len() - used));
    }
    Ok(rec)
}

/// The bincode body of a timeline fact `(event, None)` (see [`encode_timeline_parts`]),
/// cut out of the record's own encoding instead of encoding the event again.
/// The record's body is the fields of [`StoredEvent`] one after another, so its
/// event is the bytes between the encoded fields before it and the two hashes
/// after it, and a `None` announcement is one zero byte. Takes the encoded
/// record (`bytes`, from [`encode`]) and reuses its memory; `None` when the
/// record is of another version or the lengths do not add up (the caller then
/// encodes the fact itself).
pub fn fact_body_of_record(mut bytes: Vec<u8>, rec: &StoredEvent) -> Option<Vec<u8>> {
    if bytes.first() != Some(&1) {
        return None;
    }
    let before = encoded_size(&(rec.seq, &rec.id, &rec.recorded_at, &rec.effective, &rec.source, &rec.note))?;
    let after = encoded_size(&(&rec.prev_hash, &rec.hash))?;
    let (start, end) = (1 + before, bytes.len().checked_sub(after)?);
    if start >= end {
        return None;
    }
    bytes.copy_within(start..end, 0);
    bytes.truncate(end - start);
    bytes.push(0);
    Some(bytes)
}

/// The number of bytes bincode writes for `value` (nothing is written).
fn encoded_size(value: &impl serde::Serialize) -> Option<usize> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config()).ok()?;
    Some(size.bytes_written)
}

/// The format version of a block of records in the log.
pub const BLOCK_VERSION: u8 = 1;

/// Packs encoded records (each from [`encode`]) into one log block:
/// `[BLOCK_VERSION][count u32 LE]` then, per record, `[length u32 LE][record]`.
/// Blocks exist because sled's cost is per insert, not per byte: one insert
/// per block instead of per event makes bulk appends several times faster
/// and keeps sled's batch memory small.
pub fn encode_block(records: &[Vec<u8>]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| r.len() + 4).sum();
    let mut out = Vec::with_capacity(size + 5);
    out.push(BLOCK_VERSION);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for rec in records {
        out.extend_from_slice(&(rec.len() as u32).to_le_bytes());
        out.extend_from_slice(rec);
    }
    out
}

/// Splits a log block into its encoded records (not yet decoded).
///
/// # Errors
/// [`DecodeError`] naming what is wrong with the block's framing; the
/// records before the damage are returned in `Ok` parts by [`block_prefix`].
pub fn decode_block(bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let (records, damage) = block_prefix(bytes);
    match damage {
        Some(e) => Err(e),
        None => Ok(records),
    }
}

/// The intact records of a block, and what is wrong after them, if anything.
pub fn block_prefix(bytes: &[u8]) -> (Vec<&[u8]>, Option<DecodeError>) {
    let Some((&version, rest)) = bytes.split_first() else { return (Vec::new(), Some(DecodeError::Empty)) };
    if version != BLOCK_VERSION {
        return (Vec::new(), Some(DecodeError::UnknownVersion(version)));
    }
    let Some(count) = rest.get(..4).and_then(|c| <[u8; 4]>::try_from(c).ok()).map(u32::from_le_bytes) else {
        return (Vec::new(), Some(DecodeError::Body("block header cut short".into())));
    };
    // Every record takes at least its 4-byte length: a damaged count must not
    // reserve more room than the block's bytes could hold (found by fuzzing).
    let mut records = Vec::with_capacity((count as usize).min(rest.len().saturating_sub(4) / 4));
    let mut at = 4;
    for i in 0..count {
        let len = rest.get(at..at + 4).and_then(|c| <[u8; 4]>::try_from(c).ok()).map(u32::from_le_bytes);
        let Some(record) = len.and_then(|len| rest.get(at + 4..at + 4 + len as usize)) else {
            return (records, Some(DecodeError::Body(format!("block cut short at record {} of {count}", i + 1))));
        };
        records.push(record);
        at += 4 + record.len();
    }
    if at != rest.len() {
        return (records, Some(DecodeError::Trailing(rest.len() - at)));
    }
    (records, None)
}

/// The format version of derived index values (timelines). A derived value
/// of another version is not an error: the index is rebuilt from the log.
pub const DERIVED_VERSION: u8 = 10;

/// What an encoded timeline value is (its second byte, and for a delta the
/// eight after its count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A whole timeline; with `has_delta`, a delta of later facts may lie
    /// beside it (see `store::StoredTimeline`).
    Base {
        /// Whether a delta may lie beside it.
        has_delta: bool,
    },
    /// The facts appended since the base whose last seq is `extends`.
    Delta {
        /// The last seq of the base this delta extends.
        extends: u64,
    },
}

const HAS_DELTA: u8 = 1;
const IS_DELTA: u8 = 2;

/// The fixed-size header of one fact of a stored timeline, as read: its
/// dates, retraction and topics, and where its body lies in which of the
/// timeline's values (its base, 0, or its delta, 1). 32 bytes, as a query
/// reads one per fact of each timeline it folds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FactHeader {
    /// Valid time, as days since 1970-01-01.
    pub effective: i32,
    /// Transaction time.
    pub seq: u64,
    /// The retraction's seq, or `u64::MAX` when not retracted.
    pub retracted_by: u64,
    /// Which folds read the fact (`timeline::Topics` bits).
    pub topics: u8,
    /// The value holding the body.
    pub value: u8,
    /// Where the body starts in that value.
    pub start: u32,
    /// Where the body ends in that value.
    pub end: u32,
}

impl FactHeader {
    /// Where the body lies in its value.
    pub fn body(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

const FACT_HEADER: usize = 4 + 8 + 8 + 4 + 1;

/// The fixed part of an encoded timeline, before a delta's `extends`.
const TIMELINE_HEAD: usize = 1 + 1 + 4;

/// [`encode_timeline_parts`] of decoded facts, without flags.
#[cfg(test)]
pub fn encode_timeline(
    facts: &[std::sync::Arc<crate::timeline::Fact>],
    key: (crate::store::Ns, &crate::value::EntityId),
) -> Vec<u8> {
    let parts: Vec<TimelinePart<'_>> = facts.iter().map(|f| TimelinePart::Fact(f)).collect();
    encode_timeline_parts(&parts, key, ValueKind::Base { has_delta: false })
}

/// One fact of a timeline to encode: decoded, or kept as it was read
/// (its header and encoded body, copied as they are).
#[derive(Clone, Copy, Debug)]
pub enum TimelinePart<'a> {
    /// A decoded fact (its kept body, if any, is copied rather than encoded).
    Fact(&'a crate::timeline::Fact),
    /// A fact left encoded: its header (whose place is ignored) and body.
    Kept(&'a FactHeader, &'a [u8]),
}

impl TimelinePart<'_> {
    /// The fact's seq.
    pub fn seq(&self) -> u64 {
        self.key().1
    }

    /// The fact's place in fold order: `(effective days, seq)`.
    pub fn key(&self) -> (i32, u64) {
        match self {
            TimelinePart::Fact(fact) => (fact.effective.days(), fact.seq),
            TimelinePart::Kept(header, _) => (header.effective, header.seq),
        }
    }
}

/// Encodes the timeline of `key`, given its facts in fold order (some of
/// them as they were read): `[DERIVED_VERSION][flags][count u32]` (a delta:
/// then `[extends u64]`, see [`ValueKind`]), then a
/// fixed-size header per fact (effective i32, seq u64, retracted_by u64, body
/// end u32, topics u8 as `Topics::in_timeline`; little-endian), then the
/// bincode bodies `(event, announcement)`. Headers let a query read the
/// dates, retractions and topics of every fact and decode only the facts it
/// folds, and let an append copy the facts it does not read. A delta (see
/// `store::StoredTimeline`) has the same layout.
pub fn encode_timeline_parts(
    parts: &[TimelinePart<'_>],
    key: (crate::store::Ns, &crate::value::EntityId),
    kind: ValueKind,
) -> Vec<u8> {
    let mut bodies = Vec::with_capacity(parts.len() * 64);
    let mut out = Vec::with_capacity(TIMELINE_HEAD + 8 + parts.len() * (FACT_HEADER + 64));
    out.push(DERIVED_VERSION);
    out.push(match kind {
        ValueKind::Base { has_delta } => {
            if has_delta {
                HAS_DELTA
            } else {
                0
            }
        }
        ValueKind::Delta { .. } => IS_DELTA,
    });
    out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    if let ValueKind::Delta { extends } = kind {
        out.extend_from_slice(&extends.to_le_bytes());
    }
    for part in parts {
        let (effective, seq, retracted_by, topics) = match part {
            TimelinePart::Fact(fact) => {
                match &fact.stored_body.0 {
                    Some(body) => bodies.extend_from_slice(body),
                    None => {
                        if let Ok(body) = bincode::serde::encode_to_vec((&fact.event, &fact.announcement), config()) {
                            bodies.extend_from_slice(&body);
                        }
                    }
                }
                let topics = crate::timeline::Topics::in_timeline(&fact.event, fact.announcement.as_ref(), key).bits();
                (fact.effective.days(), fact.seq, fact.retracted_by.unwrap_or(u64::MAX), topics)
            }
            TimelinePart::Kept(header, body) => {
                bodies.extend_from_slice(body);
                (header.effective, header.seq, header.retracted_by, header.topics)
            }
        };
        out.extend_from_slice(&effective.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&retracted_by.to_le_bytes());
        out.extend_from_slice(&(bodies.len() as u32).to_le_bytes());
        out.push(topics);
    }
    out.extend_from_slice(&bodies);
    out
}

/// Reads an encoded timeline's kind and entries (in the value's order,
/// bodies placed in value number `value`).
///
/// # Errors
/// [`DecodeError`] when the value is of another version or cut short.
pub fn timeline_entries(bytes: &[u8], value: u8) -> Result<(ValueKind, Vec<FactHeader>), DecodeError> {
    let short = || DecodeError::Body("timeline cut short".into());
    let (&version, _) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != DERIVED_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let head = bytes.get(..TIMELINE_HEAD).ok_or_else(short)?;
    let count = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
    let (kind, table_start) = if head[1] & IS_DELTA != 0 {
        let extends = bytes.get(TIMELINE_HEAD..TIMELINE_HEAD + 8).ok_or_else(short)?;
        let extends = u64::from_le_bytes(<[u8; 8]>::try_from(extends).map_err(|_| short())?);
        (ValueKind::Delta { extends }, TIMELINE_HEAD + 8)
    } else {
        (ValueKind::Base { has_delta: head[1] & HAS_DELTA != 0 }, TIMELINE_HEAD)
    };
    let table_end = count.checked_mul(FACT_HEADER).and_then(|n| n.checked_add(table_start)).ok_or_else(short)?;
    let table = bytes.get(table_start..table_end).ok_or_else(short)?;
    let cut = || DecodeError::Body("timeline body cut short".into());
    let len = u32::try_from(bytes.len()).map_err(|_| cut())?;
    let bodies = u32::try_from(table_end).map_err(|_| cut())?;
    let mut start = bodies;
    let mut entries = Vec::with_capacity(count);
    // (a body out of place reads as empty, which does not decode: checked
    // here only as a whole, as most facts of a timeline are never decoded)
    for h in table.chunks_exact(FACT_HEADER) {
        let end = bodies.saturating_add(u32::from_le_bytes([h[20], h[21], h[22], h[23]]));
        entries.push(FactHeader {
            effective: i32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            seq: u64::from_le_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]),
            retracted_by: u64::from_le_bytes([h[12], h[13], h[14], h[15], h[16], h[17], h[18], h[19]]),
            topics: h[24],
            value,
            start,
            end,
        });
        start = end;
    }
    if start > len {
        return Err(cut());
    }
    Ok((kind, entries))
}

/// A base timeline's entries merged with its delta's, in fold order
/// `(effective, seq)`. A delta entry at or below the base's last seq is
/// dropped: every fact of a delta is newer than the base it extends, so such
/// an entry is one a newer base took in.
pub fn merge_entries(base: Vec<FactHeader>, delta: Vec<FactHeader>) -> Vec<FactHeader> {
    let last = base.iter().map(|e| e.seq).max().unwrap_or(0);
    let delta: Vec<FactHeader> = delta.into_iter().filter(|e| e.seq > last).collect();
    if delta.is_empty() {
        return base;
    }
    merge_in_order(base, delta, |e| (e.effective, e.seq))
}

/// Two sequences each in fold order, merged into one by `key` (`(effective
/// days, seq)`); of two items at one place, the one from `first` comes first.
pub fn merge_in_order<T>(
    first: impl IntoIterator<Item = T>,
    second: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> (i32, u64),
) -> Vec<T> {
    let (mut first, mut second) = (first.into_iter().peekable(), second.into_iter().peekable());
    let mut merged = Vec::with_capacity(first.size_hint().0 + second.size_hint().0);
    while let Some(item) = match (first.peek(), second.peek()) {
        (Some(a), Some(b)) if key(b) < key(a) => second.next(),
        (Some(_), _) => first.next(),
        (None, _) => second.next(),
    } {
        merged.push(item);
    }
    merged
}

/// Decodes one fact of an encoded timeline from its header and body; with
/// `keep_body`, the fact keeps a copy of its encoded body for a cheap rewrite.
///
/// # Errors
/// [`DecodeError`] when the body is damaged.
pub fn timeline_fact_of(h: &FactHeader, body: &[u8], keep_body: bool) -> Result<crate::timeline::Fact, DecodeError> {
    let ((event, announcement), _): ((crate::event::Event, Option<crate::event::Event>), usize) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| DecodeError::Body(e.to_string()))?;
    Ok(crate::timeline::Fact {
        effective: crate::value::Date::from_days(h.effective).map_err(DecodeError::Body)?,
        seq: h.seq,
        retracted_by: (h.retracted_by != u64::MAX).then_some(h.retracted_by),
        event,
        announcement,
        stored_body: crate::timeline::StoredBody(keep_body.then(|| std::sync::Arc::from(body))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::value::{Date, EntityId, Stake, Timestamp};

    fn sample() -> StoredEvent {
        StoredEvent {
            seq: 7,
            id: uuid::Uuid::from_u128(0x0197_656a_0000_7000_8000_0000_0000_0001),
            recorded_at: Timestamp::from_nanos(1_750_000_000_000_000_000),
            effective: Date::parse("2025-06-12").ok(),
            source: Some("Reuters".into()),
            note: None,
            event: Event::Acquisition {
                acquirer: EntityId::parse("meta").expect("slug"),
                target: EntityId::parse("scale-ai").expect("slug"),
                stake: Stake::parse_pct("49").expect("stake"),
                seller: None,
                consideration: None,
                deal: None,
            },
            prev_hash: [1; 32],
            hash: [2; 32],
        }
    }

    #[test]
    fn a_timeline_rewritten_from_kept_bodies_is_byte_identical() {
        use std::sync::Arc;
        let rec = sample();
        let mut other = sample();
        other.seq = 9;
        other.event =
            Event::CompanyRenamed { company: EntityId::parse("scale-ai").expect("slug"), name: "Scale".into() };
        let facts: Vec<Arc<crate::timeline::Fact>> =
            [&rec, &other].into_iter().filter_map(|r| crate::timeline::fact_of(r, None)).map(Arc::new).collect();
        let scale = EntityId::parse("scale-ai").expect("slug");
        let key = (crate::store::Ns::Entity, &scale);
        let encoded = encode_timeline(&facts, key);
        let (kind, entries) = timeline_entries(&encoded, 0).expect("entries");
        assert_eq!(kind, ValueKind::Base { has_delta: false });
        let topics: Vec<u8> = entries.iter().map(|e| e.topics).collect();
        let expected = [crate::timeline::Topics::STAKE.bits(), crate::timeline::Topics::NAME.bits()];
        assert_eq!(topics, expected, "each header names the folds that read its fact");
        // In the acquirer's timeline, the same acquisition is a holding.
        let meta = EntityId::parse("meta").expect("slug");
        let (_, held) =
            timeline_entries(&encode_timeline(&facts[..1], (crate::store::Ns::Entity, &meta)), 0).expect("h");
        assert_eq!(held[0].topics, crate::timeline::Topics::HELD.bits());
        let mut kept: Vec<Arc<crate::timeline::Fact>> = entries
            .iter()
            .map(|e| timeline_fact_of(e, &encoded[e.body()], true).map(Arc::new).expect("fact"))
            .collect();
        assert!(kept.iter().all(|f| f.stored_body.0.is_some()));
        assert_eq!(encode_timeline(&kept, key), encoded);
        // A retraction changes only the header: the kept body stays right.
        Arc::make_mut(&mut kept[0]).retracted_by = Some(12);
        let mut fresh = facts.clone();
        Arc::make_mut(&mut fresh[0]).retracted_by = Some(12);
        assert_eq!(encode_timeline(&kept, key), encode_timeline(&fresh, key));
    }

    fn entry(effective: i32, seq: u64, value: u8) -> FactHeader {
        FactHeader { effective, seq, retracted_by: u64::MAX, topics: 0, value, start: 0, end: 0 }
    }

    #[test]
    fn a_delta_merges_into_fold_order_without_the_facts_its_base_took_in() {
        let base = vec![entry(1, 1, 0), entry(5, 2, 0), entry(9, 4, 0)];
        // seq 3 and 4 were merged into the base (a crash left the delta); 5 and 6 are newer.
        let delta = vec![entry(0, 6, 1), entry(5, 3, 1), entry(9, 4, 1), entry(9, 5, 1)];
        let merged: Vec<(i32, u64, u8)> =
            merge_entries(base.clone(), delta).iter().map(|e| (e.effective, e.seq, e.value)).collect();
        assert_eq!(merged, [(0, 6, 1), (1, 1, 0), (5, 2, 0), (9, 4, 0), (9, 5, 1)]);
        assert_eq!(merge_entries(base.clone(), Vec::new()), base);
        assert_eq!(std::mem::size_of::<FactHeader>(), 32, "a query reads one per fact");
        assert_eq!(merge_entries(Vec::new(), vec![entry(3, 2, 1)]), [entry(3, 2, 1)]);
    }

    #[test]
    fn a_cut_timeline_is_an_error_not_a_panic() {
        let facts: Vec<std::sync::Arc<crate::timeline::Fact>> =
            crate::timeline::fact_of(&sample(), None).map(std::sync::Arc::new).into_iter().collect();
        let scale = EntityId::parse("scale-ai").expect("slug");
        let encoded = encode_timeline(&facts, (crate::store::Ns::Entity, &scale));
        for cut in 0..encoded.len() {
            assert!(timeline_entries(&encoded[..cut], 0).is_err(), "cut at {cut}");
        }
        assert_eq!(timeline_entries(&encoded, 1).expect("whole").1[0].value, 1);
        let parts: Vec<TimelinePart<'_>> = facts.iter().map(|f| TimelinePart::Fact(f)).collect();
        let delta = encode_timeline_parts(&parts, (crate::store::Ns::Entity, &scale), ValueKind::Delta { extends: 5 });
        let (kind, entries) = timeline_entries(&delta, 1).expect("delta");
        assert_eq!((kind, entries.len()), (ValueKind::Delta { extends: 5 }, 1));
        assert_eq!(timeline_fact_of(&entries[0], &delta[entries[0].body()], false).expect("fact").seq, 7);
        for cut in 0..delta.len() {
            assert!(timeline_entries(&delta[..cut], 1).is_err(), "delta cut at {cut}");
        }
    }

    #[test]
    fn a_fact_body_cut_from_its_record_is_the_encoded_event() {
        let lines = crate::testkit::generate(&crate::testkit::GenOptions { events: 3_000, ..Default::default() })
            .expect("history");
        let mut seen = 0;
        for (i, line) in lines.iter().enumerate() {
            let Ok(items) = crate::ledger::parse_input(line) else { continue };
            for (_, draft) in items {
                let mut rec = sample();
                rec.seq = i as u64 + 1;
                (rec.effective, rec.source, rec.note, rec.event) =
                    (draft.effective, draft.source, draft.note, draft.event);
                let expected = bincode::serde::encode_to_vec((&rec.event, &None::<Event>), config()).expect("encode");
                assert_eq!(fact_body_of_record(encode(&rec), &rec), Some(expected), "{line}");
                seen += 1;
            }
        }
        assert!(seen > 2_000);
        assert_eq!(fact_body_of_record(vec![2, 0, 0], &sample()), None);
        assert_eq!(fact_body_of_record(vec![1, 0, 0], &sample()), None);
    }

    #[test]
    fn round_trips() {
        let rec = sample();
        assert_eq!(decode(&encode(&rec)), Ok(rec));
    }

    #[test]
    fn refuses_damage() {
        let bytes = encode(&sample());
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(decode(&[9, 1, 2]), Err(DecodeError::UnknownVersion(9)));
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn a_damaged_block_count_reserves_nothing_unbounded() {
        // Fuzzing (record_decode): a count of 2^32 - 1 reserved 64 GiB up
        // front and aborted the process instead of reporting the damage.
        let block = [BLOCK_VERSION, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0, 1, 2, 3];
        let (records, damage) = block_prefix(&block);
        assert_eq!(records, vec![&[1u8, 2, 3][..]]);
        assert_eq!(damage, Some(DecodeError::Body("block cut short at record 2 of 4294967295".into())));
        assert!(decode_block(&[BLOCK_VERSION, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn the_split_decoding_equals_the_whole_one() {
        let opts = crate::testkit::GenOptions { events: 600, seed: 5, ..crate::testkit::GenOptions::default() };
        let lines = crate::testkit::generate(&opts).expect("generate");
        let mut types = std::collections::HashSet::new();
        for (i, line) in lines.iter().enumerate() {
            let draft = crate::json::parse_draft(&serde_json::from_str(line).expect("JSON")).expect("valid event");
            types.insert(draft.event.type_name());
            let rec = StoredEvent {
                seq: i as u64 + 1,
                id: draft.id.unwrap_or_else(uuid::Uuid::now_v7),
                recorded_at: Timestamp::from_nanos(1_700_000_000_123_456_789 + i as i64),
                effective: draft.effective,
                source: draft.source,
                note: draft.note,
                event: draft.event,
                prev_hash: [u8::try_from(i % 251).expect("small"); 32],
                hash: [0xa5; 32],
            };
            let bytes = encode(&rec);
            let body = &bytes[1..];
            assert_eq!(decode_v1_split(body).as_ref(), Some(&rec), "line {i}");
            // Damage: every cut, and a changed byte every few bytes.
            for cut in 0..body.len() {
                assert_eq!(decode_v1(&body[..cut]), decode_v1_whole(&body[..cut]), "line {i} cut at {cut}");
            }
            for at in (i % 5..body.len()).step_by(5) {
                let mut damaged = body.to_vec();
                damaged[at] ^= 0x5a;
                assert_eq!(decode_v1(&damaged), decode_v1_whole(&damaged), "line {i} byte {at}");
            }
            let mut longer = body.to_vec();
            longer.push(0);
            assert_eq!(decode_v1(&longer), decode_v1_whole(&longer), "line {i} with a trailing byte");
        }
        assert_eq!(types.len(), 15, "every event type was covered: {types:?}");
    }
}
