//! A fake OAuth provider for tests (an axum app on port 0): plays Google (signs ID tokens with
//! RS256, serves JWKS), Naver (`expires_in` as a string, a user-info envelope) and Kakao
//! (client credentials only in the body, an optional e-mail). Codes are single-use and bound to
//! the PKCE challenge and redirect URI, as at the real providers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use boxoffice::config::{OAuthConfig, OAuthProvider, Secret};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// The fake Google's signing key (a test key, generated for these tests only).
const GOOGLE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEuwIBADANBgkqhkiG9w0BAQEFAASCBKUwggShAgEAAoIBAQC08MDjVQpwJ/qy\noQQzG7yAWOIzVadDoWv4PcZ3f6L0lfgfT6uWtaEqW0Bc329ZsxKzeIpnCJsCiCea\nTfGfaPAf8GQ4LnpQ43AXrVUeEE8v/qfGjgdtIRx06YCCrPzJZQ+J8I2y37a1e+wr\niKLFhCztC1Ho7TSNSWq6j+KIQaZHBTLefqvD0XGs3ETdJVVbHznWmEKaoTAlIIPf\nX/Olwh6TEJHmNCjwRTN//Ilo1tne+vTrTtbPDyYVb/UL60i2fVN8E6NMEKd0hV78\nEm13/XQki+/kYNlE7WN+EhdhzRuaFJZ2Dz6zTJyJao9oEcboJOLc5xb57+t5D4ja\nY2eXvytpAgMBAAECgf8LED/9pnsOqoghi+8abZNLYdzmUQIVmePMYx+WFE+DwSWF\nZGn6a3CRWMHrEk9pz3GTcAmOikaXVfEwmkf/fTFpwQ3yMh8KXL01WyWyvLuJyTBV\nhLJ5KpSHBPDck0m5rHoqo6PxraplJ2DwpboLk2yJCRTrwA6bip8TswQGYRlcKv4R\n70dd6VP0KGryaovgkGapD7VlbHQormA2+GRgQwz/iO4zHouCPcZ68K0e0DI8PpD1\nCqjK3+JJHiMlhHwvyGy/P60jo6dJEXsadXn8Mw3KJwugA3gqGSXgUvo8yIjs8e24\nhhqHZ2CbzW9dWrDxKu6vfZBnFI74pkXA8E/wjNECgYEA/EuJ43wa8Yst3GAQRvqV\nQg4V9enCUOdjTYXMkbuGIv8GUSwaZpInwGBGL3WSrFI9tXkhdUvRInIQkcyqMlNo\nI4MgMbg7amAMcrSb+O21fNshQd5U4U1MC4FripNKxnGxlIIVvB3UxtA2yBzbd9Xv\n9FUiBX+38MCMOnzinrA5IM8CgYEAt5j4DuHQMftj46eYzgWWDkxivaUo+8+rM8xy\nZElqyvzZUPq0VxptCMnlbD7seKqXLnEHCCYXWQfWA2pV2+MMUmmugSouX03eNdsq\na2MmVc+W4L1Uoj5q+2G9REjHMOPxBT5xOfgWe+bBz/+4zH5kvYELGggR80Jw2w6E\nDhuYTkcCgYB/U9Q0RacHbjln9edhGwgG/TriD+ZslEqOjk8u4VgSA2j5wGtWhr6f\nHTdurkSmyR6xnn9fRjM20iBApOzkVynAemXeEd+SkQTXQwVQfQ9SAvlm18E4r50I\nVXmjxzA+tJRtobU8akW/TMfI+J9efE8MnYZ9Bfcb/uEGh46Ljd5XCwKBgCo8ucyK\nrJ/jCp7j/qZe6J+PeSPR7DTKGMPI5AQoU7YxJzmXA4gKX00nTW1yqGo2LKOVgx2f\nzb1ArT6J5wi4GiyXfXrfnl10h4tySTb9T2NsZ3R6eg79NxVv7d/YsmKP/fHL5LaG\nWX3Vn37fgL8i0MA8ALbTZnXFMjtjAoRQWuCfAoGBAMswFxUIgIC0s44yTKqkM/Pp\n4WaZg9/eOd6n9XOveGxVC7fMNqG3CxSPS7DMWgiebLI2ixhOJsn/Ys2vuVesTDH1\n6PzrJX3OoRNNMUTKgw8vCZiMmHwguJPgWSQ00HC/Rde7v7bF8AyIYkoQWlLKjDx3\ncJXl4bdgOffU4wnYe4r0\n-----END PRIVATE KEY-----";
/// Its public modulus (base64url), for the JWKS.
const GOOGLE_KEY_N: &str = "tPDA41UKcCf6sqEEMxu8gFjiM1WnQ6Fr-D3Gd3-i9JX4H0-rlrWhKltAXN9vWbMSs3iKZwibAognmk3xn2jwH_BkOC56UONwF61VHhBPL_6nxo4HbSEcdOmAgqz8yWUPifCNst-2tXvsK4iixYQs7QtR6O00jUlquo_iiEGmRwUy3n6rw9FxrNxE3SVVWx851phCmqEwJSCD31_zpcIekxCR5jQo8EUzf_yJaNbZ3vr0607Wzw8mFW_1C-tItn1TfBOjTBCndIVe_BJtd_10JIvv5GDZRO1jfhIXYc0bmhSWdg8-s0yciWqPaBHG6CTi3OcW-e_reQ-I2mNnl78raQ";
const GOOGLE_KID: &str = "fake-google-1";

