//! The append-only log, and the derived indexes beside it.
//!
//! A ledger directory holds the log file `journal` and the derived index
//! `index/`: a sled database of trees, and at most one sorted run file
//! (`run-<hex>`, see `run`) beneath them. The log is the only source of truth: blocks of consecutive
//! records (see `codec::encode_block`) in checksummed frames, appended and
//! fsynced by [`Journal`]; one append writes whole blocks, never extends one,
//! and is durable when [`Store::append_durably`] returns. `index/` holds every
//! derived tree, with a watermark (`meta/indexed`): it is never fsynced by an
//! append (sled writes it in the background and on close), and after a crash
//! it is brought up to the log's head from the log itself, never the other
//! way round. An append's fsync thus writes the log alone, and the index takes
//! a large batch while the log's fsync is under way (`meta/pending` marks what
//! it may hold beyond the log: above the head, it is rebuilt on open). A
//! ledger written by an earlier release keeps its log in a sled database
//! `log/`; its first open copies it into a `journal` (see `migrate_sled_log`).
//!
//! The run holds the derived values of a bulk load into an empty index, or
//! of a rebuild, up to one seq; appends after it write to the trees, which
//! readers consult first (a timeline's value in `timeline` replaces the
//! run's, a delta extends whichever base is read). A run is written whole
//! and fsynced under a temporary name, then named in `meta/run` together
//! with the watermark, in one sled batch; any other run file is removed at
//! open. A run named but unreadable makes the index stale (rebuilt on open).
//!
//! Key layout of the index (all integers big-endian, fixed width, built only here):
//! * `ids`: `bucket u16 | first seq u64` → a run of entries `uuid [16] | seq
//!   u64` sorted by uuid; the bucket is the last 12 bits of the uuid (random
//!   in v4 and v7 ids), so a bulk load writes at most 4,096 values. Each
//!   bucket holds a few runs of geometrically growing sizes (see
//!   `Store::write_ids`): an append rewrites small runs only, and a look-up
//!   is a short prefix scan and a binary search per run.
//! * `timeline`: `ns u8 | slug` → the timeline's facts in fold order (see
//!   `timeline::Fact`, encoded by `codec::encode_timeline_parts`); `ns` is `e` for an
//!   entity, `d` for a deal, `n` for an entity's registrations alone. One read
//!   answers for one entity (two for a large timeline, see below).
//! * `delta`: the same key → the facts appended to a large timeline since
//!   its value in `timeline` (its base) was written, in the same encoding
//!   (see [`StoredTimeline`]): an append to an entity of thousands of facts
//!   writes a few of them, not all.
//! * `retracted`: `seq u64` → `retraction seq u64`.
//! * `meta`: `indexed` → `seq u64` (the derived trees' watermark);
//!   `pending` → `seq u64` (the last seq whose facts they may hold);
//!   `derived_version` → `u8` (their format: another one is rebuilt on open);
//!   `run` → the file name of the index's run, if it has one.
//!
//! This module must never decide whether an event is valid: it stores what the
//! ledger hands it and answers range reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::codec;
use crate::error::{cause_of, Error, Result};
use crate::event::{Hash, StoredEvent};
use crate::journal::{Frame, Journal};
use crate::json;
use crate::run::{self, Run};
use crate::timeline::Fact;
use crate::value::EntityId;

/// Which kind of timeline a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ns {
    /// The events naming one entity.
    Entity,
    /// The announcement, completion and termination of one deal.
    Deal,
    /// The registrations of one entity alone (a small value: names and kinds
    /// without reading the entity's whole timeline).
    Name,
}

impl Ns {
    fn byte(self) -> u8 {
        match self {
            Ns::Entity => b'e',
            Ns::Deal => b'd',
            Ns::Name => b'n',
        }
    }
}

/// The hash of a record: SHA-256 of the previous hash and the record's canonical bytes.
pub fn chain_hash(prev: &Hash, rec: &StoredEvent) -> Hash {
    chain_hash_of(prev, &json::canonical_bytes(rec))
}

