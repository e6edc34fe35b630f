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
//! * a 32-byte file header: [`FILE_MAGIC`] (its last byte is the version),
//!   then the file's *salt*, 16 random bytes chosen when it is created;
//! * then frames, each `magic "DLJ1" | first seq u64 | record count u32 |
//!   flags u32 | stamp i64 | append start u64 | block length u32 | crc32 u32
//!   | block | block length u32 | magic "DLJ1"`. The checksum (CRC-32, IEEE)
//!   covers the salt, the frame's own offset in the file, everything
//!   between the magic and itself, and the block: a frame is whole only at
//!   its own place in its own file, so the bytes of a frame written into an
//!   event's text (which a block stores as it is) never pass for one. The
//!   stamp is the caller's (the ledger puts its first record's
//!   `recorded_at` there, so that a search by time reads the table, not the
//!   blocks). The append start is the offset of the first frame its append
//!   wrote, and flag 1 marks the last frame of an append: the frames of one
//!   append stand or fall together. The trailing length lets the last frame
//!   be found from the end.
//!
//! An append writes its frames with one positioned write after the current
//! end (a large one in writes of about 8 MiB) and then `fdatasync`s once: it is durable when `append` returns, and only
//! then visible to readers. A crash can leave the frames of one
//! unacknowledged append, whole or cut short, at the end of the file. So an
//! open checks the last append — its last frame is found from the end — and
//! if it is not whole (or was never finished), walks the frames from the
//! start and cuts the file back to the end of the last whole append,
//! copying the bytes it cuts to `journal.torn-<offset>` beside the log
//! (never removed). It never cuts what the caller says was acknowledged, nor
//! anything followed by whole frames (that is damage, not a torn append):
//! then the file stays as it is, reads stop at the damage, and appends are
//! refused. Other damage is left for `verify` to name.
//!
//! The table of frames is built on first need by reading the frames'
//! headers, and kept in memory. The caller holds the ledger's lock. This
//! module must never interpret a block's contents: it stores and returns
//! the bytes the store hands it.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{Error, Result};

/// The first bytes of a log file; the last one is the format version.
pub const FILE_MAGIC: [u8; 16] = *b"dealledger log\0\x01";
/// The magic that opens and closes every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"DLJ1";
/// The largest block a frame holds (a block is closed at 48 KiB, and one
/// record is at most 16 MiB): a longer length is damage.
pub const MAX_BLOCK: u32 = 32 << 20;
/// The bytes of a frame before its block.
const HEAD: usize = 44;
/// The bytes of a frame after its block.
const FOOT: usize = 8;
/// The flag of the last frame of an append.
const ENDS_APPEND: u32 = 1;
/// The bytes of a file's salt, which every frame's checksum covers.
pub const SALT_LEN: usize = 16;
/// A log file's salt.
pub type Salt = [u8; SALT_LEN];
/// The offset of the first frame.
const START: u64 = (FILE_MAGIC.len() + SALT_LEN) as u64;
/// How many recently read blocks [`Journal::read`] keeps.
const CACHED_BLOCKS: usize = 64;

/// One block as the log stores it, with what its frame says of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The seq of its first record.
    pub first: u64,
    /// How many records it holds.
    pub count: u32,
    /// The caller's stamp (the ledger's: its first record's `recorded_at`).
    pub stamp: i64,
    /// The block's bytes.
    pub bytes: Vec<u8>,
}

/// Where one frame lies in the file and what its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The seq of the block's first record.
    pub first: u64,
    /// How many records the block holds.
    pub count: u32,
    /// The caller's stamp for the block.
    pub stamp: i64,
    /// The offset of the frame's first byte.
    pub offset: u64,
    /// The length of its block.
    pub len: u32,
    /// The offset of the first frame of the append that wrote this one.
    pub append_start: u64,
    /// Whether this is the last frame of its append.
    pub ends_append: bool,
}

impl Frame {
    fn size(&self) -> u64 {
        (HEAD + FOOT) as u64 + u64::from(self.len)
    }

    /// The offset just after the frame.
    pub fn end(&self) -> u64 {
        self.offset + self.size()
    }

    /// The seq of the block's last record (`first - 1` for an empty block).
    pub fn last_seq(&self) -> u64 {
        (self.first + u64::from(self.count)).saturating_sub(1)
    }
}

/// Appends the frame of `block` to `out`, whose bytes go at `base` in the file.
fn push_frame(out: &mut Vec<u8>, base: u64, salt: &Salt, block: &Block, append_start: u64, ends_append: bool) {
    let len = u32::try_from(block.bytes.len()).unwrap_or(u32::MAX).to_le_bytes();
    let offset = base + out.len() as u64;
    out.extend_from_slice(&FRAME_MAGIC);
    let at = out.len();
    out.extend_from_slice(&block.first.to_le_bytes());
    out.extend_from_slice(&block.count.to_le_bytes());
    out.extend_from_slice(&u32::from(ends_append).to_le_bytes());
    out.extend_from_slice(&block.stamp.to_le_bytes());
    out.extend_from_slice(&append_start.to_le_bytes());
    out.extend_from_slice(&len);
    let crc = checksum(salt, offset, &out[at..], &block.bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&block.bytes);
    out.extend_from_slice(&len);
    out.extend_from_slice(&FRAME_MAGIC);
}

/// The frame of `block` as an append of its own at `offset` of the log file
/// with `salt` (for tools and tests that write a log behind the ledger's back).
pub fn encode_frame(salt: &Salt, offset: u64, block: &Block) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + block.bytes.len() + FOOT);
    push_frame(&mut out, offset, salt, block, offset, true);
    out
}

/// A whole log file with `salt` holding `blocks`, each an append of its own.
pub fn encode_file(salt: &Salt, blocks: &[Block]) -> Vec<u8> {
    let mut out = FILE_MAGIC.to_vec();
    out.extend_from_slice(salt);
    for block in blocks {
        let offset = out.len() as u64;
        push_frame(&mut out, 0, salt, block, offset, true);
    }
    out
}

/// A salt for a new log file: the bytes of a random (version 4) uuid.
pub fn new_salt() -> Salt {
    *uuid::Uuid::new_v4().as_bytes()
}

