//! Sign-in with Google, Naver and Kakao against the fake provider: the whole redirect dance
//! with a cookie-keeping browser, app code exchange, linking, unlinking and every failure.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    fake_oauth::{FakeProvider, Misbehave, Profile},
    helpers::{Browser, PASSWORD, Spawn, TestApp, assert_problem},
};

async fn app_with_fake() -> (TestApp, FakeProvider) {
    let fake = FakeProvider::start().await;
    let app = TestApp::spawn_with(Spawn {
        oauth: Some(fake.config()),
        ..Spawn::default()
    })
    .await;
    (app, fake)
}

/// Starts at our `start` route and follows the redirects back to our site.
async fn sign_in(browser: &Browser, provider: &str, return_to: &str) -> Response {
    let start = browser
        .get(&format!(
            "/auth/oauth/{provider}/start?return_to={return_to}"
        ))
        .await;
    assert_eq!(start.status(), StatusCode::FOUND, "start redirects");
    browser.follow(start).await
}

async fn me(browser: &Browser) -> Value {
    let response = browser.get("/auth/me").await;
    assert_eq!(response.status(), StatusCode::OK, "signed in");
    response.json().await.expect("json")
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(&format!("http://x{location}")).expect("location");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_first_google_sign_in_creates_an_account_and_a_browser_session() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("minji@gmail.example"));
    let browser = app.browser();
    let back = sign_in(&browser, "google", "/account?tab=tickets").await;
    assert_eq!(back.status(), StatusCode::FOUND);
    assert_eq!(Browser::location(&back), "/account?tab=tickets");
    let me = me(&browser).await;
    assert_eq!(me["email"], "minji@gmail.example");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["name"], "김민지");
    let history: Value = browser
        .get("/auth/login-history")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"][0]["method"], "OAUTH_GOOGLE");
    assert_eq!(history["items"][0]["result"], "SUCCESS");
}

#[tokio::test]
async fn signing_in_with_google_again_reaches_the_same_account() {
    let (app, fake) = app_with_fake().await;
    let profile = Profile::verified("again@gmail.example");
    fake.sign_in_as("google", profile.clone());
    let first = app.browser();
    sign_in(&first, "google", "/").await;
    let first_id = me(&first).await["id"].clone();
    fake.sign_in_as("google", profile);
    let second = app.browser();
    sign_in(&second, "google", "/").await;
    assert_eq!(me(&second).await["id"], first_id);
}

#[tokio::test]
async fn only_configured_providers_are_offered() {
    let plain = TestApp::spawn().await;
    let none: Value = plain
        .get("/auth/oauth/providers")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none, json!([]));
    assert_problem(
        plain.get("/auth/oauth/google/start").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (app, _fake) = app_with_fake().await;
    let all: Value = app
        .get("/auth/oauth/providers")
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["google", "naver", "kakao"]);
}

