//! `verify`: every record of the log decoded and its hash chain re-checked,
//! on all cores.
//!
//! Why it exists: decoding a record, rendering its canonical bytes and hashing
//! them is nearly all of the work, and none of it depends on the records
//! before: a record's hash is recomputed from the `prev_hash` it stores, and
//! the in-order pass then checks that this `prev_hash` equals the previous
//! record's hash, which makes the two computations the same. So the calling
//! thread reads the log's blocks (each checked against its frame) and hands
//! them out in chunks; one worker per core decodes, renders and hashes a
//! chunk while the scan goes on; and the calling thread checks the chunks'
//! summaries in seq order: seq continuity, the claimed seq, the chain link
//! and the hash, in that order, as the sequential walk did.
//!
//! What it must never do: write anything, report any seq but the first bad
//! one (with the same [`Error::Corrupt`] as a sequential walk of
//! `Store::raw_from`), accept a record that walk would reject, or hold more
//! than a few chunks in memory.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread;

use crate::codec::{self, DecodeError};
use crate::error::{Error, Result};
use crate::event::Hash;
use crate::json;
use crate::par;
use crate::store::{block_records, chain_hash_of, Store};

/// Log blocks handed to a worker at once (up to 256 records each).
const CHUNK_BLOCKS: usize = 16;

/// Chunks scanned but not yet checked, per worker thread: bounds memory
/// while keeping every worker busy.
const IN_FLIGHT_PER_WORKER: usize = 4;

/// The end of a valid chain: its last seq (0 when empty) and hash.
#[derive(Debug, PartialEq, Eq)]
pub struct Tip {
    /// The last seq checked.
    pub last_seq: u64,
    /// Its hash (zeros when the log is empty).
    pub hash: Hash,
}

/// Decodes every record of the log and re-checks the hash chain.
///
/// # Errors
/// [`Error::Corrupt`] naming the first bad seq; storage errors.
pub fn verify(store: &Store) -> Result<Tip> {
    walk(store.blocks_from(0), store.readable(), par::threads(), CHUNK_BLOCKS)
}

/// Checks the chain over `blocks` up to seq `cap`, with `workers` threads
/// summarizing chunks of `chunk_blocks` blocks.
fn walk(mut blocks: impl Iterator<Item = Scanned>, cap: u64, workers: usize, chunk_blocks: usize) -> Result<Tip> {
    let mut chain = Chain::new(cap);
    let (work_tx, work_rx) = channel::<(usize, Vec<Scanned>)>();
    let (done_tx, done_rx) = channel::<(usize, thread::Result<Vec<Item>>)>();
    let work_rx = Mutex::new(work_rx);
    thread::scope(|scope| -> Result<()> {
        for _ in 0..workers.max(1) {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || work(work_rx, &done_tx));
        }
        drop(done_tx);
        let mut feed = Feed { work_tx, done_rx, chunk_blocks, sent: 0, ended: false, ready: BTreeMap::new() };
        let mut checked = 0;
        loop {
            while !feed.ended && feed.sent - checked < workers.max(1) * IN_FLIGHT_PER_WORKER {
                feed.send(&mut blocks);
            }
            if checked == feed.sent {
                return Ok(());
            }
            let items = feed.take(checked)?;
            checked += 1;
            if chain.check(items)? == Flow::End {
                return Ok(());
            }
        }
    })?;
    Ok(chain.tip())
}

/// One log block as scanned, or the storage error met instead.
type Scanned = Result<(u64, Vec<u8>)>;

/// The calling thread's side of the pipeline: scanning chunks out, taking
/// their summaries back in order.
struct Feed {
    work_tx: Sender<(usize, Vec<Scanned>)>,
    done_rx: Receiver<(usize, thread::Result<Vec<Item>>)>,
    /// Blocks per chunk.
    chunk_blocks: usize,
    /// Chunks sent so far (the next chunk's number).
    sent: usize,
    /// The scan is over: the log ended, or a storage error ends it.
    ended: bool,
    /// Summaries that came back before the ones ahead of them.
    ready: BTreeMap<usize, Vec<Item>>,
}