fn checksum(salt: &Salt, offset: u64, header: &[u8], block: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(salt);
    h.update(&offset.to_le_bytes());
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

/// Reads a frame's header at `offset`: `None` unless it starts with the
/// magic and its fields are possible.
fn parse_head(offset: u64, head: &[u8]) -> Option<(Frame, u32)> {
    if head.len() < HEAD || head[..4] != FRAME_MAGIC {
        return None;
    }
    let flags = le_u32(&head[16..20]);
    let frame = Frame {
        first: le_u64(&head[4..12]),
        count: le_u32(&head[12..16]),
        stamp: le_u64(&head[20..28]) as i64,
        append_start: le_u64(&head[28..36]),
        len: le_u32(&head[36..40]),
        offset,
        ends_append: flags & ENDS_APPEND != 0,
    };
    let possible = flags & !ENDS_APPEND == 0 && frame.len <= MAX_BLOCK && frame.append_start <= offset;
    possible.then_some((frame, le_u32(&head[40..44])))
}

/// Why the bytes of a whole frame (header, block, trailer) are not the frame
/// `frame` says in the file with `salt`, if they are not.
fn frame_damage(salt: &Salt, frame: &Frame, bytes: &[u8]) -> Option<String> {
    let Some((head, crc)) = parse_head(frame.offset, bytes) else { return Some("frame header damaged".into()) };
    if head != *frame || bytes.len() as u64 != frame.size() {
        return Some(format!("frame header says seq {} and {} bytes", head.first, head.len));
    }
    let (block, foot) = bytes[HEAD..].split_at(frame.len as usize);
    if le_u32(foot) != frame.len || foot[4..] != FRAME_MAGIC {
        return Some("frame trailer damaged".into());
    }
    (checksum(salt, frame.offset, &bytes[4..40], block) != crc).then(|| "log block checksum mismatch".into())
}

/// A whole log file's salt and frames, with their blocks, in order (for
/// tools that read or rewrite a log behind the ledger's back).
///
/// # Errors
/// A message naming the offset where the bytes stop being whole frames.
pub fn decode_file(bytes: &[u8]) -> std::result::Result<(Salt, Vec<FrameBytes>), String> {
    let salt = salt_of(bytes).ok_or("not a log file")?;
    let mut at = START as usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        let (frame, _) = parse_head(at as u64, &bytes[at..]).ok_or_else(|| format!("no frame at offset {at}"))?;
        let whole = bytes.get(at..frame.end() as usize).ok_or_else(|| format!("frame at offset {at} cut short"))?;
        if let Some(damage) = frame_damage(&salt, &frame, whole) {
            return Err(format!("offset {at}: {damage}"));
        }
        out.push((frame, whole[HEAD..HEAD + frame.len as usize].to_vec()));
        at = frame.end() as usize;
    }
    Ok((salt, out))
}

/// A frame and its block's bytes, as [`decode_file`] gives them.
pub type FrameBytes = (Frame, Vec<u8>);

/// The salt of a log file from its first bytes, if they are a log file's header.
fn salt_of(header: &[u8]) -> Option<Salt> {
    (header.get(..FILE_MAGIC.len())? == FILE_MAGIC).then_some(())?;
    header.get(FILE_MAGIC.len()..START as usize)?.try_into().ok()
}

/// What readers may see: the end of the last acknowledged append, its last
/// frame, the table of every frame once it has been read, and why appends
/// are refused, if they are.
#[derive(Default)]
struct State {
    end: u64,
    last: Option<Frame>,
    table: Option<Vec<Frame>>,
    refused: Option<String>,
}

/// One ledger's log file, open for this process (which holds the ledger's lock).
pub struct Journal {
    path: PathBuf,
    file: File,
    salt: Salt,
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

    /// Creates a log file at `path` holding `blocks` (each an append of its
    /// own), written whole under a temporary name, fsynced and renamed, so
    /// that a crash leaves either no file or all of it.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written; the error of `blocks`.
    pub fn create(path: &Path, blocks: impl IntoIterator<Item = Result<Block>>) -> Result<()> {
        let tmp = temporary(path);
        let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let salt = new_salt();
        out.write_all(&FILE_MAGIC)?;
        out.write_all(&salt)?;
        let (mut offset, mut frame) = (START, Vec::new());
        for block in blocks {
            frame.clear();
            push_frame(&mut frame, offset, &salt, &block?, offset, true);
            out.write_all(&frame)?;
            offset += frame.len() as u64;
        }
        let file = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        put_in_place(&tmp, path)
    }

