//! The three providers: endpoints, client settings, the code exchange, who the user is at the
//! provider, token refresh and revocation. Provider answers are never echoed or logged.

use std::time::Duration as StdDuration;

use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
    basic::{
        BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
        BasicTokenIntrospectionResponse, BasicTokenType,
    },
};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use super::id_token::{self, JwksCache};
use crate::{
    config::{Config, OAuthProvider, Secret},
    error::{AppError, AppResult},
};

/// A provider we can sign in with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// Google (OpenID Connect).
    Google,
    /// Naver.
    Naver,
    /// Kakao.
    Kakao,
}

impl ProviderId {
    /// Every provider, in the order they are offered.
    pub const ALL: [Self; 3] = [Self::Google, Self::Naver, Self::Kakao];

    /// The name in URLs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Naver => "naver",
            Self::Kakao => "kakao",
        }
    }

    /// The sign-in method recorded in login history and sessions.
    pub fn method(self) -> &'static str {
        match self {
            Self::Google => "OAUTH_GOOGLE",
            Self::Naver => "OAUTH_NAVER",
            Self::Kakao => "OAUTH_KAKAO",
        }
    }

    /// Parses a path segment; unknown names are 404.
    pub fn parse(raw: &str) -> AppResult<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(AppError::not_found)
    }
}

/// Errors of the OAuth flows (stable codes; provider text never reaches the client).
pub mod errors {
    use crate::error::AppError;
    use axum::http::StatusCode;

    /// 400 `oauth_state_invalid`: missing, mismatched, replayed or expired `state`.
    pub fn state_invalid() -> AppError {
        AppError::bad_request(
            "oauth_state_invalid",
            "This sign-in link is invalid, was already used or has expired; start again.",
        )
    }
    /// 400 `oauth_denied`: the provider (or the user there) refused.
    pub fn denied() -> AppError {
        AppError::bad_request(
            "oauth_denied",
            "The provider did not grant the sign-in; start again if you want to.",
        )
    }
    /// 400 `oauth_code_invalid`: the provider refused the authorization code.
    pub fn code_invalid() -> AppError {
        AppError::bad_request(
            "oauth_code_invalid",
            "The provider refused the authorization code (used already or expired); start again.",
        )
    }
    /// 401 `oauth_token_invalid`: the identity the provider sent cannot be trusted.
    pub fn token_invalid(detail: &str) -> AppError {
        AppError::unauthorized("oauth_token_invalid", detail.to_owned())
    }
    /// 502 `oauth_provider_error`: the provider answered something unusable.
    pub fn provider_error() -> AppError {
        AppError::new(
            StatusCode::BAD_GATEWAY,
            "oauth_provider_error",
            "The sign-in provider answered with an error; try again later or use another way to sign in.",
        )
    }
    /// 503 `oauth_provider_unavailable`: the provider could not be reached.
    pub fn provider_unavailable() -> AppError {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "oauth_provider_unavailable",
            "The sign-in provider cannot be reached right now; try again later or use another way to sign in.",
        )
    }
}

/// A configured provider.
#[derive(Clone, Debug)]
pub struct Provider {
    /// Which one.
    pub id: ProviderId,
    client_id: String,
    client_secret: Option<Secret>,
    authorize_url: Url,
    token_url: Url,
    userinfo_url: Url,
    jwks_url: Url,
    revoke_url: Url,
}

fn url_or(value: &Option<String>, default: &str, key: &str) -> anyhow::Result<Url> {
    let raw = value.as_deref().unwrap_or(default);
    Url::parse(raw).map_err(|e| anyhow::anyhow!("{key}: `{raw}` is not a URL: {e}"))
}

