//! Credentials and clouds: where tokens come from and which endpoints a cloud uses.
//!
//! Chosen from the usual `AZURE_*` environment variables, in this order:
//! 1. workload identity (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`): the
//!    projected service-account token is re-read on every token request, because it rotates;
//! 2. client secret (`AZURE_CLIENT_SECRET`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`);
//! 3. managed identity (user-assigned when `AZURE_CLIENT_ID` is set, else system-assigned).
//!
//! Against an `https` authority the maintained `azure_identity` credentials do the work. Against
//! a plain-`http` authority (the local emulator, which `azure_identity` refuses) the same two
//! OAuth flows (client secret, federated assertion) run here over the project's HTTP client.
//! I/O: token requests and reading the federated token file. Tokens are never logged.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::AzureError;
use crate::domain::Cloud;

/// Something that hands out bearer tokens for a scope (`https://management.azure.com/.default`).
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    async fn token(&self, scope: &str) -> Result<String, AzureError>;
}

/// The `oid` claim (the identity's object id) of an Entra ID access token; `None` when the token is
/// not a JWT with one. The token is decoded, never verified (Azure verifies it) and never logged.
pub fn object_id_of(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let oid = claims.get("oid")?.as_str()?;
    uuid::Uuid::parse_str(oid).ok().map(|u| u.hyphenated().to_string())
}

/// How the operator authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialKind {
    WorkloadIdentity { tenant_id: String, client_id: String, token_file: PathBuf },
    ClientSecret { tenant_id: String, client_id: String, secret: String },
    ManagedIdentity { client_id: Option<String> },
}

impl fmt::Debug for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialKind::WorkloadIdentity { tenant_id, client_id, token_file } => f
                .debug_struct("WorkloadIdentity")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .finish(),
            CredentialKind::ClientSecret { tenant_id, client_id, .. } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
            CredentialKind::ManagedIdentity { client_id } => {
                f.debug_struct("ManagedIdentity").field("client_id", client_id).finish()
            }
        }
    }
}

impl CredentialKind {
    /// Pick the credential from environment variables (see the module docs).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<CredentialKind, String> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let tenant = var("AZURE_TENANT_ID");
        let client = var("AZURE_CLIENT_ID");
        if let Some(file) = var("AZURE_FEDERATED_TOKEN_FILE") {
            return match (tenant, client) {
                (Some(tenant_id), Some(client_id)) => {
                    Ok(CredentialKind::WorkloadIdentity { tenant_id, client_id, token_file: PathBuf::from(file) })
                }
                _ => Err("AZURE_FEDERATED_TOKEN_FILE is set but AZURE_TENANT_ID or AZURE_CLIENT_ID is missing: workload identity needs all three (the azure-workload-identity webhook sets them)".into()),
            };
        }
        if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            return match (tenant, client) {
                (Some(tenant_id), Some(client_id)) => Ok(CredentialKind::ClientSecret { tenant_id, client_id, secret }),
                _ => Err("AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID or AZURE_CLIENT_ID is missing".into()),
            };
        }
        Ok(CredentialKind::ManagedIdentity { client_id: client })
    }
}

/// Endpoints of the cloud in use, with the user's overrides applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudEndpoints {
    pub cloud: Cloud,
    /// ARM endpoint, no trailing slash (`--arm-endpoint` overrides).
    pub arm_endpoint: String,
    /// Entra authority host, no trailing slash (`--authority-host` or `AZURE_AUTHORITY_HOST`).
    pub authority_host: String,
    /// Token scope for ARM. Always the cloud's, even when the endpoint is overridden (an
    /// emulator or a private link still wants the cloud's audience).
    pub arm_scope: String,
}

impl CloudEndpoints {
    pub fn new(cloud: Cloud, arm_endpoint: Option<&str>, authority_host: Option<&str>) -> CloudEndpoints {
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        CloudEndpoints {
            cloud,
            arm_endpoint: arm_endpoint.map_or_else(|| cloud.arm_endpoint().to_string(), trim),
            authority_host: authority_host.map_or_else(|| cloud.authority_host().to_string(), trim),
            arm_scope: cloud.arm_scope(),
        }
    }
}