#[tokio::test]
async fn return_to_cannot_leave_our_site() {
    let (app, _fake) = app_with_fake().await;
    for bad in [
        "https://evil.example/",
        "//evil.example/x",
        "/%5Cevil.example",
    ] {
        let response = app
            .get(&format!("/auth/oauth/google/start?return_to={bad}"))
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}

/// Runs the dance up to the provider's redirect back, without following it.
async fn callback_url(browser: &Browser, provider: &str) -> String {
    let start = browser.get(&format!("/auth/oauth/{provider}/start")).await;
    let at_provider = browser.get(&Browser::location(&start)).await;
    assert_eq!(at_provider.status(), StatusCode::FOUND);
    Browser::location(&at_provider)
}

#[tokio::test]
async fn a_callback_in_another_browser_is_refused() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("victim@gmail.example"));
    let attacker = app.browser();
    let url = callback_url(&attacker, "google").await;
    let victim = app.browser();
    assert_problem(
        victim.get(&url).await,
        StatusCode::BAD_REQUEST,
        "oauth_state_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_state_is_refused() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("wrong@gmail.example"));
    let browser = app.browser();
    let url = callback_url(&browser, "google").await;
    let code = query_param(&url.replace("http://localhost:8080", ""), "code").expect("code");
    let forged = format!("/auth/oauth/google/callback?code={code}&state=forged");
    assert_problem(
        browser.get(&forged).await,
        StatusCode::BAD_REQUEST,
        "oauth_state_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("replay@gmail.example"));
    let browser = app.browser();
    let start = browser.get("/auth/oauth/google/start").await;
    let at_provider = browser.get(&Browser::location(&start)).await;
    let url = Browser::location(&at_provider);
    // Keep the state cookie for the replay, as an attacker holding the browser would.
    let cookie = start
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("state cookie")
        .to_owned();
    assert_eq!(browser.get(&url).await.status(), StatusCode::FOUND);
    let replay = app
        .client
        .get(url.replace("http://localhost:8080", &app.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    assert_problem(replay, StatusCode::BAD_REQUEST, "oauth_state_invalid").await;
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("slow@gmail.example"));
    let browser = app.browser();
    let url = callback_url(&browser, "google").await;
    app.clock.advance(time::Duration::minutes(11));
    assert_problem(
        browser.get(&url).await,
        StatusCode::BAD_REQUEST,
        "oauth_state_invalid",
    )
    .await;
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-app-verifier";
const APP_REDIRECT: &str = "com.example.boxoffice:/oauth";

#[tokio::test]
async fn apps_trade_a_code_for_a_token_pair_once() {
    let (app, fake) = app_with_fake().await;
    let code = fake.issue_code(
        "google",
        Profile::verified("app@gmail.example"),
        APP_REDIRECT,
        VERIFIER,
        Some("app-nonce"),
    );
    let body = json!({"code": code, "code_verifier": VERIFIER, "redirect_uri": APP_REDIRECT, "nonce": "app-nonce"});
    let response = app.post("/auth/oauth/google/token", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.expect("json");
    let access = pair["access_token"].as_str().expect("access token");
    let me: Value = app
        .get_as("/auth/me", access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], "app@gmail.example");
    let replayed = app.post("/auth/oauth/google/token", &body).await;
    let problem = assert_problem(replayed, StatusCode::BAD_REQUEST, "oauth_code_invalid").await;
    assert!(
        !problem.to_string().contains("secret provider detail"),
        "provider text is never echoed: {problem}"
    );
}

#[tokio::test]
async fn an_id_token_for_another_sign_in_is_refused() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("nonce@gmail.example"));
    fake.misbehave(Misbehave {
        nonce: Some("someone-elses-nonce".into()),
        ..Misbehave::default()
    });
    let response = sign_in(&app.browser(), "google", "/").await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "oauth_token_invalid").await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("expired@gmail.example"));
    fake.misbehave(Misbehave {
        id_token_ttl: Some(-3600),
        ..Misbehave::default()
    });
    let response = sign_in(&app.browser(), "google", "/").await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "oauth_token_invalid").await;
}

#[tokio::test]
async fn an_id_token_with_a_broken_signature_is_refused() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("forged@gmail.example"));
    fake.misbehave(Misbehave {
        tamper_signature: true,
        ..Misbehave::default()
    });
    let response = sign_in(&app.browser(), "google", "/").await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "oauth_token_invalid").await;
}