/// The hash of a record from its canonical bytes (see [`chain_hash`]).
pub fn chain_hash_of(prev: &Hash, canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of_bytes(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// How often sled writes the index database in the background; it is also
/// written on close, and rebuilt from the log after a crash.
const INDEX_FLUSH_MS: u64 = 5_000;

/// At most this many records in one log block.
const BLOCK_RECORDS: usize = 256;
/// A log block is closed once it holds this many bytes.
const BLOCK_BYTES: usize = 48 << 10;

/// The first seq of a block in a log of an earlier release (a sled tree), from its key.
fn block_first(key: &[u8]) -> Result<u64> {
    seq_of_bytes(key).ok_or_else(|| Error::Corrupt { seq: 0, detail: format!("log key of {} bytes", key.len()) })
}

/// The size of one entry of an ids bucket: uuid, then big-endian seq.
const ID_ENTRY: usize = 24;

fn id_bucket(id: &Uuid) -> u16 {
    let b = id.as_bytes();
    u16::from_be_bytes([b[14], b[15]]) & 0x0fff
}

/// The key of a run of ids: its bucket, then its smallest seq.
fn run_key(bucket: u16, first: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..2].copy_from_slice(&bucket.to_be_bytes());
    key[2..].copy_from_slice(&first.to_be_bytes());
    key
}

/// The seq of an ids entry.
fn entry_seq(entry: &[u8; ID_ENTRY]) -> u64 {
    seq_of_bytes(&entry[16..]).unwrap_or(0)
}

fn id_entry(id: &Uuid, seq: u64) -> [u8; ID_ENTRY] {
    let mut entry = [0u8; ID_ENTRY];
    entry[..16].copy_from_slice(id.as_bytes());
    entry[16..].copy_from_slice(&seq.to_be_bytes());
    entry
}

pub fn timeline_key(ns: Ns, slug: &EntityId) -> Vec<u8> {
    let mut key = Vec::with_capacity(slug.as_str().len() + 1);
    key.push(ns.byte());
    key.extend_from_slice(slug.as_str().as_bytes());
    key
}

/// The log and the derived index of one ledger.
pub struct Store {
    path: PathBuf,
    cache_bytes: u64,
    log: Journal,
    index_db: sled::Db,
    ids: sled::Tree,
    timeline: sled::Tree,
    delta: sled::Tree,
    retracted: sled::Tree,
    meta: sled::Tree,
    /// The sorted run that `meta/run` names, if any (see `run`): the
    /// derived values of a bulk load or a rebuild, read under the trees.
    run: std::sync::RwLock<Option<std::sync::Arc<Run>>>,
    /// Whether `meta/run` names a run that could not be opened (the
    /// derived index must then be rebuilt: see [`Store::derived_current`];
    /// until then, reads of the index fail rather than answer without it).
    run_missing: std::sync::atomic::AtomicBool,
    /// Whether the trees may hold timeline values (bases or deltas): false
    /// after a bulk load or a rebuild until an append writes one, so that
    /// readers skip two sled look-ups per timeline. It is set before the
    /// first value lands and cleared only once the trees are emptied; a
    /// reader that finds it false misses only values written after it
    /// looked, by appends beyond the seq it reads up to.
    trees_hold_timelines: std::sync::atomic::AtomicBool,
    /// A sequence lock for readers of timelines: odd while the trees are
    /// being emptied (the run alone answers then), bumped by two when a run
    /// is swapped in; a timeline read while it moved is read again (see
    /// [`Store::stored_timeline`]).
    generation: std::sync::atomic::AtomicU64,
    /// Set when a durable write failed: what reached the disk is then
    /// unknown (a failed fsync may have dropped pages), so this `Store`
    /// appends no more; reopening reads what the disk holds.
    failed_write: std::sync::atomic::AtomicBool,
    /// The last seq readers may see: `u64::MAX`, or, after a failed write,
    /// the head before it (what a failed write left in the file is decided
    /// when the ledger is next opened, so reads stop short of it).
    readable: std::sync::atomic::AtomicU64,
    /// The ledger's lock (`<ledger>/lock`, `flock`ed), released last.
    _lock: std::fs::File,
}

impl Store {
    /// Opens the ledger at `path`, creating it only when `create` is true.
    ///
    /// # Errors
    /// [`Error::NoLedger`] when absent and not to be created, [`Error::Locked`]
    /// when another process holds it, [`Error::Storage`] / [`Error::Io`] otherwise.
    pub fn open(path: &Path, create: bool, cache_bytes: u64) -> Result<Self> {
        let (journal, sled_log, index_dir) = (Journal::path_in(path), path.join("log"), path.join("index"));
        let cannot_open = |cause: String| Error::Disk { path: path.to_path_buf(), action: "cannot open", cause };
        // A path that cannot be searched is not a missing ledger: say why.
        let exists = |p: &Path| p.try_exists().map_err(|e| cannot_open(access_hint(&e)));
        if !create && !exists(&journal)? && !exists(&sled_log.join("db"))? {
            return Err(Error::NoLedger(path.to_path_buf()));
        }
        if create {
            std::fs::create_dir_all(path)
                .map_err(Error::from)
                .and_then(|()| crate::journal::sync_dir_of(path))
                .map_err(|e| cannot_open(e.to_string()))?;
        }
        // Everything from here on happens under the ledger's lock, the
        // checks for what exists included.
        let lock = lock_ledger(path)?;
        if !exists(&journal)? {
            if exists(&sled_log.join("db"))? {
                migrate_sled_log(path, &sled_log, &journal)?;
            } else {
                Journal::create(&journal, []).map_err(|e| cannot_open(e.to_string()))?;
            }
        }
        if exists(&sled_log)? {
            // (an earlier release's log, copied into the journal by a
            // migration that stopped before removing it)
            std::fs::remove_dir_all(&sled_log).map_err(|e| cannot_open(access_hint(&e)))?;
        }
        let index = Sled { flush_every_ms: INDEX_FLUSH_MS, cache_bytes, segment: INDEX_SEGMENT_BYTES, derived: true };
        let index_db = open_sled(path, &index_dir, &index)?;
        let meta = index_db.open_tree("meta")?;
        // The index's watermark is set only once an append is durable: a
        // repair of the log must never cut what it covers.
        let acknowledged = indexed_in(&meta)?;
        let (run, run_missing) = open_named_run(&index_dir, &meta, cache_bytes)?;
        let log = Journal::open(&journal, acknowledged).map_err(|e| match e {
            Error::Io(io) => cannot_open(access_hint(&io)),
            other => other,
        })?;
        let (timeline, delta) = (index_db.open_tree("timeline")?, index_db.open_tree("delta")?);
        Ok(Self {
            failed_write: std::sync::atomic::AtomicBool::new(false),
            readable: std::sync::atomic::AtomicU64::new(u64::MAX),
            path: path.to_path_buf(),
            cache_bytes,
            log,
            ids: index_db.open_tree("ids")?,
            trees_hold_timelines: std::sync::atomic::AtomicBool::new(!timeline.is_empty() || !delta.is_empty()),
            timeline,
            delta,
            retracted: index_db.open_tree("retracted")?,
            meta,
            index_db,
            run: std::sync::RwLock::new(run.map(std::sync::Arc::new)),
            run_missing: std::sync::atomic::AtomicBool::new(run_missing),
            generation: std::sync::atomic::AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last stored seq (0 when empty) and its hash (zeros when empty).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the last record does not decode.
    pub fn head(&self) -> Result<(u64, Hash)> {
        Ok(self.last_record()?.map_or((0, [0; 32]), |r| (r.seq, r.hash)))
    }

    /// The last stored record, if any.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it does not decode.
    pub fn last_record(&self) -> Result<Option<StoredEvent>> {
        let cap = self.readable();
        if cap != u64::MAX {
            return if cap == 0 { Ok(None) } else { self.get(cap).map(Some) };
        }
        let Some(frame) = self.log.last() else { return Ok(None) };
        let block = self.log.read(&frame)?;
        let records =
            codec::decode_block(&block).map_err(|e| Error::Corrupt { seq: frame.first, detail: e.to_string() })?;
        let seq = frame.first + records.len().saturating_sub(1) as u64;
        let last = records.last().ok_or_else(|| Error::Corrupt { seq, detail: "empty log block".into() })?;
        decode_at(seq, last).map(Some)
    }

    /// The record at `seq`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it is missing or does not decode.
    pub fn get(&self, seq: u64) -> Result<StoredEvent> {
        let missing = || Error::Corrupt { seq, detail: "record missing from the log".into() };
        if seq > self.readable() {
            return Err(missing());
        }
        let frame = self.log.frame_of(seq)?.ok_or_else(missing)?;
        let block = self.log.read(&frame)?;
        let (records, _) = codec::block_prefix(&block);
        let index = usize::try_from(seq - frame.first).map_err(|_| missing())?;
        decode_at(seq, records.get(index).ok_or_else(missing)?)
    }

    /// The last seq recorded at or before `t`, at most `upto` (0 when none).
    /// Every frame of the log carries its first record's `recorded_at`,
    /// which never decreases with seq, so one block is read.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when that block does not decode, or its frame's
    /// stamp is not its first record's time.
    pub fn last_recorded_by(&self, t: crate::value::Timestamp, upto: u64) -> Result<u64> {
        let Some(frame) = self.log.frame_by_stamp(t.nanos())? else { return Ok(0) };
        let block = self.log.read(&frame)?;
        check_stamp(&frame, &block)?;
        let (records, damage) = block_records(frame.first, &block, 0);
        let mut last = frame.first.saturating_sub(1);
        for (seq, bytes) in records {
            if seq > upto || decode_at(seq, bytes)?.recorded_at > t {
                return Ok(last.min(upto));
            }
            last = seq;
        }
        damage.map_or(Ok(last.min(upto)), Err)
    }

    /// Raw records from `after + 1` on, in seq order, undecoded: `(seq, bytes)`,
    /// or the damage found at a seq.
    pub fn raw_from(&self, after: u64) -> impl Iterator<Item = Result<(u64, Vec<u8>)>> + '_ {
        let cap = self.readable();
        let from = after.saturating_add(1);
        self.blocks_from(after)
            .flat_map(move |item| {
                let out: Vec<Result<(u64, Vec<u8>)>> = match item {
                    Err(e) => vec![Err(e)],
                    Ok((first, block)) => {
                        let (records, damage) = block_records(first, &block, from);
                        records.into_iter().map(|(seq, r)| Ok((seq, r.to_vec()))).chain(damage.map(Err)).collect()
                    }
                };
                out
            })
            .take_while(move |item| item.as_ref().map_or(true, |(seq, _)| *seq <= cap))
    }

    /// The log's blocks, in seq order, from the one holding `after + 1` on:
    /// `(first seq, block)`, each read and checked as it is reached.
    /// [`block_records`] splits one; readers stop after [`Store::readable`].
    pub fn blocks_from(&self, after: u64) -> impl Iterator<Item = Result<(u64, Vec<u8>)>> + '_ {
        let frames: Box<dyn Iterator<Item = Result<Frame>>> = match self.log.frames_from(after.saturating_add(1)) {
            Ok(frames) => Box::new(frames.map(Ok)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        frames.map(|frame| {
            let frame = frame?;
            let block = self.log.read_frame(&frame)?;
            check_stamp(&frame, &block)?;
            Ok((frame.first, block))
        })
    }

    /// The last seq readers may see (`u64::MAX` unless a write failed).
    pub fn readable(&self) -> u64 {
        self.readable.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Decoded records from `after + 1` on, in seq order.
    pub fn records_from(&self, after: u64) -> impl Iterator<Item = Result<StoredEvent>> + '_ {
        self.raw_from(after).map(|item| item.and_then(|(seq, bytes)| decode_at(seq, &bytes)))
    }

    /// Calls `each` with the records from `after + 1` on, in seq order, as
    /// [`records_from`](Self::records_from) would give them, but read,
    /// decoded and passed through `prepare` (with the encoded body of the
    /// record's timeline fact when it could be cut from the record, see
    /// `codec::fact_body_of_record`) on a second thread while `each` works on
    /// the earlier ones.
    ///
    /// # Errors
    /// The first error of `each`, or of reading the log (after every record before it was handed over).
    pub fn scan_from<P: Send>(
        &self,
        after: u64,
        prepare: impl FnMut(StoredEvent, Option<Vec<u8>>) -> P + Send,
        mut each: impl FnMut(P) -> Result<()>,
    ) -> Result<()> {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Result<Vec<P>>>(16);
        std::thread::scope(|scope| {
            scope.spawn(move || self.read_ahead(after, prepare, &chunks));
            for chunk in received {
                for prepared in chunk? {
                    each(prepared)?;
                }
            }
            Ok(())
        })
    }

    /// The reading side of [`Store::scan_from`]: sends the prepared records
    /// in chunks, then the error that stopped the reading, if any.
    fn read_ahead<P>(
        &self,
        after: u64,
        mut prepare: impl FnMut(StoredEvent, Option<Vec<u8>>) -> P,
        chunks: &std::sync::mpsc::SyncSender<Result<Vec<P>>>,
    ) {
        let mut chunk = Vec::with_capacity(SCAN_CHUNK);
        for item in self.raw_from(after) {
            let rec = item.and_then(|(seq, bytes)| {
                let rec = decode_at(seq, &bytes)?;
                let body = codec::fact_body_of_record(bytes, &rec);
                Ok(prepare(rec, body))
            });
            match rec {
                Ok(rec) => chunk.push(rec),
                Err(e) => {
                    let _ = chunks.send(Ok(chunk));
                    let _ = chunks.send(Err(e));
                    return;
                }
            }
            // (a failed send means the caller stopped on an error of its own)
            if chunk.len() == SCAN_CHUNK
                && chunks.send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(SCAN_CHUNK)))).is_err()
            {
                return;
            }
        }
        let _ = chunks.send(Ok(chunk));
    }

    /// Whether this `Store` may still append: not after a failed durable write.
    ///
    /// # Errors
    /// [`Error::Disk`] once a durable write failed in this process.
    pub fn writable(&self) -> Result<()> {
        if self.failed_write.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Disk {
                path: self.path.clone(),
                action: "cannot append to",
                cause: "an earlier write to it failed in this process; reopen the ledger to go on from what reached the disk"
                    .into(),
            });
        }
        Ok(())
    }

    /// Writes records to the log as blocks in one write and makes them durable.
    ///
    /// # Errors
    /// [`Error::Disk`]: then nothing of the batch is acknowledged.
    pub fn append_durably(&self, records: &[StoredEvent]) -> Result<()> {
        use std::sync::atomic::Ordering;
        self.writable()?;
        let mut encoded = crate::par::map(records, codec::encode);
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < records.len() && end - start < BLOCK_RECORDS && bytes < BLOCK_BYTES {
                bytes += encoded[end].len();
                end += 1;
            }
            let first = &records[start];
            blocks.push(crate::journal::Block {
                first: first.seq,
                count: (end - start) as u32,
                stamp: first.recorded_at.nanos(),
                bytes: codec::encode_block(&encoded[start..end]),
            });
            // (each record's bytes freed once in a block: never all twice in memory)
            encoded[start..end].iter_mut().for_each(|bytes| *bytes = Vec::new());
            start = end;
        }
        drop(encoded);
        if let Err(cause) = self.log.append(&blocks) {
            // What reached the disk is unknown (a failed fsync may have
            // dropped pages): append no more here, and read no further.
            self.failed_write.store(true, Ordering::Release);
            let before = records.first().map_or(0, |r| r.seq.saturating_sub(1));
            self.readable.fetch_min(before, Ordering::AcqRel);
            return Err(Error::Disk {
                path: self.path.clone(),
                action: "cannot write to",
                cause: format!("{cause}; nothing of this append was stored"),
            });
        }
        Ok(())
    }

    /// The derived trees' watermark: every record up to it is indexed.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure.
    pub fn indexed(&self) -> Result<u64> {
        indexed_in(&self.meta)
    }

    /// Records `seq` as the derived trees' watermark.
    ///
    /// # Errors
    /// [`Error::Storage`] on a write failure.
    pub fn set_indexed(&self, seq: u64) -> Result<()> {
        self.meta.insert("indexed", &seq_key(seq))?;
        Ok(())
    }

    /// Notes, before the derived trees take a batch's updates, the last seq
    /// of the batch: a large append indexes its batch while its log write is under way,
    /// so until the log holds that seq, the derived trees may hold facts of
    /// records that never reach the log (a failed write, a crash before the
    /// fsync). sled recovers a prefix of a database's writes, so if any of
    /// those facts survives a crash, this mark does too.
    ///
    /// # Errors
    /// [`Error::Storage`] on a write failure.
    pub fn set_pending(&self, seq: u64) -> Result<()> {
        self.meta.insert("pending", &seq_key(seq))?;
        Ok(())
    }

    /// The last seq whose facts the derived trees may hold (0 when unknown,
    /// as in a ledger written before the mark existed): above the log's head,
    /// the derived trees must be rebuilt from the log.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure.
    pub fn pending(&self) -> Result<u64> {
        Ok(self.meta.get("pending")?.and_then(|v| seq_of_bytes(&v)).unwrap_or(0))
    }

    /// Whether the derived trees were written in this release's derived format.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure.
    pub fn derived_current(&self) -> Result<bool> {
        if self.run_missing.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(false);
        }
        Ok(self.meta.get("derived_version")?.is_some_and(|v| v.as_ref() == [codec::DERIVED_VERSION]))
    }

    /// The same ledger reopened with a new, empty index database (the
    /// ledger rebuilds it from the log). Clearing the derived trees instead
    /// would leave sled's file at its largest, and sled 0.34 writes over
    /// every free segment of its file at each open: an index cleared and
    /// rebuilt in place once kept 1,172 free 512 KiB segments, and every cold
    /// query on it took 0.3 s instead of 0.06 s.
    ///
    /// # Errors
    /// [`Error::Disk`] when the old index cannot be removed; as [`Store::open`].
    pub fn without_index(self) -> Result<Self> {
        let (path, cache_bytes) = (self.path.clone(), self.cache_bytes);
        drop(self); // (sled's files are closed before they are removed)
        let index = path.join("index");
        std::fs::remove_dir_all(&index).map_err(|e| Error::Disk {
            path: path.clone(),
            action: "cannot rebuild the derived index of",
            cause: format!("{}: {}", index.display(), access_hint(&e)),
        })?;
        Self::open(&path, false, cache_bytes)
    }

    /// A tree of the index database, for tests that tamper with it.
    #[cfg(test)]
    pub fn index_tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.index_db.open_tree(name)?)
    }

    /// Drops every derived value (they are rebuilt from the log by the ledger)
    /// and marks the index as of this release's derived format.
    ///
    /// # Errors
    /// [`Error::Storage`] on a write failure.
    pub fn clear_derived(&self) -> Result<()> {
        self.name_run(None, 0)?;
        self.clear_trees()?;
        self.meta.insert("derived_version", &[codec::DERIVED_VERSION])?;
        self.meta.remove("pending")?;
        Ok(())
    }

    /// Empties the derived trees, once a run holds everything they held
    /// (after a rebuild, see [`Store::install_run`]). Timelines go before
    /// deltas: a base removed falls back to the run's, which holds its
    /// delta's facts (and the delta, extending an older base, is skipped),
    /// while a delta removed first would leave its base without its newest
    /// facts until the base goes too.
    ///
    /// # Errors
    /// [`Error::Storage`] on a write failure.
    pub fn clear_trees(&self) -> Result<()> {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel); // (odd: the run alone answers)
        let cleared =
            [&self.timeline, &self.delta, &self.ids, &self.retracted].iter().try_for_each(|tree| tree.clear());
        if cleared.is_ok() {
            self.trees_hold_timelines.store(false, std::sync::atomic::Ordering::Release);
        }
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        cleared?;
        // (a rebuild that mends a damaged value must not see it come back after a crash)
        self.index_db.flush()?;
        Ok(())
    }

    /// Whether the derived index holds nothing: no watermark, no run, empty
    /// trees (a new ledger, or one whose index is being rebuilt). A large
    /// batch into it is indexed as a run (see [`Store::write_run`]).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure.
    pub fn index_is_empty(&self) -> Result<bool> {
        let trees = [&self.timeline, &self.delta, &self.ids, &self.retracted];
        Ok(self.indexed()? == 0 && self.run().is_none() && trees.iter().all(|t| t.is_empty()))
    }

    /// The current sorted run, if any.
    pub fn run(&self) -> Option<std::sync::Arc<Run>> {
        self.run.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The run to read under the trees; an error while `meta/run` names a
    /// run that could not be opened (the trees alone would answer wrongly).
    fn run_for_reading(&self) -> Result<Option<std::sync::Arc<Run>>> {
        if self.run_missing.load(std::sync::atomic::Ordering::Acquire) {
            let detail = "the derived index's run file is missing or damaged; run `dealledger reindex`".to_owned();
            return Err(Error::Corrupt { seq: 0, detail });
        }
        Ok(self.run())
    }

    /// Writes a sorted run of derived values up to seq `upto` (see `run`)
    /// beside the index and returns its name; readers see it once
    /// [`Store::install_run`] names it.
    ///
    /// # Errors
    /// [`Error::Io`] on a write failure (nothing is left behind).
    pub fn write_run(
        &self,
        upto: u64,
        timelines: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
        ids: &[(Uuid, u64)],
        retracted: &[(u64, u64)],
    ) -> Result<String> {
        run::write(&self.path.join("index"), upto, timelines, ids, retracted)
    }

    /// Removes a run that was written but will never be named (its append
    /// failed, or naming it did).
    pub fn discard_run(&self, name: &str) {
        let _ = std::fs::remove_file(Run::path_in(&self.path.join("index"), name));
    }

    /// Makes the run `name` (written by [`Store::write_run`]) the index's
    /// run, with `indexed` as the watermark, in one atomic write of `meta`;
    /// then removes the run it replaces. The trees stay: what they hold
    /// answers as the run does (see [`Store::clear_trees`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the run does not open; storage errors.
    pub fn install_run(&self, name: &str, indexed: u64) -> Result<()> {
        let named = self.name_run(Some(name), indexed);
        if named.is_err() && self.meta.get("run")?.is_none_or(|n| n.as_ref() != name.as_bytes()) {
            self.discard_run(name); // (a full disk must not keep a run nothing names)
        }
        named
    }

    /// Names a run (or none) and sets the watermark, then swaps the run
    /// readers see and removes every other run file once `meta` is durable.
    fn name_run(&self, name: Option<&str>, indexed: u64) -> Result<()> {
        let dir = self.path.join("index");
        let opened = name.map(|n| Run::open(&Run::path_in(&dir, n), self.cache_bytes)).transpose()?;
        let mut batch = sled::Batch::default();
        match name {
            Some(name) => batch.insert("run", name.as_bytes()),
            None => batch.remove("run"),
        }
        batch.insert("indexed", &seq_key(indexed));
        self.meta.apply_batch(batch)?;
        *self.run.write().unwrap_or_else(std::sync::PoisonError::into_inner) = opened.map(std::sync::Arc::new);
        self.run_missing.store(false, std::sync::atomic::Ordering::Release);
        self.generation.fetch_add(2, std::sync::atomic::Ordering::AcqRel);
        self.index_db.flush()?;
        remove_other_runs(&dir, name);
        Ok(())
    }

    /// Adds ids and writes timelines (given encoded, see
    /// `codec::encode_timeline_parts`): whole ones to `timeline`, deltas to
    /// `delta`, in batches per tree. A delta left beside a base written
    /// whole since is not removed: it names the older base it extends, and
    /// readers skip it (see [`StoredTimeline`]).
    ///
    /// # Errors
    /// [`Error::Storage`] on a write failure.
    pub fn write_index<'t>(
        &self,
        ids: &[(Uuid, u64)],
        timelines: impl Iterator<Item = (&'t (Ns, EntityId), TimelineWrite)>,
        merge_ids: bool,
    ) -> Result<()> {
        self.write_ids(ids, merge_ids)?;
        // (set before the first value lands: see `trees_hold_timelines`)
        self.trees_hold_timelines.store(true, std::sync::atomic::Ordering::Release);
        let mut deltas: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let bases = timelines.filter_map(|((ns, slug), write)| {
            let key = timeline_key(*ns, slug);
            match write {
                TimelineWrite::Whole(value) => Some((key, value)),
                TimelineWrite::Delta(value) => {
                    deltas.push((key, value));
                    None
                }
            }
        });
        insert_in_batches(&self.timeline, bases)?;
        insert_in_batches(&self.delta, deltas)
    }

    /// Marks `seq` as retracted by the retraction at `by`.
    ///
    /// # Errors
    /// [`Error::Storage`] on a write failure.
    pub fn mark_retracted(&self, seq: u64, by: u64) -> Result<()> {
        self.retracted.insert(seq_key(seq), &seq_key(by))?;
        Ok(())
    }

    /// The seq of the stored event with this id.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure.
    pub fn seq_of_id(&self, id: &Uuid) -> Result<Option<u64>> {
        for run in self.ids.scan_prefix(id_bucket(id).to_be_bytes()).values() {
            let run = run?;
            let entries: Vec<&[u8]> = run.chunks_exact(ID_ENTRY).collect();
            if let Ok(i) = entries.binary_search_by(|e| e[..16].cmp(id.as_bytes())) {
                return Ok(seq_of_bytes(&entries[i][16..]));
            }
        }
        self.run_for_reading()?.map_or(Ok(None), |run| run.seq_of_id(id))
    }

    /// Adds ids to their buckets as sorted runs. A bucket is a short list
    /// of runs whose sizes grow geometrically, oldest first: new entries
    /// make a run that absorbs each newer run of at most twice its size (a
    /// binary counter), so an append rewrites a few small runs, never the
    /// whole bucket, and a look-up searches O(log n) runs. Without `merge`
    /// (a rebuild from the log), each bucket is replaced by one run.
    fn write_ids(&self, ids: &[(Uuid, u64)], merge: bool) -> Result<()> {
        let mut entries: Vec<(u16, [u8; ID_ENTRY])> =
            ids.iter().map(|(id, seq)| (id_bucket(id), id_entry(id, *seq))).collect();
        entries.sort_unstable();
        let by_bucket = entries
            .chunk_by(|a, b| a.0 == b.0)
            .map(|group| (group[0].0, group.iter().map(|(_, e)| *e).collect::<Vec<_>>()));
        // A crash must not lose entries below the watermark: the merged run
        // goes before (or in the same atomic sled batch as) the removal of
        // the runs it absorbed, so sled's recovery of a prefix of the writes
        // keeps every entry (at worst twice, which merges undo). A few
        // buckets go one write at a time (a sled batch has a fixed cost that
        // dominates a single append), more in modest batches (sled's memory
        // grows with a batch's length).
        let one_by_one = ids.len() <= 16;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for (bucket, mut run) in by_bucket {
            let mut first = run.iter().map(entry_seq).min().unwrap_or(0);
            let mut absorbed = Vec::new();
            // (a bucket holds few runs: read forward, then walk newest first;
            // sled's reverse scans cost a seek per step)
            let runs = self.ids.scan_prefix(bucket.to_be_bytes()).collect::<std::result::Result<Vec<_>, _>>()?;
            for (key, value) in runs.into_iter().rev() {
                if merge && value.len() / ID_ENTRY > 2 * run.len() {
                    break;
                }
                run.extend(value.chunks_exact(ID_ENTRY).filter_map(|c| <[u8; ID_ENTRY]>::try_from(c).ok()));
                first = first.min(key.get(2..).and_then(seq_of_bytes).unwrap_or(0));
                absorbed.push(key);
            }
            run.sort_unstable();
            run.dedup();
            let key = run_key(bucket, first);
            if one_by_one {
                self.ids.insert(key, run.concat())?;
                for old in absorbed.iter().filter(|k| k.as_ref() != key) {
                    self.ids.remove(old)?;
                }
                continue;
            }
            for old in absorbed.iter().filter(|k| k.as_ref() != key) {
                batch.remove(old);
            }
            batch.insert(&key, run.concat());
            in_batch += 1;
            if in_batch == 1_024 {
                self.ids.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            self.ids.apply_batch(batch)?;
        }
        Ok(())
    }

    /// The seq of the retraction of `seq`, if any.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure.
    pub fn retracted_by(&self, seq: u64) -> Result<Option<u64>> {
        match self.retracted.get(seq_key(seq))? {
            Some(by) => Ok(seq_of_bytes(&by)),
            None => self.run_for_reading()?.map_or(Ok(None), |run| run.retracted_by(seq)),
        }
    }

    /// The facts of one timeline in fold order (all of them, retracted or not).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure, [`Error::Corrupt`] when the value
    /// does not decode (`reindex` rebuilds it).
    pub fn timeline(&self, ns: Ns, slug: &EntityId) -> Result<Vec<Arc<Fact>>> {
        let Some(stored) = self.stored_timeline(ns, slug)? else { return Ok(Vec::new()) };
        (0..stored.len()).map(|i| stored.fact(slug, i, true).map(Arc::new)).collect()
    }

    /// One stored timeline: its base and, if the base has one, its delta
    /// (read as [`StoredTimeline`] says, so that an append racing the read
    /// cannot make it miss a fact).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read failure, [`Error::Corrupt`] when a value
    /// does not decode.
    pub fn stored_timeline(&self, ns: Ns, slug: &EntityId) -> Result<Option<StoredTimeline>> {
        self.stored_timeline_while(ns, slug, &mut || {})
    }

    /// [`Store::stored_timeline`], calling `meanwhile` between the reads of
    /// a base and of its delta (tests race a rebuild against a reader so).
    pub(crate) fn stored_timeline_while(
        &self,
        ns: Ns,
        slug: &EntityId,
        meanwhile: &mut dyn FnMut(),
    ) -> Result<Option<StoredTimeline>> {
        use std::sync::atomic::Ordering;
        let key = timeline_key(ns, slug);
        loop {
            // A rebuild that swapped the run or emptied the trees while this
            // read went on may have removed the delta of the base it read:
            // then it reads again. While the trees are being emptied (after
            // the rebuild's run was swapped in), that run alone answers.
            let generation = self.generation.load(Ordering::Acquire);
            let trees = generation.is_multiple_of(2) && self.trees_hold_timelines.load(Ordering::Acquire);
            let run = self.run_for_reading()?;
            let base_now = || match if trees { self.timeline.get(&key)? } else { None } {
                Some(base) => Ok(Some(Value::Sled(base))),
                None => Ok(run.as_ref().map(|run| run.timeline(&key)).transpose()?.flatten().map(Value::Shared)),
            };
            let delta_now = || {
                meanwhile();
                Ok(if trees { self.delta.get(&key)?.map(Value::Sled) } else { None })
            };
            // (an error too: a base of the old run beside a newer delta looks damaged)
            let read = StoredTimeline::read(slug, base_now, delta_now);
            if self.generation.load(Ordering::Acquire) == generation {
                return read;
            }
        }
    }

    /// Every derived value (ids, timelines, retractions), for tests comparing
    /// two indexes. Ids come as their logical entries (sorted, once each):
    /// how they are split into runs depends on the appends that wrote them.
    #[cfg(test)]
    pub fn derived_values(&self) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
        let run = self.run();
        let mut ids: Vec<(u8, Vec<u8>, Vec<u8>)> = self
            .ids
            .iter()
            .values()
            .filter_map(std::result::Result::ok)
            .flat_map(|run| run.chunks_exact(ID_ENTRY).map(|e| (b'i', e.to_vec(), Vec::new())).collect::<Vec<_>>())
            .collect();
        let run_ids = run.as_ref().map(|r| r.ids().expect("run ids")).unwrap_or_default();
        ids.extend(run_ids.iter().map(|(id, seq)| (b'i', id_entry(id, *seq).to_vec(), Vec::new())));
        ids.sort();
        ids.dedup();
        let mut retracted: Vec<(u8, Vec<u8>, Vec<u8>)> = self
            .retracted
            .iter()
            .filter_map(std::result::Result::ok)
            .map(|(k, v)| (b'r', k.to_vec(), v.to_vec()))
            .collect();
        let run_retracted = run.as_ref().map(|r| r.retractions().expect("run retractions")).unwrap_or_default();
        retracted.extend(run_retracted.iter().map(|(seq, by)| (b'r', seq_key(*seq).to_vec(), seq_key(*by).to_vec())));
        retracted.sort();
        retracted.dedup_by(|a, b| a.1 == b.1);
        ids.into_iter().chain(self.logical_timelines()).chain(retracted).collect()
    }

    /// Each stored timeline as one value without flags, its delta merged in
    /// (how a timeline is split between base and delta, and between the
    /// trees and a run, depends on the appends that wrote it).
    #[cfg(test)]
    fn logical_timelines(&self) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
        let mut keys: Vec<Vec<u8>> = self.timeline.iter().keys().filter_map(|k| k.ok().map(|k| k.to_vec())).collect();
        let run_timelines = self.run().map(|r| r.timelines().expect("run timelines")).unwrap_or_default();
        keys.extend(run_timelines.into_iter().map(|(key, _)| key));
        keys.sort();
        keys.dedup();
        let mut out = Vec::new();
        for key in keys {
            let ns = match key.first() {
                Some(b'e') => Ns::Entity,
                Some(b'd') => Ns::Deal,
                _ => Ns::Name,
            };
            let Ok(slug) = EntityId::parse(&String::from_utf8_lossy(&key[1..])) else { continue };
            let Ok(Some(stored)) = self.stored_timeline(ns, &slug) else { continue };
            let parts: Vec<codec::TimelinePart<'_>> = stored.parts().collect();
            let kind = codec::ValueKind::Base { has_delta: false };
            out.push((b't', key, codec::encode_timeline_parts(&parts, (ns, &slug), kind)));
        }
        out
    }

    /// The bytes of the log file plus what sled reports for the index.
    ///
    /// # Errors
    /// [`Error::Storage`] on failure.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.log.size() + self.index_db.size_on_disk()? + self.run().map_or(0, |run| run.size()))
    }
}

