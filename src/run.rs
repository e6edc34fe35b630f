//! Sorted runs: a whole derived index written once, in a file of its own.
//!
//! Why it exists: a bulk load into an empty ledger, and every rebuild from
//! the log, derive all timelines, ids and retractions at once. Put into sled
//! one key at a time, a million events' 230 MB of derived values cost
//! seconds of sled's per-key work and take 2.5 times their size on disk. A
//! run holds them in one file, written sequentially and fsynced once, and
//! answers a look-up with two small reads. Appends after it go to the sled
//! index, which readers consult first (see `store`).
//!
//! Layout (integers little-endian but the sort keys, which are big-endian):
//! * 16 bytes [`RUN_MAGIC`];
//! * timeline records, in no order: `key len u16 | key | value | crc32`;
//! * three sorted sections of fixed-width entries, each followed by its
//!   sample (per block of `stride` entries: the block's first key, then the
//!   CRC-32 of the block):
//!   timelines `fnv1a64(key) u64 BE | offset u64 | len u32` (stride 32),
//!   ids `uuid [16] | seq u64` (stride 128),
//!   retractions `seq u64 BE | by u64` (stride 128);
//! * a footer of [`FOOTER`] bytes: `DLRUNEND | upto u64 | per section
//!   (offset u64, count u64, sample offset u64, sample crc32 u32, 0 u32) |
//!   crc32 of all that | 0 u32`.
//!
//! Opening a run reads its footer and samples (a few hundred KiB for a
//! million events); a look-up binary-searches a sample, reads one block and
//! checks its CRC, and for a timeline reads the record and checks its CRC.
//!
//! This module must never decide what is derived (`index` does), and never
//! change a run once written: a new run replaces it whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use uuid::Uuid;

use crate::error::{Error, Result};

/// The first 16 bytes of every run file.
pub const RUN_MAGIC: &[u8; 16] = b"dealledger run\0\x01";

/// The first 8 bytes of a run's footer.
const FOOT_MAGIC: &[u8; 8] = b"DLRUNEND";

/// The footer's length in bytes.
pub const FOOTER: usize = 8 + 8 + 3 * 32 + 8;

/// Bytes per timeline record beside its key and value: key length and CRC.
const RECORD_EXTRA: usize = 2 + 4;

/// The file names of runs start so: `run-<16 hex digits>`.
pub const RUN_PREFIX: &str = "run-";

/// The fixed shape of one sorted section's entries.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Bytes per entry.
    width: usize,
    /// Bytes of the sort key at the start of each entry.
    key: usize,
    /// Entries per block (one sample entry each).
    stride: usize,
    /// Whether blocks stay in memory once read (see [`Section::resident`]).
    resident: bool,
}

const TIMELINES: Shape = Shape { width: 20, key: 8, stride: 32, resident: true };
const IDS: Shape = Shape { width: 24, key: 16, stride: 128, resident: false };
const RETRACTED: Shape = Shape { width: 16, key: 8, stride: 128, resident: true };

/// A sorted section as found in a run's footer, with its sample in memory.
#[derive(Debug)]
struct Section {
    shape: Shape,
    offset: u64,
    count: u64,
    /// Per block: its first key, then its CRC-32.
    sample: Vec<u8>,
    /// Blocks kept once read (checked), for a section read at every look-up
    /// (the timeline table: 4 MiB at a million events); empty for others.
    resident: Vec<OnceLock<Arc<[u8]>>>,
}

/// The stable 64-bit FNV-1a hash of a timeline key (the sort key of the
/// timeline table; equal hashes are told apart by the key in the record).
pub fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// One run file, open for look-ups.
#[derive(Debug)]
pub struct Run {
    file: File,
    path: PathBuf,
    upto: u64,
    size: u64,
    timelines: Section,
    ids: Section,
    retracted: Section,
    values: Mutex<ValueCache>,
}

