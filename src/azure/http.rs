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
use crate::domain::ids::segment_problem;

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

/// The path of `raw` (an absolute URL) exactly as written, before a URL parser resolved dot
/// segments, re-encoded characters or took a backslash for a slash: from the `/` that ends the
/// authority up to `?` or `#`. `None` when the authority does not end in a plain `/`.
fn path_as_written(raw: &str) -> Option<&str> {
    let after_scheme = &raw[raw.find("://")? + 3..];
    let start = after_scheme.find(['/', '?', '#', '\\'])?;
    let rest = &after_scheme[start..];
    if !rest.starts_with('/') {
        return None;
    }
    Some(&rest[..rest.find(['?', '#']).unwrap_or(rest.len())])
}

/// Why `segment` of an operation URL's path is not canonical, if it is not: as in an ARM id
/// ([`segment_problem`]), except that an operation id may end in base64 padding (`=`).
fn operation_segment_problem(segment: &str) -> Option<&'static str> {
    segment_problem(segment.trim_end_matches('='))
}

/// The URL of a long-running operation to poll (`Azure-AsyncOperation`) after a write to a
/// resource in `subscription`. The poll carries the bearer token, so the URL is refused unless
/// its path, as written, is what the URL parser made of it and a canonical ARM path (every
/// segment passes [`operation_segment_problem`]: no dot segment, percent-encoding, backslash or
/// empty segment) under `/subscriptions/{subscription}/` of the ARM endpoint (case aside). The
/// origin is checked where every request is sent ([`HttpCore::execute`]).
pub(super) fn operation_url(raw: &str, base: &Url, subscription: &str) -> Result<Url, AzureError> {
    let refuse = |why: String| AzureError::Invalid {
        code: "InvalidAsyncOperation".into(),
        message: format!("the Azure-AsyncOperation URL {why}; not polling it"),
    };
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|e| refuse(format!("cannot be followed ({e})")))?;
    let Some(written) = path_as_written(raw) else {
        return Err(refuse("has no plain path".into()));
    };
    if written != url.path() {
        return Err(refuse(format!("path '{written}' is not canonical (a URL parser reads it as '{}')", url.path())));
    }
    let prefix = format!("{}subscriptions/", base.path());
    let under_base =
        written.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(&prefix)).map(|_| &written[prefix.len()..]);
    if let Some(problem) = under_base.and_then(|ours| ours.split('/').find_map(operation_segment_problem)) {
        return Err(refuse(format!("path '{written}' is not a canonical ARM path: {problem}")));
    }
    let in_subscription = under_base
        .and_then(|ours| ours.split_once('/'))
        .is_some_and(|(sub, rest)| sub.eq_ignore_ascii_case(subscription) && !rest.is_empty());
    if !in_subscription {
        return Err(refuse(format!(
            "path '{written}' is not under {prefix}{subscription}/, the subscription of the resource written"
        )));
    }
    Ok(url)
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

    #[test]
    fn operation_urls_are_canonical_paths_in_the_written_resource_s_subscription() {
        let base = Url::parse("https://management.azure.com/").unwrap();
        let sub = "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";
        let op = |u: &str| operation_url(u, &base, sub);
        let ok = format!(
            "https://management.azure.com/subscriptions/{sub}/providers/Microsoft.Devices/locations/westeurope/operationResults/aWQ9b3NfaWg=?api-version=2023-06-30&operationSource=os_ih"
        );
        assert_eq!(op(&ok).unwrap().as_str(), ok);
        assert!(op(&ok.replace(sub, &sub.to_ascii_uppercase()).replace("/subscriptions/", "/SUBSCRIPTIONS/")).is_ok());
        for bad in [
            ok.replace(sub, "2c9d8e7f-6a5b-4c3d-9e1f-0a1b2c3d4e5f"),
            ok.replace("/providers/", &format!("/../{sub}/providers/")),
            ok.replace(&format!("{sub}/providers"), "x/../2c9d8e7f-6a5b-4c3d-9e1f-0a1b2c3d4e5f/providers"),
            ok.replace("/locations/", "/%2e%2e/locations/"),
            ok.replace("/locations/", "/./locations/"),
            ok.replace("/locations/", "//locations/"),
            ok.replace("/locations/", "\\locations/"),
            ok.replace("/locations/", "/loc%61tions/"),
            ok.replace(".com/", ".com\\"),
            format!("https://management.azure.com/subscriptions/{sub}"),
            format!("https://management.azure.com/subscriptions/{sub}/"),
            format!("https://management.azure.com/subscriptions/{sub}x/providers/y"),
            "https://management.azure.com?x=/subscriptions/".to_string(),
            "/subscriptions/x/providers/y".to_string(),
        ] {
            assert!(op(&bad).is_err(), "{bad}");
        }
        let prefixed = Url::parse("http://127.0.0.1:8080/arm/").unwrap();
        let at = |u: &str| operation_url(u, &prefixed, sub);
        assert!(at(&format!("http://127.0.0.1:8080/arm/subscriptions/{sub}/providers/x")).is_ok());
        assert!(at(&format!("http://127.0.0.1:8080/subscriptions/{sub}/providers/x")).is_err());
    }
}