/// One stored timeline as read: its base value, the delta beside it (if
/// any), and their facts' entries merged in fold order.
///
/// A timeline of [`DELTA_FROM`] facts or more is written whole with a flag
/// saying a delta may lie beside it; an append then writes only the facts
/// newer than that base, as the timeline's delta (which names the last seq
/// of the base it extends), until they are too many ([`delta_fits`]) or a
/// retraction changes an older fact, when the timeline is written whole
/// again. The delta left beside it then extends an older base and is
/// skipped; the next delta replaces it. Small timelines never have a delta,
/// so reading one costs one look-up.
///
/// Base and delta are read apart while an append may write either: a delta
/// that extends a newer base than the one read means a whole write came in
/// between, and the base is read again. A delta is never removed (but by a
/// rebuild), so a reader that finds none while a base says one may exist
/// read a base that no delta extends yet.
pub struct StoredTimeline {
    values: [Option<Value>; 2],
    entries: Vec<codec::FactHeader>,
    base_len: usize,
    base_last: u64,
    has_delta: bool,
}

impl StoredTimeline {
    /// Reads a timeline given how to read its base and its delta (see
    /// [`Store::stored_timeline`]).
    fn read(
        slug: &EntityId,
        mut base_now: impl FnMut() -> Result<Option<Value>>,
        mut delta_now: impl FnMut() -> Result<Option<Value>>,
    ) -> Result<Option<Self>> {
        let damaged = |e: codec::DecodeError| damaged_timeline(slug, 0, &e);
        let Some(mut base) = base_now()? else { return Ok(None) };
        loop {
            let (kind, entries) = codec::timeline_entries(&base, 0).map_err(damaged)?;
            let has_delta = kind == codec::ValueKind::Base { has_delta: true };
            let base_len = entries.len();
            let base_last = entries.iter().map(|e| e.seq).max().unwrap_or(0);
            let delta = match has_delta.then(&mut delta_now).transpose()?.flatten() {
                None => None,
                Some(delta) => {
                    let (kind, newer) = codec::timeline_entries(&delta, 1).map_err(damaged)?;
                    match kind {
                        codec::ValueKind::Delta { extends } if extends > base_last => {
                            // A whole write replaced the base read: read it
                            // again. (That base was written before the delta
                            // that extends it, so it is there now; the same
                            // base again is damage, not a race.)
                            let Some(again) = base_now()? else { return Ok(None) };
                            if again == base {
                                let detail = format!("its delta extends seq {extends}, beyond its base's {base_last}");
                                return Err(damaged(codec::DecodeError::Body(detail)));
                            }
                            base = again;
                            continue;
                        }
                        codec::ValueKind::Delta { extends } if extends == base_last => Some((delta, newer)),
                        _ => None, // (left beside an older base, whose facts this one holds)
                    }
                }
            };
            let (delta, entries) = match delta {
                Some((delta, newer)) => (Some(delta), codec::merge_entries(entries, newer)),
                None => (None, entries),
            };
            return Ok(Some(Self { values: [Some(base), delta], entries, base_len, base_last, has_delta }));
        }
    }