/// Timeline values read (and checked) lately, by their offset in the file,
/// up to a budget of bytes, the oldest dropped first: a process answering
/// many queries reads each value from the file once, a one-off query keeps
/// only what it read.
#[derive(Debug, Default)]
struct ValueCache {
    values: std::collections::HashMap<u64, (Vec<u8>, Arc<[u8]>)>,
    /// The cached offsets, oldest first (each once): the next to drop.
    order: std::collections::VecDeque<u64>,
    bytes: usize,
    budget: usize,
}

/// What a cached value counts against the budget: its bytes and some overhead.
fn cost(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + 64
}

impl ValueCache {
    /// The value at `offset`, if cached: `Some(None)` when the record there
    /// holds another key.
    fn get(&self, offset: u64, key: &[u8]) -> Option<Option<Arc<[u8]>>> {
        self.values.get(&offset).map(|(found, value)| (found == key).then(|| Arc::clone(value)))
    }

    /// Keeps a value, first dropping the oldest ones until it fits the budget.
    fn put(&mut self, offset: u64, key: Vec<u8>, value: Arc<[u8]>) {
        let size = cost(&key, &value);
        if size > self.budget {
            return;
        }
        while self.bytes + size > self.budget {
            let Some(victim) = self.order.pop_front() else { break };
            if let Some((k, v)) = self.values.remove(&victim) {
                self.bytes -= cost(&k, &v);
            }
        }
        match self.values.insert(offset, (key, value)) {
            Some((k, v)) => self.bytes -= cost(&k, &v),
            None => self.order.push_back(offset),
        }
        self.bytes += size;
    }
}

