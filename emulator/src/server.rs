//! HTTP serving (hyper directly, so that a fault can close a connection without an answer),
//! and the request pipeline: faults → authentication → subscription (known, accessible) →
//! throttling → api-version of the resource type → handler → headers and stats; and the
//! dispatch of each route to its handler. `Ctx` and `Reply` live in `ctx.rs`.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::Inner;
use crate::ctx::{Ctx, Reply, method_not_allowed};
use crate::faults::Fault;
use crate::routes::{Route, classify, op_name, route_subscription};
use crate::throttle::Class;
use crate::token;

/// Returned by the service to make hyper drop the connection without an answer.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose (fault injection)")
    }
}

impl std::error::Error for DropConnection {}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    inner: Arc<Inner>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let inner = inner.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(inner.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(reply.status);
    let body = match &reply.body {
        Some(v) => {
            b = b.header("content-type", "application/json; charset=utf-8");
            Bytes::from(serde_json::to_vec(v).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    for (k, v) in &reply.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Full::new(body)).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| DropConnection)?.to_bytes();
    let raw_path = parts.uri.path().to_string();
    let decoded = percent_encoding::percent_decode_str(&raw_path).decode_utf8_lossy().to_string();
    let segs: Vec<String> = decoded.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let method = parts.method.as_str().to_ascii_uppercase();
    let route = classify(&segs);
    let mut ctx = Ctx {
        inner: inner.clone(),
        method: method.clone(),
        raw_path,
        query,
        headers: parts.headers,
        body,
        caller: None,
    };
    if let Route::Admin(rest) = &route {
        return Ok(to_response(crate::admin::admin(&ctx, rest)));
    }
    let op = op_name(&route, &method);
    let is_token = matches!(route, Route::Token(_) | Route::Discovery | Route::OpenId(_) | Route::Imds);
    let is_arm = !is_token;
    let class = Class::of(&method);

    // 1. Faults.
    let (latency, fault, retry_after) = {
        let mut f = inner.faults.lock().unwrap_or_else(|e| e.into_inner());
        if f.applies(op, is_token) {
            let (l, fault) = f.roll();
            // Never `Retry-After: 0`: SDKs read it as no header and wait their own default.
            (l, fault, f.faults.throttle_retry_after_secs.max(1))
        } else {
            (std::time::Duration::ZERO, None, 0)
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let finish = |mut reply: Reply, remaining: Option<u64>| {
        reply.headers.push(("x-ms-request-id".into(), request_id.clone()));
        reply.headers.push(("x-ms-correlation-request-id".into(), request_id.clone()));
        if is_arm {
            let n = remaining.unwrap_or_else(|| class.unthrottled_remaining());
            reply.headers.push((class.header().into(), n.to_string()));
        }
        reply
    };
    let count_fault = |status: u16| {
        let mut s = inner.lock_stats();
        s.faults += 1;
        s.record(op, status);
    };
    match fault {
        Some(Fault::Timeout) => {
            count_fault(0);
            let hold = inner.faults.lock().unwrap_or_else(|e| e.into_inner()).faults.timeout_hold;
            tokio::time::sleep(hold).await;
            return Err(DropConnection);
        }
        Some(Fault::ResetBefore) => {
            count_fault(0);
            return Err(DropConnection);
        }
        Some(Fault::Error(status)) => {
            count_fault(status);
            let reply = if status == 503 {
                Reply::arm_error(
                    503,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable. Please retry the request.",
                )
            } else {
                Reply::arm_error(
                    500,
                    "InternalServerError",
                    "Encountered internal server error. Diagnostic information: emulator fault injection.",
                )
            };
            return Ok(to_response(finish(reply, None)));
        }
        Some(Fault::Throttle) => {
            count_fault(429);
            let sub = route_subscription(&route).unwrap_or_default();
            let reply = Reply::arm_error(
                429,
                "SubscriptionRequestsThrottled",
                format!("Number of '{}' requests for subscription '{sub}' actor 'emulator' exceeded. Please try again after '{retry_after}' seconds.", class.word()),
            )
            .header("retry-after", retry_after.to_string());
            return Ok(to_response(finish(reply, Some(0))));
        }
        _ => {}
    }

    // 2. Authentication, subscription, throttling (ARM only).
    let mut remaining = None;
    if is_arm {
        if inner.config.require_auth {
            let authz = ctx.header("authorization");
            match token::validate_arm(&inner.token_secret, authz.as_deref()) {
                Ok(c) => ctx.caller = Some(c),
                Err((code, msg)) => {
                    inner.lock_stats().record(op, 401);
                    let tenant = inner.lock_state().tenant_id.clone();
                    let reply = Reply::arm_error(401, code, msg).header(
                        "www-authenticate",
                        format!("Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"{code}\"", inner.base_url),
                    );
                    return Ok(to_response(finish(reply, None)));
                }
            }
        }
        let sub = route_subscription(&route);
        if let Some(s) = &sub
            && !inner.lock_state().has_subscription(s)
        {
            inner.lock_stats().record(op, 404);
            let reply =
                Reply::arm_error(404, "SubscriptionNotFound", format!("The subscription '{s}' could not be found."));
            return Ok(to_response(finish(reply, None)));
        }
        if let Some(s) = &sub
            && let Some(reply) = crate::subscriptions::access_denied(&ctx, &route, s)
        {
            inner.lock_stats().record(op, reply.status);
            return Ok(to_response(finish(reply, None)));
        }
        if let Some(reply) = crate::rbac::authorize(&ctx, &route) {
            inner.lock_stats().record(op, reply.status);
            return Ok(to_response(finish(reply, None)));
        }
        let key = sub.clone().unwrap_or_else(|| "tenant".into());
        let taken = inner.throttle.lock().unwrap_or_else(|e| e.into_inner()).as_mut().map(|t| t.take(&key, class));
        match taken {
            Some(Ok(n)) => remaining = Some(n),
            Some(Err(wait)) => {
                inner.lock_stats().record(op, 429);
                let actor = ctx.caller_oid().unwrap_or_default();
                let scope = if sub.is_some() { "subscription" } else { "tenant" };
                let reply = Reply::arm_error(
                    429,
                    "SubscriptionRequestsThrottled",
                    format!("Number of '{}' requests for {scope} '{key}' actor '{actor}' exceeded. Please try again after '{wait}' seconds after the last request.", class.word()),
                )
                .header("retry-after", wait.to_string());
                return Ok(to_response(finish(reply, Some(0))));
            }
            None => {}
        }
    }

    // 3. The resource type's api-versions, then the handler.
    let reply = crate::providers::check_api_version(&ctx, &route).unwrap_or_else(|| dispatch(&ctx, &route));
    let status = reply.status;
    let changed = reply.changed && (200..300).contains(&status);
    {
        let mut s = inner.lock_stats();
        s.record(op, status);
        if changed {
            s.writes += 1;
        }
        if fault == Some(Fault::ResetAfter) {
            s.faults += 1;
        }
    }
    if changed {
        inner.persist();
    }
    if fault == Some(Fault::ResetAfter) {
        return Err(DropConnection);
    }
    Ok(to_response(finish(reply, remaining)))
}

fn dispatch(ctx: &Ctx, route: &Route) -> Reply {
    let m = ctx.method.as_str();
    match route {
        Route::Token(t) if m == "POST" => token::token_endpoint(ctx, t),
        Route::Discovery if m == "GET" => token::discovery(ctx),
        Route::OpenId(t) if m == "GET" => token::openid_configuration(ctx, t),
        Route::Imds if m == "GET" => token::imds(ctx),
        Route::Assignments { scope, name } => crate::authz::assignments(ctx, scope, name.as_deref()),
        Route::Definitions { scope, name } => crate::definitions::definitions(ctx, scope, name.as_deref()),
        Route::DenyAssignments { scope, name } if m == "GET" => {
            crate::deny::deny_assignments(ctx, scope, name.as_deref())
        }
        Route::Eligibilities { scope, name } if m == "GET" => crate::pim::eligibilities(ctx, scope, name.as_deref()),
        Route::ManagementGroup { id } if m == "GET" => crate::mgmt::management_group(ctx, id),
        Route::Entities if m == "POST" => crate::mgmt::entities(ctx),
        Route::ResourceGroup { sub, rg } => crate::iothub::resource_group(ctx, sub, rg),
        Route::HubList { sub, rg } if m == "GET" => crate::iothub::list(ctx, sub, rg.as_deref()),
        Route::Hub { sub, rg, name } => crate::iothub::hub(ctx, sub, rg, name),
        Route::HubKeys { sub, rg, name, key } if m == "POST" => {
            crate::iothub::list_keys(ctx, sub, rg, name, key.as_deref())
        }
        Route::OperationResult { id, .. } if m == "GET" => crate::iothub::operation_result(ctx, id),
        Route::DpsList { sub, rg } if m == "GET" => crate::dps::list(ctx, sub, rg.as_deref()),
        Route::Dps { sub, rg, name } => crate::dps::dps(ctx, sub, rg, name),
        Route::DpsOperationResult { sub, rg, name, id } if m == "GET" => {
            crate::dps::operation_result(ctx, sub, rg, name, id)
        }
        Route::SubscriptionList if m == "GET" => crate::subscriptions::list(ctx),
        Route::Subscription { sub } if m == "GET" => crate::subscriptions::get(ctx, sub),
        Route::Provider { sub, ns } if m == "GET" => crate::providers::get(ctx, sub, ns),
        Route::DuAccountList { sub, rg } if m == "GET" => crate::device_update::accounts(ctx, sub, rg.as_deref()),
        Route::DuAccount { sub, rg, name } if m == "GET" => crate::device_update::account(ctx, sub, rg, name),
        Route::DuInstanceList { sub, rg, account } if m == "GET" => {
            crate::device_update::instances(ctx, sub, rg, account)
        }
        Route::DuInstance { sub, rg, account, name } => crate::device_update::instance(ctx, sub, rg, account, name),
        Route::NotFound => Reply::arm_error(
            404,
            "NotFound",
            format!("No route for '{} {}' in the emulator.", ctx.method, ctx.raw_path),
        ),
        _ => method_not_allowed(ctx),
    }
}