    /// The number of facts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no fact.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many of its facts are in its base (the others are in its delta).
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// The facts' headers and places, in fold order.
    pub fn entries(&self) -> &[codec::FactHeader] {
        &self.entries
    }

    /// The encoded body of fact `i` (empty when out of range).
    pub fn body(&self, i: usize) -> &[u8] {
        let Some(entry) = self.entries.get(i) else { return &[] };
        let value = self.values.get(usize::from(entry.value)).and_then(Option::as_deref).unwrap_or_default();
        value.get(entry.body()).unwrap_or_default()
    }

    /// Decodes fact `i`; with `keep_body`, the fact keeps its encoded body.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the fact does not decode.
    pub fn fact(&self, slug: &EntityId, i: usize, keep_body: bool) -> Result<Fact> {
        let damaged = |seq: u64, e: &codec::DecodeError| damaged_timeline(slug, seq, e);
        let entry = self.entries.get(i).ok_or_else(|| damaged(0, &codec::DecodeError::Body(format!("no fact {i}"))))?;
        codec::timeline_fact_of(entry, self.body(i), keep_body).map_err(|e| damaged(entry.seq, &e))
    }

    /// Every fact as it was read, in fold order.
    pub fn parts(&self) -> impl Iterator<Item = codec::TimelinePart<'_>> {
        self.entries.iter().enumerate().map(|(i, e)| codec::TimelinePart::Kept(e, self.body(i)))
    }

    /// How the timeline goes back to the store, given all its facts in fold
    /// order, `rewrite` when a stored one changed (a retraction): its newer
    /// facts as its delta while [`delta_fits`], else whole.
    pub fn write(
        stored: Option<&Self>,
        parts: &[codec::TimelinePart<'_>],
        rewrite: bool,
        key: (Ns, &EntityId),
    ) -> TimelineWrite {
        if let Some(stored) = stored.filter(|s| s.has_delta && !rewrite) {
            let newer: Vec<codec::TimelinePart<'_>> =
                parts.iter().copied().filter(|p| p.seq() > stored.base_last).collect();
            if delta_fits(newer.len(), stored.base_len) {
                let kind = codec::ValueKind::Delta { extends: stored.base_last };
                return TimelineWrite::Delta(codec::encode_timeline_parts(&newer, key, kind));
            }
        }
        let kind = codec::ValueKind::Base { has_delta: parts.len() >= DELTA_FROM };
        TimelineWrite::Whole(codec::encode_timeline_parts(parts, key, kind))
    }
}

