use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{TestApp, assert_problem, eventually};

#[tokio::test]
async fn refresh_rotates_and_the_spent_token_cannot_be_used_again() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let first = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let pair: Value = first.json().await.expect("json");
    let new_refresh = pair["refresh_token"].as_str().expect("refresh").to_owned();
    let new_access = pair["access_token"].as_str().expect("access").to_owned();
    assert_ne!(new_refresh, user.refresh_token);
    assert_eq!(
        app.get_as("/auth/me", &new_access).await.status(),
        StatusCode::OK
    );

    let replay = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_problem(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    // Reuse ends the whole family: the newest refresh token and the access token too.
    let after = app
        .post("/auth/refresh", &json!({"refresh_token": new_refresh}))
        .await;
    assert_problem(after, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_problem(
        app.get_as("/auth/me", &new_access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_rotate_at_most_once() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let calls = (0..8).map(|_| {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/auth/refresh"),
            user.refresh_token.clone(),
        );
        async move {
            client
                .post(url)
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .expect("request")
                .status()
        }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count() <= 1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/auth/refresh", &json!({"refresh_token": "made-up"}))
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn an_access_token_expires_after_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.clock
        .advance(Duration::minutes(15) + Duration::seconds(1));
    let response = app.get_as("/auth/me", &user.access_token).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_expired").await;
    // The refresh token still works and yields a fresh access token.
    let pair: Value = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await
        .json()
        .await
        .expect("json");
    let access = pair["access_token"].as_str().expect("access");
    assert_eq!(
        app.get_as("/auth/me", access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_refresh_token_expires_after_thirty_days() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.clock.advance(Duration::days(30) + Duration::seconds(1));
    let response = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_expired").await;
}

fn forge(token: &str, edit: impl Fn(&mut Value, &mut Value)) -> String {
    let mut parts = token.split('.');
    let mut header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts.next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    let mut claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts.next().expect("claims"))
            .expect("b64"),
    )
    .expect("json");
    let signature = parts.next().expect("signature").to_owned();
    edit(&mut header, &mut claims);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature
    )
}

#[tokio::test]
async fn forged_unsigned_and_garbage_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let promoted = forge(&user.access_token, |_, claims| {
        claims["role"] = json!("ADMIN")
    });
    let alg_none = forge(&user.access_token, |header, _| {
        header["alg"] = json!("none")
    });
    let alg_none = format!("{}.", alg_none.rsplit_once('.').expect("dots").0);
    let hs256 = forge(&user.access_token, |header, _| {
        header["alg"] = json!("HS256")
    });
    let unknown_kid = forge(&user.access_token, |header, _| {
        header["kid"] = json!("nope")
    });
    for token in [
        promoted,
        alg_none,
        hs256,
        unknown_kid,
        "garbage".into(),
        "a.b.c".into(),
    ] {
        let response = app.get_as("/auth/me", &token).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let basic = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("request");
    assert_problem(basic, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn forged_tokens_in_a_crowd_of_good_ones_are_refused_and_only_they() {
    // Signatures that arrive together are checked as a batch; a bad one must not take its
    // neighbours down with it, nor slip through with them.
    let app = TestApp::spawn().await;
    let mut tokens = Vec::new();
    for _ in 0..8 {
        // Fresh tokens: this instance has not checked their signatures yet.
        let user = app.user().await;
        let promoted = forge(&user.access_token, |_, claims| {
            claims["role"] = json!("ADMIN")
        });
        tokens.push((true, user.email.clone(), promoted));
        tokens.push((false, user.email, user.access_token));
    }
    let calls = tokens.into_iter().map(|(forged, email, token)| {
        let app = &app;
        async move { (forged, email, app.get_as("/auth/me", &token).await) }
    });
    for (forged, email, response) in futures::future::join_all(calls).await {
        if forged {
            assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        } else {
            assert_eq!(response.status(), StatusCode::OK);
            let me: Value = response.json().await.expect("json");
            assert_eq!(me["email"], json!(email));
        }
    }
}

#[tokio::test]
async fn logout_ends_the_session_for_access_and_refresh_tokens() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let response = app
        .post_as("/auth/logout", &user.access_token, &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_as("/auth/me", &user.access_token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let refresh = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_problem(refresh, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn access_tokens_verify_against_the_published_jwks() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    let header = jsonwebtoken::decode_header(&user.access_token).expect("header");
    let kid = header.kid.expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("key published");
    let key =
        jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().expect("x")).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Value>(&user.access_token, &key, &validation).expect("verifies");
    assert!(data.claims["sub"].is_string() && data.claims["sid"].is_string());
    assert!(
        data.claims.get("email").is_none(),
        "no personal data in tokens"
    );
}

#[tokio::test]
async fn rotated_keys_are_published_first_and_sign_after_five_minutes() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let old_kid = jsonwebtoken::decode_header(&user.access_token)
        .expect("header")
        .kid
        .expect("kid");
    let state = &app.state;
    let new_kid = boxoffice::auth::keys::rotate(
        &state.db,
        &state.secrets,
        state.rng.as_ref(),
        state.clock.now(),
    )
    .await
    .expect("rotate");
    state
        .tokens
        .keys()
        .reload(state.clock.now())
        .await
        .expect("reload");
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    let (access, _) = app.login(&user.email).await;
    assert_eq!(
        jsonwebtoken::decode_header(&access)
            .expect("header")
            .kid
            .expect("kid"),
        old_kid,
        "not yet active"
    );

    app.clock.advance(Duration::minutes(5));
    state
        .tokens
        .keys()
        .reload(state.clock.now())
        .await
        .expect("reload");
    let (access, _) = app.login(&user.email).await;
    assert_eq!(
        jsonwebtoken::decode_header(&access)
            .expect("header")
            .kid
            .expect("kid"),
        new_kid
    );
    assert_eq!(
        app.get_as("/auth/me", &user.access_token).await.status(),
        StatusCode::OK,
        "old tokens still verify"
    );
}

#[tokio::test]
async fn a_session_ended_on_one_instance_is_refused_at_once_by_another() {
    let first = TestApp::spawn().await;
    let second = first.spawn_peer().await;
    let user = first.user().await;
    assert_eq!(
        second.get_as("/auth/me", &user.access_token).await.status(),
        StatusCode::OK,
        "peer has cached the token"
    );
    let logout = first
        .post_as("/auth/logout", &user.access_token, &json!({}))
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    // Pub/sub delivery is asynchronous (the peer's cache would otherwise keep the token for
    // its whole 15 minutes): poll with a deadline rather than sleep.
    eventually("the second instance refuses the session", async || {
        second.get_as("/auth/me", &user.access_token).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
}