/// The error for a run that is not what it should be: derived, so a rebuild mends it.
fn damaged(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Corrupt { seq: 0, detail: format!("derived index {} ({what}); run `dealledger reindex`", path.display()) }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

impl Section {
    fn blocks(&self) -> usize {
        usize::try_from(self.count.div_ceil(self.shape.stride as u64)).unwrap_or(usize::MAX)
    }

    fn first_key(&self, block: usize) -> &[u8] {
        let at = block * (self.shape.key + 4);
        &self.sample[at..at + self.shape.key]
    }

    fn block_crc(&self, block: usize) -> u32 {
        u32_at(&self.sample, block * (self.shape.key + 4) + self.shape.key)
    }

    /// Block `block`, checked against its CRC: kept in memory once read
    /// when the section is resident.
    fn block(&self, file: &File, path: &Path, block: usize) -> Result<Arc<[u8]>> {
        let Some(slot) = self.resident.get(block) else { return Ok(Arc::from(self.read_block(file, path, block)?)) };
        if let Some(bytes) = slot.get() {
            return Ok(Arc::clone(bytes));
        }
        let bytes: Arc<[u8]> = Arc::from(self.read_block(file, path, block)?);
        // (two readers may both read it; either copy will do)
        Ok(Arc::clone(slot.get_or_init(|| bytes)))
    }

    /// Reads block `block` from the file, checked against its CRC.
    fn read_block(&self, file: &File, path: &Path, block: usize) -> Result<Vec<u8>> {
        let first = (block * self.shape.stride) as u64;
        let n = (self.count - first).min(self.shape.stride as u64) as usize;
        let mut bytes = vec![0; n * self.shape.width];
        file.read_exact_at(&mut bytes, self.offset + first * self.shape.width as u64)?;
        if crc32fast::hash(&bytes) != self.block_crc(block) {
            return Err(damaged(path, format_args!("block {block} of a sorted section fails its checksum")));
        }
        Ok(bytes)
    }

    /// Calls `each` with every entry whose key is `key` (at most one where
    /// keys are unique), in order, until it returns something.
    fn find_map<R>(
        &self,
        file: &File,
        path: &Path,
        key: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<Option<R>>,
    ) -> Result<Option<R>> {
        let blocks = self.blocks();
        // The first block that may hold `key`: the last one starting below it.
        let (mut lo, mut hi) = (0, blocks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.first_key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut block = lo.saturating_sub(1);
        while block < blocks && self.first_key(block) <= key {
            let bytes = self.block(file, path, block)?;
            for entry in bytes.chunks_exact(self.shape.width).filter(|e| &e[..self.shape.key] == key) {
                if let Some(found) = each(entry)? {
                    return Ok(Some(found));
                }
            }
            block += 1;
        }
        Ok(None)
    }

    /// Every entry, in order.
    fn all(&self, file: &File, path: &Path) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for block in 0..self.blocks() {
            out.extend(self.read_block(file, path, block)?.chunks_exact(self.shape.width).map(<[u8]>::to_vec));
        }
        Ok(out)
    }
}

impl Run {
    /// The path of the run named `name` in `dir`.
    pub fn path_in(dir: &Path, name: &str) -> PathBuf {
        dir.join(name)
    }

    /// Opens a run file: checks its magic and footer and reads its samples.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read, [`Error::Corrupt`] when it is damaged.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        let footer_at = size.checked_sub(FOOTER as u64).filter(|at| *at >= RUN_MAGIC.len() as u64);
        let Some(footer_at) = footer_at else { return Err(damaged(path, "shorter than a run")) };
        let mut magic = [0; 16];
        file.read_exact_at(&mut magic, 0)?;
        let mut foot = vec![0; FOOTER];
        file.read_exact_at(&mut foot, footer_at)?;
        if &magic != RUN_MAGIC || &foot[..8] != FOOT_MAGIC {
            return Err(damaged(path, "not a run file"));
        }
        if crc32fast::hash(&foot[..FOOTER - 8]) != u32_at(&foot, FOOTER - 8) {
            return Err(damaged(path, "its footer fails its checksum"));
        }
        let section = |i: usize, shape: Shape| -> Result<Section> {
            let at = 16 + i * 32;
            let (offset, count, sample_at, crc) =
                (u64_at(&foot, at), u64_at(&foot, at + 8), u64_at(&foot, at + 16), u32_at(&foot, at + 24));
            let blocks = usize::try_from(count.div_ceil(shape.stride as u64))
                .map_err(|_| damaged(path, "a section too large"))?;
            let len = blocks * (shape.key + 4);
            let in_file = |end: Option<u64>| end.is_some_and(|end| end <= footer_at);
            if !in_file(count.checked_mul(shape.width as u64).and_then(|n| n.checked_add(offset)))
                || !in_file(sample_at.checked_add(len as u64))
            {
                return Err(damaged(path, "a section lies outside the file"));
            }
            let mut sample = vec![0; len];
            file.read_exact_at(&mut sample, sample_at)?;
            if crc32fast::hash(&sample) != crc {
                return Err(damaged(path, "a sample fails its checksum"));
            }
            let resident = if shape.resident { (0..blocks).map(|_| OnceLock::new()).collect() } else { Vec::new() };
            Ok(Section { shape, offset, count, sample, resident })
        };
        Ok(Self {
            upto: u64_at(&foot, 8),
            size,
            timelines: section(0, TIMELINES)?,
            ids: section(1, IDS)?,
            retracted: section(2, RETRACTED)?,
            path: path.to_path_buf(),
            file,
            values: Mutex::new(ValueCache {
                budget: usize::try_from(cache_bytes).unwrap_or(usize::MAX),
                ..ValueCache::default()
            }),
        })
    }

    /// The last seq whose derived values the run holds.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored value of the timeline `key`, if the run holds one.
    ///
    /// # Errors
    /// [`Error::Io`] on a read failure, [`Error::Corrupt`] on a damaged run.
    pub fn timeline(&self, key: &[u8]) -> Result<Option<Arc<[u8]>>> {
        self.timelines.find_map(&self.file, &self.path, &key_hash(key).to_be_bytes(), |entry| {
            let (offset, len) = (u64_at(entry, 8), u32_at(entry, 16) as usize);
            let cached = self.values.lock().unwrap_or_else(PoisonError::into_inner).get(offset, key);
            if let Some(value) = cached {
                return Ok(value);
            }
            let (found, value) = self.record(offset, len)?;
            let value: Arc<[u8]> = Arc::from(value);
            let ours = (found == key).then(|| Arc::clone(&value));
            self.values.lock().unwrap_or_else(PoisonError::into_inner).put(offset, found, value);
            Ok(ours)
        })
    }

    /// Reads and checks the timeline record at `offset`: its key and value.
    fn record(&self, offset: u64, len: usize) -> Result<(Vec<u8>, Vec<u8>)> {
        let bad = || damaged(&self.path, format_args!("the timeline record at byte {offset}"));
        if len < RECORD_EXTRA || offset.checked_add(len as u64).is_none_or(|end| end > self.size) {
            return Err(bad());
        }
        let mut bytes = vec![0; len];
        self.file.read_exact_at(&mut bytes, offset)?;
        let (body, crc) = bytes.split_at(len - 4);
        if crc32fast::hash(body) != u32_at(crc, 0) {
            return Err(bad());
        }
        let key_len = usize::from(u16::from_le_bytes([body[0], body[1]]));
        let rest = &body[2..];
        if key_len > rest.len() {
            return Err(bad());
        }
        let (key, value) = rest.split_at(key_len);
        Ok((key.to_vec(), value.to_vec()))
    }

    /// The seq of the event with this id, if the run holds it.
    ///
    /// # Errors
    /// As [`Run::timeline`].
    pub fn seq_of_id(&self, id: &Uuid) -> Result<Option<u64>> {
        self.ids.find_map(&self.file, &self.path, id.as_bytes(), |e| Ok(Some(u64_at(e, 16))))
    }

    /// The seq of the retraction of `seq`, if the run holds one.
    ///
    /// # Errors
    /// As [`Run::timeline`].
    pub fn retracted_by(&self, seq: u64) -> Result<Option<u64>> {
        self.retracted.find_map(&self.file, &self.path, &seq.to_be_bytes(), |e| Ok(Some(u64_at(e, 8))))
    }

    /// Every timeline `(key, value)` of the run, in table order.
    ///
    /// # Errors
    /// As [`Run::timeline`].
    pub fn timelines(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries = self.timelines.all(&self.file, &self.path)?;
        entries.iter().map(|e| self.record(u64_at(e, 8), u32_at(e, 16) as usize)).collect()
    }

    /// Every `(id, seq)` of the run, sorted by id.
    ///
    /// # Errors
    /// As [`Run::timeline`].
    pub fn ids(&self) -> Result<Vec<(Uuid, u64)>> {
        let entries = self.ids.all(&self.file, &self.path)?;
        Ok(entries.iter().map(|e| (Uuid::from_slice(&e[..16]).unwrap_or_default(), u64_at(e, 16))).collect())
    }

    /// Every `(seq, retracted by)` of the run, sorted by seq.
    ///
    /// # Errors
    /// As [`Run::timeline`].
    pub fn retractions(&self) -> Result<Vec<(u64, u64)>> {
        let entries = self.retracted.all(&self.file, &self.path)?;
        Ok(entries.iter().map(|e| (be_u64(e), u64_at(e, 8))).collect())
    }
}