    /// Opens the log file at `path`. Seqs up to `acknowledged` are known to
    /// have been acknowledged (the caller's record of them, which may lag):
    /// no repair ever cuts them off.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when it is not a log file, [`Error::Io`] otherwise.
    pub fn open(path: &Path, acknowledged: u64) -> Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        let mut header = [0u8; START as usize];
        let salt = file.read_exact_at(&mut header, 0).ok().and_then(|()| salt_of(&header));
        let Some(salt) = salt else {
            return Err(Error::Corrupt { seq: 0, detail: format!("{} is not a dealledger log file", path.display()) });
        };
        let journal = Self {
            path: path.to_path_buf(),
            file,
            salt,
            state: RwLock::default(),
            writing: Mutex::new(()),
            cache: Mutex::new(Vec::new()),
        };
        journal.find_end(acknowledged)?;
        Ok(journal)
    }

    /// Sets the end and the last frame from the file, repairing a torn tail.
    fn find_end(&self, acknowledged: u64) -> Result<()> {
        let len = self.file.metadata()?.len();
        if len == START {
            let refused = (acknowledged > 0).then(|| cut_short(START, None, acknowledged));
            *self.state_mut() = State { end: len, table: Some(Vec::new()), refused, ..State::default() };
            return Ok(());
        }
        let last = self.last_frame_from_end(len).filter(|f| f.ends_append && self.read_frame(f).is_ok());
        if let Some(last) = last.filter(|f| f.first <= acknowledged || self.append_is_whole(f)) {
            let refused = (last.last_seq() < acknowledged).then(|| cut_short(len, Some(last), acknowledged));
            *self.state_mut() = State { end: len, last: Some(last), refused, ..State::default() };
            return Ok(());
        }
        self.recover(len, acknowledged)
    }

    /// The last frame, found from the trailer at `len`, if its header and
    /// trailer agree.
    fn last_frame_from_end(&self, len: u64) -> Option<Frame> {
        let mut foot = [0u8; FOOT];
        self.file.read_exact_at(&mut foot, len.checked_sub(FOOT as u64)?).ok()?;
        if foot[4..] != FRAME_MAGIC {
            return None;
        }
        let offset = len.checked_sub((HEAD + FOOT) as u64 + u64::from(le_u32(&foot)))?;
        self.frame_at(offset, len).filter(|f| f.end() == len)
    }

    /// The frame at `offset`, if its header and trailer agree and it ends by `limit`.
    fn frame_at(&self, offset: u64, limit: u64) -> Option<Frame> {
        let mut head = [0u8; HEAD];
        self.file.read_exact_at(&mut head, offset).ok()?;
        let (frame, _) = parse_head(offset, &head)?;
        let mut foot = [0u8; FOOT];
        self.file.read_exact_at(&mut foot, frame.end().checked_sub(FOOT as u64)?).ok()?;
        (frame.end() <= limit && le_u32(&foot) == frame.len && foot[4..] == FRAME_MAGIC).then_some(frame)
    }

    /// Whether every frame of the append that `last` ends is whole, and the
    /// append before it ended where it starts.
    fn append_is_whole(&self, last: &Frame) -> bool {
        let start = last.append_start;
        if start > START && self.last_frame_from_end(start).is_none_or(|f| !f.ends_append) {
            return false;
        }
        let mut at = start;
        while let Some(frame) = self.frame_at(at, last.end()) {
            if frame.append_start != start || self.read_frame(&frame).is_err() {
                return false;
            }
            if frame.end() == last.end() {
                return frame == *last;
            }
            if frame.ends_append {
                return false;
            }
            at = frame.end();
        }
        false
    }

    /// After an open found the last append not whole: walks the frames from
    /// the start and cuts the file back to the last whole append, unless
    /// what would be cut was acknowledged or is followed by whole frames.
    fn recover(&self, len: u64, acknowledged: u64) -> Result<()> {
        let (frames, broken_at) = self.walk(START, len, |f| self.frame_at(f, len));
        // The kept frames end with the last one that ends an append; the
        // frames after it belong to an append that never finished.
        let mut kept = frames.iter().rposition(|f| f.ends_append).map_or(0, |i| i + 1);
        // That append started where the kept frames end: every whole frame
        // after them, also past the place where the walk broke off, must
        // say so, and none may end an append that something follows (the
        // next append starts only once its fsync returned); otherwise the
        // walk broke off at damage, not at a torn append.
        let torn_start = kept.checked_sub(1).map_or(START, |i| frames[i].end());
        let after = if broken_at < len { self.whole_frames_after(broken_at, len) } else { Vec::new() };
        let beyond: Vec<Frame> = frames[kept..].iter().chain(&after).copied().collect();
        let damaged = beyond.iter().any(|f| f.append_start != torn_start || (f.ends_append && f.end() < len));
        // The last finished append, when nothing follows it, may have been
        // written only in part (pages reach the disk in any order before
        // the fsync): unless it was acknowledged, each of its blocks must
        // pass its checksum.
        if let Some(last) = kept.checked_sub(1).map(|i| frames[i]).filter(|_| kept == frames.len() && broken_at == len)
        {
            let first = frames[..kept].iter().position(|f| f.append_start == last.append_start).unwrap_or(0);
            let torn = frames[first..kept].iter().any(|f| self.read_frame(f).is_err());
            if torn && last.first > acknowledged {
                kept = first;
            }
        }
        let end = kept.checked_sub(1).map_or(START, |i| frames[i].end());
        let last = kept.checked_sub(1).map(|i| frames[i]);
        let lost = beyond.iter().any(|f| f.first <= acknowledged) || last.map_or(0, |f| f.last_seq()) < acknowledged;
        let refused = if lost {
            Some(cut_short(end, last, acknowledged))
        } else if damaged {
            Some(format!(
                "the log's frames break off at byte {broken_at}, and whole frames of another append follow: damage, not a torn append"
            ))
        } else {
            self.quarantine(end, len)?;
            None
        };
        let table = Some(frames[..kept].to_vec());
        *self.state_mut() = State { end, last, table, refused };
        Ok(())
    }

    /// The frames from `at` while `next` finds one, up to `end`; and the
    /// offset where the walk stopped.
    fn walk(&self, mut at: u64, end: u64, mut next: impl FnMut(u64) -> Option<Frame>) -> (Vec<Frame>, u64) {
        let mut frames = Vec::new();
        while at < end {
            let Some(frame) = next(at) else { break };
            frames.push(frame);
            at = frame.end();
        }
        (frames, at)
    }

    /// The whole frames (checksums included, so at their own place in this
    /// file) that start anywhere after `from`, up to `len`.
    fn whole_frames_after(&self, from: u64, len: u64) -> Vec<Frame> {
        let mut buf = vec![0u8; (len - from).min(1 << 20) as usize];
        let mut found: Vec<Frame> = Vec::new();
        let mut at = from;
        while at < len {
            let n = (len - at).min(buf.len() as u64) as usize;
            if self.file.read_exact_at(&mut buf[..n], at).is_err() {
                break;
            }
            for (i, _) in buf[..n].windows(4).enumerate().filter(|(_, w)| *w == FRAME_MAGIC) {
                let offset = at + i as u64;
                // (not inside a frame already found, nor one seen across a read boundary)
                let fresh = offset > from && found.last().is_none_or(|f| offset >= f.end());
                let frame = self.frame_at(offset, len).filter(|_| fresh);
                if let Some(frame) = frame.filter(|f| self.read_frame(f).is_ok()) {
                    found.push(frame);
                }
            }
            if n < 4 || at + n as u64 >= len {
                break;
            }
            // (a magic across the boundary is found by the next read)
            at += n as u64 - 3;
        }
        found
    }

    /// Copies the bytes from `end` to `len` (a torn append) to a file beside
    /// the log, then cuts them off the log.
    fn quarantine(&self, end: u64, len: u64) -> Result<()> {
        if end >= len {
            return Ok(());
        }
        let name = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(if n == 0 { format!(".torn-{end}") } else { format!(".torn-{end}.{n}") });
            PathBuf::from(name)
        };
        // (an earlier copy of a tail torn at the same place is kept too)
        let kept_at = (0..).map(name).find(|p| !p.exists()).unwrap_or_else(|| name(0));
        let tmp = temporary(&kept_at);
        let mut out = File::create(&tmp)?;
        let mut buf = vec![0u8; (len - end).min(1 << 20) as usize];
        let mut at = end;
        while at < len {
            let n = (len - at).min(buf.len() as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], at)?;
            out.write_all(&buf[..n])?;
            at += n as u64;
        }
        out.sync_all()?;
        put_in_place(&tmp, &kept_at)?;
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
            let end = state.end;
            let (frames, stopped) = self.read_headers(end);
            if stopped < end {
                let seq = frames.last().map_or(1, |f| f.last_seq() + 1);
                return Err(Error::Corrupt {
                    seq,
                    detail: format!("the log's frames break off at byte {stopped} of {}", self.path.display()),
                });
            }
            state.table = Some(frames);
        }
        Ok(f(state.table.as_deref().unwrap_or_default()))
    }

    /// The frames' headers from the first frame up to `end`, and where the
    /// reading stopped. Small frames (a log of single appends: a million of
    /// them) are read from 1 MiB chunks of the file, large ones (bulk
    /// loads' 48 KiB blocks) one header at a time: 0.65 s became 0.05 s
    /// for a million 180-byte frames.
    fn read_headers(&self, end: u64) -> (Vec<Frame>, u64) {
        const CHUNK: usize = 1 << 20;
        let mut chunk = Vec::new();
        let mut chunk_at = 0u64;
        let mut small = true;
        self.walk(START, end, |at| {
            let in_chunk = at >= chunk_at && at + HEAD as u64 <= chunk_at + chunk.len() as u64;
            if !in_chunk {
                let n = if small { (end - at).min(CHUNK as u64) as usize } else { HEAD };
                chunk.resize(n, 0);
                self.file.read_exact_at(&mut chunk, at).ok()?;
                chunk_at = at;
            }
            let i = (at - chunk_at) as usize;
            let (frame, _) = parse_head(at, chunk.get(i..i + HEAD)?)?;
            small = frame.size() < CHUNK as u64 / 64;
            Some(frame).filter(|f| f.end() <= end)
        })
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
        // (`frame.len` is at most `MAX_BLOCK`: `parse_head` refuses more)
        let mut bytes = vec![0u8; frame.size() as usize];
        let damage = match self.file.read_exact_at(&mut bytes, frame.offset) {
            Ok(()) => frame_damage(&self.salt, frame, &bytes),
            Err(e) => Some(e.to_string()),
        };
        if let Some(detail) = damage {
            return Err(Error::Corrupt { seq: frame.first, detail: format!("{detail} (byte {})", frame.offset) });
        }
        bytes.truncate(HEAD + frame.len as usize);
        bytes.drain(..HEAD);
        Ok(bytes)
    }

    /// Appends `blocks` as the frames of one append and makes them durable;
    /// readers see them once this returns `Ok`.
    ///
    /// # Errors
    /// The write's or the fsync's error, or why appends are refused: then
    /// nothing of it is visible here, and the file is cut back to where it
    /// was (best effort: what reached the disk is decided at the next open).
    pub fn append(&self, blocks: &[Block]) -> std::io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(why) = &self.state().refused {
            return Err(std::io::Error::other(why.clone()));
        }
        if blocks.iter().any(|b| b.bytes.len() > MAX_BLOCK as usize) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a log block above the largest frame"));
        }
        let start = self.state().end;
        let mut frames = Vec::with_capacity(blocks.len());
        let written = self.write_frames(blocks, start, &mut frames).and_then(|end| self.file.sync_data().map(|()| end));
        let end = match written {
            Ok(end) => end,
            Err(e) => {
                let _ = self.file.set_len(start);
                return Err(e);
            }
        };
        let mut state = self.state_mut();
        state.end = end;
        state.last = frames.last().copied().or(state.last);
        if let Some(table) = &mut state.table {
            table.extend(frames);
        }
        Ok(())
    }
}