/// Client credentials the fake expects.
pub const CLIENT_ID: &str = "boxoffice-test-client";
/// The matching secret.
pub const CLIENT_SECRET: &str = "boxoffice-test-secret";

/// Who the provider says the user is.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Provider user id.
    pub sub: String,
    /// Address, if any.
    pub email: Option<String>,
    /// Whether the provider vouches for it.
    pub email_verified: bool,
    /// Display name.
    pub name: String,
}

impl Profile {
    /// A user with a verified address.
    pub fn verified(email: &str) -> Self {
        Self {
            sub: format!("sub-{}", uuid::Uuid::now_v7().simple()),
            email: Some(email.to_owned()),
            email_verified: true,
            name: "김민지".into(),
        }
    }
}

/// How the fake misbehaves on the next requests.
#[derive(Clone, Debug, Default)]
pub struct Misbehave {
    /// The authorization page answers `error=access_denied`.
    pub deny: bool,
    /// The token endpoint answers an HTML error page (500).
    pub token_error_page: bool,
    /// ID tokens carry this nonce instead of the requested one.
    pub nonce: Option<String>,
    /// ID tokens expire this many seconds from now (default one hour).
    pub id_token_ttl: Option<i64>,
    /// ID tokens get a broken signature.
    pub tamper_signature: bool,
}

#[derive(Clone)]
struct Grant {
    provider: String,
    profile: Profile,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
}

#[derive(Default)]
struct Inner {
    next: HashMap<String, Profile>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, Profile>,
    refresh: HashMap<String, Profile>,
    revoked: Vec<String>,
    misbehave: Misbehave,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeProvider {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeProvider {
    /// Starts the fake on a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/{provider}/authorize", get(authorize))
            .route("/{provider}/token", post(token))
            .route("/google/jwks", get(jwks))
            .route("/google/revoke", post(google_revoke))
            .route("/naver/me", get(naver_me))
            .route("/kakao/me", get(kakao_me))
            .route("/kakao/unlink", post(kakao_unlink))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, inner }
    }

    /// Settings for every provider, pointing at this fake.
    pub fn config(&self) -> OAuthConfig {
        let provider = |name: &str| OAuthProvider {
            client_id: Some(CLIENT_ID.into()),
            client_secret: Some(Secret::new(CLIENT_SECRET)),
            authorize_url: Some(format!("{}/{name}/authorize", self.base)),
            token_url: Some(format!("{}/{name}/token", self.base)),
            userinfo_url: Some(format!("{}/{name}/me", self.base)),
            jwks_url: Some(format!("{}/{name}/jwks", self.base)),
            revoke_url: Some(match name {
                "naver" => format!("{}/naver/token", self.base),
                "kakao" => format!("{}/kakao/unlink", self.base),
                _ => format!("{}/{name}/revoke", self.base),
            }),
        };
        OAuthConfig {
            google: provider("google"),
            naver: provider("naver"),
            kakao: provider("kakao"),
        }
    }