impl Feed {
    /// Scans the next chunk of blocks and hands it to the workers.
    fn send(&mut self, blocks: &mut impl Iterator<Item = Scanned>) {
        let mut chunk = Vec::with_capacity(self.chunk_blocks);
        while chunk.len() < self.chunk_blocks.max(1) {
            match blocks.next() {
                Some(Ok(block)) => chunk.push(Ok(block)),
                // A storage error is the last item `verify` can reach.
                Some(Err(e)) => {
                    chunk.push(Err(e));
                    self.ended = true;
                    break;
                }
                None => {
                    self.ended = true;
                    break;
                }
            }
        }
        if chunk.is_empty() {
            return;
        }
        // The workers outlive this send: they stop only once `work_tx` is dropped.
        if self.work_tx.send((self.sent, chunk)).is_ok() {
            self.sent += 1;
        } else {
            self.ended = true;
        }
    }

    /// The summaries of chunk `n`, waiting for them if need be; a worker's
    /// panic goes on in the calling thread (as in `par::map`).
    fn take(&mut self, n: usize) -> Result<Vec<Item>> {
        loop {
            if let Some(items) = self.ready.remove(&n) {
                return Ok(items);
            }
            // Every worker holds a sender until the scan is over, so this
            // fails only if all of them are gone.
            let (k, items) =
                self.done_rx.recv().map_err(|_| std::io::Error::other("verify's workers stopped early"))?;
            self.ready.insert(k, items.unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
    }
}

/// A worker: takes chunks until the scan is over, sends back their summaries.
/// A panic is sent back too, so that the calling thread never waits for a
/// chunk that will not come.
fn work(work_rx: &Mutex<Receiver<(usize, Vec<Scanned>)>>, done_tx: &Sender<(usize, thread::Result<Vec<Item>>)>) {
    let mut canonical = Vec::with_capacity(512);
    loop {
        let job = work_rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((n, chunk)) = job else { return };
        let items = std::panic::catch_unwind(AssertUnwindSafe(|| summarize(chunk, &mut canonical)));
        if done_tx.send((n, items)).is_err() {
            return;
        }
    }
}

/// What the in-order pass needs of one item of the log, in the order of
/// `Store::raw_from`.
#[derive(Debug)]
enum Item {
    /// A storage error or a damaged block, met at this point of the scan.
    Damage(Error),
    /// The record stored at `seq`, or why it does not decode.
    Record { seq: u64, sealed: std::result::Result<Sealed, DecodeError> },
}

/// A decoded record reduced to its chain: what it claims, and whether its
/// hash matches its content after its own `prev_hash`.
#[derive(Debug, Clone, Copy)]
struct Sealed {
    claimed_seq: u64,
    prev_hash: Hash,
    hash: Hash,
    hash_matches: bool,
}

/// Decodes, renders and hashes one chunk of blocks, in order.
fn summarize(chunk: Vec<Scanned>, canonical: &mut Vec<u8>) -> Vec<Item> {
    let mut items = Vec::with_capacity(chunk.len() * 256);
    for scanned in chunk {
        match scanned {
            Err(e) => items.push(Item::Damage(e)),
            Ok((first, block)) => {
                let (records, damage) = block_records(first, &block, 1);
                items.extend(
                    records.into_iter().map(|(seq, bytes)| Item::Record { seq, sealed: seal(bytes, canonical) }),
                );
                items.extend(damage.map(Item::Damage));
            }
        }
    }
    items
}

/// Decodes one record and recomputes its hash from its own `prev_hash`.
fn seal(bytes: &[u8], canonical: &mut Vec<u8>) -> std::result::Result<Sealed, DecodeError> {
    let rec = codec::decode(bytes)?;
    canonical.clear();
    json::write_canonical(&rec, canonical);
    let hash_matches = chain_hash_of(&rec.prev_hash, canonical) == rec.hash;
    Ok(Sealed { claimed_seq: rec.seq, prev_hash: rec.prev_hash, hash: rec.hash, hash_matches })
}

/// Whether the walk goes on.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    More,
    End,
}

/// The hash chain as the in-order pass walks it.
struct Chain {
    prev: Hash,
    expected: u64,
    /// The last seq readers may see (`Store::readable`): the walk ends there.
    cap: u64,
}

impl Chain {
    fn new(cap: u64) -> Self {
        Self { prev: [0; 32], expected: 1, cap }
    }

    fn tip(&self) -> Tip {
        Tip { last_seq: self.expected - 1, hash: self.prev }
    }

    /// Checks a chunk's items in order.
    fn check(&mut self, items: Vec<Item>) -> Result<Flow> {
        for item in items {
            if self.step(item)? == Flow::End {
                return Ok(Flow::End);
            }
        }
        Ok(Flow::More)
    }

