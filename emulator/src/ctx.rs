//! The request and answer types every handler shares: `Ctx` (one request, with the caller's
//! token `Claims`), `Reply` (a handler's answer) and the common answers (ARM error envelope,
//! JSON body parsing, paging, 405). Below the server and the handlers; needs neither.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Inner;

/// Claims of a validated token.
#[derive(Clone, Debug)]
pub(crate) struct Claims {
    pub oid: String,
}

/// A handler's answer.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
    /// The state changed (counts as a write; persisted).
    pub changed: bool,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: Some(body), headers: Vec::new(), changed: false }
    }
    pub fn empty(status: u16) -> Reply {
        Reply { status, body: None, headers: Vec::new(), changed: false }
    }
    /// ARM error envelope.
    pub fn arm_error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        Reply::json(status, json!({"error": {"code": code, "message": message.into()}}))
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn changed(mut self) -> Reply {
        self.changed = true;
        self
    }
}

/// One request, as the handlers see it.
pub(crate) struct Ctx {
    pub inner: Arc<Inner>,
    pub method: String,
    /// Raw path as received (for nextLink).
    pub raw_path: String,
    pub query: Vec<(String, String)>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub caller: Option<Claims>,
}

impl Ctx {
    pub fn query(&self, k: &str) -> Option<String> {
        self.query.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone())
    }
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    pub fn api_version(&self) -> String {
        self.query("api-version").unwrap_or_default()
    }
    pub fn caller_oid(&self) -> Option<String> {
        self.caller.as_ref().map(|c| c.oid.clone()).filter(|o| !o.is_empty())
    }
    pub fn json_body(&self) -> Result<Value, Reply> {
        if self.body.is_empty() {
            return Err(Reply::arm_error(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: the body is empty.",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            Reply::arm_error(
                400,
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: '{e}'."),
            )
        })
    }
    /// One page of `items`, with an absolute `nextLink` when more follow.
    pub fn page(&self, items: Vec<Value>) -> Reply {
        let size = self.inner.config.page_size.max(1);
        let skip: usize = self.query("$skipToken").and_then(|s| s.parse().ok()).unwrap_or(0);
        let total = items.len();
        let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
        let mut body = json!({"value": value});
        if skip + size < total {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.query {
                if !k.eq_ignore_ascii_case("$skipToken") {
                    ser.append_pair(k, v);
                }
            }
            ser.append_pair("$skipToken", &(skip + size).to_string());
            body["nextLink"] = Value::String(format!("{}{}?{}", self.inner.base_url, self.raw_path, ser.finish()));
        }
        Reply::json(200, body)
    }
}

pub(crate) fn method_not_allowed(ctx: &Ctx) -> Reply {
    Reply::arm_error(
        405,
        "MethodNotAllowed",
        format!("The requested method '{}' is not allowed for '{}'.", ctx.method, ctx.raw_path),
    )
}