/// Writes a new run file in `dir` and returns its name: timelines as `(key,
/// value)` in any order, ids and retractions (`(seq, by)`) in any order.
/// The file is written under a temporary name, fsynced, renamed, and the
/// directory fsynced: once this returns, the run is whole on disk.
///
/// # Errors
/// [`Error::Io`] on a write failure (the temporary file is then removed).
pub fn write(
    dir: &Path,
    upto: u64,
    timelines: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ids: &[(Uuid, u64)],
    retracted: &[(u64, u64)],
) -> Result<String> {
    let name = format!("{RUN_PREFIX}{:016x}", rand_u64());
    let (tmp, path) = (dir.join(format!("{name}.tmp")), Run::path_in(dir, &name));
    let written = write_file(&tmp, upto, timelines, ids, retracted)
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(Error::from))
        .and_then(|()| crate::journal::sync_dir_of(&path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(name)
}

/// A random 64-bit name part.
fn rand_u64() -> u64 {
    let bytes = Uuid::new_v4().into_bytes();
    be_u64(&bytes)
}

/// Counts the bytes it passes on, to know each record's offset.
struct Counting<W> {
    inner: W,
    at: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }
}

fn write_file(
    path: &Path,
    upto: u64,
    timelines: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ids: &[(Uuid, u64)],
    retracted: &[(u64, u64)],
) -> Result<()> {
    let file = File::create(path)?;
    let mut out = Counting { inner: BufWriter::with_capacity(1 << 20, &file), at: 0 };
    out.put(RUN_MAGIC)?;
    let mut table: Vec<[u8; 20]> = Vec::new();
    for (key, value) in timelines {
        let key_len = u16::try_from(key.len()).map_err(|_| Error::BadArgument("a timeline key too long".into()))?;
        let mut record = Vec::with_capacity(key.len() + value.len() + RECORD_EXTRA);
        record.extend_from_slice(&key_len.to_le_bytes());
        record.extend_from_slice(&key);
        record.extend_from_slice(&value);
        record.extend_from_slice(&crc32fast::hash(&record).to_le_bytes());
        let mut entry = [0; 20];
        entry[..8].copy_from_slice(&key_hash(&key).to_be_bytes());
        entry[8..16].copy_from_slice(&out.at.to_le_bytes());
        entry[16..].copy_from_slice(&(record.len() as u32).to_le_bytes());
        table.push(entry);
        out.put(&record)?;
    }
    table.sort_unstable_by_key(|e| (be_u64(e), u64_at(e, 8)));
    let id_entries: Vec<[u8; 24]> = keyed_entries(ids.iter().map(|(id, seq)| (id.as_u128(), *seq)).collect());
    let retracted_entries: Vec<[u8; 16]> =
        keyed_entries(retracted.iter().map(|(seq, by)| (u128::from(*seq), *by)).collect());
    let mut foot = Vec::with_capacity(FOOTER);
    foot.extend_from_slice(FOOT_MAGIC);
    foot.extend_from_slice(&upto.to_le_bytes());
    put_section(&mut out, &mut foot, TIMELINES, &table)?;
    put_section(&mut out, &mut foot, IDS, &id_entries)?;
    put_section(&mut out, &mut foot, RETRACTED, &retracted_entries)?;
    let crc = crc32fast::hash(&foot);
    foot.extend_from_slice(&crc.to_le_bytes());
    foot.extend_from_slice(&0u32.to_le_bytes());
    out.put(&foot)?;
    out.inner.flush()?;
    drop(out);
    file.sync_all()?;
    Ok(())
}