    /// Checks one item: seq continuity, decoding, the claimed seq, the chain
    /// link, then the hash (the first failure names `expected`).
    fn step(&mut self, item: Item) -> Result<Flow> {
        let (seq, sealed) = match item {
            Item::Damage(e) => return Err(e),
            Item::Record { seq, .. } if seq > self.cap => return Ok(Flow::End),
            Item::Record { seq, sealed } => (seq, sealed),
        };
        let expected = self.expected;
        let corrupt = |detail: String| Error::Corrupt { seq: expected, detail };
        if seq != expected {
            return Err(corrupt(format!("missing from the log (next stored seq is {seq})")));
        }
        let sealed = sealed.map_err(|e| corrupt(e.to_string()))?;
        if sealed.claimed_seq != seq {
            return Err(corrupt(format!("record claims seq {}", sealed.claimed_seq)));
        }
        if sealed.prev_hash != self.prev {
            return Err(corrupt("prev_hash does not match the previous record's hash: the chain is broken".into()));
        }
        if !sealed.hash_matches {
            return Err(corrupt("hash does not match the record's content: the record was altered".into()));
        }
        self.prev = sealed.hash;
        self.expected += 1;
        Ok(Flow::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, StoredEvent};
    use crate::store::chain_hash;
    use crate::value::{Date, EntityId, Timestamp};

    /// A valid chain of `n` person registrations.
    fn chain(n: u64) -> Vec<StoredEvent> {
        let mut prev = [0; 32];
        (1..=n)
            .map(|seq| {
                let mut rec = StoredEvent {
                    seq,
                    id: uuid::Uuid::from_u128(u128::from(seq)),
                    recorded_at: Timestamp::from_nanos(i64::try_from(seq).expect("small") * 1_000),
                    effective: Some(Date::parse("2020-02-29").expect("date")),
                    source: (seq % 3 == 0).then(|| "a \"quoted\" source".to_owned()),
                    note: None,
                    event: Event::PersonRegistered {
                        person: EntityId::parse(&format!("p{seq}")).expect("slug"),
                        name: format!("Person {seq}"),
                    },
                    prev_hash: prev,
                    hash: [0; 32],
                };
                rec.hash = chain_hash(&prev, &rec);
                prev = rec.hash;
                rec
            })
            .collect()
    }

    fn encoded(recs: &[StoredEvent]) -> Vec<Vec<u8>> {
        recs.iter().map(codec::encode).collect()
    }

    /// Packs records into log blocks of `per_block`, keyed by first seq 1, 1 + per_block, …
    fn blocks(records: &[Vec<u8>], per_block: usize) -> Vec<(u64, Vec<u8>)> {
        records
            .chunks(per_block)
            .zip((1..).step_by(per_block))
            .map(|(c, first)| (first, codec::encode_block(c)))
            .collect()
    }

    fn scanned(blocks: &[(u64, Vec<u8>)]) -> impl Iterator<Item = Scanned> + '_ {
        blocks.iter().map(|(first, b)| Ok((*first, b.clone())))
    }

    /// The walk as it was before the pipeline: every record decoded and
    /// hashed after the previous one's hash, in order.
    fn sequential(blocks: &[(u64, Vec<u8>)], cap: u64) -> Result<Tip> {
        let (mut prev, mut expected) = ([0u8; 32], 1u64);
        for (first, block) in blocks {
            let (records, damage) = block_records(*first, block, 1);
            for (seq, bytes) in records {
                if seq > cap {
                    return Ok(Tip { last_seq: expected - 1, hash: prev });
                }
                let corrupt = |detail: String| Error::Corrupt { seq: expected, detail };
                if seq != expected {
                    return Err(corrupt(format!("missing from the log (next stored seq is {seq})")));
                }
                let rec = codec::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
                if rec.seq != seq {
                    return Err(corrupt(format!("record claims seq {}", rec.seq)));
                }
                if rec.prev_hash != prev {
                    return Err(corrupt(
                        "prev_hash does not match the previous record's hash: the chain is broken".into(),
                    ));
                }
                if chain_hash(&prev, &rec) != rec.hash {
                    return Err(corrupt("hash does not match the record's content: the record was altered".into()));
                }
                prev = rec.hash;
                expected += 1;
            }
            if let Some(e) = damage {
                return Err(e);
            }
        }
        Ok(Tip { last_seq: expected - 1, hash: prev })
    }

    /// Walks with small chunks on several workers and checks the answer
    /// against the sequential walk.
    fn check(blocks: &[(u64, Vec<u8>)], cap: u64) -> String {
        let expected = format!("{:?}", sequential(blocks, cap));
        for (workers, chunk_blocks) in [(1, 1), (2, 2), (3, 1), (4, 3)] {
            let got = format!("{:?}", walk(scanned(blocks), cap, workers, chunk_blocks));
            assert_eq!(got, expected, "{workers} workers, {chunk_blocks} blocks per chunk");
        }
        expected
    }