impl Journal {
    /// Writes the frames of one append from byte `start` on, in writes of
    /// about [`WRITE_CHUNK`] bytes (a bulk load's frames are never all in
    /// memory twice), noting each frame in `frames`; returns the end. The
    /// caller fsyncs: until then a crash may keep any part of the frames,
    /// which the open cuts off whole (the last frame ends the append).
    fn write_frames(&self, blocks: &[Block], start: u64, frames: &mut Vec<Frame>) -> std::io::Result<u64> {
        let total: usize = blocks.iter().map(|b| HEAD + b.bytes.len() + FOOT).sum();
        let mut chunk = Vec::with_capacity(total.min(WRITE_CHUNK + HEAD + MAX_BLOCK as usize + FOOT));
        let mut at = start; // (where `chunk` goes in the file)
        for (i, block) in blocks.iter().enumerate() {
            let offset = at + chunk.len() as u64;
            let ends_append = i + 1 == blocks.len();
            push_frame(&mut chunk, at, &self.salt, block, start, ends_append);
            let len = block.bytes.len() as u32;
            let (first, count, stamp) = (block.first, block.count, block.stamp);
            frames.push(Frame { first, count, stamp, offset, len, append_start: start, ends_append });
            if chunk.len() >= WRITE_CHUNK || ends_append {
                self.file.write_all_at(&chunk, at)?;
                at += chunk.len() as u64;
                chunk.clear();
            }
        }
        Ok(at)
    }
}

/// Bytes of frames gathered before one write of an append.
const WRITE_CHUNK: usize = 8 << 20;

/// Why appends are refused when the log ends (at byte `end`, after `last`)
/// before seqs the caller knows were acknowledged.
fn cut_short(end: u64, last: Option<Frame>, acknowledged: u64) -> String {
    let seq = last.map_or(0, |f| f.last_seq());
    format!(
        "the log file ends at byte {end} with seq {seq}, but seqs up to {acknowledged} were acknowledged: it was cut short or replaced"
    )
}

/// The temporary name a file is written under before it is put in place.
fn temporary(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    PathBuf::from(tmp)
}

/// Renames a written and fsynced file into place and fsyncs its directory.
fn put_in_place(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path)?;
    sync_dir_of(path)
}

