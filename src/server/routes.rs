//! The request handlers: read parameters, call the ledger off the async
//! executor, answer in the JSON of contract §6 and §7.
//!
//! Handlers must never compute an answer or decide a rule themselves.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{blocking, ApiError, AppState};
use crate::answer::{Answer, Verified};
use crate::error::{Error, Result};
use crate::ledger::{parse_input, Appended, At, KnownAt, QueryKind};
use crate::value::Date;

/// The response header that carries the last seq before an append: events
/// of the answer with a higher seq are new, the others were already stored.
pub const PREVIOUS_SEQ_HEADER: &str = "dealledger-previous-seq";

/// The most events one `GET /events` returns.
pub const MAX_PAGE: usize = 10_000;

/// Query-string parameters, refused with 400 (naming the problem) when
/// malformed or unknown.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::try_from_uri(&parts.uri)
            .map(|Query(params)| Params(params))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_argument", e.body_text()))
    }
}

/// Parameters of `POST /events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AppendParams {
    /// Refuse the append with 409 unless the ledger's last seq is this.
    pub expected_seq: Option<u64>,
}

/// The answer of `POST /events`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppendedBody {
    /// One entry per submitted event, in input order (retries carry the stored seq).
    #[schema(value_type = Vec<Object>)]
    pub appended: Vec<Appended>,
    /// The ledger's last seq after the append.
    pub last_seq: u64,
}

/// The body as text; 413 when over the limit, 400 when not UTF-8.
fn body_text(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let bytes = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is larger than this server's limit of {} bytes (`dealledger serve --body-limit`); \
                 an append is all or nothing, so raise the limit rather than split it if it must stay whole",
                state.body_limit
            ),
        ),
        status => ApiError::new(status, "malformed", e.body_text()),
    })?;
    String::from_utf8(bytes.into())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("the body is not UTF-8 text: {e}")))
}

/// `POST /events`: one event, a JSON array, or JSON Lines; all or nothing.
#[utoipa::path(post, path = "/events", params(AppendParams),
    request_body(description = "one event, a JSON array of events, or JSON Lines",
        content(
            (Object = "application/json", example = json!({"type": "company_registered", "effective": "2016-06-01", "company": "scale-ai", "name": "Scale AI"})),
            (String = "application/x-ndjson"),
        )),
    responses(
        (status = 201, body = AppendedBody, description = "stored (or already stored: idempotent retry)",
            headers(("dealledger-previous-seq" = u64, description = "the last seq before the append"))),
        (status = 400, body = super::ErrorBody, description = "malformed body or event"),
        (status = 401, body = super::ErrorBody, description = "missing or wrong bearer token"),
        (status = 409, body = super::ErrorBody, description = "expected_seq differs, or an id is stored with other content"),
        (status = 413, body = super::ErrorBody, description = "body over the limit"),
        (status = 422, body = super::ErrorBody, description = "refused by a rule of §4")))]
pub async fn append(
    State(state): State<AppState>,
    Params(params): Params<AppendParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let text = body_text(&state, body)?;
    let ledger = state.ledger.clone();
    let result = blocking(move || {
        let items = parse_input(&text)?;
        drop(text);
        ledger.append_checked(items, params.expected_seq, &|_| {})
    })
    .await;
    state.appended();
    let receipt = result?;
    let body = AppendedBody { appended: receipt.appended, last_seq: receipt.last_seq };
    Ok((StatusCode::CREATED, [(PREVIOUS_SEQ_HEADER, receipt.previous_seq.to_string())], Json(body)).into_response())
}

/// Parameters of `GET /events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Only events with a higher seq (default 0).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// At most this many events (default 10,000; more is read as 10,000).
    #[param(minimum = 0)]
    pub limit: Option<usize>,
    /// Only events that name this company or person.
    #[param(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub entity: Option<String>,
}

/// The answer of `GET /events`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogBody {
    /// The events, oldest first, as `dealledger log` prints them.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The ledger's last seq.
    pub last_seq: u64,
}

/// `GET /events`: a page of the log.
#[utoipa::path(get, path = "/events", params(LogParams),
    responses((status = 200, body = LogBody), (status = 400, body = super::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Params(params): Params<LogParams>,
) -> Result<Json<LogBody>, ApiError> {
    let ledger = state.ledger.clone();
    let limit = params.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let (events, last_seq) = blocking(move || {
        let last_seq = ledger.last_seq();
        Ok((ledger.log_page(params.after.unwrap_or(0), limit, given(&params.entity))?, last_seq))
    })
    .await?;
    Ok(Json(LogBody { events, last_seq }))
}

/// An optional query-string value; an empty one (`?as_of=`) counts as absent,
/// as HTML forms and many clients send it.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The two time coordinates of a query, from the query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AtParams {
    /// Valid time, `YYYY-MM-DD` (default: today, UTC).
    #[param(format = Date)]
    pub as_of: Option<String>,
    /// What the ledger knew: a seq or an RFC 3339 timestamp (default: everything).
    #[param(
        pattern = r"^([0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    pub known_at: Option<String>,
}