/// Entries `key | value u64` of `N` bytes (the key big-endian, the last
/// `N - 8` bytes of the `u128`), sorted by key (as integers: comparing byte
/// arrays costs a `memcmp` call each), each key once.
fn keyed_entries<const N: usize>(mut pairs: Vec<(u128, u64)>) -> Vec<[u8; N]> {
    pairs.sort_unstable();
    pairs.dedup_by_key(|(key, _)| *key);
    let key_len = N - 8;
    let entry = |(key, value): &(u128, u64)| {
        let mut e = [0; N];
        e[..key_len].copy_from_slice(&key.to_be_bytes()[16 - key_len..]);
        e[key_len..].copy_from_slice(&value.to_le_bytes());
        e
    };
    pairs.iter().map(entry).collect()
}

/// Writes one sorted section and its sample; adds its footer entry to `foot`.
fn put_section<W: Write, const N: usize>(
    out: &mut Counting<W>,
    foot: &mut Vec<u8>,
    shape: Shape,
    entries: &[[u8; N]],
) -> Result<()> {
    let offset = out.at;
    let mut sample = Vec::with_capacity(entries.len().div_ceil(shape.stride) * (shape.key + 4));
    for block in entries.chunks(shape.stride) {
        let bytes = block.concat();
        sample.extend_from_slice(&block[0][..shape.key]);
        sample.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        out.put(&bytes)?;
    }
    let sample_at = out.at;
    out.put(&sample)?;
    foot.extend_from_slice(&offset.to_le_bytes());
    foot.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    foot.extend_from_slice(&sample_at.to_le_bytes());
    foot.extend_from_slice(&crc32fast::hash(&sample).to_le_bytes());
    foot.extend_from_slice(&0u32.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Uuid {
        Uuid::from_u64_pair(n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n)
    }

    fn sample_run(dir: &Path, n: u64) -> Run {
        let timelines = (0..n).map(|i| (format!("e{i}").into_bytes(), vec![i as u8; (i % 50) as usize]));
        let ids: Vec<(Uuid, u64)> = (1..=n).map(|s| (id(s), s)).collect();
        let retracted: Vec<(u64, u64)> = (1..=n / 10).map(|s| (s * 7, s * 7 + 1)).collect();
        let name = write(dir, n, timelines, &ids, &retracted).expect("write");
        Run::open(&Run::path_in(dir, &name), 1 << 20).expect("open")
    }

    #[test]
    fn every_value_written_is_found_and_nothing_else() {
        let dir = tempfile::tempdir().expect("dir");
        let run = sample_run(dir.path(), 1_000);
        assert_eq!(run.upto(), 1_000);
        for i in 0..1_000u64 {
            let value = run.timeline(format!("e{i}").as_bytes()).expect("read").map(|v| v.to_vec());
            assert_eq!(value, Some(vec![i as u8; (i % 50) as usize]), "timeline e{i}");
            assert_eq!(run.seq_of_id(&id(i + 1)).expect("id"), Some(i + 1));
        }
        assert_eq!(run.timeline(b"e1000").expect("read"), None);
        assert_eq!(run.timeline(b"").expect("read"), None);
        assert_eq!(run.seq_of_id(&id(5_000)).expect("id"), None);
        assert_eq!(run.retracted_by(70).expect("r"), Some(71));
        assert_eq!(run.retracted_by(71).expect("r"), None);
        assert_eq!(run.timelines().expect("all").len(), 1_000);
        assert_eq!(run.ids().expect("ids").len(), 1_000);
        assert_eq!(run.retractions().expect("r"), (1..=100).map(|s| (s * 7, s * 7 + 1)).collect::<Vec<_>>());
    }

    #[test]
    fn the_value_cache_keeps_to_its_budget_and_answers_the_same() {
        let dir = tempfile::tempdir().expect("dir");
        let path = sample_run(dir.path(), 400).path().to_path_buf();
        for budget in [0, 300, 5_000, 1 << 20] {
            let run = Run::open(&path, budget).expect("open");
            for pass in 0..2 {
                for i in (0..400u64).rev() {
                    let value = run.timeline(format!("e{i}").as_bytes()).expect("read").map(|v| v.to_vec());
                    assert_eq!(value, Some(vec![i as u8; (i % 50) as usize]), "budget {budget}, pass {pass}, e{i}");
                }
                let cache = run.values.lock().expect("cache");
                assert!(cache.bytes as u64 <= budget, "{} bytes cached of {budget}", cache.bytes);
                let counted: usize = cache.values.values().map(|(k, v)| cost(k, v)).sum();
                assert_eq!(cache.order.len(), cache.values.len(), "each cached offset once in the order");
                assert_eq!(counted, cache.bytes);
            }
        }
    }

    #[test]
    fn the_byte_layout_is_pinned_by_a_golden_file() {
        // Derived data, rebuilt when its format changes, but a change of
        // layout must be deliberate: it comes with a new derived version.
        let dir = tempfile::tempdir().expect("dir");
        let timelines = [(b"efund".to_vec(), vec![1, 2, 3]), (b"dd-1".to_vec(), vec![4, 5])].into_iter();
        let ids = [(Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10), 7), (Uuid::from_u128(5), 3)];
        let name = write(dir.path(), 9, timelines, &ids, &[(7, 9)]).expect("write");
        let actual = hex::encode(std::fs::read(Run::path_in(dir.path(), &name)).expect("read"));
        assert!(actual.starts_with(&hex::encode(RUN_MAGIC)), "the file names its format, version 1");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1/run-file.hex");
        match std::fs::read_to_string(&path) {
            Ok(golden) => assert_eq!(golden.trim(), actual, "the run file's version-1 layout changed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(&path, format!("{actual}\n")).expect("write golden file");
                panic!("{} was missing and has been CREATED; review and commit it", path.display());
            }
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }

    #[test]
    fn an_empty_run_answers_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let name = write(dir.path(), 0, std::iter::empty(), &[], &[]).expect("write");
        let run = Run::open(&Run::path_in(dir.path(), &name), 1 << 20).expect("open");
        assert_eq!(run.timeline(b"e").expect("read"), None);
        assert_eq!(run.seq_of_id(&id(1)).expect("id"), None);
        assert_eq!(run.retracted_by(1).expect("r"), None);
        let files: Vec<_> =
            std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(files, vec![std::ffi::OsString::from(name)], "the run alone, no temporary file");
    }

    #[test]
    fn keys_of_one_hash_are_told_apart_across_blocks() {
        // Forty timeline keys of one hash are not found cheaply, so the
        // section is searched directly, with forty entries of one key.
        let dir = tempfile::tempdir().expect("dir");
        let mut entries: Vec<[u8; 20]> = (0..100u64)
            .map(|i| {
                let mut e = [0; 20];
                e[..8].copy_from_slice(&(if (20..60).contains(&i) { 20 } else { i }).to_be_bytes());
                e[8..16].copy_from_slice(&i.to_le_bytes());
                e
            })
            .collect();
        entries.sort_unstable();
        let path = dir.path().join("s");
        let file = File::create(&path).expect("create");
        let mut out = Counting { inner: BufWriter::new(&file), at: 0 };
        let mut foot = Vec::new();
        put_section(&mut out, &mut foot, TIMELINES, &entries).expect("put");
        out.inner.flush().expect("flush");
        drop(out);
        let mut sample = vec![0; 4 * (8 + 4)]; // (four blocks of 32)
        File::open(&path).expect("open").read_exact_at(&mut sample, u64_at(&foot, 16)).expect("sample");
        let section = Section { shape: TIMELINES, offset: 0, count: 100, sample, resident: Vec::new() };
        let file = File::open(&path).expect("open");
        let all = |key: u64| {
            let mut offsets = Vec::new();
            let none: Option<()> = section
                .find_map(&file, &path, &key.to_be_bytes(), |e| {
                    offsets.push(u64_at(e, 8));
                    Ok(None)
                })
                .expect("find");
            assert!(none.is_none());
            offsets.sort_unstable();
            offsets
        };
        assert_eq!(all(20), (20..60).collect::<Vec<_>>());
        assert_eq!(all(99), vec![99]);
        assert!(all(100).is_empty());
    }

    #[test]
    fn any_flipped_byte_is_an_error_or_leaves_answers_unchanged() {
        let dir = tempfile::tempdir().expect("dir");
        let run = sample_run(dir.path(), 300);
        let path = run.path().to_path_buf();
        let good = std::fs::read(&path).expect("read");
        drop(run);
        for at in (0..good.len()).step_by(37) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).expect("write");
            let Ok(run) = Run::open(&path, 1 << 20) else { continue };
            for i in (0..300u64).step_by(7) {
                match run.timeline(format!("e{i}").as_bytes()).map(|v| v.map(|v| v.to_vec())) {
                    Ok(value) => assert_eq!(value, Some(vec![i as u8; (i % 50) as usize]), "byte {at}, e{i}"),
                    Err(e) => assert!(e.to_string().contains("reindex"), "{e}"),
                }
                match run.seq_of_id(&id(i + 1)) {
                    Ok(seq) => assert_eq!(seq, Some(i + 1), "byte {at}, id {i}"),
                    Err(e) => assert!(e.to_string().contains("reindex"), "{e}"),
                }
            }
        }
    }

    #[test]
    fn a_failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().expect("dir");
        let long = std::iter::once((vec![b'e'; 70_000], vec![1]));
        assert!(write(dir.path(), 1, long, &[], &[]).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