/// Fsyncs the directory holding `path`, so that a new name in it is durable.
///
/// # Errors
/// [`Error::Io`] on failure.
pub fn sync_dir_of(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Journal::path_in(dir.path());
        Journal::create(&path, []).expect("create");
        let journal = Journal::open(&path, 0).expect("open");
        (dir, journal)
    }

    fn block(first: u64, count: u32, len: usize) -> Block {
        Block { first, count, stamp: first as i64 * 10, bytes: vec![first as u8; len] }
    }

    fn reopen(dir: &tempfile::TempDir, acknowledged: u64) -> Journal {
        Journal::open(&Journal::path_in(dir.path()), acknowledged).expect("reopen")
    }

    fn blocks_of(journal: &Journal) -> Vec<Vec<u8>> {
        journal.frames_from(0).expect("table").map(|f| journal.read(&f).expect("read").to_vec()).collect()
    }

    #[test]
    fn appended_blocks_read_back_by_seq_and_by_stamp_after_reopening() {
        let (dir, journal) = fresh();
        journal.append(&[block(1, 3, 40), block(4, 1, 0)]).expect("append");
        journal.append(&[block(5, 1, 7)]).expect("append");
        drop(journal);
        let journal = reopen(&dir, 0);
        assert_eq!(journal.last().map(|f| (f.first, f.last_seq())), Some((5, 5)));
        let of = |seq| journal.frame_of(seq).expect("table").map(|f| f.first);
        assert_eq!((of(0), of(1), of(3), of(4), of(99)), (None, Some(1), Some(1), Some(4), Some(5)));
        let by = |t| journal.frame_by_stamp(t).expect("table").map(|f| f.first);
        assert_eq!((by(9), by(10), by(39), by(50)), (None, Some(1), Some(1), Some(5)));
        assert_eq!(blocks_of(&journal), vec![vec![1; 40], vec![], vec![5; 7]]);
    }

    #[test]
    fn the_table_read_back_from_the_file_is_the_one_appends_built() {
        // Small frames (read from large chunks), large ones (read a header
        // at a time), and small ones again, across many chunk boundaries.
        let (dir, journal) = fresh();
        let sizes = (0..9_000).map(|i| if (3_000..3_100).contains(&i) { 20_000 } else { 100 + i % 7 });
        let blocks: Vec<Block> = sizes.enumerate().map(|(i, len)| block(i as u64 + 1, 1, len)).collect();
        for chunk in blocks.chunks(500) {
            journal.append(chunk).expect("append");
        }
        let built: Vec<Frame> = journal.frames_from(0).expect("table").collect();
        assert_eq!(built.len(), 9_000);
        drop(journal);
        let journal = reopen(&dir, 0);
        let read: Vec<Frame> = journal.frames_from(0).expect("table").collect();
        assert_eq!(read, built);
    }

    #[test]
    fn an_append_larger_than_a_write_goes_in_several_and_stands_or_falls_whole() {
        // Twenty 1 MiB blocks: three writes of about 8 MiB. A crash after any
        // of them but the last leaves frames that do not end the append.
        let (dir, journal) = fresh();
        journal.append(&[block(1, 1, 10)]).expect("append");
        let before = std::fs::read(Journal::path_in(dir.path())).expect("read");
        let blocks: Vec<Block> = (0..20).map(|i| block(i + 2, 1, 1 << 20)).collect();
        journal.append(&blocks).expect("append");
        let built: Vec<Frame> = journal.frames_from(0).expect("table").collect();
        let whole = std::fs::read(Journal::path_in(dir.path())).expect("read");
        drop(journal);
        let journal = reopen(&dir, 21);
        assert_eq!(journal.frames_from(0).expect("table").collect::<Vec<_>>(), built);
        let mut expected = vec![vec![1u8; 10]];
        expected.extend((0..20u64).map(|i| vec![(i + 2) as u8; 1 << 20]));
        assert_eq!(blocks_of(&journal), expected);
        drop(journal);
        for cut in [WRITE_CHUNK, 2 * WRITE_CHUNK, whole.len() - before.len() - 1] {
            let path = Journal::path_in(dir.path());
            std::fs::write(&path, &whole[..before.len() + cut]).expect("tear");
            let journal = reopen(&dir, 1);
            assert_eq!((journal.size(), journal.last().map(|f| f.first)), (before.len() as u64, Some(1)), "cut {cut}");
            drop(journal);
            std::fs::remove_file(dir.path().join(format!("journal.torn-{}", before.len()))).expect("kept bytes");
        }
    }

    /// The log of `fresh` after two appends (seqs 1–2, then 3–6 in two
    /// blocks), and the bytes of a third append of two blocks (seqs 7–9).
    fn two_appends_and_a_third() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
        let (dir, journal) = fresh();
        journal.append(&[block(1, 2, 100)]).expect("append");
        journal.append(&[block(3, 2, 60), block(5, 2, 60)]).expect("append");
        let whole = std::fs::read(Journal::path_in(dir.path())).expect("read");
        journal.append(&[block(7, 2, 80), block(9, 1, 80)]).expect("append");
        let third = std::fs::read(Journal::path_in(dir.path())).expect("read")[whole.len()..].to_vec();
        (dir, whole, third)
    }

    #[test]
    fn an_append_cut_anywhere_is_cut_off_whole_and_kept_beside_the_log() {
        let (dir, whole, third) = two_appends_and_a_third();
        let path = Journal::path_in(dir.path());
        // Cut inside the first frame's header, its block, its trailer, right
        // after it (a whole frame of an append that never finished), inside
        // the second frame, and one byte short of the end.
        let first_frame = HEAD + 80 + FOOT;
        for cut in [1, HEAD - 1, HEAD + 40, first_frame - 2, first_frame, first_frame + HEAD + 3, third.len() - 1] {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&third[..cut]);
            std::fs::write(&path, &bytes).expect("write");
            let journal = reopen(&dir, 6);
            assert_eq!((journal.size(), journal.last().map(|f| f.first)), (whole.len() as u64, Some(5)), "cut {cut}");
            assert_eq!(std::fs::read(&path).expect("read"), whole, "cut {cut}");
            let kept_at = dir.path().join(format!("journal.torn-{}", whole.len()));
            assert_eq!(std::fs::read(&kept_at).expect("kept"), third[..cut], "cut {cut}");
            std::fs::remove_file(&kept_at).expect("remove");
            journal.append(&[block(7, 1, 3)]).expect("append after the repair");
            assert_eq!(blocks_of(&journal).last(), Some(&vec![7; 3]));
        }
    }

    #[test]
    fn an_append_whose_earlier_block_never_reached_the_disk_is_cut_off() {
        // Pages reach the disk in any order before the fsync: the last frame
        // can be whole while an earlier one of the same append is not.
        let (dir, whole, third) = two_appends_and_a_third();
        let path = Journal::path_in(dir.path());
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&third);
        bytes[whole.len() + HEAD + 10] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let journal = reopen(&dir, 6);
        assert_eq!(journal.last().map(|f| f.first), Some(5));
        assert_eq!(std::fs::read(&path).expect("read"), whole);
        // The same bytes, but the caller knows seq 7 was acknowledged: damage
        // for `verify`, never cut.
        drop(journal);
        std::fs::write(&path, &bytes).expect("write");
        let journal = reopen(&dir, 9);
        assert_eq!(journal.last().map(|f| f.first), Some(9));
        let frames: Vec<Frame> = journal.frames_from(7).expect("table").collect();
        assert!(matches!(journal.read(&frames[0]), Err(Error::Corrupt { seq: 7, .. })));
    }

    #[test]
    fn an_append_whose_first_header_never_reached_the_disk_is_cut_off_though_its_last_frame_did() {
        let (dir, whole, mut third) = two_appends_and_a_third();
        let path = Journal::path_in(dir.path());
        third[..HEAD].fill(0);
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&third);
        std::fs::write(&path, &bytes).expect("write");
        let journal = reopen(&dir, 6);
        assert_eq!(journal.last().map(|f| f.first), Some(5));
        assert_eq!(std::fs::read(&path).expect("read"), whole);
        assert!(dir.path().join(format!("journal.torn-{}", whole.len())).exists());
    }

    #[test]
    fn damage_to_an_earlier_append_is_never_cut_though_the_last_one_is_torn() {
        // Each append one frame; the second one's header damaged, the last
        // one torn: the frames between are whole and belong to other
        // appends, so this is damage, and nothing is cut.
        let (dir, journal) = fresh();
        for first in 1..=4 {
            journal.append(&[block(first, 1, 30)]).expect("append");
        }
        drop(journal);
        let path = Journal::path_in(dir.path());
        let mut bytes = std::fs::read(&path).expect("read");
        let frame = HEAD + 30 + FOOT;
        bytes[START as usize + frame + 2] ^= 0x20;
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).expect("write");
        let journal = reopen(&dir, 0);
        assert_eq!(std::fs::read(&path).expect("read"), bytes, "nothing cut");
        let err = journal.append(&[block(5, 1, 1)]).expect_err("refused");
        assert!(err.to_string().contains("whole frames of another append follow"), "{err}");
    }

    #[test]
    fn a_cut_that_would_lose_acknowledged_seqs_or_frames_after_damage_leaves_the_file_and_refuses_appends() {
        let (dir, whole, third) = two_appends_and_a_third();
        let path = Journal::path_in(dir.path());
        // Cut short although seq 9 was acknowledged: nothing is cut.
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&third[..third.len() - 1]);
        std::fs::write(&path, &bytes).expect("write");
        let journal = reopen(&dir, 9);
        assert_eq!(journal.last().map(|f| f.first), Some(5));
        assert_eq!(std::fs::read(&path).expect("read"), bytes, "the file is left as it is");
        assert!(journal.append(&[block(7, 1, 1)]).is_err(), "appends are refused");
        assert!(!dir.path().join(format!("journal.torn-{}", whole.len())).exists());
        // A header damaged in the middle, whole frames after it, and a torn tail.
        drop(journal);
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&third[..third.len() - 1]);
        let second_append = START as usize + HEAD + 100 + FOOT;
        bytes[second_append] = b'X';
        std::fs::write(&path, &bytes).expect("write");
        let journal = reopen(&dir, 0);
        assert_eq!(journal.last().map(|f| f.first), Some(1));
        assert_eq!(std::fs::read(&path).expect("read"), bytes, "the file is left as it is");
        let err = journal.append(&[block(3, 1, 1)]).expect_err("refused");
        assert!(err.to_string().contains("whole frames of another append follow"), "{err}");
    }

    #[test]
    fn a_damaged_block_in_the_middle_is_named_and_the_rest_still_reads() {
        let (dir, journal) = fresh();
        journal.append(&[block(1, 1, 10)]).expect("append");
        journal.append(&[block(2, 1, 10)]).expect("append");
        journal.append(&[block(3, 1, 10)]).expect("append");
        drop(journal);
        let path = Journal::path_in(dir.path());
        let mut bytes = std::fs::read(&path).expect("read");
        let second = START as usize + HEAD + 10 + FOOT;
        bytes[second + HEAD + 3] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        let journal = reopen(&dir, 0);
        let frames: Vec<Frame> = journal.frames_from(0).expect("table").collect();
        assert_eq!(frames.len(), 3);
        let err = journal.read(&frames[1]).expect_err("damaged");
        assert!(matches!(&err, Error::Corrupt { seq: 2, detail } if detail.contains("checksum")), "{err}");
        assert_eq!(journal.read(&frames[2]).expect("intact").as_ref(), &[3; 10][..]);
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Journal::path_in(dir.path());
        std::fs::write(&path, b"not a log at all").expect("write");
        assert!(matches!(Journal::open(&path, 0), Err(Error::Corrupt { seq: 0, .. })));
    }

    #[test]
    fn a_length_beyond_the_largest_block_is_no_frame() {
        let mut frame = encode_frame(&[7; SALT_LEN], START, &block(1, 1, 4));
        frame[36..40].copy_from_slice(&(MAX_BLOCK + 1).to_le_bytes());
        assert!(parse_head(START, &frame).is_none());
    }

    #[test]
    fn whole_files_decode_to_their_frames() {
        let blocks = vec![block(1, 3, 3), block(4, 1, 0)];
        let salt = new_salt();
        let (read_salt, frames) = decode_file(&encode_file(&salt, &blocks)).expect("decodes");
        assert_eq!(read_salt, salt);
        let back: Vec<Block> = frames
            .into_iter()
            .map(|(f, bytes)| Block { first: f.first, count: f.count, stamp: f.stamp, bytes })
            .collect();
        assert_eq!(back, blocks);
        let mut cut = encode_file(&salt, &blocks);
        cut.pop();
        assert!(decode_file(&cut).is_err());
        // The same frames under another salt are no frames at all.
        let mut other = encode_file(&salt, &blocks);
        other[FILE_MAGIC.len()] ^= 1;
        assert!(decode_file(&other).is_err());
    }
}