/// Build the token source for `kind` against `endpoints`.
pub fn token_source(
    kind: &CredentialKind,
    endpoints: &CloudEndpoints,
    http: reqwest::Client,
) -> Result<Arc<dyn TokenSource>, AzureError> {
    let unauth = |e: azure_core::Error| AzureError::Unauthenticated { message: e.to_string() };
    if endpoints.authority_host.starts_with("http://") {
        let flow = match kind {
            CredentialKind::ClientSecret { tenant_id, client_id, secret } => OAuthFlow {
                token_url: format!("{}/{tenant_id}/oauth2/v2.0/token", endpoints.authority_host),
                client_id: client_id.clone(),
                proof: Proof::Secret(secret.clone()),
            },
            CredentialKind::WorkloadIdentity { tenant_id, client_id, token_file } => OAuthFlow {
                token_url: format!("{}/{tenant_id}/oauth2/v2.0/token", endpoints.authority_host),
                client_id: client_id.clone(),
                proof: Proof::FederatedTokenFile(token_file.clone()),
            },
            CredentialKind::ManagedIdentity { .. } => {
                return Err(AzureError::Unauthenticated {
                    message: "managed identity needs Azure's instance metadata service; with an http authority host use a client secret or workload identity".into(),
                });
            }
        };
        return Ok(Arc::new(OAuthCredential { http, flow, cache: Mutex::new(HashMap::new()) }));
    }
    let cloud = Arc::new(match endpoints.cloud {
        _ if endpoints.authority_host != endpoints.cloud.authority_host() => {
            let mut custom = azure_core::cloud::CustomConfiguration::default();
            custom.authority_host = endpoints.authority_host.clone();
            azure_core::cloud::CloudConfiguration::Custom(custom)
        }
        Cloud::AzurePublicCloud => azure_core::cloud::CloudConfiguration::AzurePublic,
        Cloud::AzureChinaCloud => azure_core::cloud::CloudConfiguration::AzureChina,
        Cloud::AzureUsGovernment => azure_core::cloud::CloudConfiguration::AzureGovernment,
    });
    let options = azure_core::http::ClientOptions { cloud: Some(cloud), ..Default::default() };
    let credential: Arc<dyn azure_core::credentials::TokenCredential> = match kind {
        CredentialKind::WorkloadIdentity { tenant_id, client_id, token_file } => {
            azure_identity::WorkloadIdentityCredential::new(Some(azure_identity::WorkloadIdentityCredentialOptions {
                credential_options: azure_identity::ClientAssertionCredentialOptions { client_options: options },
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(token_file.clone()),
            }))
            .map_err(unauth)?
        }
        CredentialKind::ClientSecret { tenant_id, client_id, secret } => azure_identity::ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            secret.clone().into(),
            Some(azure_identity::ClientSecretCredentialOptions { client_options: options }),
        )
        .map_err(unauth)?,
        CredentialKind::ManagedIdentity { client_id } => {
            azure_identity::ManagedIdentityCredential::new(Some(azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(azure_identity::UserAssignedId::ClientId),
                client_options: options,
            }))
            .map_err(unauth)?
        }
    };
    Ok(Arc::new(EntraCredential { inner: credential }))
}

/// `azure_identity` 1.x credentials (they cache tokens themselves).
struct EntraCredential {
    inner: Arc<dyn azure_core::credentials::TokenCredential>,
}

impl fmt::Debug for EntraCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraCredential").finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenSource for EntraCredential {
    async fn token(&self, scope: &str) -> Result<String, AzureError> {
        self.inner
            .get_token(&[scope], None)
            .await
            .map(|t| t.token.secret().to_string())
            .map_err(|e| AzureError::Unauthenticated { message: e.to_string() })
    }
}

#[derive(Clone)]
enum Proof {
    Secret(String),
    /// Re-read on every request: the projected token rotates.
    FederatedTokenFile(PathBuf),
}

#[derive(Clone)]
struct OAuthFlow {
    token_url: String,
    client_id: String,
    proof: Proof,
}

