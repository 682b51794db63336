//! The HTTP stack every Azure request goes through, the SDK's included: pacing inside ARM's token
//! buckets, per-operation counters, timeouts and the mapping of answers to [`AzureError`]; and
//! the two guards on where a request goes (the ARM origin only, and a path that is exactly the
//! id it was built from).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use super::error::{AzureError, parse_retry_after};
use super::pacing::{Pacer, RequestClass, bucket_key};
use super::retry::RetryStats;

/// Request counts by (operation, status code), plus retry counters. Operation names are a
/// fixed set, so metric labels stay bounded.
#[derive(Debug, Default)]
pub struct ArmStats {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub retries: RetryStats,
}

impl ArmStats {
    pub(crate) fn record(&self, op: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((op, status)).or_default() += 1;
    }

    /// Snapshot: ((operation, status), count). Status 0 means no HTTP answer (reset, timeout).
    pub fn requests(&self) -> BTreeMap<(&'static str, u16), u64> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests of operations whose name contains `needle` (e.g. `_List`, `_Create`).
    pub fn count(&self, needle: &str) -> u64 {
        self.requests().iter().filter(|((op, _), _)| op.contains(needle)).map(|(_, n)| n).sum()
    }
}

pub(crate) struct RawResponse {
    pub status: u16,
    pub etag: Option<String>,
    pub async_operation: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: bytes::Bytes,
}

/// The HTTP stack every request goes through.
#[derive(Debug)]
pub(crate) struct HttpCore {
    pub http: reqwest::Client,
    /// The ARM endpoint: every request (and every `nextLink` or operation URL followed) goes
    /// there and nowhere else, since each carries the bearer token.
    pub base: Url,
    pub pacer: Pacer,
    pub stats: Arc<ArmStats>,
}

/// Does `url` point at the same origin (scheme, host and port) as the ARM endpoint `base`? The
/// bearer token is sent nowhere else: not to another host a `nextLink` or `Location` names, nor
/// to the same host over another scheme.
pub(crate) fn same_origin(url: &Url, base: &Url) -> bool {
    url.origin() == base.origin()
}

/// Refuse a request whose path is not the id it was built from (ARM compares paths without
/// regard to case, and a `nextLink` may spell them in another).
pub(super) fn same_path(sent: &str, expected: &str) -> Result<(), AzureError> {
    if sent.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(AzureError::Invalid {
        code: "PathMismatch".into(),
        message: format!(
            "not sent: the request's path '{sent}' differs from the ARM id it was built from '{expected}' (an id that is not canonical)"
        ),
    })
}

pub(crate) fn header(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

impl HttpCore {
    /// Send one request to the ARM endpoint (anything else is refused before it is sent).
    /// `headers` must carry the bearer token. Non-2xx answers become errors.
    pub(crate) async fn execute(
        &self,
        op: &'static str,
        method: reqwest::Method,
        url: Url,
        headers: Vec<(String, String)>,
        body: Option<bytes::Bytes>,
    ) -> Result<RawResponse, AzureError> {
        if !same_origin(&url, &self.base) {
            return Err(AzureError::Invalid {
                code: "UnexpectedHost".into(),
                message: format!(
                    "{op}: Azure pointed at {} outside the ARM endpoint; not sending credentials there",
                    url.origin().ascii_serialization()
                ),
            });
        }
        let key = bucket_key(url.path());
        let class = RequestClass::of_method(method.as_str());
        self.pacer.acquire(&key, class).await;
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let rsp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.stats.record(op, 0);
                return Err(AzureError::Transient { message: format!("{op}: {}", describe_reqwest(&e)) });
            }
        };
        let status = rsp.status().as_u16();
        self.stats.record(op, status);
        let h = rsp.headers().clone();
        if let Some(rem) = header(&h, class.remaining_header()).and_then(|v| v.parse::<f64>().ok()) {
            self.pacer.observe_remaining(&key, class, rem);
        }
        let retry_after = header(&h, "retry-after").and_then(|v| parse_retry_after(&v));
        let body = rsp.bytes().await.map_err(|e| AzureError::Transient {
            message: format!("{op}: reading the response: {}", describe_reqwest(&e)),
        })?;
        if !(200..300).contains(&status) {
            let err = AzureError::from_response(status, retry_after, &body);
            if let AzureError::Throttled { retry_after, .. } = &err {
                self.pacer.throttled(&key, class, *retry_after);
            }
            return Err(err);
        }
        Ok(RawResponse {
            status,
            etag: header(&h, "etag"),
            async_operation: header(&h, "azure-asyncoperation"),
            retry_after,
            body,
        })
    }
}

pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    // Walk to the root cause without printing URLs' query strings twice.
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    format!("{kind} ({root})")
}

/// The project's HTTP client: rustls, timeouts, no proxy surprises.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, AzureError> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("iothub-access-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AzureError::Invalid { code: "HttpClient".into(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_the_arm_origin_only() {
        let base = Url::parse("https://management.azure.com").unwrap();
        let at = |u: &str| same_origin(&Url::parse(u).unwrap(), &base);
        assert!(at("https://management.azure.com/subscriptions?page=2"));
        assert!(at("https://MANAGEMENT.azure.com:443/x"));
        assert!(!at("http://management.azure.com:443/x"), "a downgrade to plain HTTP");
        assert!(!at("http://management.azure.com/x"));
        assert!(!at("https://management.azure.com:8443/x"));
        assert!(!at("https://management.azure.com.evil.example/x"));
        assert!(!at("https://user@evil.example/management.azure.com"));
    }
}
