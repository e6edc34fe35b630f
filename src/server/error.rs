//! The HTTP shape of every failure: `{"error": {"kind", "message", "index"}}`
//! with the status code contract §7 names.
//!
//! This module only translates: it must never decide whether something is an
//! error, only how the library's verdict looks on the wire.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::{Error, Rule};

/// An error answered over HTTP.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The fields of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable name: a rule of §4 (`stakes`, `existence`,
    /// …), or `malformed`, `seq_conflict`, `unknown_entity`, `not_found`, ….
    pub kind: &'static str,
    /// What was wrong and where, for people.
    pub message: String,
    /// The 0-based position of the offending event in a multi-event body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl ApiError {
    /// An error of the given status and kind.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, body: ErrorBody { error: ErrorDetail { kind, message: message.into(), index: None } } }
    }

    /// 404 for a path no route serves.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no route {method} {path}"))
    }

    /// 401 for a POST without the right bearer token.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "this server needs `Authorization: Bearer <token>` on POST")
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        &self.body.error.message
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        let (status, kind, index) = match &err {
            Error::Refused { rule: Rule::Malformed, index, .. } => (StatusCode::BAD_REQUEST, "malformed", Some(*index)),
            Error::Refused { rule: Rule::IdConflict, index, .. } => (StatusCode::CONFLICT, "id_conflict", Some(*index)),
            Error::Refused { rule, index, .. } => (StatusCode::UNPROCESSABLE_ENTITY, rule.name(), Some(*index)),
            Error::SeqConflict { .. } => (StatusCode::CONFLICT, "seq_conflict", None),
            Error::UnknownEntity { .. } => (StatusCode::NOT_FOUND, "unknown_entity", None),
            Error::WrongKind { .. } => (StatusCode::NOT_FOUND, "wrong_kind", None),
            Error::NotYetExisting { .. } => (StatusCode::NOT_FOUND, "not_yet_existing", None),
            Error::BadArgument(_) => (StatusCode::BAD_REQUEST, "bad_argument", None),
            Error::LimitExceeded(_) => (StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", None),
            Error::Import(_) => (StatusCode::BAD_REQUEST, "import", None),
            Error::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt", None),
            Error::NoLedger(_) | Error::Locked(_) | Error::Served { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None)
            }
            Error::Storage(_) | Error::Io(_) | Error::Disk { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "storage", None)
            }
        };
        if status.is_server_error() {
            tracing::error!(%message, "request failed");
        }
        Self { status, body: ErrorBody { error: ErrorDetail { kind, message, index } } }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_contract_statuses() {
        let refused = |rule| Error::Refused { line: 2, index: 1, rule, message: "x".into() };
        let cases = [
            (refused(Rule::Malformed), StatusCode::BAD_REQUEST, "malformed"),
            (refused(Rule::IdConflict), StatusCode::CONFLICT, "id_conflict"),
            (refused(Rule::Stakes), StatusCode::UNPROCESSABLE_ENTITY, "stakes"),
            (Error::SeqConflict { expected: 1, actual: 2 }, StatusCode::CONFLICT, "seq_conflict"),
            (Error::UnknownEntity { id: "x".into(), expected: "company" }, StatusCode::NOT_FOUND, "unknown_entity"),
        ];
        for (err, status, kind) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.status, api.body.error.kind), (status, kind));
        }
        assert_eq!(ApiError::from(refused(Rule::Deal)).body.error.index, Some(1));
    }
}
