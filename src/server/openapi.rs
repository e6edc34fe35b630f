//! `GET /openapi.json`: the OpenAPI 3 description, generated from the
//! handlers' own annotations so that it cannot drift from the routes.

use axum::extract::State;
use axum::Json;
use utoipa::OpenApi;

use super::{routes, stream, AppState};

/// The OpenAPI document of every route of the HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dealledger",
        description = "An append-only, tamper-evident, bitemporal ledger of corporate deals (contract §7)."
    ),
    paths(
        routes::append,
        routes::events,
        stream::subscribe,
        routes::ownership,
        routes::holdings,
        routes::partnerships,
        routes::executives,
        routes::career,
        routes::query,
        routes::verify,
        routes::health,
        document,
    )
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme on every POST route: added to the served
/// document only when the server requires a token, so that it describes this
/// server as it runs.
pub struct BearerOnPost;

impl utoipa::Modify for BearerOnPost {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        for item in openapi.paths.paths.values_mut() {
            if let Some(post) = item.post.as_mut() {
                post.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
            }
        }
    }
}

/// `GET /openapi.json`: this document (with the bearer scheme on POSTs when
/// this server requires a token).
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "the OpenAPI 3 document", body = Object)))]
pub async fn document(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    if state.token_digest.is_some() {
        utoipa::Modify::modify(&BearerOnPost, &mut doc);
    }
    Json(doc)
}
