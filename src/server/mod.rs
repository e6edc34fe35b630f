//! The HTTP API of contract §7: `dealledger serve`.
//!
//! A thin layer over [`Ledger`]: each handler reads its parameters, runs the
//! library call on tokio's blocking pool (sled and fsync block) and writes
//! the same JSON as the command line. Live subscriptions are woken by a
//! `watch` channel that carries the last seq after each append. This module
//! must never hold domain logic: no rule, fold or answer is computed here.

mod error;
mod openapi;
mod routes;
mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tower_http::trace::{DefaultMakeSpan, DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::store::SERVER_URL_FILE;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use openapi::ApiDoc;
pub use routes::{MAX_PAGE, PREVIOUS_SEQ_HEADER};

/// The default address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// The default largest request body, in bytes (16 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;

/// How a server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The bearer token every `POST` must carry, if any.
    pub token: Option<String>,
    /// The largest request body accepted, in bytes; larger ones get 413.
    pub body_limit: usize,
    /// How long a stop waits for open connections (a subscriber that stopped
    /// reading, say) before closing them anyway. In-flight appends always
    /// finish: they run on blocking threads that a stop never cancels.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { token: None, body_limit: DEFAULT_BODY_LIMIT, shutdown_grace: DEFAULT_SHUTDOWN_GRACE }
    }
}

/// The default of [`Config::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    ledger: Arc<Ledger>,
    /// The last seq after each append, for subscriptions.
    head: Arc<watch::Sender<u64>>,
    /// Becomes true when the server stops, to end subscriptions.
    stopping: watch::Receiver<bool>,
    /// SHA-256 of the token, compared in constant time.
    token_digest: Option<[u8; 32]>,
    /// The largest body accepted, for the 413 message.
    body_limit: usize,
}

impl AppState {
    /// Tells subscribers that the ledger's last seq may have moved.
    fn appended(&self) {
        self.head.send_replace(self.ledger.last_seq());
    }
}

/// The router of every route of §7 over `ledger`, without a socket (tests
/// drive it with `tower::ServiceExt::oneshot`). Subscriptions end when
/// `stopping` becomes true.
pub fn router(ledger: Arc<Ledger>, config: &Config, stopping: watch::Receiver<bool>) -> Router {
    let (head, _) = watch::channel(ledger.last_seq());
    let token_digest = config.token.as_deref().map(|t| Sha256::digest(t.as_bytes()).into());
    let state = AppState { ledger, head: Arc::new(head), stopping, token_digest, body_limit: config.body_limit };
    Router::new()
        .route("/events", post(routes::append).get(routes::events))
        .route("/events/stream", get(stream::subscribe))
        .route("/companies/{id}/ownership", get(routes::ownership))
        .route("/companies/{id}/partnerships", get(routes::partnerships))
        .route("/companies/{id}/executives", get(routes::executives))
        .route("/holders/{id}/holdings", get(routes::holdings))
        .route("/people/{id}/career", get(routes::career))
        .route("/query", post(routes::query))
        .route("/verify", get(routes::verify))
        .route("/health", get(routes::health))
        .route("/openapi.json", get(openapi::document))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(
            // One line per request (method, path, status, latency) at INFO;
            // headers are never logged, so the token cannot leak there.
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::no_route(method.as_str(), uri.path())
}

async fn wrong_method(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// With a token configured, every POST needs `Authorization: Bearer <token>`.
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let (Some(expected), &Method::POST) = (&state.token_digest, request.method()) {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        if !bool::from(given.ct_eq(expected)) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

/// Serves `ledger` on `listener` until `shutdown` resolves; then stops taking
/// connections, lets in-flight requests (appends among them) finish, ends
/// subscriptions, verifies the ledger and returns what it verified. While it
/// runs, the ledger directory holds a `server.url` file with the base URL,
/// so that a command that finds the ledger locked can point to the server.
///
/// # Errors
/// I/O errors of the socket; [`Error::Corrupt`] if the final verify fails.
pub async fn serve(
    ledger: Arc<Ledger>,
    listener: tokio::net::TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<crate::answer::Verified> {
    let local: SocketAddr = listener.local_addr()?;
    let url_file: PathBuf = ledger.path().join(SERVER_URL_FILE);
    std::fs::write(&url_file, format!("http://{local}\n"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut stopped = stop_rx.clone();
    let app = router(Arc::clone(&ledger), config, stop_rx);
    let signal = async move {
        shutdown.await;
        tracing::info!("stopping: finishing in-flight requests");
        stop_tx.send_replace(true);
    };
    let server = std::future::IntoFuture::into_future(axum::serve(listener, app).with_graceful_shutdown(signal));
    let grace = config.shutdown_grace;
    let deadline = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        served = server => served,
        () = deadline => {
            tracing::warn!(?grace, "connections still open after the grace period: closing them");
            Ok(())
        }
    };
    let _ = std::fs::remove_file(&url_file);
    served?;
    let verified = tokio::task::spawn_blocking(move || ledger.verify())
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    tracing::info!(last_seq = verified.last_seq, hash = %verified.hash, "stopped; ledger verified");
    Ok(verified)
}

/// Resolves on SIGINT or SIGTERM (or Ctrl-C elsewhere).
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Runs blocking ledger work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join) => Err(ApiError::from(Error::Io(std::io::Error::other(join)))),
    }
}