#[tokio::test]
async fn an_unverified_provider_address_never_reaches_the_account_that_has_it() {
    let (app, fake) = app_with_fake().await;
    let victim = app.user().await;
    fake.sign_in_as(
        "google",
        Profile {
            email_verified: false,
            ..Profile::verified(&victim.email)
        },
    );
    let browser = app.browser();
    let back = sign_in(&browser, "google", "/").await;
    assert_eq!(back.status(), StatusCode::FOUND);
    let location = Browser::location(&back);
    assert_eq!(
        query_param(&location, "oauth").as_deref(),
        Some("email_required")
    );
    assert!(query_param(&location, "link_token").is_none());
    assert_problem(
        browser.get("/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn a_user_who_refuses_at_the_provider_gets_a_clear_answer() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("google", Profile::verified("no@gmail.example"));
    fake.misbehave(Misbehave {
        deny: true,
        ..Misbehave::default()
    });
    let response = sign_in(&app.browser(), "google", "/").await;
    let problem = assert_problem(response, StatusCode::BAD_REQUEST, "oauth_denied").await;
    assert!(!problem.to_string().contains("User denied"));
}

#[tokio::test]
async fn a_provider_error_page_is_a_bad_gateway_not_a_500() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("naver", Profile::verified("err@naver.example"));
    fake.misbehave(Misbehave {
        token_error_page: true,
        ..Misbehave::default()
    });
    let response = sign_in(&app.browser(), "naver", "/").await;
    let problem = assert_problem(response, StatusCode::BAD_GATEWAY, "oauth_provider_error").await;
    assert!(
        !problem
            .to_string()
            .contains("Internal error at the provider")
    );
}

#[tokio::test]
async fn an_unreachable_provider_answers_503_not_500() {
    let fake = FakeProvider::start().await;
    // Bound but never listening: connections are refused, and no parallel test can take the
    // port while this one runs (as it could if a listener were bound and dropped).
    let refusing = tokio::net::TcpSocket::new_v4().expect("socket");
    refusing
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let closed = refusing.local_addr().expect("addr").port();
    let mut oauth = fake.config();
    oauth.google.token_url = Some(format!("http://127.0.0.1:{closed}/token"));
    let app = TestApp::spawn_with(Spawn {
        oauth: Some(oauth),
        ..Spawn::default()
    })
    .await;
    fake.sign_in_as("google", Profile::verified("down@gmail.example"));
    let browser = app.browser();
    let response = sign_in(&browser, "google", "/").await;
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "oauth_provider_unavailable",
    )
    .await;
    // The failure is in login history too (no account is known, so admins see it).
    let failures: Vec<(String, String)> = {
        use boxoffice::db::entities::login_attempts;
        use sea_orm::EntityTrait;
        login_attempts::Entity::find()
            .all(&app.state.db)
            .await
            .expect("attempts")
            .into_iter()
            .map(|a| (a.method, a.result))
            .collect()
    };
    assert!(
        failures.contains(&("OAUTH_GOOGLE".into(), "PROVIDER_FAILED".into())),
        "{failures:?}"
    );
}

