//! The benchmark's servers, on 127.0.0.1 only:
//! - a Lambda Runtime API (`/2018-06-01/runtime/...`) that any runtime client polls: ours
//!   (`lambda_runtime`), `aws-lambda-ric` (Node) and `awslambdaric` (Python);
//! - a null DynamoDB endpoint that answers `{}` to every call, to measure a function without
//!   its store;
//! - a control API for bench/run.py: queue invocations, time the first `/next`, run a load.
//!
//!     bench-harness <first runtime port> <lanes> <null store port> <control port>
//!
//! Lane i's Runtime API listens on <first runtime port> + i; control calls name it `?lane=i`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);
const DEADLINE_MS: u128 = 30_000;

struct Invocation {
    body: Bytes,
    done: oneshot::Sender<Outcome>,
}

struct Outcome {
    ok: bool,
    body: Bytes,
    at: Instant,
}

/// One Runtime API on a port of its own, for the processes of one runtime: a queue they share,
/// the time of the first `/next` since the last reset, and an init error if one was reported.
struct Lane {
    queue: mpsc::UnboundedSender<Invocation>,
    waiting: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_next: Mutex<Option<u128>>,
    first_next_seen: Notify,
    init_error: Mutex<Option<String>>,
    next_id: AtomicU64,
}

impl Lane {
    fn new() -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        Self {
            queue,
            waiting: tokio::sync::Mutex::new(waiting),
            pending: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            first_next_seen: Notify::new(),
            init_error: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }
}

struct Shared {
    lanes: Vec<Lane>,
    null_calls: AtomicU64,
}

type Answer = Response<Full<Bytes>>;

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn answer(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

fn json_answer(status: StatusCode, value: &Value) -> Answer {
    answer(status, "application/json", value.to_string())
}

async fn body_of(request: Request<Incoming>) -> Bytes {
    match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    }
}

async fn serve<H, F>(address: SocketAddr, handler: H) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind(address).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// --- the Lambda Runtime API ------------------------------------------------------------------

async fn runtime_api(shared: Arc<Shared>, lane: usize, request: Request<Incoming>) -> Answer {
    let shared = &shared.lanes[lane];
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return answer(StatusCode::NOT_FOUND, "text/plain", "not found");
    };
    match (request.method().clone(), rest) {
        (Method::GET, "invocation/next") => next_invocation(shared).await,
        (Method::POST, "init/error") => {
            let body = body_of(request).await;
            eprintln!("harness: init error: {}", String::from_utf8_lossy(&body));
            *lock(&shared.init_error) = Some(String::from_utf8_lossy(&body).into_owned());
            json_answer(StatusCode::ACCEPTED, &json!({"status": "OK"}))
        }
        (Method::POST, rest) if rest.starts_with("invocation/") => {
            let mut parts = rest["invocation/".len()..].splitn(2, '/');
            let (Some(id), Some(kind)) = (parts.next(), parts.next()) else {
                return answer(StatusCode::NOT_FOUND, "text/plain", "not found");
            };
            let id = id.to_owned();
            let ok = match kind {
                "response" => true,
                "error" => false,
                _ => return answer(StatusCode::NOT_FOUND, "text/plain", "not found"),
            };
            let body = body_of(request).await;
            let at = Instant::now();
            match lock(&shared.pending).remove(&id) {
                Some(done) => {
                    let _ = done.send(Outcome { ok, body, at });
                    json_answer(StatusCode::ACCEPTED, &json!({"status": "OK"}))
                }
                None => answer(StatusCode::BAD_REQUEST, "text/plain", "unknown request id"),
            }
        }
        _ => answer(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

async fn next_invocation(shared: &Lane) -> Answer {
    {
        let mut first = lock(&shared.first_next);
        if first.is_none() {
            *first = Some(unix_ns());
            shared.first_next_seen.notify_waiters();
        }
    }
    let invocation = shared.waiting.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return answer(StatusCode::GONE, "text/plain", "shutting down");
    };
    let id = format!(
        "bench-{:08}",
        shared.next_id.fetch_add(1, Ordering::Relaxed)
    );
    lock(&shared.pending).insert(id.clone(), invocation.done);
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() + DEADLINE_MS)
        .unwrap_or(DEADLINE_MS);
    let mut response = answer(StatusCode::OK, "application/json", invocation.body);
    let headers = response.headers_mut();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            format!("Root=1-00000000-{id:0>24};Sampled=0"),
        ),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    response
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// --- the null DynamoDB endpoint --------------------------------------------------------------

