//! The library's one error type, with variants a caller can act on.
//!
//! Messages are lower-case, start with what failed and name the value and the
//! place (`line 3: stake_sold: …`). This module must never hide a cause: a
//! storage failure stays distinct from a refusal, and damage names its seq.

use std::path::PathBuf;

use crate::value::Date;

/// The rule of contract §4 an append broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Rule 1: unknown type, missing, unknown or malformed field.
    Malformed,
    /// Rule 2: an entity used before it exists, never registered, or registered twice.
    Existence,
    /// Rule 3: stakes above 100%, negative, oversold, or held in oneself.
    Stakes,
    /// Rule 4: a deal closed while not pending, or announced twice.
    Deal,
    /// Rule 5: a partnership or role ended (or formed) in the wrong state.
    Relationship,
    /// Rule 7: a retraction of an unknown, retraction or already retracted event.
    Retraction,
    /// Rule 8: an id already stored with different content.
    IdConflict,
    /// Rule 9: a field that only the ledger sets.
    LedgerOwned,
}

impl Rule {
    /// A short name for messages and the HTTP `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Malformed => "malformed",
            Rule::Existence => "existence",
            Rule::Stakes => "stakes",
            Rule::Deal => "deal",
            Rule::Relationship => "relationship",
            Rule::Retraction => "retraction",
            Rule::IdConflict => "id_conflict",
            Rule::LedgerOwned => "ledger_owned",
        }
    }
}

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An appended event breaks a rule; nothing of the append was stored.
    /// Fix the event at `line` (1-based line of the input; `index` is its
    /// 0-based position among the events) and append again.
    #[error("line {line}: {message}")]
    Refused {
        /// 1-based line of the offending event in the input.
        line: usize,
        /// 0-based position of the offending event among the submitted events.
        index: usize,
        /// The rule broken.
        rule: Rule,
        /// What was wrong, naming the event and the rule.
        message: String,
    },
    /// An append said which last seq it builds on, and the ledger's last seq
    /// is another: read the new events and decide again.
    #[error("expected last seq {expected}, but the ledger's last seq is {actual}")]
    SeqConflict {
        /// The last seq the caller expected.
        expected: u64,
        /// The ledger's actual last seq.
        actual: u64,
    },
    /// A query named an id the ledger does not know (as known at the query's seq).
    #[error("unknown {expected} `{id}`")]
    UnknownEntity {
        /// The id asked for.
        id: String,
        /// What the query needed (`company`, `person`, `company or person`).
        expected: &'static str,
    },
    /// A query named an entity of the wrong kind.
    #[error("`{id}` is a {found}, not a {expected}")]
    WrongKind {
        /// The id asked for.
        id: String,
        /// What the query needed.
        expected: &'static str,
        /// What the id is.
        found: &'static str,
    },
    /// The entity exists, but not yet on the date asked for.
    #[error("`{id}` does not exist on {as_of}: it exists from {since}")]
    NotYetExisting {
        /// The id asked for.
        id: String,
        /// The date asked for.
        as_of: Date,
        /// Its registration date.
        since: Date,
    },
    /// An argument of a query (a date, a known-at bound, a query line) is malformed.
    #[error("{0}")]
    BadArgument(String),
    /// A query would exceed a documented bound (see `query::LOOK_THROUGH_LIMIT`).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// There is no ledger at the path (queries never create one).
    #[error("no ledger at {}", .0.display())]
    NoLedger(PathBuf),
    /// Another process holds the ledger open.
    #[error("the ledger at {} is in use by another process (a ledger is opened by one process at a time)", .0.display())]
    Locked(PathBuf),
    /// A running `dealledger serve` holds the ledger: go through it.
    #[error("the ledger at {} is held by a running `dealledger serve` at {url}: use --server {url} (or DEALLEDGER_SERVER)", .path.display())]
    Served {
        /// The ledger directory.
        path: PathBuf,
        /// The server's base URL, from its `server.url` file.
        url: String,
    },
    /// A stored record is damaged or the hash chain is broken at `seq`.
    /// Records before `seq` are intact: export them and import into a new ledger.
    #[error("corrupt ledger at seq {seq}: {detail}")]
    Corrupt {
        /// The first bad seq.
        seq: u64,
        /// What is wrong there.
        detail: String,
    },
    /// An import file is not a valid export, or the ledger is not empty.
    #[error("import: {0}")]
    Import(String),
    /// The ledger's files could not be opened, read or written: missing
    /// permissions, a full disk, an I/O error. `action` says what failed
    /// (`cannot open`, `cannot write to`, …); a failed append stored nothing
    /// unless `cause` says otherwise.
    #[error("{action} the ledger at {}: {cause}", .path.display())]
    Disk {
        /// The ledger directory.
        path: PathBuf,
        /// What could not be done (`cannot open`, `cannot write to`, `cannot append to`, `cannot index`,
        /// `cannot upgrade the log of`).
        action: &'static str,
        /// Why, in the operating system's words, and what became of the data.
        cause: String,
    },
    /// The storage engine failed.
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// The operating system failed (open, read, write, fsync).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The operating system's words for a storage failure (without sled's
/// `IO error:` prefix when it is one).
pub(crate) fn cause_of(err: &sled::Error) -> String {
    match err {
        sled::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