/// A stored value as read: from the trees, or from the run.
#[derive(Clone)]
pub enum Value {
    /// A value of a sled tree.
    Sled(sled::IVec),
    /// A value of the run (shared with its cache).
    Shared(std::sync::Arc<[u8]>),
}

impl std::ops::Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Value::Sled(v) => v,
            Value::Shared(v) => v,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// How one staged timeline is written back (see [`StoredTimeline`]).
#[derive(Debug, PartialEq, Eq)]
pub enum TimelineWrite {
    /// The whole timeline, as its base.
    Whole(Vec<u8>),
    /// The facts newer than the stored base, as its delta.
    Delta(Vec<u8>),
}

/// A timeline of at least this many facts keeps its newer facts in a delta.
pub const DELTA_FROM: usize = 64;

/// Whether `newer` facts may stay in the delta of a base of `base` facts:
/// up to about √(2·base). An append then writes O(√n) facts of a timeline
/// of n, and a merge (n facts) comes once every √n appends or so, which
/// together is the least written per append.
pub fn delta_fits(newer: usize, base: usize) -> bool {
    newer.saturating_mul(newer) <= base.saturating_mul(2)
}

/// Inserts key/value pairs in batches of at most 1,024 (a few go one by one:
/// a sled batch has a fixed cost that dominates a small append). The batches
/// are applied on a second thread while the caller's iterator makes the next.
fn insert_in_batches(tree: &sled::Tree, pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()> {
    let pairs = pairs.into_iter();
    if pairs.size_hint().1.is_some_and(|n| n <= 16) {
        for (key, value) in pairs {
            tree.insert(key, value)?;
        }
        return Ok(());
    }
    let (batches, to_apply) = std::sync::mpsc::sync_channel::<sled::Batch>(2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<()> {
            for batch in to_apply {
                tree.apply_batch(batch)?;
            }
            Ok(())
        });
        let mut batch = sled::Batch::default();
        let mut len = 0;
        for (key, value) in pairs {
            batch.insert(key, value);
            len += 1;
            // (a failed send means the writer stopped on an error, which its join reports)
            if len == 1_024 && batches.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
            len %= 1_024;
        }
        if len > 0 {
            let _ = batches.send(batch);
        }
        drop(batches);
        writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Records are handed from the reading thread to the caller in chunks of this many.
const SCAN_CHUNK: usize = 256;

/// The error for a stored timeline of `slug` that does not decode (at the
/// fact of `seq`, or 0 when not known): derived, so `reindex` mends it.
pub fn damaged_timeline(slug: &EntityId, seq: u64, e: &codec::DecodeError) -> Error {
    Error::Corrupt { seq, detail: format!("derived timeline of {slug} ({e}); run `dealledger reindex`") }
}

/// How to open one of a ledger's sled databases.
struct Sled {
    /// sled's background flush period.
    flush_every_ms: u64,
    /// sled's page cache.
    cache_bytes: u64,
    /// The segment size of a new database.
    segment: usize,
    /// Whether it holds derived data only (rebuilt when found corrupted).
    derived: bool,
}

/// The file in which a running server leaves its base URL, so that a second
/// process that finds the ledger locked can say where to go instead.
pub const SERVER_URL_FILE: &str = "server.url";

/// The error for a ledger another process holds: [`Error::Served`] when a
/// server left its URL, else [`Error::Locked`].
fn locked(ledger: &Path) -> Error {
    match std::fs::read_to_string(ledger.join(SERVER_URL_FILE)) {
        Ok(url) if !url.trim().is_empty() => Error::Served { path: ledger.to_path_buf(), url: url.trim().to_owned() },
        _ => Error::Locked(ledger.to_path_buf()),
    }
}

/// The derived trees' watermark as stored in `meta` (0 when none).
/// Opens the run that `meta/run` names in the index directory, and
/// removes any other run file (a run written by an append or rebuild that
/// did not finish). The second value says that a run is named but could
/// not be opened: the index must then be rebuilt.
fn open_named_run(dir: &Path, meta: &sled::Tree, cache_bytes: u64) -> Result<(Option<Run>, bool)> {
    let name = meta.get("run")?.map(|n| String::from_utf8_lossy(&n).into_owned());
    remove_other_runs(dir, name.as_deref());
    match name.map(|n| Run::open(&Run::path_in(dir, &n), cache_bytes)) {
        None => Ok((None, false)),
        Some(Ok(run)) => Ok((Some(run), false)),
        Some(Err(Error::Corrupt { .. })) => Ok((None, true)),
        Some(Err(Error::Io(e))) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, true)),
        Some(Err(e)) => Err(e), // (a run that cannot be read now is not damaged)
    }
}

