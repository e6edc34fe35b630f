//! The log's file: an append-only sequence of checksummed frames, one per
//! log block, that dealledger writes and fsyncs itself.
//!
//! The log used to be a sled tree. sled 0.34.7 keeps every value above a
//! quarter of a segment in a file of its own ("blob") that it never fsyncs,
//! and rewrites a leaf of up to 16 blocks as a new blob each time it
//! consolidates: a bulk-loaded log took 2.4 times its records' bytes, its
//! acknowledged blocks lived in files no fsync had covered, and every open
//! read and checksummed the blobs of sled's unstable tail. A log only ever
//! grows at its end, so one file written with `pwrite` and made durable with
//! `fdatasync` needs none of a tree's machinery.
//!
//! Layout (integers little-endian):
//! * a 16-byte file header, [`FILE_MAGIC`] (the last byte is the version);
//! * then frames, each `magic "DLJ1" | first seq u64 | stamp i64 | block
//!   length u32 | crc32 u32 | block | block length u32 | magic "DLJ1"`. The
//!   checksum (CRC-32, IEEE) covers the seq, the stamp, the length and the
//!   block; the stamp is the caller's (the ledger puts its first record's
//!   `recorded_at` there, so that a search by time reads the table, not the
//!   blocks); the trailing length lets the last frame be found from the end.
//!
//! An append writes its frames with one positioned write after the current
//! end and then `fdatasync`s: it is durable when `append` returns, and it
//! becomes visible to readers only then. A crash can leave the frames of an
//! unacknowledged append cut short at the end of the file. Opening checks
//! the last frame (its length, magic and checksum); if it is not whole, the
//! frames are checked from the start, the bytes after the last whole frame
//! are copied to a file beside the log (`journal.torn-<offset>`, never
//! removed) and cut off. Damage anywhere else is left for `verify` to name.
//!
//! The table of frames (first seq, stamp, place) is built on first need by
//! reading the frames' headers, and kept in memory. This module must never
//! interpret a block's contents: it stores and returns the bytes the store
//! hands it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{Error, Result};

/// The first bytes of a log file; the last one is the format version.
pub const FILE_MAGIC: [u8; 16] = *b"dealledger log\0\x01";
/// The magic that opens and closes every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"DLJ1";
/// The bytes of a frame before its block.
const HEAD: usize = 28;
/// The bytes of a frame after its block.
const FOOT: usize = 8;
/// How many recently read blocks [`Journal::read`] keeps.
const CACHED_BLOCKS: usize = 64;

/// Where one frame lies in the file and what its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The seq of the block's first record.
    pub first: u64,
    /// The caller's stamp for the block (the ledger's: its first record's `recorded_at`).
    pub stamp: i64,
    /// The offset of the frame's first byte.
    pub offset: u64,
    /// The length of its block.
    pub len: u32,
}

impl Frame {
    fn size(&self) -> u64 {
        (HEAD + FOOT) as u64 + u64::from(self.len)
    }

    fn end(&self) -> u64 {
        self.offset + self.size()
    }
}

/// Encodes one frame: the bytes [`Journal::append`] writes for a block.
pub fn encode_frame(first: u64, stamp: i64, block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + block.len() + FOOT);
    push_frame(&mut out, first, stamp, block);
    out
}

fn push_frame(out: &mut Vec<u8>, first: u64, stamp: i64, block: &[u8]) {
    let len = u32::try_from(block.len()).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&FRAME_MAGIC);
    let at = out.len();
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&stamp.to_le_bytes());
    out.extend_from_slice(&len);
    let crc = checksum(&out[at..], block);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(block);
    out.extend_from_slice(&len);
    out.extend_from_slice(&FRAME_MAGIC);
}