async fn null_store(shared: Arc<Shared>, request: Request<Incoming>) -> Answer {
    let _ = body_of(request).await;
    shared.null_calls.fetch_add(1, Ordering::Relaxed);
    let mut response = answer(StatusCode::OK, "application/x-amz-json-1.0", "{}");
    if let Ok(value) = "null-store".parse() {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

// --- the control API -------------------------------------------------------------------------

fn enqueue(shared: &Lane, body: Bytes) -> Option<oneshot::Receiver<Outcome>> {
    let (done, outcome) = oneshot::channel();
    shared.queue.send(Invocation { body, done }).ok()?;
    Some(outcome)
}

/// The function's HTTP status, from an API Gateway proxy response (0 when not one).
fn status_of(outcome: &Outcome) -> u64 {
    if !outcome.ok {
        return 0;
    }
    serde_json::from_slice::<Value>(&outcome.body)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(Value::as_u64))
        .unwrap_or(0)
}

fn query_param<T: std::str::FromStr>(query: &str, name: &str) -> Option<T> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

async fn control(all: Arc<Shared>, request: Request<Incoming>) -> Answer {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    if path == "/stats" {
        return json_answer(
            StatusCode::OK,
            &json!({"null_store_calls": all.null_calls.load(Ordering::Relaxed)}),
        );
    }
    let Some(shared) = all.lanes.get(query_param(&query, "lane").unwrap_or(0)) else {
        return json_answer(StatusCode::BAD_REQUEST, &json!({"error": "no such lane"}));
    };
    match (request.method().clone(), path.as_str()) {
        (Method::POST, "/reset") => {
            *lock(&shared.first_next) = None;
            *lock(&shared.init_error) = None;
            json_answer(StatusCode::OK, &json!({"reset": true}))
        }
        (Method::GET, "/first-next") => {
            let timeout_ms = query_param(&query, "timeout_ms").unwrap_or(30_000);
            let deadline = Instant::now() + Duration::from_millis(timeout_ms);
            loop {
                let seen = shared.first_next_seen.notified();
                if let Some(at) = *lock(&shared.first_next) {
                    return json_answer(StatusCode::OK, &json!({"unix_ns": at.to_string()}));
                }
                if let Some(error) = lock(&shared.init_error).clone() {
                    return json_answer(StatusCode::BAD_GATEWAY, &json!({"init_error": error}));
                }
                if tokio::time::timeout_at(deadline.into(), seen)
                    .await
                    .is_err()
                {
                    return json_answer(StatusCode::GATEWAY_TIMEOUT, &json!({"error": "no /next"}));
                }
            }
        }
        (Method::POST, "/invoke") => {
            let body = body_of(request).await;
            let started = Instant::now();
            let Some(outcome) = enqueue(shared, body) else {
                return json_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": "queue"}),
                );
            };
            match tokio::time::timeout(INVOKE_TIMEOUT, outcome).await {
                Ok(Ok(outcome)) => json_answer(
                    StatusCode::OK,
                    &json!({
                        "ok": outcome.ok,
                        "status": status_of(&outcome),
                        "latency_ns": outcome.at.duration_since(started).as_nanos().to_string(),
                        "done_unix_ns": unix_ns().to_string(),
                        "response": String::from_utf8_lossy(&outcome.body),
                    }),
                ),
                _ => json_answer(
                    StatusCode::GATEWAY_TIMEOUT,
                    &json!({"error": "no response"}),
                ),
            }
        }
        (Method::POST, "/load") => {
            let body = body_of(request).await;
            let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(&body) else {
                return json_answer(StatusCode::BAD_REQUEST, &json!({"error": "a JSON array"}));
            };
            let started = Instant::now();
            let mut waiting = Vec::with_capacity(events.len());
            for event in events {
                match enqueue(shared, Bytes::from(event.to_string())) {
                    Some(outcome) => waiting.push(outcome),
                    None => {
                        return json_answer(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &json!({"error": "queue"}),
                        );
                    }
                }
            }
            let mut statuses: HashMap<String, u64> = HashMap::new();
            let mut last = started;
            for outcome in waiting {
                match tokio::time::timeout(INVOKE_TIMEOUT, outcome).await {
                    Ok(Ok(outcome)) => {
                        last = last.max(outcome.at);
                        *statuses.entry(status_of(&outcome).to_string()).or_default() += 1;
                    }
                    _ => *statuses.entry("timeout".into()).or_default() += 1,
                }
            }
            json_answer(
                StatusCode::OK,
                &json!({
                    "elapsed_ns": last.duration_since(started).as_nanos().to_string(),
                    "statuses": statuses,
                }),
            )
        }
        _ => answer(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

fn number_arg<T: std::str::FromStr>(
    args: &[String],
    index: usize,
    name: &str,
) -> Result<T, String> {
    args.get(index)
        .ok_or_else(|| format!("missing {name}"))?
        .parse()
        .map_err(|_| format!("{name} must be a number"))
}

const USAGE: &str =
    "usage: bench-harness <first runtime port> <lanes> <null store port> <control port>";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (|| {
        Ok::<_, String>((
            number_arg::<u16>(&args, 1, "<first runtime port>")?,
            number_arg::<u16>(&args, 2, "<lanes>")?,
            number_arg::<u16>(&args, 3, "<null store port>")?,
            number_arg::<u16>(&args, 4, "<control port>")?,
        ))
    })();
    let (first_port, lanes, null_port, control_port) = match parsed {
        Ok(parsed) if parsed.1 >= 1 && parsed.0.checked_add(parsed.1).is_some() => parsed,
        Ok(_) => {
            eprintln!("bench-harness: lanes must be 1 or more and fit below port 65536\n{USAGE}");
            std::process::exit(2);
        }
        Err(message) => {
            eprintln!("bench-harness: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let shared = Arc::new(Shared {
        lanes: (0..lanes).map(|_| Lane::new()).collect(),
        null_calls: AtomicU64::new(0),
    });
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let mut servers = tokio::task::JoinSet::new();
    for lane in 0..usize::from(lanes) {
        let shared = shared.clone();
        let port = first_port + lane as u16;
        servers.spawn(serve(local(port), move |r| {
            runtime_api(shared.clone(), lane, r)
        }));
    }
    let null = shared.clone();
    servers.spawn(serve(local(null_port), move |r| {
        null_store(null.clone(), r)
    }));
    servers.spawn(serve(local(control_port), move |r| {
        control(shared.clone(), r)
    }));
    while let Some(ended) = servers.join_next().await {
        let error = match ended {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error.to_string(),
            Err(error) => error.to_string(),
        };
        eprintln!("bench-harness: {error}");
        std::process::exit(1);
    }
}
