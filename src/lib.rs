//! # dealledger
//!
//! An append-only, tamper-evident, bitemporal ledger of corporate deals.
//! Events (acquisitions, deals, stake sales, partnerships, executive roles)
//! are validated against the whole timeline, hash-chained and stored durably;
//! from them the ledger answers, as of any date and as known at any earlier
//! moment, who owns what (directly and through chains of holdings), who
//! partners with whom, and who holds which role.
//!
//! ```
//! # fn main() -> Result<(), dealledger::Error> {
//! use dealledger::{At, Date, Ledger};
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::open_or_create(dir.path().join("db"))?;
//! ledger.append_text(concat!(
//!     r#"{"type":"company_registered","effective":"2004-02-04","company":"meta","name":"Meta"}"#, "\n",
//!     r#"{"type":"company_registered","effective":"2016-06-01","company":"scale-ai","name":"Scale AI"}"#, "\n",
//!     r#"{"type":"acquisition","effective":"2025-06-12","acquirer":"meta","target":"scale-ai","stake_pct":49}"#,
//! ))?;
//! let cap = ledger.ownership("scale-ai", At::date(Date::parse("2025-07-01").map_err(dealledger::Error::BadArgument)?))?;
//! assert_eq!(cap.holders[0].holder.as_str(), "meta");
//! assert_eq!(cap.unattributed_pct.0, 510_000); // millionths: 51%
//! # Ok(()) }
//! ```
//!
//! Layers, from the outside in: [`Ledger`] (the facade) → `validate` / `query`
//! / `projection` (pure rules and folds) → `timeline` (per-entity event
//! order) → `store` (the log file through [`journal`], the index in sled) →
//! `codec` (the byte format) → [`event`] (the types).
#![deny(missing_docs)]

pub mod answer;
mod codec;
mod error;
pub mod event;
mod index;
pub mod journal;
mod json;
mod ledger;
mod par;
mod projection;
mod query;
mod replay;
mod run;
pub mod server;
mod store;
pub mod testkit;
mod timeline;
mod validate;
mod value;
mod verify;

pub use codec::{
    block_prefix, decode as decode_record, decode_block, encode as encode_record, encode_block, DecodeError,
    BLOCK_VERSION, FORMAT_VERSION,
};
pub use error::{Error, Result, Rule};
pub use event::{Draft, Event, Kind, StoredEvent};
pub use json::{export_line, input_fields, MAX_TEXT};
pub use ledger::{parse_input, Appended, At, KnownAt, Ledger, Options, Phase, QueryKind, Receipt};
pub use query::LOOK_THROUGH_LIMIT;
pub use replay::{FoldOrder, History};
pub use store::sled_segment_size;
pub use validate::Origin;
pub use value::{pct_text, Date, EntityId, Money, Stake, Timestamp};