/// The client-credentials flow of Entra ID v2 over the project's HTTP client, for authorities
/// `azure_identity` will not talk to (plain http: the emulator). Caches tokens per scope until
/// five minutes before expiry (halfway, for tokens that live less than ten minutes).
struct OAuthCredential {
    http: reqwest::Client,
    flow: OAuthFlow,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl fmt::Debug for OAuthCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthCredential")
            .field("token_url", &self.flow.token_url)
            .field("client_id", &self.flow.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: serde_json::Value,
}

#[async_trait]
impl TokenSource for OAuthCredential {
    async fn token(&self, scope: &str) -> Result<String, AzureError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, until)) = cache.get(scope)
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.flow.client_id.clone()),
            ("scope", scope.to_string()),
        ];
        match &self.flow.proof {
            Proof::Secret(s) => form.push(("client_secret", s.clone())),
            Proof::FederatedTokenFile(path) => {
                let assertion = tokio::fs::read_to_string(path).await.map_err(|e| AzureError::Unauthenticated {
                    message: format!("cannot read the federated token file {}: {e}", path.display()),
                })?;
                form.push(("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()));
                form.push(("client_assertion", assertion.trim().to_string()));
            }
        }
        let rsp = self
            .http
            .post(&self.flow.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| AzureError::Transient { message: format!("token request failed: {e}") })?;
        let status = rsp.status();
        let body = rsp.bytes().await.map_err(|e| AzureError::Transient { message: e.to_string() })?;
        if !status.is_success() {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let err = v.get("error").and_then(|e| e.as_str()).unwrap_or("unknown");
            let desc = v.get("error_description").and_then(|e| e.as_str()).unwrap_or("");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                AzureError::Transient { message: format!("token endpoint answered {status}: {err}") }
            } else {
                AzureError::Unauthenticated { message: format!("token endpoint answered {status}: {err}: {desc}") }
            });
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| AzureError::Unauthenticated { message: format!("unexpected token response: {e}") })?;
        let secs = match &parsed.expires_in {
            serde_json::Value::Number(n) => n.as_u64().unwrap_or(300),
            serde_json::Value::String(s) => s.parse().unwrap_or(300),
            _ => 300,
        };
        // Refresh five minutes before expiry, or halfway through a token that lives less than
        // ten minutes.
        let until = Instant::now() + Duration::from_secs(secs - (secs / 2).min(300));
        cache.insert(scope.to_string(), (parsed.access_token.clone(), until));
        Ok(parsed.access_token)
    }
}

/// The legacy authorization crate's credential trait, over any [`TokenSource`].
#[derive(Debug)]
pub struct LegacyCredential(pub Arc<dyn TokenSource>);

#[async_trait]
impl azure_core_legacy::auth::TokenCredential for LegacyCredential {
    async fn get_token(&self, scopes: &[&str]) -> azure_core_legacy::Result<azure_core_legacy::auth::AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let token = self
            .0
            .token(scope)
            .await
            .map_err(|e| azure_core_legacy::Error::new(azure_core_legacy::error::ErrorKind::Credential, e))?;
        // Expiry is managed by the token source; the legacy crate asks on every request anyway.
        Ok(azure_core_legacy::auth::AccessToken::new(
            azure_core_legacy::auth::Secret::new(token),
            time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        ))
    }

    async fn clear_cache(&self) -> azure_core_legacy::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn picks_workload_identity_then_secret_then_managed_identity() {
        let wi = CredentialKind::from_env(env(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_SECRET", "s"),
        ]))
        .unwrap();
        assert!(matches!(wi, CredentialKind::WorkloadIdentity { .. }));
        let cs = CredentialKind::from_env(env(&[
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_SECRET", "s"),
        ]));
        assert!(matches!(cs, Ok(CredentialKind::ClientSecret { .. })));
        assert!(!format!("{:?}", cs.unwrap()).contains("\"s\""), "the secret is never printed");
        assert_eq!(
            CredentialKind::from_env(env(&[("AZURE_CLIENT_ID", "c")])).unwrap(),
            CredentialKind::ManagedIdentity { client_id: Some("c".into()) }
        );
        assert_eq!(CredentialKind::from_env(env(&[])).unwrap(), CredentialKind::ManagedIdentity { client_id: None });
        assert!(CredentialKind::from_env(env(&[("AZURE_FEDERATED_TOKEN_FILE", "/f")])).is_err());
    }

    #[test]
    fn clouds_select_endpoints_and_overrides_win() {
        let cn = CloudEndpoints::new(Cloud::AzureChinaCloud, None, None);
        assert_eq!(cn.arm_endpoint, "https://management.chinacloudapi.cn");
        assert_eq!(cn.authority_host, "https://login.chinacloudapi.cn");
        assert_eq!(cn.arm_scope, "https://management.chinacloudapi.cn/.default");
        let gov = CloudEndpoints::new(Cloud::AzureUsGovernment, Some("http://127.0.0.1:8443/"), None);
        assert_eq!(gov.arm_endpoint, "http://127.0.0.1:8443");
        assert_eq!(gov.arm_scope, "https://management.usgovcloudapi.net/.default");
        assert_eq!(Cloud::AzureUsGovernment.iothub_host_suffix(), "azure-devices.us");
    }
}
