//! Passkeys over HTTP with a software authenticator (webauthn-authenticator-rs `SoftPasskey`):
//! registration, identified sign-in, management and the ceremony's failures. (SoftPasskey
//! cannot keep resident keys, so the discoverable ceremony is left to a browser test.)

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Response, StatusCode};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::{WebauthnAuthenticator, softpasskey::SoftPasskey};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::helpers::{TestApp, TestUser, assert_problem};

/// `PUBLIC_URL` of the test instances: the relying party's origin.
const ORIGIN: &str = "http://localhost:8080";

fn origin() -> Url {
    Url::parse(ORIGIN).expect("origin")
}

fn authenticator() -> SoftPasskey {
    // `true`: claims user verification, as a phone's biometric prompt would.
    SoftPasskey::new(true)
}

/// Registers a passkey for the user; returns the stored credential as the API shows it.
async fn register(app: &TestApp, token: &str, key: &mut SoftPasskey, name: &str) -> Value {
    let started: Value = app
        .post_as("/auth/webauthn/register", token, &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).expect("creation options");
    let credential = key
        .do_registration(origin(), options)
        .expect("authenticator registers");
    let response = app
        .post_as(
            "/auth/webauthn/register/finish",
            token,
            &json!({"ceremony_id": started["ceremony_id"], "name": name, "credential": credential}),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "registration finishes"
    );
    response.json().await.expect("json")
}

/// Starts an identified sign-in: `(ceremony_id, options)`.
async fn start_sign_in(app: &TestApp, email: &str) -> (String, RequestChallengeResponse) {
    let started: Value = app
        .post("/auth/webauthn/authenticate", &json!({"email": email}))
        .await
        .json()
        .await
        .expect("json");
    (
        started["ceremony_id"]
            .as_str()
            .expect("ceremony")
            .to_owned(),
        serde_json::from_value(started["options"].clone()).expect("request options"),
    )
}

async fn finish(app: &TestApp, ceremony_id: &str, credential: &Value) -> Response {
    app.post(
        "/auth/webauthn/authenticate/finish",
        &json!({"ceremony_id": ceremony_id, "credential": credential}),
    )
    .await
}

async fn sign_in(app: &TestApp, email: &str, key: &mut SoftPasskey) -> Response {
    let (ceremony_id, options) = start_sign_in(app, email).await;
    let credential = key
        .do_authentication(origin(), options)
        .expect("authenticator signs");
    finish(
        app,
        &ceremony_id,
        &serde_json::to_value(credential).expect("json"),
    )
    .await
}

async fn user_with_passkey(app: &TestApp) -> (TestUser, SoftPasskey) {
    let user = app.user().await;
    let mut key = authenticator();
    register(app, &user.access_token, &mut key, "휴대폰").await;
    (user, key)
}

#[tokio::test]
async fn a_registered_passkey_signs_its_owner_in() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let mut key = authenticator();
    let stored = register(&app, &user.access_token, &mut key, "휴대폰").await;
    assert_eq!(stored["name"], "휴대폰");
    assert_eq!(stored["authenticator_type"], "SINGLE_DEVICE");
    let response = sign_in(&app, &user.email, &mut key).await;
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.expect("json");
    let token = pair["access_token"].as_str().expect("access token");
    let me: Value = app
        .get_as("/auth/me", token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], user.email.as_str());
    let history: Value = app
        .get_as("/auth/login-history", token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"][0]["method"], "PASSKEY");
    assert_eq!(history["items"][0]["result"], "SUCCESS");
    let list: Value = app
        .get_as("/auth/webauthn/credentials", token)
        .await
        .json()
        .await
        .expect("json");
    assert!(list[0]["last_used_at"].is_string(), "{list}");
}