/// Adversarial crash-recovery cases (from a review of the repair rules):
/// torn appends cut at every byte, power loss zeroing random pages, frames
/// written into a block's payload, damage before a torn tail.
#[cfg(test)]
mod recovery_tests {
    use super::*;

    fn blk(first: u64, count: u32, bytes: Vec<u8>) -> Block {
        Block { first, count, stamp: first as i64 * 10, bytes }
    }

    fn filler(first: u64, len: usize) -> Vec<u8> {
        // no "DLJ1" inside
        (0..len).map(|i| b'a' + ((i as u64 + first) % 20) as u8).collect()
    }

    /// A complete frame, as a user could write it into an event's text: its
    /// checksum is right for every field but the file's salt, which the
    /// user does not know.
    fn fake_frame(first: u64, append_start: u64, ends: bool) -> Vec<u8> {
        let block = Block { first, count: 1, stamp: 0x3030_3030, bytes: b"forged".to_vec() };
        let mut out = Vec::new();
        push_frame(&mut out, append_start, &[0xaa; SALT_LEN], &block, append_start, ends);
        out
    }

    struct Log {
        dir: tempfile::TempDir,
        whole: Vec<u8>,
        last: Vec<u8>,
    }

    impl Log {
        fn path(&self) -> PathBuf {
            Journal::path_in(self.dir.path())
        }
        fn write(&self, bytes: &[u8]) {
            for e in std::fs::read_dir(self.dir.path()).unwrap() {
                let p = e.unwrap().path();
                if p.file_name().unwrap().to_string_lossy().contains("torn") {
                    std::fs::remove_file(p).unwrap();
                }
            }
            std::fs::write(self.path(), bytes).unwrap();
        }
    }

    /// Appends `earlier` (each one append), then `last` as one append, and
    /// returns the file before the last append and the last append's bytes.
    fn build(earlier: &[Vec<Block>], last: &[Block]) -> Log {
        let dir = tempfile::tempdir().unwrap();
        let path = Journal::path_in(dir.path());
        Journal::create(&path, []).unwrap();
        let j = Journal::open(&path, 0).unwrap();
        for a in earlier {
            j.append(a).unwrap();
        }
        let whole = std::fs::read(&path).unwrap();
        j.append(last).unwrap();
        let all = std::fs::read(&path).unwrap();
        Log { dir, last: all[whole.len()..].to_vec(), whole }
    }

    fn earlier() -> Vec<Vec<Block>> {
        vec![vec![blk(1, 2, filler(1, 100))], vec![blk(3, 2, filler(3, 60)), blk(5, 2, filler(5, 60))]]
    }

    /// Opens and checks the invariant: either the whole last append is kept
    /// (only if its bytes are intact) or it is cut entirely, earlier appends
    /// untouched, appends allowed. Returns a description on violation.
    fn check(log: &Log, bytes: &[u8], ack: u64) -> std::result::Result<(), String> {
        log.write(bytes);
        let j = Journal::open(&log.path(), ack).map_err(|e| format!("open failed: {e}"))?;
        let on_disk = std::fs::read(log.path()).unwrap();
        let full: Vec<u8> = [log.whole.clone(), log.last.clone()].concat();
        let end = j.size();
        if bytes == full.as_slice() {
            if end != full.len() as u64 {
                return Err(format!("intact file not kept: end {end}"));
            }
        } else if end != log.whole.len() as u64 || on_disk != log.whole {
            return Err(format!("end {end} (file {} bytes), expected the cut at {}", on_disk.len(), log.whole.len()));
        }
        j.append(&[blk(100, 1, vec![1])]).map_err(|e| format!("append refused: {e}"))?;
        Ok(())
    }

    fn last_append() -> Vec<Block> {
        vec![
            blk(7, 2, filler(7, 3000)),
            blk(9, 1, filler(9, 5000)),
            blk(10, 3, filler(10, 2500)),
            blk(13, 1, filler(13, 900)),
        ]
    }