    /// The user the provider's next authorization grants.
    pub fn sign_in_as(&self, provider: &str, profile: Profile) {
        self.lock().next.insert(provider.to_owned(), profile);
    }

    /// Changes how the fake behaves from now on.
    pub fn misbehave(&self, misbehave: Misbehave) {
        self.lock().misbehave = misbehave;
    }

    /// Grants revoked so far, as `provider`.
    pub fn revoked(&self) -> Vec<String> {
        self.lock().revoked.clone()
    }

    /// Issues a code directly (as if an app ran the redirect), for `POST /auth/oauth/{p}/token`.
    pub fn issue_code(
        &self,
        provider: &str,
        profile: Profile,
        redirect_uri: &str,
        verifier: &str,
        nonce: Option<&str>,
    ) -> String {
        let code = random();
        self.lock().codes.insert(
            code.clone(),
            Grant {
                provider: provider.to_owned(),
                profile,
                redirect_uri: redirect_uri.to_owned(),
                challenge: challenge(verifier),
                nonce: nonce.map(str::to_owned),
            },
        );
        code
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake provider lock")
    }
}

fn random() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The S256 PKCE challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

type Shared = State<Arc<Mutex<Inner>>>;

async fn authorize(
    State(inner): Shared,
    Path(provider): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    let ok = q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("response_type").map(String::as_str) == Some("code")
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.contains_key("code_challenge");
    if !ok {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let mut inner = inner.lock().expect("lock");
    let target = if inner.misbehave.deny {
        format!("{redirect_uri}?error=access_denied&error_description=User+denied&state={state}")
    } else {
        let Some(profile) = inner.next.get(&provider).cloned() else {
            return (StatusCode::BAD_REQUEST, "no user set up for this provider").into_response();
        };
        let code = random();
        inner.codes.insert(
            code.clone(),
            Grant {
                provider: provider.clone(),
                profile,
                redirect_uri: redirect_uri.clone(),
                challenge: q.get("code_challenge").cloned().unwrap_or_default(),
                nonce: q.get("nonce").cloned(),
            },
        );
        format!("{redirect_uri}?code={code}&state={state}&scope=email")
    };
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

fn oauth_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": code, "error_description": "secret provider detail"})),
    )
        .into_response()
}

async fn token(
    State(inner): Shared,
    Path(provider): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let body_creds = (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    );
    let creds_ok = match provider.as_str() {
        // Kakao reads the credentials from the body and refuses Basic authentication.
        "kakao" | "naver" => {
            headers.get(header::AUTHORIZATION).is_none()
                && body_creds == (Some(CLIENT_ID.into()), Some(CLIENT_SECRET.into()))
        }
        _ => basic_credentials(&headers) == Some((CLIENT_ID.into(), CLIENT_SECRET.into())),
    };
    if !creds_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut inner = inner.lock().expect("lock");
    if inner.misbehave.token_error_page {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Internal error at the provider</body></html>",
        )
            .into_response();
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some(grant) = inner.codes.remove(&code) else {
                return oauth_error("invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if grant.provider != provider
                || form.get("redirect_uri") != Some(&grant.redirect_uri)
                || challenge(&verifier) != grant.challenge
            {
                return oauth_error("invalid_grant");
            }
            let access = random();
            let refresh = random();
            inner.access.insert(access.clone(), grant.profile.clone());
            inner.refresh.insert(refresh.clone(), grant.profile.clone());
            match provider.as_str() {
                "google" => {
                    let nonce = inner.misbehave.nonce.clone().or(grant.nonce.clone());
                    let ttl = inner.misbehave.id_token_ttl.unwrap_or(3600);
                    let id_token = id_token(&grant.profile, nonce.as_deref(), ttl, inner.misbehave.tamper_signature);
                    Json(json!({"access_token": access, "token_type": "Bearer", "expires_in": 3599, "refresh_token": refresh, "id_token": id_token, "scope": "openid email profile"})).into_response()
                }
                // Naver sends `expires_in` as a string.
                "naver" => Json(json!({"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": "3600"})).into_response(),
                _ => Json(json!({"access_token": access, "token_type": "bearer", "refresh_token": refresh, "expires_in": 21599, "refresh_token_expires_in": 5183999, "scope": "account_email profile_nickname"})).into_response(),
            }
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let Some(profile) = inner.refresh.get(&presented).cloned() else {
                return oauth_error("invalid_grant");
            };
            let access = random();
            inner.access.insert(access.clone(), profile);
            let expires: Value = if provider == "naver" {
                json!("3600")
            } else {
                json!(3600)
            };
            Json(json!({"access_token": access, "token_type": "bearer", "expires_in": expires}))
                .into_response()
        }
        Some("delete") if provider == "naver" => {
            let access = form.get("access_token").cloned().unwrap_or_default();
            if inner.access.remove(&access).is_none() {
                return oauth_error("invalid_request");
            }
            inner.revoked.push("naver".into());
            Json(json!({"access_token": access, "result": "success"})).into_response()
        }
        _ => oauth_error("unsupported_grant_type"),
    }
}