impl Provider {
    fn from_config(id: ProviderId, c: &OAuthProvider) -> anyhow::Result<Option<Self>> {
        let Some(client_id) = c.client_id.clone().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let (authorize, token, userinfo, jwks, revoke) = match id {
            ProviderId::Google => (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://openidconnect.googleapis.com/v1/userinfo",
                "https://www.googleapis.com/oauth2/v3/certs",
                "https://oauth2.googleapis.com/revoke",
            ),
            ProviderId::Naver => (
                "https://nid.naver.com/oauth2.0/authorize",
                "https://nid.naver.com/oauth2.0/token",
                "https://openapi.naver.com/v1/nid/me",
                "https://nid.naver.com/oauth2.0/jwks",
                // Naver deletes a grant at its token endpoint (`grant_type=delete`).
                "https://nid.naver.com/oauth2.0/token",
            ),
            ProviderId::Kakao => (
                "https://kauth.kakao.com/oauth/authorize",
                "https://kauth.kakao.com/oauth/token",
                "https://kapi.kakao.com/v2/user/me",
                "https://kauth.kakao.com/.well-known/jwks.json",
                "https://kapi.kakao.com/v1/user/unlink",
            ),
        };
        let key = |k: &str| format!("OAUTH__{}__{k}", id.as_str().to_ascii_uppercase());
        Ok(Some(Self {
            id,
            client_id,
            client_secret: c.client_secret.clone(),
            authorize_url: url_or(&c.authorize_url, authorize, &key("AUTHORIZE_URL"))?,
            token_url: url_or(&c.token_url, token, &key("TOKEN_URL"))?,
            userinfo_url: url_or(&c.userinfo_url, userinfo, &key("USERINFO_URL"))?,
            jwks_url: url_or(&c.jwks_url, jwks, &key("JWKS_URL"))?,
            revoke_url: url_or(&c.revoke_url, revoke, &key("REVOKE_URL"))?,
        }))
    }

    fn scopes(&self) -> &'static [&'static str] {
        match self.id {
            ProviderId::Google => &["openid", "email", "profile"],
            // Naver grants what the application registered; it takes no scope parameter.
            ProviderId::Naver => &[],
            ProviderId::Kakao => &["account_email", "profile_nickname"],
        }
    }

    fn client(&self, redirect_uri: &str) -> AppResult<OAuthClient> {
        let auth_type = match self.id {
            // Kakao reads client credentials from the body only.
            ProviderId::Kakao | ProviderId::Naver => AuthType::RequestBody,
            ProviderId::Google => AuthType::BasicAuth,
        };
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| bad_redirect_uri())?;
        let mut client = oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()))
            .set_redirect_uri(redirect)
            .set_auth_type(auth_type);
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(client)
    }

    /// The authorization URL for a new redirect.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: PkceCodeChallenge,
        nonce: &str,
    ) -> AppResult<Url> {
        let client = self.client(redirect_uri)?;
        let state = state.to_owned();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes().iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge);
        if self.id == ProviderId::Google {
            // A refresh token lets us revoke the grant when the user unlinks Google.
            request = request
                .add_extra_param("nonce", nonce.to_owned())
                .add_extra_param("access_type", "offline");
        }
        Ok(request.url().0)
    }
}

fn bad_redirect_uri() -> AppError {
    AppError::invalid_field("redirect_uri", "invalid", "must be an absolute URL")
}

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    ProviderTokens,
    BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A token response of any of the three: Naver sends `expires_in` as a string, Google adds
/// `id_token`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ProviderTokens {
    access_token: oauth2::AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
    refresh_token: Option<RefreshToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip)]
    scopes: Option<Vec<Scope>>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Number(n)) => Some(n),
        Some(Raw::Text(s)) => s.trim().parse().ok(),
        None => None,
    })
}