    #[test]
    fn probe_torn_append_cut_at_every_byte() {
        let log = build(&earlier(), &last_append());
        let mut bad = Vec::new();
        for ack in [0, 6] {
            // (every byte of each frame's header and trailer, every 13th of its block)
            let near_edge = |cut: usize| cut.is_multiple_of(13) || log.last.len() - cut < 60 || cut % 3000 < 60;
            for cut in (0..log.last.len()).filter(|c| near_edge(*c)) {
                let bytes = [log.whole.clone(), log.last[..cut].to_vec()].concat();
                if let Err(e) = check(&log, &bytes, ack) {
                    bad.push(format!("ack {ack} cut {cut}: {e}"));
                }
            }
        }
        assert!(bad.is_empty(), "{} failures, e.g. {:?}", bad.len(), &bad[..bad.len().min(5)]);
    }

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// Power loss: random 4 KiB pages of the last append (its bytes only)
    /// read back as zeros, and the file length anywhere at or after the
    /// append's start.
    fn power_loss(log: &Log, seeds: u64, ack: u64) -> Vec<String> {
        let s0 = log.whole.len();
        let full: Vec<u8> = [log.whole.clone(), log.last.clone()].concat();
        let pages: Vec<usize> = (s0 / 4096..=(full.len() - 1) / 4096).collect();
        let mut bad = Vec::new();
        for seed in 1..=seeds {
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut bytes = full.clone();
            for &p in &pages {
                if xorshift(&mut s).is_multiple_of(3) {
                    for b in &mut bytes[(p * 4096).max(s0)..((p + 1) * 4096).min(full.len())] {
                        *b = 0;
                    }
                }
            }
            if xorshift(&mut s).is_multiple_of(2) {
                let cut = s0 + (xorshift(&mut s) as usize % (full.len() - s0 + 1));
                bytes.truncate(cut);
            }
            if let Err(e) = check(log, &bytes, ack) {
                bad.push(format!("seed {seed}: {e}"));
            }
        }
        bad
    }

    #[test]
    fn probe_power_loss_random_pages_of_the_last_append() {
        let log = build(&earlier(), &last_append());
        let mut bad = power_loss(&log, 150, 6);
        bad.extend(power_loss(&log, 100, 0));
        assert!(bad.is_empty(), "{} failures, e.g. {:?}", bad.len(), &bad[..bad.len().min(5)]);
    }

    /// The same, but a record of the torn append carries a note that holds a
    /// complete frame (valid CRC) -- any user can write such a note.
    #[test]
    fn probe_power_loss_with_a_frame_in_a_note() {
        let mut last = last_append();
        let mut note = filler(9, 2000);
        note.extend(fake_frame(42, 0, true));
        note.extend(filler(9, 2000));
        last[1].bytes = note;
        let log = build(&earlier(), &last);
        let mut bad = power_loss(&log, 120, 6);
        for cut in (0..log.last.len()).step_by(97) {
            let bytes = [log.whole.clone(), log.last[..cut].to_vec()].concat();
            if let Err(e) = check(&log, &bytes, 6) {
                bad.push(format!("cut {cut}: {e}"));
            }
        }
        assert!(bad.is_empty(), "{} failures, e.g. {:?}", bad.len(), &bad[..bad.len().min(5)]);
    }

    /// A torn tail (its last byte missing) whose last block holds a frame
    /// (naming a later seq, or seq 1, below the watermark): still cut, and
    /// appends go on.
    #[test]
    fn probe_frame_in_a_payload_does_not_stop_a_torn_tail_from_being_cut() {
        for fake_first in [10_000, 1] {
            let mut b = filler(9, 100);
            b.extend(fake_frame(fake_first, 0, true));
            let log = build(&earlier(), &[blk(7, 2, filler(7, 80)), blk(9, 1, b)]);
            let bytes = [log.whole.clone(), log.last[..log.last.len() - 1].to_vec()].concat();
            log.write(&bytes);
            let j = Journal::open(&log.path(), 6).unwrap();
            let err = j.append(&[blk(10, 1, vec![1])]).err();
            assert!(err.is_none(), "fake seq {fake_first}: torn tail not cut, appends refused: {err:?}");
        }
    }

    /// A crash that leaves the file ending exactly where a frame written
    /// into a payload ends: the quick path must not take it for the last
    /// frame (its checksum needs the file's salt and its own offset).
    #[test]
    fn probe_quick_path_fooled_by_a_frame_in_a_note() {
        let mut b = filler(9, 100);
        let fake = fake_frame(1, 0, true);
        b.extend(&fake);
        b.extend(filler(9, 300));
        let log = build(&earlier(), &[blk(7, 2, filler(7, 80)), blk(9, 1, b)]);
        let at = log.last.len() - FOOT - 300; // block end minus filler
        let cut = at; // the fake frame ends where the trailing filler starts
        assert_eq!(&log.last[cut - 4..cut], b"DLJ1");
        let bytes = [log.whole.clone(), log.last[..cut].to_vec()].concat();
        let r = check(&log, &bytes, 6);
        // and the damage after: the table can no longer be read
        let j = Journal::open(&log.path(), 6).unwrap();
        let table = j.frame_of(1).map(|_| ());
        assert!(r.is_ok(), "{r:?}; table: {table:?}; last {:?}", j.last());
    }

    /// The same without acknowledgment: two fake frames, the second naming
    /// its own offset as its append's start (offsets are predictable).
    #[test]
    fn probe_quick_path_fooled_unacknowledged() {
        let probe = build(&earlier(), &[blk(7, 2, filler(7, 80)), blk(9, 1, filler(9, 100))]);
        // where the second frame's block starts
        let block_at = probe.whole.len() as u64 + (HEAD + 80 + FOOT + HEAD) as u64;
        let f0 = fake_frame(0x0505, 0, true);
        // (a prefix whose length makes the offset's bytes ASCII, for a note)
        let pre = (100..).find(|p| (block_at + p + f0.len() as u64).to_le_bytes().iter().all(|b| *b < 0x80)).unwrap();
        let f1_at = block_at + pre + f0.len() as u64;
        let f1 = fake_frame(0x0506, f1_at, true);
        let mut b = filler(9, pre as usize);
        b.extend(&f0);
        b.extend(&f1);
        b.extend(filler(9, 300));
        let log = build(&earlier(), &[blk(7, 2, filler(7, 80)), blk(9, 1, b)]);
        let cut = log.last.len() - FOOT - 300;
        let bytes = [log.whole.clone(), log.last[..cut].to_vec()].concat();
        let r = check(&log, &bytes, 0);
        let j = Journal::open(&log.path(), 0).unwrap();
        assert!(r.is_ok(), "{r:?}; last {:?}", j.last());
    }