#[tokio::test]
async fn a_matching_verified_address_links_only_after_its_owner_signs_in() {
    let (app, fake) = app_with_fake().await;
    let owner = app.user().await;
    let profile = Profile::verified(&owner.email);
    fake.sign_in_as("google", profile.clone());
    let browser = app.browser();
    let back = sign_in(&browser, "google", "/account").await;
    let location = Browser::location(&back);
    assert_eq!(
        query_param(&location, "oauth").as_deref(),
        Some("link_required")
    );
    let link_token = query_param(&location, "link_token").expect("link token");
    assert_problem(
        browser.get("/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Someone else signed in cannot claim it.
    let stranger = app.user().await;
    let response = app
        .post_as(
            "/auth/oauth/link",
            &stranger.access_token,
            &json!({"link_token": link_token}),
        )
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    let (owner_token, _) = app.login(&owner.email).await;
    let response = app
        .post_as(
            "/auth/oauth/link",
            &owner_token,
            &json!({"link_token": link_token}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let again = app
        .post_as(
            "/auth/oauth/link",
            &owner_token,
            &json!({"link_token": link_token}),
        )
        .await;
    assert_problem(again, StatusCode::NOT_FOUND, "not_found").await;

    fake.sign_in_as("google", profile);
    let browser = app.browser();
    sign_in(&browser, "google", "/").await;
    assert_eq!(me(&browser).await["email"], owner.email.as_str());
}

#[tokio::test]
async fn apps_learn_that_a_link_is_required_with_a_token() {
    let (app, fake) = app_with_fake().await;
    let owner = app.user().await;
    let code = fake.issue_code(
        "google",
        Profile::verified(&owner.email),
        APP_REDIRECT,
        VERIFIER,
        None,
    );
    let response = app
        .post(
            "/auth/oauth/google/token",
            &json!({"code": code, "code_verifier": VERIFIER, "redirect_uri": APP_REDIRECT}),
        )
        .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "oauth_link_required").await;
    assert!(problem["link_token"].is_string());
}

#[tokio::test]
async fn naver_sign_in_works_with_expires_in_as_a_string() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("naver", Profile::verified("minji@naver.example"));
    let browser = app.browser();
    let back = sign_in(&browser, "naver", "/").await;
    assert_eq!(Browser::location(&back), "/");
    assert_eq!(me(&browser).await["email"], "minji@naver.example");
    let identities: Value = browser
        .get("/auth/identities")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(identities[0]["provider"], "naver");
}

#[tokio::test]
async fn kakao_without_an_address_asks_for_one_and_its_code() {
    let (app, fake) = app_with_fake().await;
    let profile = Profile {
        email: None,
        email_verified: false,
        ..Profile::verified("unused@example.com")
    };
    fake.sign_in_as("kakao", profile.clone());
    let back = sign_in(&app.browser(), "kakao", "/").await;
    let location = Browser::location(&back);
    assert_eq!(
        query_param(&location, "oauth").as_deref(),
        Some("email_required")
    );
    let token = query_param(&location, "signup_token").expect("signup token");
    let email = "kakao-user@example.com";
    let response = app
        .post(
            "/auth/oauth/signup",
            &json!({"signup_token": token, "email": email}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Not usable before the address is confirmed.
    fake.sign_in_as("kakao", profile.clone());
    let early = sign_in(&app.browser(), "kakao", "/").await;
    assert_problem(early, StatusCode::FORBIDDEN, "email_not_verified").await;
    let code = app.mail.wait_for(email, 1).await[0].code();
    let verified = app
        .post("/auth/verify-email", &json!({"email": email, "code": code}))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    fake.sign_in_as("kakao", profile);
    let browser = app.browser();
    sign_in(&browser, "kakao", "/").await;
    assert_eq!(me(&browser).await["email"], email);
}

#[tokio::test]
async fn a_signup_token_works_once() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as(
        "kakao",
        Profile {
            email: None,
            email_verified: false,
            ..Profile::verified("unused@example.com")
        },
    );
    let back = sign_in(&app.browser(), "kakao", "/").await;
    let token = query_param(&Browser::location(&back), "signup_token").expect("token");
    let first = app
        .post(
            "/auth/oauth/signup",
            &json!({"signup_token": token, "email": "once@example.com"}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = app
        .post(
            "/auth/oauth/signup",
            &json!({"signup_token": token, "email": "twice@example.com"}),
        )
        .await;
    assert_problem(second, StatusCode::BAD_REQUEST, "oauth_state_invalid").await;
}

#[tokio::test]
async fn unlinking_revokes_the_grant_at_the_provider_but_never_the_last_way_in() {
    let (app, fake) = app_with_fake().await;
    fake.sign_in_as("kakao", Profile::verified("two-ways@kakao.example"));
    let browser = app.browser();
    sign_in(&browser, "kakao", "/").await;
    let pair: Value = app
        .post(
            "/auth/oauth/google/token",
            &json!({"code": fake.issue_code("google", Profile::verified("other@gmail.example"), APP_REDIRECT, VERIFIER, None), "code_verifier": VERIFIER, "redirect_uri": APP_REDIRECT}),
        )
        .await
        .json()
        .await
        .expect("json");
    let google_only = pair["access_token"].as_str().expect("token").to_owned();

    // The Google-only account cannot drop its only way in.
    let list: Value = app
        .get_as("/auth/identities", &google_only)
        .await
        .json()
        .await
        .expect("json");
    let id = list[0]["id"].as_str().expect("id");
    let response = app
        .client
        .delete(app.url(&format!("/auth/identities/{id}")))
        .bearer_auth(&google_only)
        .send()
        .await
        .expect("request");
    assert_problem(response, StatusCode::CONFLICT, "last_sign_in_method").await;

    // The Kakao account links Google too, then drops Kakao: Kakao's grant is revoked there.
    let kakao_user_token = {
        let me = me(&browser).await;
        let id = me["id"].as_str().expect("id").to_owned();
        app.session_for(&id, "two-ways@kakao.example")
            .await
            .access_token
    };
    let code = fake.issue_code(
        "google",
        Profile::verified("linked@gmail.example"),
        APP_REDIRECT,
        VERIFIER,
        None,
    );
    let linked = app
        .post_as(
            "/auth/oauth/google/link/token",
            &kakao_user_token,
            &json!({"code": code, "code_verifier": VERIFIER, "redirect_uri": APP_REDIRECT}),
        )
        .await;
    assert_eq!(linked.status(), StatusCode::CREATED);
    let list: Value = app
        .get_as("/auth/identities", &kakao_user_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list.as_array().expect("list").len(), 2);
    let kakao_id = list
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["provider"] == "kakao")
        .and_then(|i| i["id"].as_str())
        .expect("kakao identity")
        .to_owned();
    let response = app
        .client
        .delete(app.url(&format!("/auth/identities/{kakao_id}")))
        .bearer_auth(&kakao_user_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(fake.revoked(), ["kakao"]);
    let list: Value = app
        .get_as("/auth/identities", &kakao_user_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["provider"], "google");
}

#[tokio::test]
async fn a_signed_in_browser_links_a_provider_through_the_redirect() {
    let (app, fake) = app_with_fake().await;
    let user = app.user().await;
    let browser = app.browser();
    let login = browser
        .client
        .post(app.url("/auth/login?session=cookie"))
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    let csrf = login.json::<Value>().await.expect("json")["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned();
    let started: Value = browser
        .client
        .post(app.url("/auth/oauth/naver/link?return_to=/account"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    fake.sign_in_as("naver", Profile::verified("different@naver.example"));
    let at_provider = browser
        .get(started["authorize_url"].as_str().expect("url"))
        .await;
    let back = browser.follow(at_provider).await;
    assert_eq!(Browser::location(&back), "/account?oauth=linked");
    let list: Value = browser
        .get("/auth/identities")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["provider"], "naver");
    assert_eq!(list[0]["email"], "different@naver.example");
}

#[tokio::test]
async fn a_deleted_account_frees_its_provider_identity() {
    let (app, fake) = app_with_fake().await;
    let profile = Profile::verified("leaving@gmail.example");
    let exchange = |code: String| json!({"code": code, "code_verifier": VERIFIER, "redirect_uri": APP_REDIRECT});
    let code = fake.issue_code("google", profile.clone(), APP_REDIRECT, VERIFIER, None);
    let pair: Value = app
        .post("/auth/oauth/google/token", &exchange(code))
        .await
        .json()
        .await
        .expect("json");
    let token = pair["access_token"].as_str().expect("token");
    let before: Value = app
        .get_as("/auth/me", token)
        .await
        .json()
        .await
        .expect("json");
    let deleted = app
        .client
        .delete(app.url("/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let code = fake.issue_code("google", profile, APP_REDIRECT, VERIFIER, None);
    let again = app.post("/auth/oauth/google/token", &exchange(code)).await;
    assert_eq!(again.status(), StatusCode::OK);
    let pair: Value = again.json().await.expect("json");
    let after: Value = app
        .get_as("/auth/me", pair["access_token"].as_str().expect("token"))
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(after["id"], before["id"]);
    assert_eq!(after["email"], "leaving@gmail.example");
}