impl TokenResponse for ProviderTokens {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<StdDuration> {
        self.expires_in.map(StdDuration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

/// Who the user is at the provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProviderIdentity {
    /// The provider.
    pub provider: ProviderId,
    /// The provider's stable user id.
    pub subject: String,
    /// Address, if the provider gave one.
    pub email: Option<String>,
    /// Whether the provider vouches for the address.
    pub email_verified: bool,
    /// Display name, if any.
    pub name: Option<String>,
    /// Kept (encrypted) to revoke the grant on unlink.
    pub refresh_token: Option<String>,
}

impl ProviderIdentity {
    /// The address only when the provider vouches for it.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }
}

/// The configured providers and the HTTP client that talks to them.
pub struct OAuth {
    providers: Vec<Provider>,
    http: reqwest::Client,
    jwks: JwksCache,
}

impl OAuth {
    /// Reads `OAUTH__*`; a provider without a client id is off.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mut providers = Vec::new();
        for (id, c) in [
            (ProviderId::Google, &config.oauth.google),
            (ProviderId::Naver, &config.oauth.naver),
            (ProviderId::Kakao, &config.oauth.kakao),
        ] {
            if let Some(p) = Provider::from_config(id, c)? {
                providers.push(p);
            }
        }
        let http = reqwest::Client::builder()
            // A provider must not bounce us elsewhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(StdDuration::from_secs(5))
            .timeout(StdDuration::from_secs(10))
            .build()
            .map_err(|e| anyhow::anyhow!("OAuth HTTP client: {e}"))?;
        Ok(Self {
            providers,
            http,
            jwks: JwksCache::default(),
        })
    }

    /// The configured providers.
    pub fn configured(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter()
    }

    /// A configured provider; 404 when it is off.
    pub fn get(&self, id: ProviderId) -> AppResult<&Provider> {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(AppError::not_found)
    }