    fn edit(records: &mut [Vec<u8>], seq: u64, change: impl FnOnce(&mut StoredEvent)) {
        let at = usize::try_from(seq - 1).expect("small");
        let mut rec = codec::decode(&records[at]).expect("decodes");
        change(&mut rec);
        records[at] = codec::encode(&rec);
    }

    #[test]
    fn an_intact_chain_ends_at_its_last_record() {
        let recs = chain(50);
        let got = walk(scanned(&blocks(&encoded(&recs), 3)), u64::MAX, 2, 2).expect("intact");
        assert_eq!(got, Tip { last_seq: 50, hash: recs[49].hash });
        check(&blocks(&encoded(&recs), 3), u64::MAX);
    }

    #[test]
    fn an_empty_log_is_an_empty_chain() {
        assert_eq!(walk(std::iter::empty(), u64::MAX, 2, 2).expect("empty"), Tip { last_seq: 0, hash: [0; 32] });
    }

    #[test]
    fn a_damaged_record_in_the_middle_of_a_chunk_is_named() {
        // Blocks of 3, chunks of 2 blocks: seq 8 is the middle of the second chunk.
        let mut records = encoded(&chain(40));
        records[7][0] = 0xee;
        let err = check(&blocks(&records, 3), u64::MAX);
        assert!(err.contains("seq: 8,") && err.contains("format version 238"), "{err}");
    }

    #[test]
    fn a_missing_seq_at_a_chunk_boundary_is_named() {
        // Blocks of 3: the block of seqs 13-15 starts a chunk of 2 blocks (and one of 1 or 3).
        let mut b = blocks(&encoded(&chain(40)), 3);
        b.retain(|(first, _)| *first != 13);
        let err = check(&b, u64::MAX);
        assert!(err.contains("seq: 13,") && err.contains("next stored seq is 16"), "{err}");
    }

    #[test]
    fn only_the_first_of_several_bad_seqs_is_named() {
        let mut records = encoded(&chain(60));
        edit(&mut records, 50, |rec| rec.note = Some("later".into()));
        records[40][0] = 0xee;
        edit(&mut records, 23, |rec| {
            rec.prev_hash = [7; 32];
            rec.hash = chain_hash(&rec.prev_hash, rec);
        });
        let err = check(&blocks(&records, 4), u64::MAX);
        assert!(err.contains("seq: 23,") && err.contains("chain is broken"), "{err}");
    }

    #[test]
    fn an_altered_record_and_a_wrong_seq_are_named() {
        let mut records = encoded(&chain(30));
        edit(&mut records, 17, |rec| rec.note = Some("changed".into()));
        let err = check(&blocks(&records, 5), u64::MAX);
        assert!(err.contains("seq: 17,") && err.contains("altered"), "{err}");

        let mut records = encoded(&chain(30));
        edit(&mut records, 9, |rec| rec.seq = 99);
        let err = check(&blocks(&records, 5), u64::MAX);
        assert!(err.contains("seq: 9,") && err.contains("claims seq 99"), "{err}");
    }

    #[test]
    fn a_cut_block_names_its_first_lost_record() {
        let mut b = blocks(&encoded(&chain(30)), 5);
        let block = &mut b[3].1; // seqs 16-20
        block.truncate(block.len() - 10);
        let err = check(&b, u64::MAX);
        assert!(err.contains("seq: 20,") && err.contains("damaged log block"), "{err}");
    }

    #[test]
    fn the_walk_stops_at_the_readable_seq() {
        let mut records = encoded(&chain(30));
        records[25][0] = 0xee;
        let recs = chain(30);
        let got = check(&blocks(&records, 4), 21);
        assert_eq!(got, format!("{:?}", Ok::<_, Error>(Tip { last_seq: 21, hash: recs[20].hash })));
    }

    #[test]
    fn a_storage_error_is_passed_on_where_it_was_met() {
        let b = blocks(&encoded(&chain(30)), 4);
        let broken =
            scanned(&b).take(3).chain(std::iter::once(Err(Error::Corrupt { seq: 0, detail: "log key".into() })));
        let err = format!("{:?}", walk(broken.chain(scanned(&b).skip(3)), u64::MAX, 2, 2));
        assert!(err.contains("seq: 0,") && err.contains("log key"), "{err}");
    }
}