fn id_token(profile: &Profile, nonce: Option<&str>, ttl: i64, tamper: bool) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = json!({
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "sub": profile.sub,
        "iat": now,
        "exp": now + ttl,
        "email_verified": profile.email_verified,
        "name": profile.name,
    });
    if let Some(email) = &profile.email {
        claims["email"] = json!(email);
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(GOOGLE_KID.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(GOOGLE_KEY_PEM.as_bytes()).expect("test key");
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign ID token");
    if !tamper {
        return token;
    }
    // Same header and signature, another subject: the signature no longer matches.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    claims["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    parts.join(".")
}

async fn jwks() -> Json<Value> {
    Json(
        json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": GOOGLE_KID, "n": GOOGLE_KEY_N, "e": "AQAB"}]}),
    )
}

fn bearer_profile(inner: &Inner, headers: &HeaderMap) -> Option<Profile> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    inner.access.get(token).cloned()
}

async fn naver_me(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().expect("lock");
    let Some(p) = bearer_profile(&inner, &headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"resultcode": "024", "message": "Authentication failed"})),
        )
            .into_response();
    };
    Json(json!({"resultcode": "00", "message": "success", "response": {"id": p.sub, "email": p.email, "name": p.name, "nickname": "minji"}})).into_response()
}

async fn kakao_me(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().expect("lock");
    let Some(p) = bearer_profile(&inner, &headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": -401, "msg": "this access token does not exist"})),
        )
            .into_response();
    };
    let id: i64 = p
        .sub
        .bytes()
        .fold(7i64, |h, b| h.wrapping_mul(31).wrapping_add(i64::from(b)))
        .abs();
    let mut account = json!({"has_email": p.email.is_some(), "profile": {"nickname": p.name}});
    if let Some(email) = &p.email {
        account["email"] = json!(email);
        account["is_email_valid"] = json!(true);
        account["is_email_verified"] = json!(p.email_verified);
    }
    Json(json!({"id": id, "connected_at": "2026-01-01T00:00:00Z", "kakao_account": account}))
        .into_response()
}

async fn google_revoke(
    State(inner): Shared,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().expect("lock");
    let token = form.get("token").cloned().unwrap_or_default();
    if inner.refresh.remove(&token).is_none() {
        return oauth_error("invalid_token");
    }
    inner.revoked.push("google".into());
    StatusCode::OK.into_response()
}

async fn kakao_unlink(State(inner): Shared, headers: HeaderMap) -> Response {
    let mut inner = inner.lock().expect("lock");
    if bearer_profile(&inner, &headers).is_none() {
        return (StatusCode::UNAUTHORIZED, Json(json!({"code": -401}))).into_response();
    }
    inner.revoked.push("kakao".into());
    Json(json!({"id": 1})).into_response()
}