    /// Trades an authorization code for tokens and finds out who the user is. `nonce` is
    /// checked against Google's ID token when given (always, for our own redirects).
    pub async fn identify(
        &self,
        provider: &Provider,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: Option<&str>,
        now: time::OffsetDateTime,
    ) -> AppResult<ProviderIdentity> {
        let client = provider.client(redirect_uri)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(provider.id, e))?;
        let refresh_token = tokens.refresh_token.as_ref().map(|t| t.secret().clone());
        let mut identity = match provider.id {
            ProviderId::Google => {
                let raw = tokens
                    .id_token
                    .as_deref()
                    .ok_or_else(|| errors::token_invalid("Google sent no ID token."))?;
                let claims = id_token::verify(
                    &self.jwks,
                    &self.http,
                    &provider.jwks_url,
                    raw,
                    &provider.client_id,
                    nonce,
                    now,
                )
                .await?;
                ProviderIdentity {
                    provider: provider.id,
                    subject: claims.sub,
                    email: claims.email,
                    email_verified: claims.email_verified,
                    name: claims.name,
                    refresh_token: None,
                }
            }
            ProviderId::Naver => {
                self.naver_user(provider, tokens.access_token.secret())
                    .await?
            }
            ProviderId::Kakao => {
                self.kakao_user(provider, tokens.access_token.secret())
                    .await?
            }
        };
        identity.refresh_token = refresh_token;
        Ok(identity)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        provider: ProviderId,
        url: &Url,
        access_token: &str,
    ) -> AppResult<T> {
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| transport_error(provider, "user info", &e))?;
        if !response.status().is_success() {
            tracing::warn!(
                provider = provider.as_str(),
                status = response.status().as_u16(),
                "user info request refused"
            );
            return Err(errors::provider_error());
        }
        response.json::<T>().await.map_err(|_| {
            tracing::warn!(
                provider = provider.as_str(),
                "user info response unreadable"
            );
            errors::provider_error()
        })
    }

    async fn naver_user(
        &self,
        provider: &Provider,
        access_token: &str,
    ) -> AppResult<ProviderIdentity> {
        #[derive(Deserialize)]
        struct Me {
            resultcode: String,
            response: Option<Profile>,
        }
        #[derive(Deserialize)]
        struct Profile {
            id: String,
            email: Option<String>,
            name: Option<String>,
            nickname: Option<String>,
        }
        let me: Me = self
            .get_json(provider.id, &provider.userinfo_url, access_token)
            .await?;
        let profile = me
            .response
            .filter(|_| me.resultcode == "00")
            .filter(|p| !p.id.is_empty())
            .ok_or_else(errors::provider_error)?;
        Ok(ProviderIdentity {
            provider: provider.id,
            subject: profile.id,
            // Naver hands out only addresses its members confirmed (their Naver mail or a
            // verified contact address).
            email_verified: profile.email.is_some(),
            email: profile.email,
            name: profile.name.or(profile.nickname),
            refresh_token: None,
        })
    }

    async fn kakao_user(
        &self,
        provider: &Provider,
        access_token: &str,
    ) -> AppResult<ProviderIdentity> {
        #[derive(Deserialize)]
        struct Me {
            id: i64,
            #[serde(default)]
            kakao_account: Option<Account>,
        }
        #[derive(Deserialize, Default)]
        struct Account {
            email: Option<String>,
            #[serde(default)]
            is_email_valid: bool,
            #[serde(default)]
            is_email_verified: bool,
            profile: Option<Profile>,
        }
        #[derive(Deserialize, Default)]
        struct Profile {
            nickname: Option<String>,
        }
        let me: Me = self
            .get_json(provider.id, &provider.userinfo_url, access_token)
            .await?;
        let account = me.kakao_account.unwrap_or_default();
        Ok(ProviderIdentity {
            provider: provider.id,
            subject: me.id.to_string(),
            email_verified: account.email.is_some()
                && account.is_email_valid
                && account.is_email_verified,
            email: account.email,
            name: account.profile.and_then(|p| p.nickname),
            refresh_token: None,
        })
    }

    /// Ends our grant at the provider (on unlink): Google revokes the refresh token itself;
    /// Naver and Kakao need a fresh access token first, so the refresh token is used now.
    pub async fn revoke(&self, provider: &Provider, refresh_token: &str) -> AppResult<()> {
        let response = match provider.id {
            ProviderId::Google => {
                self.http
                    .post(provider.revoke_url.clone())
                    .form(&[("token", refresh_token)])
                    .send()
                    .await
            }
            ProviderId::Naver => {
                let access = self.refresh(provider, refresh_token).await?;
                let secret = provider
                    .client_secret
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .unwrap_or_default();
                self.http
                    .post(provider.revoke_url.clone())
                    .form(&[
                        ("grant_type", "delete"),
                        ("client_id", provider.client_id.as_str()),
                        ("client_secret", secret.as_str()),
                        ("access_token", access.as_str()),
                        ("service_provider", "NAVER"),
                    ])
                    .send()
                    .await
            }
            ProviderId::Kakao => {
                let access = self.refresh(provider, refresh_token).await?;
                self.http
                    .post(provider.revoke_url.clone())
                    .bearer_auth(access)
                    .send()
                    .await
            }
        }
        .map_err(|e| transport_error(provider.id, "revocation", &e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            tracing::warn!(
                provider = provider.id.as_str(),
                status = response.status().as_u16(),
                "revocation refused"
            );
            Err(errors::provider_error())
        }
    }

    /// A fresh access token from a stored refresh token.
    async fn refresh(&self, provider: &Provider, refresh_token: &str) -> AppResult<String> {
        // The redirect URI is not part of a refresh; any valid URL satisfies the builder.
        let client = provider.client("http://localhost/")?;
        let token = RefreshToken::new(refresh_token.to_owned());
        let tokens = client
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(provider.id, e))?;
        Ok(tokens.access_token.secret().clone())
    }
}

fn transport_error(provider: ProviderId, what: &str, e: &reqwest::Error) -> AppError {
    // The error text can carry URLs with codes in them: log only its kind.
    tracing::warn!(
        provider = provider.as_str(),
        timeout = e.is_timeout(),
        connect = e.is_connect(),
        "{what} request failed"
    );
    errors::provider_unavailable()
}

fn token_error(
    provider: ProviderId,
    e: RequestTokenError<oauth2::HttpClientError<reqwest::Error>, BasicErrorResponse>,
) -> AppError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            tracing::warn!(provider = provider.as_str(), error = %r.error(), "token request refused");
            match r.error() {
                BasicErrorResponseType::InvalidGrant => errors::code_invalid(),
                _ => errors::provider_error(),
            }
        }
        RequestTokenError::Request(_) => {
            tracing::warn!(provider = provider.as_str(), "token endpoint unreachable");
            errors::provider_unavailable()
        }
        RequestTokenError::Parse(_, _) | RequestTokenError::Other(_) => {
            tracing::warn!(provider = provider.as_str(), "token response unreadable");
            errors::provider_error()
        }
    }
}