#[tokio::test]
async fn a_passkey_sign_in_can_start_a_browser_session() {
    let app = TestApp::spawn().await;
    let (user, mut key) = user_with_passkey(&app).await;
    let (ceremony_id, options) = start_sign_in(&app, &user.email).await;
    let credential = key.do_authentication(origin(), options).expect("signs");
    let response = app
        .post(
            "/auth/webauthn/authenticate/finish?session=cookie",
            &json!({"ceremony_id": ceremony_id, "credential": credential}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.starts_with("bo_session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn another_instance_finishes_what_one_started() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let (user, mut key) = user_with_passkey(&app).await;
    let (ceremony_id, options) = start_sign_in(&app, &user.email).await;
    let credential = serde_json::to_value(key.do_authentication(origin(), options).expect("signs"))
        .expect("json");
    assert_eq!(
        finish(&peer, &ceremony_id, &credential).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_challenge_is_usable_once() {
    let app = TestApp::spawn().await;
    let (user, mut key) = user_with_passkey(&app).await;
    let (ceremony_id, options) = start_sign_in(&app, &user.email).await;
    let credential = serde_json::to_value(key.do_authentication(origin(), options).expect("signs"))
        .expect("json");
    assert_eq!(
        finish(&app, &ceremony_id, &credential).await.status(),
        StatusCode::OK
    );
    assert_problem(
        finish(&app, &ceremony_id, &credential).await,
        StatusCode::BAD_REQUEST,
        "webauthn_challenge_invalid",
    )
    .await;
}

#[tokio::test]
async fn an_answer_to_a_challenge_of_another_instances_ceremony_is_refused() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let (user, mut key) = user_with_passkey(&app).await;
    let (_first, options) = start_sign_in(&peer, &user.email).await;
    let (second, _) = start_sign_in(&app, &user.email).await;
    let credential = serde_json::to_value(key.do_authentication(origin(), options).expect("signs"))
        .expect("json");
    assert_problem(
        finish(&app, &second, &credential).await,
        StatusCode::UNAUTHORIZED,
        "passkey_invalid",
    )
    .await;
}

#[tokio::test]
async fn an_answer_from_another_origin_is_refused() {
    let app = TestApp::spawn().await;
    let (user, mut key) = user_with_passkey(&app).await;
    let (ceremony_id, options) = start_sign_in(&app, &user.email).await;
    let phishing = Url::parse("http://localhost:9999").expect("url");
    let credential = serde_json::to_value(key.do_authentication(phishing, options).expect("signs"))
        .expect("json");
    assert_problem(
        finish(&app, &ceremony_id, &credential).await,
        StatusCode::UNAUTHORIZED,
        "passkey_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let app = TestApp::spawn().await;
    let (user, mut key) = user_with_passkey(&app).await;
    let (ceremony_id, options) = start_sign_in(&app, &user.email).await;
    let mut credential =
        serde_json::to_value(key.do_authentication(origin(), options).expect("signs"))
            .expect("json");
    let signature = credential["response"]["signature"]
        .as_str()
        .expect("signature");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    credential["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode(bytes));
    assert_problem(
        finish(&app, &ceremony_id, &credential).await,
        StatusCode::UNAUTHORIZED,
        "passkey_invalid",
    )
    .await;
}

#[tokio::test]
async fn an_unregistered_passkey_is_refused() {
    let app = TestApp::spawn().await;
    let (user, _key) = user_with_passkey(&app).await;
    // A key that went through a registration prompt that was never finished.
    let mut stranger = authenticator();
    let started: Value = app
        .post_as("/auth/webauthn/register", &user.access_token, &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let creation: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).expect("options");
    let unfinished = stranger
        .do_registration(origin(), creation)
        .expect("registers");
    let (ceremony_id, mut options) = start_sign_in(&app, &user.email).await;
    let mut allowed = serde_json::to_value(&options.public_key.allow_credentials).expect("json");
    allowed[0]["id"] = json!(unfinished.id);
    options.public_key.allow_credentials = serde_json::from_value(allowed).expect("allow list");
    let credential = serde_json::to_value(
        stranger
            .do_authentication(origin(), options)
            .expect("signs"),
    )
    .expect("json");
    assert_problem(
        finish(&app, &ceremony_id, &credential).await,
        StatusCode::UNAUTHORIZED,
        "passkey_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_reported() {
    use boxoffice::db::entities::{security_events, webauthn_credentials};
    let app = TestApp::spawn().await;
    let (user, mut key) = user_with_passkey(&app).await;
    assert_eq!(
        sign_in(&app, &user.email, &mut key).await.status(),
        StatusCode::OK
    );
    // As if a copy of the key had signed 1000 times meanwhile.
    let row = webauthn_credentials::Entity::find()
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("credential");
    let mut passkey: Value = serde_json::from_str(&row.passkey).expect("json");
    passkey["cred"]["counter"] = json!(1000);
    webauthn_credentials::ActiveModel {
        id: Set(row.id.clone()),
        passkey: Set(passkey.to_string()),
        sign_count: Set(1000),
        ..Default::default()
    }
    .update(&app.state.db)
    .await
    .expect("update");
    assert_problem(
        sign_in(&app, &user.email, &mut key).await,
        StatusCode::UNAUTHORIZED,
        "passkey_invalid",
    )
    .await;
    let events = security_events::Entity::find()
        .filter(security_events::Column::Kind.eq("PASSKEY_COUNTER_REGRESSED"))
        .all(&app.state.db)
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    let history: Value = app
        .get_as("/auth/login-history", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"][0]["result"], "COUNTER_REGRESSED");
}

#[tokio::test]
async fn an_address_without_passkeys_gets_a_prompt_that_reveals_nothing() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    for email in [user.email.as_str(), "nobody@example.com"] {
        let started: Value = app
            .post("/auth/webauthn/authenticate", &json!({"email": email}))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            started["options"]["publicKey"]["allowCredentials"],
            json!([]),
            "{started}"
        );
    }
    let discoverable = app
        .post_raw("/auth/webauthn/authenticate", "application/json", "")
        .await;
    assert_eq!(discoverable.status(), StatusCode::OK);
    let started: Value = discoverable.json().await.expect("json");
    assert_eq!(started["options"]["mediation"], "conditional");
}

#[tokio::test]
async fn passkeys_are_listed_renamed_and_removed_but_never_the_last_way_in() {
    let app = TestApp::spawn().await;
    // An account without a password (as after a passkey-only sign-up).
    let user = app.buyers(1).await.remove(0);
    let token = user.access_token.as_str();
    let mut phone = authenticator();
    let first = register(&app, token, &mut phone, "phone").await;
    let first_id = first["id"].as_str().expect("id");
    let url = app.url(&format!("/auth/webauthn/credentials/{first_id}"));
    let response = app
        .client
        .delete(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_problem(response, StatusCode::CONFLICT, "last_sign_in_method").await;

    let mut key = authenticator();
    register(&app, token, &mut key, "key").await;
    let renamed: Value = app
        .client
        .patch(&url)
        .bearer_auth(token)
        .json(&json!({"name": "old phone"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(renamed["name"], "old phone");
    let response = app
        .client
        .delete(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let list: Value = app
        .get_as("/auth/webauthn/credentials", token)
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["key"]);

    // Someone else's passkey is not found.
    let other = app.user().await;
    let theirs = app
        .client
        .delete(app.url(&format!(
            "/auth/webauthn/credentials/{}",
            list[0]["id"].as_str().expect("id")
        )))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .expect("request");
    assert_problem(theirs, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn registration_prompts_work_once_and_only_for_their_user() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let other = app.user().await;
    let started: Value = app
        .post_as("/auth/webauthn/register", &user.access_token, &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        started["options"]["publicKey"]["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).expect("options");
    let credential = authenticator()
        .do_registration(origin(), options)
        .expect("registers");
    let body = json!({"ceremony_id": started["ceremony_id"], "credential": credential});
    let stolen = app
        .post_as("/auth/webauthn/register/finish", &other.access_token, &body)
        .await;
    assert_problem(
        stolen,
        StatusCode::BAD_REQUEST,
        "webauthn_challenge_invalid",
    )
    .await;
}
