//! The HTTP API of contract §7, driven without a socket: every request goes
//! through the real router with `tower::ServiceExt::oneshot`, over a real
//! ledger in a temporary directory.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use dealledger::server::{self, Config};
use dealledger::{At, Date, Ledger, QueryKind};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::watch;
use tower::ServiceExt;

const SCENARIO: &str = include_str!("../examples/data/scale-ai.jsonl");

struct Api {
    _dir: TempDir,
    ledger: Arc<Ledger>,
    router: Router,
    _stop: watch::Sender<bool>,
}

/// A server over a fresh ledger holding `events` (may be empty).
fn api_with(events: &str, config: &Config) -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(Ledger::open_or_create(dir.path().join("db")).expect("create"));
    if !events.is_empty() {
        ledger.append_text(events).expect("seed events");
    }
    let (stop, stopping) = watch::channel(false);
    let router = server::router(Arc::clone(&ledger), config, stopping);
    Api { _dir: dir, ledger, router, _stop: stop }
}

fn api(events: &str) -> Api {
    api_with(events, &Config::default())
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Panics unless the reply is the §7 error shape with this status and kind.
    fn expect_error(&self, status: StatusCode, kind: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["kind"], kind, "{}", self.text);
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.text);
        body
    }
}

impl Api {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        Reply { status, headers, text: String::from_utf8(bytes.to_vec()).expect("UTF-8 body") }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).expect("request")).await
    }

    async fn post(&self, uri: &str, content_type: &str, body: &str) -> Reply {
        let request = Request::post(uri).header(header::CONTENT_TYPE, content_type).body(Body::from(body.to_owned()));
        self.send(request.expect("request")).await
    }
}

fn company(id: &str, effective: &str) -> String {
    json!({"type": "company_registered", "effective": effective, "company": id, "name": id.to_uppercase()}).to_string()
}

fn acquisition(acquirer: &str, target: &str, pct: u32, effective: &str) -> String {
    json!({"type": "acquisition", "effective": effective, "acquirer": acquirer, "target": target, "stake_pct": pct})
        .to_string()
}

#[tokio::test]
async fn health_answers_while_the_ledger_is_open() {
    let api = api(SCENARIO);
    let reply = api.get("/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"ok": true, "last_seq": 18}));
}

#[tokio::test]
async fn post_takes_one_event_an_array_or_json_lines() {
    let api = api("");
    let one = api.post("/events", "application/json", &company("a", "2020-01-01")).await;
    assert_eq!(one.status, StatusCode::CREATED, "{}", one.text);
    let body = one.json();
    assert_eq!(body["last_seq"], 1);
    assert_eq!(body["appended"][0]["seq"], 1);
    assert!(body["appended"][0]["id"].as_str().is_some_and(|id| id.len() == 36));
    assert_eq!(one.headers[server::PREVIOUS_SEQ_HEADER], "0");

    let array = format!("[{}, {}]", company("b", "2020-01-01"), company("c", "2020-01-01"));
    let reply = api.post("/events", "application/json", &array).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let seqs: Vec<u64> =
        reply.json()["appended"].as_array().expect("list").iter().map(|a| a["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, [2, 3]);

    let lines = format!("{}\n\n{}\n", company("d", "2020-01-01"), acquisition("a", "d", 10, "2021-01-01"));
    let reply = api.post("/events", "application/x-ndjson", &lines).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json()["last_seq"], 5);
    assert_eq!(reply.headers[server::PREVIOUS_SEQ_HEADER], "3");
}

#[tokio::test]
async fn a_refused_append_stores_nothing_and_names_the_event() {
    let api = api(&[company("a", "2020-01-01"), company("b", "2020-01-01")].join("\n"));
    let body = [acquisition("a", "b", 60, "2021-01-01"), acquisition("a", "b", 50, "2021-02-01")].join("\n");
    let reply = api.post("/events", "application/x-ndjson", &body).await;
    let error = reply.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "stakes");
    assert_eq!(error["error"]["index"], 1, "{}", reply.text);
    assert_eq!(api.ledger.last_seq(), 2, "nothing of the refused append is stored");

    let unknown = acquisition("a", "nobody", 10, "2021-01-01");
    api.post("/events", "application/json", &unknown).await.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "existence");
}

#[tokio::test]
async fn malformed_bodies_get_400() {
    let api = api("");
    let reply = api.post("/events", "application/json", "{\"type\": ").await;
    reply.expect_error(StatusCode::BAD_REQUEST, "malformed");
    let unknown_field =
        r#"{"type":"company_registered","effective":"2020-01-01","company":"a","name":"A","colour":"red"}"#;
    let reply = api.post("/events", "application/json", unknown_field).await;
    assert_eq!(reply.expect_error(StatusCode::BAD_REQUEST, "malformed")["error"]["index"], 0);
    let reply = api.send(Request::post("/events").body(Body::from(vec![0xff, 0xfe, b'{'])).expect("request")).await;
    reply.expect_error(StatusCode::BAD_REQUEST, "malformed");
    assert_eq!(api.ledger.last_seq(), 0);
}

