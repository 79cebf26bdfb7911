//! AWS X-Ray subsegments around each upstream call (`EnableTracing`: `Tracing: Active`), so one
//! slow Stripe or AWS call shows in the invocation's trace.
//!
//! Lambda records the invocation's segment; a subsegment is a JSON document sent over UDP to
//! the X-Ray daemon Lambda runs beside the function (`AWS_XRAY_DAEMON_ADDRESS`), under the
//! invocation's trace header (`_X_AMZN_TRACE_ID`, set per invocation by `lambda_runtime`). Only
//! sampled invocations send anything (`Sampled=1`: with `Tracing: PassThrough`, the default,
//! none are), sending never waits, and a send that fails is dropped: tracing never fails a call.
//!
//! AWS SDK calls are traced by one interceptor (`XrayInterceptor`, on every client the adapters
//! build), Stripe's by a client wrapper (`TracedStripe`).

use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::{Value, json};

/// What the daemon expects before each document.
const HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// The invocation's place in its trace: `Root=1-…;Parent=…;Sampled=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    pub parent: String,
    pub sampled: bool,
}

impl TraceHeader {
    pub fn parse(header: &str) -> Option<Self> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", value)) => root = Some(value.to_owned()),
                Some(("Parent", value)) => parent = Some(value.to_owned()),
                Some(("Sampled", value)) => sampled = value == "1",
                _ => {}
            }
        }
        Some(Self {
            root: root?,
            parent: parent?,
            sampled,
        })
    }
}

/// Where subsegments go: the daemon's UDP address, and where the current trace header is read.
#[derive(Debug, Clone, Copy)]
pub struct Tracer {
    daemon: Option<SocketAddr>,
    trace_header: fn() -> Option<String>,
}

impl Tracer {
    /// The daemon of `AWS_XRAY_DAEMON_ADDRESS` (`host:port`, or `udp:host:port tcp:…`), the trace
    /// header of `_X_AMZN_TRACE_ID`; without a daemon address nothing is ever sent.
    pub fn from_env() -> Self {
        let daemon = std::env::var("AWS_XRAY_DAEMON_ADDRESS")
            .ok()
            .and_then(|address| daemon_address(&address));
        Self {
            daemon,
            trace_header: || std::env::var("_X_AMZN_TRACE_ID").ok(),
        }
    }

    pub fn new(daemon: Option<SocketAddr>, trace_header: fn() -> Option<String>) -> Self {
        Self {
            daemon,
            trace_header,
        }
    }

    /// The process's tracer, read from the environment once.
    pub fn global() -> Self {
        static TRACER: OnceLock<Tracer> = OnceLock::new();
        *TRACER.get_or_init(Self::from_env)
    }

    /// Sends a subsegment for a call that ran from `started` to now, when this invocation is
    /// sampled.
    pub fn record(&self, call: &Call<'_>, started: f64) {
        let Some(daemon) = self.daemon else {
            return;
        };
        let Some(trace) = (self.trace_header)()
            .as_deref()
            .and_then(TraceHeader::parse)
        else {
            return;
        };
        if !trace.sampled {
            return;
        }
        let Ok(id) = crate::ids::random_hex::<8>() else {
            return;
        };
        let document = subsegment(call, &trace, &id, started, now_secs());
        let datagram = format!("{HEADER}{document}");
        let local = if daemon.ip().is_loopback() {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        };
        if let Ok(socket) = UdpSocket::bind(local) {
            let _ = socket.send_to(datagram.as_bytes(), daemon);
        }
    }
}

/// One upstream call as a subsegment shows it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// `DynamoDB`, `Stripe`, …
    pub service: &'a str,
    /// The AWS operation (`PutItem`); `None` for Stripe.
    pub operation: Option<&'a str>,
    /// `aws` for AWS SDK calls, `remote` for others.
    pub namespace: &'a str,
    pub status: Option<u16>,
    /// The call failed without a response, or with one.
    pub failed: bool,
}

/// The subsegment document: <https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html>.
fn subsegment(call: &Call<'_>, trace: &TraceHeader, id: &str, start: f64, end: f64) -> Value {
    let mut document = json!({
        "name": call.service,
        "id": id,
        "trace_id": trace.root,
        "parent_id": trace.parent,
        "type": "subsegment",
        "namespace": call.namespace,
        "start_time": start,
        "end_time": end.max(start),
    });
    if let Some(operation) = call.operation {
        document["aws"] = json!({ "operation": operation });
    }
    if let Some(status) = call.status {
        document["http"] = json!({ "response": { "status": status } });
        document["throttle"] = json!(status == 429);
        document["error"] = json!((400..500).contains(&status));
        document["fault"] = json!(status >= 500);
    } else if call.failed {
        document["fault"] = json!(true);
    }
    document
}