impl AtParams {
    fn at(&self) -> Result<At> {
        let as_of = match given(&self.as_of) {
            Some(text) => Date::parse(text).map_err(|e| Error::BadArgument(format!("as_of: {e}")))?,
            None => Date::today(),
        };
        let known_at = given(&self.known_at).map(KnownAt::parse).transpose()?.unwrap_or_default();
        Ok(At { as_of, known_at })
    }
}

async fn answer(state: AppState, kind: QueryKind, id: String, params: AtParams) -> Result<Json<Answer>, ApiError> {
    let at = params.at()?;
    let ledger = state.ledger.clone();
    Ok(Json(blocking(move || ledger.answer_typed(kind, &id, at)).await?))
}

/// `GET /companies/{id}/ownership`: the cap table.
#[utoipa::path(get, path = "/companies/{id}/ownership", params(("id" = String, Path, description = "the company", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), AtParams),
    responses((status = 200, body = crate::answer::Ownership), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody, description = "unknown company, a person, or not yet existing")))]
pub async fn ownership(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<AtParams>,
) -> Result<Json<Answer>, ApiError> {
    answer(state, QueryKind::Ownership, id, params).await
}

/// `GET /holders/{id}/holdings`: direct and look-through holdings.
#[utoipa::path(get, path = "/holders/{id}/holdings", params(("id" = String, Path, description = "the company or person", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), AtParams),
    responses((status = 200, body = crate::answer::Holdings), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody, description = "look-through over its bound")))]
pub async fn holdings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<AtParams>,
) -> Result<Json<Answer>, ApiError> {
    answer(state, QueryKind::Holdings, id, params).await
}

/// `GET /companies/{id}/partnerships`: the active partnerships.
#[utoipa::path(get, path = "/companies/{id}/partnerships", params(("id" = String, Path, description = "the company", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), AtParams),
    responses((status = 200, body = crate::answer::PartnershipsAnswer), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
pub async fn partnerships(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<AtParams>,
) -> Result<Json<Answer>, ApiError> {
    answer(state, QueryKind::Partnerships, id, params).await
}

/// `GET /companies/{id}/executives`: who holds which role.
#[utoipa::path(get, path = "/companies/{id}/executives", params(("id" = String, Path, description = "the company", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), AtParams),
    responses((status = 200, body = crate::answer::Executives), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
pub async fn executives(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<AtParams>,
) -> Result<Json<Answer>, ApiError> {
    answer(state, QueryKind::Executives, id, params).await
}

/// `GET /people/{id}/career`: a person's roles, current and past.
#[utoipa::path(get, path = "/people/{id}/career", params(("id" = String, Path, description = "the person", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), AtParams),
    responses((status = 200, body = crate::answer::Career), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
pub async fn career(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<AtParams>,
) -> Result<Json<Answer>, ApiError> {
    answer(state, QueryKind::Career, id, params).await
}

/// `POST /query`: the batch of `dealledger query`, JSON Lines in and out.
#[utoipa::path(post, path = "/query",
    request_body(content = String, content_type = "application/x-ndjson",
        description = r#"one query a line: {"cmd": "ownership", "id": "scale-ai", "as_of": "2025-06-15", "known_at": null}"#),
    responses((status = 200, content_type = "application/x-ndjson", body = String,
        description = r#"one answer a line, or {"error": "…"} on the line of a query that failed"#),
        (status = 400, body = super::ErrorBody), (status = 413, body = super::ErrorBody)))]
pub async fn query(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let text = body_text(&state, body)?;
    let ledger = state.ledger.clone();
    let out = blocking(move || {
        let mut out = String::new();
        for answer in text.lines().filter_map(|line| ledger.batch_line(line)) {
            out.push_str(&answer);
            out.push('\n');
        }
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
}

/// The answer of `GET /verify`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyBody {
    /// Always true: damage is answered as an error naming the first bad seq.
    pub ok: bool,
    /// The last seq checked.
    pub last_seq: u64,
    /// Its chain hash, hex.
    pub hash: String,
}

impl From<Verified> for VerifyBody {
    fn from(v: Verified) -> Self {
        Self { ok: true, last_seq: v.last_seq, hash: v.hash }
    }
}

/// `GET /verify`: re-check every record and the hash chain.
#[utoipa::path(get, path = "/verify",
    responses((status = 200, body = VerifyBody),
        (status = 500, body = super::ErrorBody, description = "damage: the message names the first bad seq")))]
pub async fn verify(State(state): State<AppState>) -> Result<Json<VerifyBody>, ApiError> {
    let ledger = state.ledger.clone();
    Ok(Json(blocking(move || ledger.verify()).await?.into()))
}

/// The answer of `GET /health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// True: the ledger is open.
    pub ok: bool,
    /// The ledger's last seq.
    pub last_seq: u64,
}

/// `GET /health`: 200 while the ledger is open.
#[utoipa::path(get, path = "/health", responses((status = 200, body = HealthBody)))]
pub async fn health(State(state): State<AppState>) -> Json<HealthBody> {
    Json(HealthBody { ok: true, last_seq: state.ledger.last_seq() })
}