    /// A finished append whose block fails its checksum, followed by the
    /// torn start of a later append: the later append proves the earlier one
    /// was fsynced and acknowledged (the watermark lags), so it is kept.
    #[test]
    fn probe_finished_append_followed_by_a_later_one_is_cut_for_a_bad_checksum() {
        let log = build(&earlier(), &[blk(7, 2, filler(7, 80)), blk(9, 1, filler(9, 100))]);
        let full = [log.whole.clone(), log.last.clone()].concat();
        // the second earlier append (seqs 3-6) has a flipped byte in a block
        let mut bytes = full.clone();
        let second = START as usize + HEAD + 100 + FOOT;
        bytes[second + HEAD + 5] ^= 1;
        // and the last append torn in its second frame
        bytes.truncate(full.len() - 10);
        log.write(&bytes);
        let j = Journal::open(&log.path(), 2).unwrap();
        let kept = std::fs::read(log.path()).unwrap();
        assert!(
            kept.len() >= log.whole.len(),
            "seqs 3-6 (acknowledged: seq 7 was written after their fsync) cut: file now {} bytes, end {}, last {:?}",
            kept.len(),
            j.size(),
            j.last().map(|f| f.first)
        );
    }

    /// Same, with the first frame header of the earlier append damaged and
    /// its last frame whole.
    #[test]
    fn probe_whole_end_of_an_earlier_append_cut_with_the_torn_tail() {
        let log = build(&earlier(), &[blk(7, 2, filler(7, 80)), blk(9, 1, filler(9, 100))]);
        let full = [log.whole.clone(), log.last.clone()].concat();
        let mut bytes = full.clone();
        let second = START as usize + HEAD + 100 + FOOT;
        bytes[second + 1] ^= 0x40; // magic of the frame holding 3-4
                                   // the last append torn in its first frame: nothing of it whole
        bytes.truncate(log.whole.len() + 50);
        log.write(&bytes);
        let j = Journal::open(&log.path(), 2).unwrap();
        let kept = std::fs::read(log.path()).unwrap();
        assert!(
            kept.len() >= log.whole.len(),
            "the whole frame 5-6 (ends its append, followed by another append) cut: file now {} bytes, end {}",
            kept.len(),
            j.size()
        );
    }

    #[test]
    fn probe_damage_earlier_with_torn_tail_never_cuts() {
        // every single-byte flip in the earlier appends' frames plus a torn tail:
        // with ack covering them nothing acknowledged may be cut
        let log = build(&earlier(), &last_append());
        let full = [log.whole.clone(), log.last.clone()].concat();
        let mut bad = Vec::new();
        for at in START as usize..log.whole.len() {
            let mut bytes = full.clone();
            bytes[at] ^= 0x5a;
            bytes.truncate(full.len() - 3);
            log.write(&bytes);
            let j = match Journal::open(&log.path(), 6) {
                Ok(j) => j,
                Err(e) => {
                    bad.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let on_disk = std::fs::read(log.path()).unwrap();
            if on_disk.len() < log.whole.len() {
                bad.push(format!("{at}: cut to {}", on_disk.len()));
            }
            drop(j);
        }
        assert!(bad.is_empty(), "{:?}", &bad[..bad.len().min(5)]);
    }

    #[test]
    fn probe_edges() {
        let dir = tempfile::tempdir().unwrap();
        let path = Journal::path_in(dir.path());
        Journal::create(&path, []).unwrap();
        // header only
        let j = Journal::open(&path, 0).unwrap();
        assert_eq!((j.size(), j.last()), (START, None));
        assert_eq!(j.frame_of(1).unwrap(), None);
        drop(j);
        // header only but the caller says seq 5 was acknowledged: should refuse appends
        let j = Journal::open(&path, 5).unwrap();
        let refused = j.append(&[blk(1, 1, vec![1])]).is_err();
        drop(j);
        // empty file / short file
        std::fs::write(&path, b"").unwrap();
        assert!(Journal::open(&path, 0).is_err());
        // huge length in a trailer and in a header
        let salt = decode_file(&std::fs::read(&path).unwrap_or_default()).map(|(s, _)| s).unwrap_or_default();
        let mut bytes = FILE_MAGIC.to_vec();
        bytes.extend(salt);
        bytes.extend(u32::MAX.to_le_bytes());
        bytes.extend(FRAME_MAGIC);
        std::fs::write(&path, &bytes).unwrap();
        let j = Journal::open(&path, 0).unwrap();
        assert_eq!(j.size(), START);
        drop(j);
        let mut bytes = FILE_MAGIC.to_vec();
        bytes.extend(salt);
        let mut f = fake_frame(1, START, true);
        f[36..40].copy_from_slice(&MAX_BLOCK.to_le_bytes());
        bytes.extend(&f);
        std::fs::write(&path, &bytes).unwrap();
        let j = Journal::open(&path, 0).unwrap();
        assert_eq!(j.size(), START);
        drop(j);
        assert!(refused, "a log shorter than the acknowledged seqs accepts appends");
    }

    #[test]
    fn probe_reopen_after_refusal_is_stable() {
        let log = build(&earlier(), &last_append());
        let bytes = [log.whole.clone(), log.last[..log.last.len() - 1].to_vec()].concat();
        log.write(&bytes);
        for _ in 0..3 {
            let j = Journal::open(&log.path(), 13).unwrap();
            assert!(j.append(&[blk(14, 1, vec![1])]).is_err());
            assert_eq!(j.size(), log.whole.len() as u64);
            assert_eq!(std::fs::read(log.path()).unwrap(), bytes);
        }
        // once the caller forgets (index rebuilt, watermark 0), the acknowledged append is cut
        let j = Journal::open(&log.path(), 0).unwrap();
        assert_eq!(j.size(), log.whole.len() as u64);
    }

    #[test]
    fn probe_concurrent_readers_during_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = Journal::path_in(dir.path());
        Journal::create(&path, []).unwrap();
        let j = Journal::open(&path, 0).unwrap();
        j.append(&[blk(1, 1, vec![1; 10])]).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let frames: Vec<Frame> = j.frames_from(0).unwrap().collect();
                        for w in frames.windows(2) {
                            assert_eq!(w[0].end(), w[1].offset);
                        }
                        for f in &frames {
                            let b = j.read(f).unwrap();
                            assert_eq!(b[0], f.first as u8);
                        }
                        if let Some(l) = j.last() {
                            j.read(&l).unwrap();
                        }
                    }
                });
            }
            for i in 2..200u64 {
                j.append(&[blk(i * 2, 1, vec![(i * 2) as u8; 100]), blk(i * 2 + 1, 1, vec![(i * 2 + 1) as u8; 50])])
                    .unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }

    /// A whole log that ends below the acknowledged seqs (cut at an append
    /// boundary, or replaced by an older copy): appends are refused, as
    /// `recover` refuses them.
    #[test]
    fn probe_quick_path_ignores_acknowledged_beyond_the_end() {
        let log = build(&earlier(), &last_append());
        log.write(&log.whole); // ends with seq 6, whole
        let j = Journal::open(&log.path(), 13).unwrap();
        assert!(
            j.append(&[blk(7, 1, vec![1])]).is_err(),
            "seqs 7-13 acknowledged, the log ends at 6, and appends go on at 7"
        );
    }
}