/// `host:port`, or the UDP one of `udp:host:port tcp:host:port`.
fn daemon_address(raw: &str) -> Option<SocketAddr> {
    raw.split_whitespace()
        .filter(|part| !part.starts_with("tcp:"))
        .map(|part| part.strip_prefix("udp:").unwrap_or(part))
        .find_map(|address| address.parse().ok())
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy)]
struct StartedAt(f64);

impl Storable for StartedAt {
    type Storer = StoreReplace<Self>;
}

/// A subsegment per AWS SDK operation (retries included), named by its service and operation.
#[derive(Debug, Clone, Copy)]
pub struct XrayInterceptor {
    tracer: Tracer,
}

impl XrayInterceptor {
    pub fn new(tracer: Tracer) -> Self {
        Self { tracer }
    }

    /// With the process's tracer.
    pub fn global() -> Self {
        Self::new(Tracer::global())
    }
}

impl Intercept for XrayInterceptor {
    fn name(&self) -> &'static str {
        "XrayInterceptor"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(StartedAt(now_secs()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(StartedAt(started)) = cfg.load::<StartedAt>().copied() else {
            return Ok(());
        };
        let metadata = cfg.load::<Metadata>();
        let call = Call {
            service: metadata.map_or("AWS", Metadata::service),
            operation: metadata.map(Metadata::name),
            namespace: "aws",
            status: context
                .response()
                .map(|response| response.status().as_u16()),
            failed: matches!(context.output_or_error(), Some(Err(_))),
        };
        self.tracer.record(&call, started);
        Ok(())
    }
}

/// A Stripe client whose every request is a `Stripe` subsegment.
#[derive(Debug, Clone)]
pub struct TracedStripe<C> {
    inner: C,
    tracer: Tracer,
}

impl<C> TracedStripe<C> {
    pub fn new(inner: C, tracer: Tracer) -> Self {
        Self { inner, tracer }
    }
}

impl<C> stripe_client_core::StripeClient for TracedStripe<C>
where
    C: stripe_client_core::StripeClient + Sync,
{
    type Err = C::Err;

    async fn execute(
        &self,
        request: stripe_client_core::CustomizedStripeRequest,
    ) -> Result<bytes::Bytes, Self::Err> {
        let started = now_secs();
        let answer = self.inner.execute(request).await;
        let call = Call {
            service: "Stripe",
            operation: None,
            namespace: "remote",
            status: None,
            failed: answer.is_err(),
        };
        self.tracer.record(&call, started);
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SAMPLED: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    fn sampled() -> Option<String> {
        Some(SAMPLED.to_owned())
    }

    fn not_sampled() -> Option<String> {
        Some(SAMPLED.replace("Sampled=1", "Sampled=0"))
    }

    /// A local X-Ray daemon: the documents it got, after the header line.
    fn daemon() -> (UdpSocket, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        (socket, address)
    }

    fn received(socket: &UdpSocket) -> Option<Value> {
        let mut buffer = [0u8; 8192];
        let (n, _) = socket.recv_from(&mut buffer).ok()?;
        let text = std::str::from_utf8(&buffer[..n]).unwrap();
        let document = text.strip_prefix(HEADER).expect("the daemon's header line");
        Some(serde_json::from_str(document).unwrap())
    }

    #[test]
    fn a_trace_header_should_give_root_parent_and_sampling() {
        assert_eq!(
            TraceHeader::parse(SAMPLED),
            Some(TraceHeader {
                root: "1-5759e988-bd862e3fe1be46a994272793".into(),
                parent: "53995c3f42cd8ad8".into(),
                sampled: true,
            })
        );
        assert!(!TraceHeader::parse("Root=1-a;Parent=b").unwrap().sampled);
        assert_eq!(TraceHeader::parse("Root=1-a;Sampled=1"), None);
        assert_eq!(TraceHeader::parse(""), None);
    }

    #[test]
    fn the_daemon_address_should_be_read_in_both_forms() {
        let expected: SocketAddr = "169.254.79.129:2000".parse().unwrap();
        assert_eq!(daemon_address("169.254.79.129:2000"), Some(expected));
        assert_eq!(
            daemon_address("tcp:127.0.0.1:3000 udp:169.254.79.129:2000"),
            Some(expected)
        );
        assert_eq!(daemon_address("nowhere"), None);
    }

    #[test]
    fn a_subsegment_should_say_what_failed_and_how() {
        let trace = TraceHeader::parse(SAMPLED).unwrap();
        let call = |status, failed| Call {
            service: "DynamoDB",
            operation: Some("PutItem"),
            namespace: "aws",
            status,
            failed,
        };
        let ok = subsegment(&call(Some(200), false), &trace, "ab", 1.0, 1.5);
        assert_eq!(ok["type"], "subsegment");
        assert_eq!(ok["trace_id"], trace.root.as_str());
        assert_eq!(ok["parent_id"], trace.parent.as_str());
        assert_eq!(ok["aws"]["operation"], "PutItem");
        assert_eq!(ok["http"]["response"]["status"], 200);
        assert_eq!(
            (ok["error"].clone(), ok["fault"].clone()),
            (json!(false), json!(false))
        );
        let throttled = subsegment(&call(Some(429), true), &trace, "ab", 1.0, 1.5);
        assert_eq!(throttled["throttle"], true);
        assert_eq!(throttled["error"], true);
        assert_eq!(
            subsegment(&call(Some(503), true), &trace, "ab", 1.0, 1.5)["fault"],
            true
        );
        assert_eq!(
            subsegment(&call(None, true), &trace, "ab", 1.0, 1.5)["fault"],
            true
        );
    }

    fn dynamo_at(url: &str, tracer: Tracer) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(url)
            .http_client(crate::adapters::aws::https_client())
            .interceptor(XrayInterceptor::new(tracer))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn each_aws_call_of_a_sampled_invocation_should_be_a_subsegment() {
        let (url, _) = crate::adapters::test_server::serve(|_, _, _| {
            crate::adapters::test_server::Answer::json("200 OK", "{}")
        })
        .await;
        let (socket, address) = daemon();
        let before = now_secs();
        dynamo_at(&url, Tracer::new(Some(address), sampled))
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("a".into()))
            .send()
            .await
            .unwrap();
        let document = received(&socket).expect("a subsegment");
        assert_eq!(document["name"], "DynamoDB");
        assert_eq!(document["namespace"], "aws");
        assert_eq!(document["aws"]["operation"], "GetItem");
        assert_eq!(document["http"]["response"]["status"], 200);
        assert_eq!(document["parent_id"], "53995c3f42cd8ad8");
        let (start, end) = (
            document["start_time"].as_f64().unwrap(),
            document["end_time"].as_f64().unwrap(),
        );
        assert!(before <= start && start <= end && end <= now_secs());
    }

    #[tokio::test]
    async fn an_invocation_not_sampled_should_send_nothing() {
        let (url, _) = crate::adapters::test_server::serve(|_, _, _| {
            crate::adapters::test_server::Answer::json("200 OK", "{}")
        })
        .await;
        let (socket, address) = daemon();
        let client = dynamo_at(&url, Tracer::new(Some(address), not_sampled));
        client
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("a".into()))
            .send()
            .await
            .unwrap();
        assert_eq!(received(&socket), None);
    }

    #[derive(Debug, Clone)]
    struct Refusing;

    impl stripe_client_core::StripeClient for Refusing {
        type Err = stripe::StripeError;

        async fn execute(
            &self,
            _request: stripe_client_core::CustomizedStripeRequest,
        ) -> Result<bytes::Bytes, Self::Err> {
            Err(stripe::StripeError::Timeout)
        }
    }

    #[tokio::test]
    async fn each_stripe_request_should_be_a_subsegment() {
        let (socket, address) = daemon();
        let client = TracedStripe::new(Refusing, Tracer::new(Some(address), sampled));
        let request = stripe_product::product::RetrieveProduct::new("prod_1");
        assert!(
            stripe::StripeRequest::customize(&request)
                .send(&client)
                .await
                .is_err()
        );
        let document = received(&socket).expect("a subsegment");
        assert_eq!(document["name"], "Stripe");
        assert_eq!(document["namespace"], "remote");
        assert_eq!(document["fault"], true);
    }
}
