//! The Entra ID v2 token endpoint, the MSAL discovery documents and IMDS. Tokens are JWT-shaped
//! (`header.payload.signature`, base64url); the signature is a keyed hash with a per-emulator
//! random secret, so only tokens this emulator issued validate.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::ctx::{Claims, Ctx, Reply};

/// Audiences ARM accepts.
const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com/",
    "https://management.chinacloudapi.cn/",
    "https://management.usgovcloudapi.net/",
    "https://management.core.windows.net/",
    "https://management.core.chinacloudapi.cn/",
    "https://management.core.usgovcloudapi.net/",
];

fn sign(secret: &str, msg: &str) -> String {
    let mut out = Vec::with_capacity(32);
    for i in 0u8..4 {
        let mut h = DefaultHasher::new();
        secret.hash(&mut h);
        i.hash(&mut h);
        msg.hash(&mut h);
        out.extend(h.finish().to_be_bytes());
    }
    B64.encode(out)
}

fn is_arm_audience(aud: &str) -> bool {
    let a = format!("{}/", aud.trim_end_matches('/')).to_ascii_lowercase();
    ARM_AUDIENCES.contains(&a.as_str())
}

/// Audience for a v2 scope (`X/.default`) or v1 resource; ARM audiences get a trailing slash.
fn audience_of(scope_or_resource: &str) -> String {
    let first = scope_or_resource.split_whitespace().find(|s| s.ends_with("/.default")).unwrap_or(scope_or_resource);
    let base = first.trim_end_matches("/.default").trim_end_matches('/');
    if is_arm_audience(base) { format!("{base}/") } else { base.to_string() }
}

/// Issue a token valid for `ttl_secs` (negative: already expired).
pub(crate) fn issue(secret: &str, base_url: &str, aud: &str, tid: &str, oid: &str, ttl_secs: i64) -> String {
    let now = jiff::Timestamp::now().as_second();
    let header = B64.encode(json!({"typ": "JWT", "alg": "none", "kid": "emulator"}).to_string());
    let payload = B64.encode(
        json!({
            "aud": aud, "iss": format!("{base_url}/{tid}/v2.0"), "iat": now, "nbf": now, "exp": now + ttl_secs,
            "tid": tid, "oid": oid, "sub": oid, "appid": oid, "azp": oid, "ver": "2.0"
        })
        .to_string(),
    );
    let msg = format!("{header}.{payload}");
    let sig = sign(secret, &msg);
    format!("{msg}.{sig}")
}

/// Check an ARM bearer token. Err: (code, message) for a 401.
pub(crate) fn validate_arm(secret: &str, authorization: Option<&str>) -> Result<Claims, (&'static str, String)> {
    let Some(h) = authorization else {
        return Err((
            "InvalidAuthenticationToken",
            "Authentication failed. The 'Authorization' header is missing.".into(),
        ));
    };
    let Some(token) = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")) else {
        return Err((
            "InvalidAuthenticationToken",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.".into(),
        ));
    };
    let bad = || ("InvalidAuthenticationToken", "The access token is invalid.".to_string());
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    if sign(secret, &format!("{}.{}", parts[0], parts[1])) != parts[2] {
        return Err(("InvalidAuthenticationToken", "The access token signature is invalid.".into()));
    }
    let payload: Value = B64.decode(parts[1]).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(bad)?;
    let aud = payload.get("aud").and_then(Value::as_str).unwrap_or("");
    if !is_arm_audience(aud) {
        return Err((
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
            ),
        ));
    }
    let exp = payload.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp <= jiff::Timestamp::now().as_second() {
        return Err((
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.".into(),
        ));
    }
    Ok(Claims { oid: payload.get("oid").and_then(Value::as_str).unwrap_or("").to_string() })
}

fn aad_error(status: u16, error: &str, code: u32, text: &str) -> Reply {
    let trace = uuid::Uuid::new_v4();
    let corr = uuid::Uuid::new_v4();
    let ts = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string();
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace.to_string(),
            "correlation_id": corr.to_string(),
            "error_uri": "https://login.microsoftonline.com/error?code=".to_string() + &code.to_string()
        }),
    )
}

fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.trim().split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty() && B64.decode(p.trim_end_matches('=')).is_ok())
        && parts[2].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '=')
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn token_endpoint(ctx: &Ctx, tenant: &str) -> Reply {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&ctx.body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let state_tenant = ctx.inner.state.lock().unwrap_or_else(|e| e.into_inner()).tenant_id.clone();
    let tenant_ok = tenant.eq_ignore_ascii_case(&state_tenant)
        || ["common", "organizations"].contains(&tenant.to_ascii_lowercase().as_str());
    if !tenant_ok {
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if get("grant_type").as_deref() != Some("client_credentials") {
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type. Only 'client_credentials' is supported by this emulator.",
        );
    }
    let Some(client_id) = get("client_id").filter(|c| !c.is_empty()) else {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(scope) = get("scope").filter(|s| !s.is_empty()) else {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    if !scope.split_whitespace().any(|s| s.ends_with("/.default")) {
        return aad_error(
            400,
            "invalid_scope",
            70011,
            &format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. The client credentials flow requires a scope ending in /.default."
            ),
        );
    }
    let assertion = get("client_assertion");
    let secret = get("client_secret");
    if let Some(a) = &assertion {
        if get("client_assertion_type").as_deref() != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
            return aad_error(
                400,
                "invalid_request",
                700025,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        if !looks_like_jwt(a) {
            return aad_error(400, "invalid_request", 50027, "JWT token is invalid or malformed.");
        }
    } else if secret.is_none() {
        return aad_error(
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        );
    }
    let clients = ctx.inner.state.lock().unwrap_or_else(|e| e.into_inner()).clients.clone();
    if !clients.is_empty() {
        let Some(c) = clients.iter().find(|c| c.client_id.eq_ignore_ascii_case(&client_id)) else {
            return aad_error(
                401,
                "invalid_client",
                700016,
                &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
            );
        };
        if assertion.is_none() && c.secret.as_deref() != secret.as_deref() {
            return aad_error(
                401,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
    }
    if let Some(a) = assertion {
        ctx.inner.lock_stats().federated_assertions.push(a);
    }
    let aud = audience_of(&scope);
    let life = ctx.inner.config.token_lifetime_secs;
    let token = issue(&ctx.inner.token_secret, &ctx.inner.base_url, &aud, &state_tenant, &client_id, life as i64);
    Reply::json(200, json!({"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token}))
}

/// `GET /metadata/identity/oauth2/token` (IMDS, v1 `resource`, string-typed numbers).
pub(crate) fn imds(ctx: &Ctx) -> Reply {
    let metadata = ctx.header("metadata").unwrap_or_default();
    if !metadata.eq_ignore_ascii_case("true") {
        return Reply::json(
            400,
            json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"}),
        );
    }
    let Some(resource) = ctx.query("resource").filter(|r| !r.is_empty()) else {
        return Reply::json(
            400,
            json!({"error": "invalid_request", "error_description": "Required query variable 'resource' is missing"}),
        );
    };
    if ctx.query("api-version").is_none() {
        return Reply::json(
            400,
            json!({"error": "invalid_request", "error_description": "Required query variable 'api-version' is missing"}),
        );
    }
    let oid = ctx
        .query("client_id")
        .or_else(|| ctx.query("object_id"))
        .unwrap_or_else(|| uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"imds-system-assigned").to_string());
    let tenant = ctx.inner.state.lock().unwrap_or_else(|e| e.into_inner()).tenant_id.clone();
    let aud = audience_of(&resource);
    let token = issue(&ctx.inner.token_secret, &ctx.inner.base_url, &aud, &tenant, &oid, 3599);
    let now = jiff::Timestamp::now().as_second();
    Reply::json(
        200,
        json!({
            "access_token": token, "refresh_token": "", "expires_in": "3599",
            "expires_on": (now + 3599).to_string(), "not_before": now.to_string(),
            "resource": resource, "token_type": "Bearer", "client_id": oid
        }),
    )
}

/// `GET /common/discovery/instance`.
pub(crate) fn discovery(ctx: &Ctx) -> Reply {
    let base = &ctx.inner.base_url;
    let host = base.trim_start_matches("http://").to_string();
    let tenant = ctx.inner.state.lock().unwrap_or_else(|e| e.into_inner()).tenant_id.clone();
    Reply::json(
        200,
        json!({
            "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
        }),
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) fn openid_configuration(ctx: &Ctx, tenant: &str) -> Reply {
    let base = &ctx.inner.base_url;
    Reply::json(
        200,
        json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tenant}/v2.0"),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "emulator",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com"
        }),
    )
}