/// Removes every run file (finished or not) in `dir` but the one named `keep`.
fn remove_other_runs(dir: &Path, keep: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(std::result::Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(run::RUN_PREFIX) && Some(name.as_str()) != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn indexed_in(meta: &sled::Tree) -> Result<u64> {
    Ok(meta.get("indexed")?.and_then(|v| seq_of_bytes(&v)).unwrap_or(0))
}

/// Takes the ledger's lock: an exclusive `flock` on `<ledger>/lock`, held
/// for as long as the returned file is open.
///
/// # Errors
/// [`Error::Locked`] / [`Error::Served`] when another process holds it,
/// [`Error::Disk`] when the file cannot be opened.
fn lock_ledger(ledger: &Path) -> Result<std::fs::File> {
    let cannot_open =
        |e: &std::io::Error| Error::Disk { path: ledger.to_path_buf(), action: "cannot open", cause: access_hint(e) };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(ledger.join(LOCK_FILE))
        .map_err(|e| cannot_open(&e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(locked(ledger)),
        Err(std::fs::TryLockError::Error(e)) => Err(cannot_open(&e)),
    }
}

/// The file whose `flock` is the ledger's lock.
const LOCK_FILE: &str = "lock";

/// Copies the log of a ledger written by an earlier release, the tree `log`
/// of the sled database `sled_log` (`first seq` big-endian → block), into a
/// new log file at `journal` (see `Journal::create`: written whole under a
/// temporary name, fsynced, then renamed); the caller then removes the sled
/// database. The blocks are copied as they are, damage included (`verify`
/// names it afterwards); a frame's stamp is its first record's
/// `recorded_at`, or the previous frame's when that record does not decode.
///
/// # Errors
/// [`Error::Disk`] when the old log cannot be read or the new file written.
fn migrate_sled_log(ledger: &Path, sled_log: &Path, journal: &Path) -> Result<()> {
    let how = Sled { flush_every_ms: 500, cache_bytes: 32 << 20, segment: 512 << 10, derived: false };
    let db = open_sled(ledger, sled_log, &how)?;
    let mut stamp = i64::MIN;
    let blocks = db.open_tree("log")?.iter().map(|item| {
        let (key, block) = item?;
        let records = codec::block_prefix(&block).0;
        stamp = records.first().and_then(|r| codec::decode(r).ok()).map_or(stamp, |r| r.recorded_at.nanos().max(stamp));
        let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
        Ok(crate::journal::Block { first: block_first(&key)?, count, stamp, bytes: block.to_vec() })
    });
    Journal::create(journal, blocks).map_err(|e| Error::Disk {
        path: ledger.to_path_buf(),
        action: "cannot upgrade the log of",
        cause: e.to_string(),
    })
}

/// sled's segment size for a new index database (sled's default).
const INDEX_SEGMENT_BYTES: usize = 512 << 10;

/// The segment size a database was created with (sled refuses another),
/// from its `conf` file; `new` for a database not yet created.
fn segment_size(path: &Path, new: usize) -> usize {
    sled_segment_size(path).unwrap_or(new)
}

/// The segment size of the sled database at `path` (a ledger's `index`
/// directory, or the `log` directory of a ledger an earlier release wrote),
/// from its `conf` file: what a tool that opens the database with sled
/// directly must configure. `None` when there is none.
pub fn sled_segment_size(path: &Path) -> Option<usize> {
    let conf = std::fs::read(path.join("conf")).ok()?;
    String::from_utf8_lossy(&conf).lines().find_map(|line| line.strip_prefix("segment_size: ")?.trim().parse().ok())
}

/// Opens sled, waiting up to a second for a lock held by a `Db` of this
/// process that was just dropped: sled 0.34 releases the file lock from a
/// background thread, after the drop returns.
///
/// A derived database (the index) that sled finds corrupted is removed and
/// made anew, once: everything in it is rebuilt from the log (sled 0.34.7
/// can leave a database it was writing unreadable when its process is
/// killed, and the index is never fsynced; `tests/crash_loop.rs` met it).
fn open_sled(ledger: &Path, path: &Path, how: &Sled) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(how.cache_bytes)
        .flush_every_ms(Some(how.flush_every_ms))
        .segment_size(segment_size(path, how.segment));
    let mut removed = false;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Corruption { .. }) if how.derived && !removed => {
                removed = true;
                std::fs::remove_dir_all(path).map_err(|e| Error::Disk {
                    path: ledger.to_path_buf(),
                    action: "cannot rebuild the derived index of",
                    cause: format!("{} ({}): {}", "sled found it corrupted", path.display(), access_hint(&e)),
                })?;
            }
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
            {
                if std::time::Instant::now() >= deadline {
                    return Err(locked(ledger));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(other) => {
                let cause = match &other {
                    sled::Error::Io(io) => access_hint(io),
                    other => format!("{} ({})", cause_of(other), path.display()),
                };
                return Err(Error::Disk { path: ledger.to_path_buf(), action: "cannot open", cause });
            }
        }
    }
}

/// The operating system's words, with what to do about a permission error.
fn access_hint(err: &std::io::Error) -> String {
    if err.kind() == std::io::ErrorKind::PermissionDenied {
        format!("{err}: dealledger needs read and write access to the ledger directory and its files, even for queries")
    } else {
        err.to_string()
    }
}

/// The records of one log block (its first seq is `first`) from seq `from`
/// on, `(seq, bytes)` in order, and the damage found after them, if any: the
/// one place that turns a block into the items of [`Store::raw_from`].
pub fn block_records(first: u64, block: &[u8], from: u64) -> (Vec<(u64, &[u8])>, Option<Error>) {
    let (records, damage) = codec::block_prefix(block);
    let intact = records.len() as u64;
    let records =
        records.into_iter().enumerate().map(|(i, r)| (first + i as u64, r)).filter(|(seq, _)| *seq >= from).collect();
    let damage = damage.map(|e| Error::Corrupt { seq: first + intact, detail: format!("damaged log block: {e}") });
    (records, damage)
}

/// Checks that a frame's stamp is its block's first record's `recorded_at`:
/// the stamp is outside the hash chain, so `verify` (which reads the log
/// through [`Store::blocks_from`]) must see a forged one. A block whose first
/// record does not decode is left to the decoding that follows.
fn check_stamp(frame: &Frame, block: &[u8]) -> Result<()> {
    let first = codec::block_prefix(block).0.first().and_then(|r| codec::decode(r).ok());
    match first {
        Some(rec) if rec.recorded_at.nanos() != frame.stamp => Err(Error::Corrupt {
            seq: frame.first,
            detail: format!(
                "the log frame's time stamp {} is not its first record's recorded_at {}",
                frame.stamp,
                rec.recorded_at.nanos()
            ),
        }),
        _ => Ok(()),
    }
}

/// Decodes the record stored at `seq`, checking it claims that seq.
fn decode_at(seq: u64, bytes: &[u8]) -> Result<StoredEvent> {
    let rec = codec::decode(bytes).map_err(|e| Error::Corrupt { seq, detail: e.to_string() })?;
    if rec.seq != seq {
        return Err(Error::Corrupt { seq, detail: format!("record claims seq {}", rec.seq) });
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    /// Ids that all fall in bucket 7.
    fn id_in_bucket_7(n: u64) -> Uuid {
        Uuid::from_u128((u128::from(n) << 64) | 0x0007)
    }

    fn runs_of(store: &Store, bucket: u16) -> Vec<usize> {
        store.ids.scan_prefix(bucket.to_be_bytes()).values().map(|v| v.map_or(0, |v| v.len() / ID_ENTRY)).collect()
    }

    #[test]
    fn ids_of_many_small_appends_stay_in_few_runs_and_all_resolve() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db"), true, 1 << 20).expect("open");
        for seq in 1..=1_000u64 {
            store.write_index(&[(id_in_bucket_7(seq), seq)], std::iter::empty(), true).expect("write");
            let runs = runs_of(&store, 7);
            assert_eq!(runs.iter().sum::<usize>(), seq as usize, "no entry lost or doubled after seq {seq}");
            assert!(runs.len() <= 2 * (64 - seq.leading_zeros() as usize), "{} runs after {seq} appends", runs.len());
        }
        for seq in 1..=1_000u64 {
            assert_eq!(store.seq_of_id(&id_in_bucket_7(seq)).expect("read"), Some(seq));
        }
        assert_eq!(store.seq_of_id(&id_in_bucket_7(1_001)).expect("read"), None);
        // Indexing a record again (after a crash before the watermark) may
        // leave a copy in a newer run until a merge; it resolves the same.
        store.write_index(&[(id_in_bucket_7(1_000), 1_000)], std::iter::empty(), true).expect("write");
        assert_eq!(store.seq_of_id(&id_in_bucket_7(1_000)).expect("read"), Some(1_000));
        // A rebuild leaves one run per bucket.
        store.write_index(&[(id_in_bucket_7(5), 5)], std::iter::empty(), false).expect("rebuild");
        assert_eq!(runs_of(&store, 7), vec![1_000]);
    }

    #[test]
    fn a_timeline_read_while_a_merge_replaces_its_base_misses_nothing() {
        let slug = EntityId::parse("fund").expect("slug");
        let key = (Ns::Entity, &slug);
        let facts: Vec<Arc<Fact>> = (1..=90)
            .map(|seq| {
                let event = Event::CompanyRenamed { company: slug.clone(), name: format!("F{seq}") };
                Arc::new(crate::timeline::fact_of(&crate::event::test_record(seq, event), None).expect("fact"))
            })
            .collect();
        let encode = |facts: &[Arc<Fact>], kind: codec::ValueKind| {
            let parts: Vec<codec::TimelinePart<'_>> = facts.iter().map(|f| codec::TimelinePart::Fact(f)).collect();
            Value::Sled(sled::IVec::from(codec::encode_timeline_parts(&parts, key, kind)))
        };
        let base = |n: usize| encode(&facts[..n], codec::ValueKind::Base { has_delta: true });
        let delta = |from: usize, to: usize| encode(&facts[from..to], codec::ValueKind::Delta { extends: from as u64 });
        let seqs = |read: Result<Option<StoredTimeline>>| -> Vec<u64> {
            read.expect("read").expect("stored").entries().iter().map(|e| e.seq).collect()
        };
        let upto = |n: u64| -> Vec<u64> { (1..=n).collect() };
        // Undisturbed: a base of 70 facts and the delta of the next ten.
        assert_eq!(seqs(StoredTimeline::read(&slug, || Ok(Some(base(70))), || Ok(Some(delta(70, 80))))), upto(80));
        // The delta left beside a base written whole since is skipped.
        assert_eq!(seqs(StoredTimeline::read(&slug, || Ok(Some(base(80))), || Ok(Some(delta(70, 80))))), upto(80));
        // The reader gets the base of 70; then a whole write (80 facts) and
        // the next append's delta (81..90) land before it reads the delta.
        let bases = std::cell::RefCell::new(vec![base(80), base(70)]);
        let read = StoredTimeline::read(&slug, || Ok(bases.borrow_mut().pop()), || Ok(Some(delta(80, 90))));
        assert_eq!(seqs(read), upto(90));
        // A delta beyond a base that stays as it is: damage, reported.
        let read = StoredTimeline::read(&slug, || Ok(Some(base(70))), || Ok(Some(delta(80, 90))));
        assert!(matches!(read, Err(Error::Corrupt { .. })), "a damaged delta is an error, not a loop");
    }

    #[test]
    fn a_log_of_an_earlier_release_is_copied_into_a_journal_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut recs = records(300);
        for rec in &mut recs {
            rec.recorded_at = crate::value::Timestamp::from_nanos(rec.seq as i64 * 1000);
        }
        {
            let store = Store::open(dir.path(), true, 1 << 20).expect("create");
            store.append_durably(&recs[..1]).expect("append");
            store.append_durably(&recs[1..]).expect("append");
        }
        // The same blocks in the sled tree of an earlier release, and no journal.
        let journal = Journal::path_in(dir.path());
        let (_, frames) = crate::journal::decode_file(&std::fs::read(&journal).expect("read")).expect("frames");
        assert_eq!(frames.iter().map(|(f, _)| f.first).collect::<Vec<_>>(), vec![1, 2, 258]);
        {
            let db = sled::Config::new().path(dir.path().join("log")).segment_size(128 << 10).open().expect("sled");
            let tree = db.open_tree("log").expect("tree");
            for (frame, block) in &frames {
                tree.insert(frame.first.to_be_bytes(), block.as_slice()).expect("insert");
            }
            db.flush().expect("flush");
        }
        std::fs::remove_file(&journal).expect("remove");
        let store = Store::open(dir.path(), false, 1 << 20).expect("an old ledger opens");
        assert!(!dir.path().join("log").exists(), "the old log is gone once the journal is in place");
        let blocks = |frames: Vec<(Frame, Vec<u8>)>| -> Vec<(u64, u32, i64, Vec<u8>)> {
            frames.into_iter().map(|(f, bytes)| (f.first, f.count, f.stamp, bytes)).collect()
        };
        let (_, copied) = crate::journal::decode_file(&std::fs::read(&journal).expect("read")).expect("frames");
        assert_eq!(blocks(copied), blocks(frames));
        let read: Vec<StoredEvent> = store.records_from(0).collect::<Result<_>>().expect("records");
        assert_eq!(read, recs);
        assert_eq!(store.last_recorded_by(recs[149].recorded_at, 300).expect("by time"), 150);
    }

    fn records(n: u64) -> Vec<StoredEvent> {
        (1..=n)
            .map(|seq| {
                let company = EntityId::parse(&format!("c{seq}")).expect("slug");
                crate::event::test_record(
                    seq,
                    Event::CompanyRegistered { company, name: format!("C {seq}"), jurisdiction: None },
                )
            })
            .collect()
    }

    #[test]
    fn a_scan_gives_what_records_from_gives_and_stops_at_the_first_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), true, 1 << 20).expect("open");
        store.append_durably(&records(1_000)).expect("append");
        let mut scanned = Vec::new();
        store
            .scan_from(
                200,
                |rec, body| (rec, body.is_some()),
                |one| {
                    scanned.push(one);
                    Ok(())
                },
            )
            .expect("scan");
        let expected: Vec<StoredEvent> = store.records_from(200).collect::<Result<_>>().expect("records");
        assert!(scanned.iter().all(|(_, cut)| *cut), "every body is cut from its record");
        assert_eq!(scanned.into_iter().map(|(rec, _)| rec).collect::<Vec<_>>(), expected);
        let mut seen = 0;
        let stopped = store.scan_from(
            0,
            |rec, _| rec.seq,
            |seq| {
                seen += 1;
                if seq == 300 {
                    return Err(Error::Corrupt { seq, detail: "stop".into() });
                }
                Ok(())
            },
        );
        assert!(matches!(stopped, Err(Error::Corrupt { seq: 300, .. })));
        assert_eq!(seen, 300);
    }

    #[test]
    fn batches_applied_on_the_writer_thread_all_land() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), true, 1 << 20).expect("open");
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0u32..3_000).map(|i| (i.to_be_bytes().to_vec(), vec![7; 10])).collect();
        insert_in_batches(&store.meta, pairs).expect("insert");
        assert_eq!(store.meta.len(), 3_000);
    }
}