#[tokio::test]
async fn ledger_owned_fields_are_refused() {
    let api = api("");
    let event = r#"{"type":"company_registered","effective":"2020-01-01","company":"a","name":"A","seq":7}"#;
    api.post("/events", "application/json", event).await.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "ledger_owned");
}

#[tokio::test]
async fn expected_seq_is_optimistic_concurrency() {
    let api = api(&company("a", "2020-01-01"));
    let stale = api.post("/events?expected_seq=0", "application/json", &company("b", "2020-01-01")).await;
    stale.expect_error(StatusCode::CONFLICT, "seq_conflict");
    assert_eq!(api.ledger.last_seq(), 1);
    let fresh = api.post("/events?expected_seq=1", "application/json", &company("b", "2020-01-01")).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text);
    api.post("/events?expected_seq=x", "application/json", &company("c", "2020-01-01"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_argument");
}

#[tokio::test]
async fn a_repeated_id_is_a_retry_or_a_conflict() {
    let api = api("");
    let id = "0197656a-0000-7000-8000-0000000000aa";
    let event = json!({"id": id, "type": "company_registered", "effective": "2020-01-01", "company": "a", "name": "A"});
    let first = api.post("/events", "application/json", &event.to_string()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = api.post("/events", "application/json", &event.to_string()).await;
    assert_eq!(again.status, StatusCode::CREATED, "an identical retry is a no-op: {}", again.text);
    assert_eq!(again.json(), json!({"appended": [{"seq": 1, "id": id}], "last_seq": 1}));
    assert_eq!(again.headers[server::PREVIOUS_SEQ_HEADER], "1");
    let mut other = event.clone();
    other["name"] = json!("Another");
    api.post("/events", "application/json", &other.to_string()).await.expect_error(StatusCode::CONFLICT, "id_conflict");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let api = api_with("", &Config { body_limit: 1024, ..Config::default() });
    let big = vec![company("a", "2020-01-01"); 40].join("\n");
    let reply = api.post("/events", "application/x-ndjson", &big).await;
    let error = reply.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("limit of 1024 bytes")), "{error}");
    api.post("/query", "application/x-ndjson", &big).await.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert_eq!(api.ledger.last_seq(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let api = api("");
    api.get("/nowhere").await.expect_error(StatusCode::NOT_FOUND, "not_found");
    api.get("/companies/a/nothing").await.expect_error(StatusCode::NOT_FOUND, "not_found");
    let reply = api.send(Request::delete("/events").body(Body::empty()).expect("request")).await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn the_five_queries_answer_as_the_library_does() {
    let api = api(SCENARIO);
    let cases = [
        ("/companies/scale-ai/ownership", QueryKind::Ownership, "scale-ai"),
        ("/holders/meta/holdings", QueryKind::Holdings, "meta"),
        ("/companies/openai/partnerships", QueryKind::Partnerships, "openai"),
        ("/companies/scale-ai/executives", QueryKind::Executives, "scale-ai"),
        ("/people/alexandr-wang/career", QueryKind::Career, "alexandr-wang"),
    ];
    for (path, kind, id) in cases {
        for (params, known_at) in [("as_of=2025-07-01", None), ("as_of=2025-06-15&known_at=16", Some(16))] {
            let reply = api.get(&format!("{path}?{params}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}?{params}: {}", reply.text);
            let as_of = Date::parse(&params[6..16]).expect("date");
            let known_at = known_at.map_or(dealledger::KnownAt::Latest, dealledger::KnownAt::Seq);
            let expected = api.ledger.answer(kind, id, At { as_of, known_at }).expect("library answer");
            assert_eq!(reply.json(), expected, "{path}?{params}");
        }
    }
    let reply = api.get("/companies/scale-ai/ownership?as_of=2025-07-01").await;
    assert_eq!(reply.json()["holders"], json!([{"holder": "meta", "stake_pct": 49, "since": "2025-06-12"}]));
}

#[tokio::test]
async fn query_errors_have_their_status() {
    let api = api(SCENARIO);
    api.get("/companies/nobody/ownership").await.expect_error(StatusCode::NOT_FOUND, "unknown_entity");
    api.get("/companies/alexandr-wang/ownership").await.expect_error(StatusCode::NOT_FOUND, "wrong_kind");
    api.get("/companies/scale-ai/ownership?as_of=2001-01-01")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_yet_existing");
    api.get("/companies/scale-ai/ownership?as_of=2025-02-30")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_argument");
    api.get("/companies/scale-ai/ownership?known_at=yesterday")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_argument");
    api.get("/companies/scale-ai/ownership?asof=2025-01-01")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_argument");
}

#[tokio::test]
async fn empty_optional_parameters_count_as_absent() {
    let api = api(SCENARIO);
    let plain = api.get("/companies/scale-ai/ownership?as_of=2025-07-01").await.json();
    let empty = api.get("/companies/scale-ai/ownership?as_of=2025-07-01&known_at=").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.json(), plain);
    let today = api.get("/people/alexandr-wang/career?as_of=").await;
    assert_eq!(today.status, StatusCode::OK, "{}", today.text);
    let all = api.get("/events?entity=").await;
    assert_eq!(all.json()["events"].as_array().map(Vec::len), Some(18));
}

#[tokio::test]
async fn the_log_pages_and_filters() {
    let api = api(SCENARIO);
    let all = api.get("/events").await.json();
    assert_eq!(all["last_seq"], 18);
    assert_eq!(all["events"].as_array().expect("events").len(), 18);
    let mut expected = Vec::new();
    api.ledger
        .log(None, |obj| {
            expected.push(Value::Object(obj));
            Ok(())
        })
        .expect("log");
    assert_eq!(all["events"], Value::Array(expected.clone()), "the same objects as `dealledger log`");

    let page = api.get("/events?after=10&limit=3").await.json();
    let seqs: Vec<u64> =
        page["events"].as_array().expect("events").iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, [11, 12, 13]);
    let openai = api.get("/events?entity=openai").await.json();
    assert!(openai["events"].as_array().expect("events").iter().all(|e| e.to_string().contains("openai")));
    assert!(!openai["events"].as_array().expect("events").is_empty());
    api.get("/events?after=-1").await.expect_error(StatusCode::BAD_REQUEST, "bad_argument");
    api.get("/events?entity=Not%20A%20Slug").await.expect_error(StatusCode::BAD_REQUEST, "bad_argument");
}

#[tokio::test]
async fn batch_queries_answer_line_by_line() {
    let api = api(SCENARIO);
    let queries = concat!(
        r#"{"cmd": "ownership", "id": "scale-ai", "as_of": "2025-07-01"}"#,
        "\n\n",
        r#"{"cmd": "ownership", "id": "nobody", "as_of": "2025-07-01"}"#,
        "\n",
        r#"{"cmd": "career", "id": "alexandr-wang", "as_of": "2025-07-01", "known_at": 12}"#,
        "\n",
    );
    let reply = api.post("/query", "application/x-ndjson", queries).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/x-ndjson");
    let lines: Vec<Value> = reply.text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["unattributed_pct"], 51);
    assert!(lines[1]["error"].as_str().is_some_and(|e| e.contains("nobody")));
    assert_eq!(lines[2]["known_at_seq"], 12);
}

#[tokio::test]
async fn verify_reports_the_head() {
    let api = api(SCENARIO);
    let reply = api.get("/verify").await;
    let verified = api.ledger.verify().expect("verify");
    assert_eq!(reply.json(), json!({"ok": true, "last_seq": 18, "hash": verified.hash}));
}

#[tokio::test]
async fn with_a_token_every_post_needs_it() {
    let config = Config { token: Some("s3cret-token".into()), ..Config::default() };
    let api = api_with("", &config);
    let event = company("a", "2020-01-01");
    api.post("/events", "application/json", &event).await.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong =
        Request::post("/events").header(header::AUTHORIZATION, "Bearer s3cret-tokem").body(Body::from(event.clone()));
    let reply = api.send(wrong.expect("request")).await;
    reply.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    api.post("/query", "application/x-ndjson", "").await.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(api.ledger.last_seq(), 0);

    let right = Request::post("/events").header(header::AUTHORIZATION, "Bearer s3cret-token").body(Body::from(event));
    assert_eq!(api.send(right.expect("request")).await.status, StatusCode::CREATED);
    assert_eq!(api.get("/health").await.status, StatusCode::OK, "GETs need no token");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let api = api("");
    let reply = api.get("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let routes = [
        ("/events", "post"),
        ("/events", "get"),
        ("/events/stream", "get"),
        ("/companies/{id}/ownership", "get"),
        ("/companies/{id}/partnerships", "get"),
        ("/companies/{id}/executives", "get"),
        ("/holders/{id}/holdings", "get"),
        ("/people/{id}/career", "get"),
        ("/query", "post"),
        ("/verify", "get"),
        ("/health", "get"),
        ("/openapi.json", "get"),
    ];
    for (path, method) in routes {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
    let documented: usize =
        doc["paths"].as_object().expect("paths").values().map(|p| p.as_object().map_or(0, |m| m.len())).sum();
    assert_eq!(documented, routes.len(), "no undocumented extra operations");
    assert!(doc["components"]["schemas"]["Ownership"].is_object());
    assert!(doc["paths"]["/events"]["post"]["security"].is_null(), "no token: no security scheme");
    let guarded = api_with("", &Config { token: Some("t".into()), ..Config::default() });
    let doc = guarded.get("/openapi.json").await.json();
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["paths"]["/query"]["post"]["security"].is_array(), "with a token, POSTs declare it");
    assert!(doc["paths"]["/health"]["get"]["security"].is_null(), "GETs stay open");
    // Every documented GET route (but the endless stream) is served.
    for (path, method) in routes.iter().filter(|(p, m)| *m == "get" && *p != "/events/stream") {
        let reply = api.get(&path.replace("{id}", "x")).await;
        assert!(!(reply.status == StatusCode::NOT_FOUND && reply.text.contains("not_found")), "{method} {path}");
    }
}
