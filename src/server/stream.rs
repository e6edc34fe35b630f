//! `GET /events/stream`: Server-Sent Events of the log, replay then live.
//!
//! A subscription is a cursor over the log, not a queue: it reads pages of
//! stored events after its cursor and, once it has caught up, waits on the
//! `watch` of the last seq. Appends never wait for subscribers, and a slow
//! one only falls behind (its socket applies back-pressure). Because the
//! cursor only moves to the seq it has just sent and each page starts after
//! it, the switch from replay to live has no gap and no duplicate. This
//! module must never buffer events per subscriber beyond one page.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::watch;

use super::routes::Params;
use super::{blocking, ApiError, AppState};
use crate::ledger::Ledger;

/// How many events a subscription reads from the log at a time.
const PAGE: usize = 256;

/// Parameters of `GET /events/stream`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this seq (default 0); the `Last-Event-ID` header wins.
    pub after: Option<u64>,
}

/// `GET /events/stream`: every stored event after `after`, then each new one.
#[utoipa::path(get, path = "/events/stream", params(StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this seq")),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "one message per event: `id:` its seq, `data:` its log object (as `dealledger log`); `event: error` and the end of the stream on damage"),
        (status = 400, body = super::ErrorBody)))]
pub async fn subscribe(
    State(state): State<AppState>,
    Params(params): Params<StreamParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::new(axum::http::StatusCode::BAD_REQUEST, "bad_argument", "Last-Event-ID must be a seq number")
        })?),
        None => None,
    };
    let cursor = Cursor {
        ledger: state.ledger.clone(),
        after: resume.or(params.after).unwrap_or(0),
        pending: VecDeque::new(),
        head: state.head.subscribe(),
        stopping: state.stopping.clone(),
        done: false,
    };
    Ok(Sse::new(stream::unfold(cursor, Cursor::next)).keep_alive(KeepAlive::default()))
}

/// One subscription's position in the log.
struct Cursor {
    ledger: Arc<Ledger>,
    /// The last seq read from the log.
    after: u64,
    /// Events read but not yet sent.
    pending: VecDeque<Event>,
    head: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    done: bool,
}

impl Cursor {
    /// The next event to send, waiting for an append when caught up; `None`
    /// ends the stream (server stopping, or a read error sent as `event: error`).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done || *self.stopping.borrow() {
                return None;
            }
            // Mark the current head as seen *before* reading, so an append
            // that lands after the read still wakes the wait below.
            self.head.borrow_and_update();
            if self.after < self.ledger.last_seq() && self.read_page().await {
                continue;
            }
            tokio::select! {
                changed = self.head.changed() => if changed.is_err() { return None },
                _ = self.stopping.changed() => return None,
            }
        }
    }

    /// Reads the next page of the log into `pending`; false when it held nothing.
    async fn read_page(&mut self) -> bool {
        let (ledger, after) = (self.ledger.clone(), self.after);
        match blocking(move || ledger.log_page(after, PAGE, None)).await {
            Ok(page) => {
                let read = !page.is_empty();
                for obj in page {
                    let seq = obj.get("seq").and_then(serde_json::Value::as_u64).unwrap_or(self.after);
                    self.after = seq;
                    let data = serde_json::Value::Object(obj).to_string();
                    self.pending.push_back(Event::default().id(seq.to_string()).data(data));
                }
                read
            }
            Err(err) => {
                self.pending.push_back(Event::default().event("error").data(err.message()));
                self.done = true;
                true
            }
        }
    }
}