fn checksum(header: &[u8], block: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(block);
    h.finalize()
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads a frame's header at `offset`: `None` unless it starts with the magic.
fn parse_head(offset: u64, head: &[u8]) -> Option<(Frame, u32)> {
    if head.len() < HEAD || head[..4] != FRAME_MAGIC {
        return None;
    }
    let frame =
        Frame { first: le_u64(&head[4..12]), stamp: le_u64(&head[12..20]) as i64, offset, len: le_u32(&head[20..24]) };
    Some((frame, le_u32(&head[24..28])))
}

/// Why the bytes of a whole frame (header, block, footer) are not one.
fn frame_damage(frame: &Frame, bytes: &[u8]) -> Option<String> {
    let Some((head, crc)) = parse_head(frame.offset, bytes) else { return Some("frame header damaged".into()) };
    if head.first != frame.first || head.len != frame.len || bytes.len() as u64 != frame.size() {
        return Some(format!("frame header says seq {} and {} bytes", head.first, head.len));
    }
    let (block, foot) = bytes[HEAD..].split_at(frame.len as usize);
    if le_u32(foot) != frame.len || foot[4..] != FRAME_MAGIC {
        return Some("frame trailer damaged".into());
    }
    (checksum(&bytes[4..24], block) != crc).then(|| "log block checksum mismatch".into())
}

/// The frames in a whole log file's bytes, with their blocks, in order; used
/// by tools that read or rewrite a log behind the ledger's back.
///
/// # Errors
/// A message naming the offset where the bytes stop being whole frames.
pub fn decode_frames(bytes: &[u8]) -> std::result::Result<Vec<(Frame, Vec<u8>)>, String> {
    let mut at = bytes.get(..FILE_MAGIC.len()).filter(|m| *m == FILE_MAGIC).map(<[u8]>::len).ok_or("not a log file")?;
    let mut out = Vec::new();
    while at < bytes.len() {
        let (frame, _) = parse_head(at as u64, &bytes[at..]).ok_or_else(|| format!("no frame at offset {at}"))?;
        let whole = bytes.get(at..frame.end() as usize).ok_or_else(|| format!("frame at offset {at} cut short"))?;
        if let Some(damage) = frame_damage(&frame, whole) {
            return Err(format!("offset {at}: {damage}"));
        }
        out.push((frame, whole[HEAD..HEAD + frame.len as usize].to_vec()));
        at = frame.end() as usize;
    }
    Ok(out)
}

/// Encodes a whole log file from blocks `(first seq, stamp, block)`.
pub fn encode_file(blocks: &[(u64, i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = FILE_MAGIC.to_vec();
    for (first, stamp, block) in blocks {
        push_frame(&mut out, *first, *stamp, block);
    }
    out
}

/// What readers may see: the end of the last acknowledged append, its last
/// frame, and the table of every frame once it has been read.
#[derive(Default)]
struct State {
    end: u64,
    last: Option<Frame>,
    table: Option<Vec<Frame>>,
}

/// One ledger's log file, open and locked for this process.
pub struct Journal {
    path: PathBuf,
    file: File,
    state: RwLock<State>,
    /// Held by an append from its write to its publication.
    writing: Mutex<()>,
    cache: Mutex<Vec<(u64, Arc<[u8]>)>>,
}

impl Journal {
    /// The log file of the ledger at `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("journal")
    }

    /// Creates an empty log file at `path` (through a temporary file and a
    /// rename, so a crash leaves either none or a whole header).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn create(path: &Path) -> Result<()> {
        write_whole(path, &FILE_MAGIC)
    }

    /// Opens and locks the log file at `path`, cutting off a torn last append.
    ///
    /// # Errors
    /// `locked()` when another process holds it, [`Error::Corrupt`] when it is
    /// not a log file, [`Error::Io`] otherwise.
    pub fn open(path: &Path, locked: impl FnOnce() -> Error) -> Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(locked()),
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let journal = Self {
            path: path.to_path_buf(),
            file,
            state: RwLock::default(),
            writing: Mutex::new(()),
            cache: Mutex::new(Vec::new()),
        };
        journal.find_end()?;
        Ok(journal)
    }

    /// Sets the end and last frame from the file, repairing a torn tail.
    fn find_end(&self) -> Result<()> {
        let len = self.file.metadata()?.len();
        let mut magic = [0u8; 16];
        if len < magic.len() as u64 || self.file.read_exact_at(&mut magic, 0).is_err() || magic != FILE_MAGIC {
            return Err(Error::Corrupt {
                seq: 0,
                detail: format!("{} is not a dealledger log file", self.path.display()),
            });
        }
        if len == FILE_MAGIC.len() as u64 {
            *self.state_mut() = State { end: len, last: None, table: Some(Vec::new()) };
            return Ok(());
        }
        if let Some(last) = self.last_frame_from_end(len) {
            *self.state_mut() = State { end: len, last: Some(last), table: None };
            return Ok(());
        }
        let table = self.walk(FILE_MAGIC.len() as u64, len, true)?;
        let end = table.last().map_or(FILE_MAGIC.len() as u64, Frame::end);
        self.quarantine(end, len)?;
        *self.state_mut() = State { end, last: table.last().copied(), table: Some(table) };
        Ok(())
    }

    /// The last frame, found from the trailer at `len`, if it is whole.
    fn last_frame_from_end(&self, len: u64) -> Option<Frame> {
        let mut foot = [0u8; FOOT];
        self.file.read_exact_at(&mut foot, len.checked_sub(FOOT as u64)?).ok()?;
        if foot[4..] != FRAME_MAGIC {
            return None;
        }
        let offset = len.checked_sub((HEAD + FOOT) as u64 + u64::from(le_u32(&foot)))?;
        let mut head = [0u8; HEAD];
        self.file.read_exact_at(&mut head, offset).ok()?;
        let (frame, _) = parse_head(offset, &head)?;
        (frame.end() == len && self.read_frame(&frame).is_ok()).then_some(frame)
    }

    /// The frames from `from` up to `end`, by their headers; with `check`,
    /// each frame is read whole and the walk stops at the first that is not.
    fn walk(&self, mut at: u64, end: u64, check: bool) -> Result<Vec<Frame>> {
        let mut frames = Vec::new();
        let mut head = [0u8; HEAD];
        while at < end {
            let frame = match self.file.read_exact_at(&mut head, at) {
                Ok(()) => parse_head(at, &head).filter(|(f, _)| f.end() <= end).map(|(f, _)| f),
                Err(_) => None,
            };
            let Some(frame) = frame.filter(|f| !check || self.read_frame(f).is_ok()) else {
                if check {
                    break;
                }
                return Err(Error::Corrupt {
                    seq: frames.last().map_or(0, |f: &Frame| f.first),
                    detail: format!("the log's frames break off at byte {at} of {}", self.path.display()),
                });
            };
            frames.push(frame);
            at = frame.end();
        }
        Ok(frames)
    }

    /// Moves the bytes from `end` to `len` (a torn append) to a file beside
    /// the log, then cuts them off the log.
    fn quarantine(&self, end: u64, len: u64) -> Result<()> {
        if end >= len {
            return Ok(());
        }
        let mut torn = vec![0u8; (len - end) as usize];
        self.file.read_exact_at(&mut torn, end)?;
        let name = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(if n == 0 { format!(".torn-{end}") } else { format!(".torn-{end}.{n}") });
            PathBuf::from(name)
        };
        // (an earlier copy of a tail torn at the same place is kept too)
        let free = (0..).map(name).find(|p| !p.exists()).unwrap_or_else(|| name(0));
        write_whole(&free, &torn)?;
        self.file.set_len(end)?;
        self.file.sync_all()?;
        Ok(())
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last frame, if any.
    pub fn last(&self) -> Option<Frame> {
        self.state().last
    }

    /// The bytes of the log file up to the end of the last append.
    pub fn size(&self) -> u64 {
        self.state().end
    }

    /// Calls `f` with the table of frames, reading it first if need be.
    fn with_table<T>(&self, f: impl FnOnce(&[Frame]) -> T) -> Result<T> {
        {
            let state = self.state();
            if let Some(table) = &state.table {
                return Ok(f(table));
            }
        }
        let mut state = self.state_mut();
        if state.table.is_none() {
            state.table = Some(self.walk(FILE_MAGIC.len() as u64, state.end, false)?);
        }
        Ok(f(state.table.as_deref().unwrap_or_default()))
    }

    /// The frame holding `seq`: the last one whose first seq is at most `seq`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the frames' headers cannot be read.
    pub fn frame_of(&self, seq: u64) -> Result<Option<Frame>> {
        self.with_table(|t| t.partition_point(|f| f.first <= seq).checked_sub(1).map(|i| t[i]))
    }

    /// The last frame whose stamp is at most `stamp` (stamps never decrease).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the frames' headers cannot be read.
    pub fn frame_by_stamp(&self, stamp: i64) -> Result<Option<Frame>> {
        self.with_table(|t| t.partition_point(|f| f.stamp <= stamp).checked_sub(1).map(|i| t[i]))
    }

    /// The frames from the one holding `seq` on, up to the end when called.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the frames' headers cannot be read.
    pub fn frames_from(&self, seq: u64) -> Result<impl Iterator<Item = Frame> + '_> {
        let (start, count) = self.with_table(|t| (t.partition_point(|f| f.first <= seq).saturating_sub(1), t.len()))?;
        Ok((start..count).map_while(|i| self.state().table.as_ref().and_then(|t| t.get(i).copied())))
    }

    /// The block of `frame`, checked, from a cache of recent reads.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the frame's first seq when it is damaged.
    pub fn read(&self, frame: &Frame) -> Result<Arc<[u8]>> {
        let lock = || self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, block)) = lock().iter().find(|(offset, _)| *offset == frame.offset) {
            return Ok(block.clone());
        }
        let block: Arc<[u8]> = self.read_frame(frame)?.into();
        let mut cache = lock();
        if cache.len() == CACHED_BLOCKS {
            cache.remove(0);
        }
        cache.push((frame.offset, block.clone()));
        Ok(block)
    }

    /// The block of `frame`, read and checked, not cached (for scans).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the frame's first seq when it is damaged.
    pub fn read_frame(&self, frame: &Frame) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; frame.size() as usize];
        let damage = match self.file.read_exact_at(&mut bytes, frame.offset) {
            Ok(()) => frame_damage(frame, &bytes),
            Err(e) => Some(e.to_string()),
        };
        if let Some(detail) = damage {
            return Err(Error::Corrupt { seq: frame.first, detail: format!("{detail} (byte {})", frame.offset) });
        }
        bytes.truncate(HEAD + frame.len as usize);
        bytes.drain(..HEAD);
        Ok(bytes)
    }

    /// Appends blocks `(first seq, stamp, block)` as frames and makes them
    /// durable; readers see them once this returns `Ok`.
    ///
    /// # Errors
    /// The write's or the fsync's error: then nothing of it is visible here,
    /// and the file is cut back to where it was (best effort: what reached
    /// the disk is decided when the log is next opened).
    pub fn append(&self, blocks: &[(u64, i64, Vec<u8>)]) -> std::io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = self.state().end;
        let mut bytes = Vec::with_capacity(blocks.iter().map(|(_, _, b)| HEAD + b.len() + FOOT).sum());
        let mut frames = Vec::with_capacity(blocks.len());
        for (first, stamp, block) in blocks {
            let offset = start + bytes.len() as u64;
            push_frame(&mut bytes, *first, *stamp, block);
            frames.push(Frame { first: *first, stamp: *stamp, offset, len: block.len() as u32 });
        }
        if let Err(e) = self.file.write_all_at(&bytes, start).and_then(|()| self.file.sync_data()) {
            let _ = self.file.set_len(start);
            return Err(e);
        }
        let mut state = self.state_mut();
        state.end = start + bytes.len() as u64;
        state.last = frames.last().copied().or(state.last);
        if let Some(table) = &mut state.table {
            table.extend(frames);
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename, and an
/// fsync of the directory.
///
/// # Errors
/// [`Error::Io`] on any failure.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked() -> Error {
        Error::BadArgument("locked".into())
    }

    fn fresh() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Journal::path_in(dir.path());
        Journal::create(&path).expect("create");
        let journal = Journal::open(&path, locked).expect("open");
        (dir, journal)
    }

    fn block(n: u8, len: usize) -> Vec<u8> {
        vec![n; len]
    }

    #[test]
    fn appended_blocks_read_back_by_seq_and_by_stamp_after_reopening() {
        let (dir, journal) = fresh();
        journal.append(&[(1, 10, block(1, 40)), (4, 20, block(2, 0))]).expect("append");
        journal.append(&[(5, 20, block(3, 7))]).expect("append");
        drop(journal);
        let journal = Journal::open(&Journal::path_in(dir.path()), locked).expect("reopen");
        assert_eq!(journal.last().map(|f| f.first), Some(5));
        let of = |seq| journal.frame_of(seq).expect("table").map(|f| f.first);
        assert_eq!((of(0), of(1), of(3), of(4), of(99)), (None, Some(1), Some(1), Some(4), Some(5)));
        let by = |t| journal.frame_by_stamp(t).expect("table").map(|f| f.first);
        assert_eq!((by(9), by(10), by(19), by(20)), (None, Some(1), Some(1), Some(5)));
        let blocks: Vec<Vec<u8>> =
            journal.frames_from(2).expect("table").map(|f| journal.read(&f).expect("read").to_vec()).collect();
        assert_eq!(blocks, vec![block(1, 40), block(2, 0), block(3, 7)]);
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_file() {
        let (dir, _journal) = fresh();
        let second = Journal::open(&Journal::path_in(dir.path()), locked);
        assert!(matches!(second, Err(Error::BadArgument(m)) if m == "locked"));
    }

    #[test]
    fn a_torn_last_append_is_cut_off_and_kept_beside_the_log() {
        let (dir, journal) = fresh();
        journal.append(&[(1, 0, block(1, 100))]).expect("append");
        let whole = journal.size();
        drop(journal);
        let path = Journal::path_in(dir.path());
        let torn = encode_frame(2, 0, &block(2, 100));
        for cut in [1, HEAD, HEAD + 50, torn.len() - 1] {
            let mut bytes = std::fs::read(&path).expect("read");
            bytes.truncate(whole as usize);
            bytes.extend_from_slice(&torn[..cut]);
            std::fs::write(&path, &bytes).expect("write");
            let journal = Journal::open(&path, locked).expect("reopen");
            assert_eq!((journal.size(), journal.last().map(|f| f.first)), (whole, Some(1)), "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).expect("meta").len(), whole);
            let kept_at = dir.path().join(format!("journal.torn-{whole}"));
            assert_eq!(std::fs::read(&kept_at).expect("kept"), torn[..cut]);
            std::fs::remove_file(&kept_at).expect("remove");
            journal.append(&[(2, 0, block(2, 3))]).expect("append after the repair");
            assert_eq!(journal.read(&journal.last().expect("last")).expect("read").as_ref(), &block(2, 3)[..]);
        }
    }

    #[test]
    fn a_damaged_block_in_the_middle_is_named_and_the_rest_still_reads() {
        let (dir, journal) = fresh();
        journal.append(&[(1, 0, block(1, 10)), (2, 0, block(2, 10)), (3, 0, block(3, 10))]).expect("append");
        drop(journal);
        let path = Journal::path_in(dir.path());
        let mut bytes = std::fs::read(&path).expect("read");
        let second = 16 + HEAD + 10 + FOOT;
        bytes[second + HEAD + 3] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        let journal = Journal::open(&path, locked).expect("reopen");
        let frames: Vec<Frame> = journal.frames_from(0).expect("table").collect();
        assert_eq!(frames.len(), 3);
        let err = journal.read(&frames[1]).expect_err("damaged");
        assert!(matches!(&err, Error::Corrupt { seq: 2, detail } if detail.contains("checksum")), "{err}");
        assert_eq!(journal.read(&frames[2]).expect("intact").as_ref(), &block(3, 10)[..]);
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Journal::path_in(dir.path());
        std::fs::write(&path, b"not a log at all").expect("write");
        assert!(matches!(Journal::open(&path, locked), Err(Error::Corrupt { seq: 0, .. })));
    }

    #[test]
    fn whole_files_decode_to_their_frames() {
        let blocks = vec![(1, 5, block(1, 3)), (4, 6, block(2, 0))];
        let frames = decode_frames(&encode_file(&blocks)).expect("decodes");
        let back: Vec<(u64, i64, Vec<u8>)> = frames.into_iter().map(|(f, b)| (f.first, f.stamp, b)).collect();
        assert_eq!(back, blocks);
        let mut cut = encode_file(&blocks);
        cut.pop();
        assert!(decode_frames(&cut).is_err());
    }
}
