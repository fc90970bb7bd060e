use boxoffice::auth::model::Role;
use boxoffice::infra::clock::Clock;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{PASSWORD, TestApp, assert_problem, eventually};

/// `PATCH` JSON with a Bearer token.
pub(crate) async fn patch_as(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// `DELETE` with a Bearer token.
pub(crate) async fn delete_as(app: &TestApp, path: &str, token: &str) -> Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// `GET` JSON with a Bearer token, expecting 200.
pub(crate) async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get_as(path, token).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// The account id behind a token.
pub(crate) async fn user_id(app: &TestApp, token: &str) -> String {
    get_json(app, "/auth/me", token).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Waits until `peer` receives what `first` publishes, so a test does not race the peer's Redis
/// subscription being set up (in process the bus is shared and this returns at once).
pub(crate) async fn wait_until_peer_listens(first: &TestApp, peer: &TestApp) {
    let mut rx = peer.state.bus.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        first
            .state
            .bus
            .publish("test.ping", "ping")
            .await
            .expect("publish");
        let heard = tokio::time::timeout(std::time::Duration::from_millis(100), async {
            loop {
                match rx.recv().await {
                    Ok(m) if m.channel == "test.ping" => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
        })
        .await;
        if heard == Ok(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "peer never heard the bus"
        );
    }
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items")
}

fn emails(body: &Value) -> Vec<String> {
    items(body)
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect()
}

#[tokio::test]
async fn every_admin_route_refuses_anonymous_callers_and_non_admins() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let id = user_id(&app, &user.access_token).await;
    let routes: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (reqwest::Method::GET, "/admin/users".into(), None),
        (reqwest::Method::GET, format!("/admin/users/{id}"), None),
        (
            reqwest::Method::PATCH,
            format!("/admin/users/{id}"),
            Some(json!({"role": "ADMIN"})),
        ),
        (reqwest::Method::GET, "/admin/audit-log".into(), None),
        (reqwest::Method::GET, "/admin/security/events".into(), None),
        (reqwest::Method::GET, "/admin/ip-blocks".into(), None),
        (
            reqwest::Method::POST,
            "/admin/ip-blocks".into(),
            Some(json!({"cidr": "203.0.113.0/24", "reason": "test"})),
        ),
        (
            reqwest::Method::DELETE,
            "/admin/ip-blocks/0190c0e1-3333-7000-8000-000000000004".into(),
            None,
        ),
    ];
    for (method, path, body) in &routes {
        let request = |token: Option<&str>| {
            let mut req = app.client.request(method.clone(), app.url(path));
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send()
        };
        let anonymous = request(None).await.expect("request");
        assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        for token in [&user.access_token, &organizer.access_token] {
            let response = request(Some(token)).await.expect("request");
            assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    let row = get_json(
        &app,
        &format!("/admin/users/{id}"),
        &app.admin().await.access_token,
    )
    .await;
    assert_eq!(
        row["role"], "USER",
        "nothing was changed by the refused calls"
    );
}

#[tokio::test]
async fn admins_find_users_by_email_or_name_and_filter_by_role_and_status() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let minji = app.user().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let minji_id = user_id(&app, &minji.access_token).await;
    patch_as(
        &app,
        &format!("/admin/users/{minji_id}"),
        &admin.access_token,
        &json!({"status": "DISABLED"}),
    )
    .await;

    // Part of the address, in any case.
    let local_part = minji.email.split('@').next().expect("local part");
    let found = get_json(
        &app,
        &format!("/admin/users?q={}", local_part.to_uppercase()),
        &admin.access_token,
    )
    .await;
    assert_eq!(emails(&found), vec![minji.email.clone()]);
    assert_eq!(items(&found)[0]["status"], "DISABLED");
    assert!(items(&found)[0].get("password").is_none());

    // Part of the name ("ORGANIZER 테스트" for accounts made with a role).
    let by_name = get_json(
        &app,
        "/admin/users?q=%ED%85%8C%EC%8A%A4%ED%8A%B8",
        &admin.access_token,
    )
    .await;
    let mut names = emails(&by_name);
    names.sort();
    let mut expected = vec![admin.email.clone(), organizer.email.clone()];
    expected.sort();
    assert_eq!(names, expected);

    // LIKE wildcards are matched literally.
    let wildcard = get_json(&app, "/admin/users?q=%25", &admin.access_token).await;
    assert!(items(&wildcard).is_empty(), "{wildcard}");

    let organizers = get_json(&app, "/admin/users?role=ORGANIZER", &admin.access_token).await;
    assert_eq!(emails(&organizers), vec![organizer.email.clone()]);
    let disabled = get_json(&app, "/admin/users?status=DISABLED", &admin.access_token).await;
    assert_eq!(emails(&disabled), vec![minji.email.clone()]);
    let active_users = get_json(
        &app,
        "/admin/users?role=USER&status=ACTIVE",
        &admin.access_token,
    )
    .await;
    assert!(emails(&active_users).is_empty(), "{active_users}");
}

#[tokio::test]
async fn the_user_list_pages_newest_first_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut created = vec![admin.email.clone()];
    for _ in 0..4 {
        app.clock.advance(Duration::seconds(1));
        created.push(app.user_with_role(Role::User).await.email);
    }
    // Two accounts with the same creation time are ordered by id.
    created.push(app.user_with_role(Role::User).await.email);
    created.reverse();

    let mut seen = Vec::new();
    let mut path = "/admin/users?limit=2".to_owned();
    loop {
        let page = get_json(&app, &path, &admin.access_token).await;
        assert!(items(&page).len() <= 2);
        seen.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

#[tokio::test]
async fn bad_list_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for path in [
        "/admin/users?limit=0",
        "/admin/users?limit=201",
        "/admin/users?limit=many",
        "/admin/users?cursor=not-a-cursor",
        "/admin/users?role=KING",
        "/admin/users?status=SLEEPING",
        "/admin/users?colour=blue",
        "/admin/audit-log?limit=-1",
        "/admin/audit-log?cursor=%00",
        "/admin/ip-blocks?state=SOME",
    ] {
        let response = app.get_as(path, &admin.access_token).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn an_unknown_user_is_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let path = "/admin/users/0190c0de-0000-7000-8000-000000000000";
    assert_problem(
        app.get_as(path, &admin.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        patch_as(&app, path, &admin.access_token, &json!({"vip": true})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn changing_role_and_vip_is_audited_with_before_and_after() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let admin_id = user_id(&app, &admin.access_token).await;
    let user = app.user().await;
    let id = user_id(&app, &user.access_token).await;

    let response = patch_as(
        &app,
        &format!("/admin/users/{id}"),
        &admin.access_token,
        &json!({"role": "ORGANIZER", "vip": true}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["role"], "ORGANIZER");
    assert_eq!(body["vip"], true);
    assert_eq!(body["status"], "ACTIVE");
    let shown = get_json(&app, &format!("/admin/users/{id}"), &admin.access_token).await;
    assert_eq!(shown["role"], "ORGANIZER");

    // A promotion does not end the session; the next refresh carries the new role.
    assert_eq!(
        app.get_as("/auth/me", &user.access_token).await.status(),
        StatusCode::OK
    );
    let pair: Value = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await
        .json()
        .await
        .expect("json");
    let refreshed = pair["access_token"].as_str().expect("access token");
    assert_eq!(
        get_json(&app, "/auth/me", refreshed).await["role"],
        "ORGANIZER"
    );

    let log = get_json(
        &app,
        &format!("/admin/audit-log?target_id={id}&action=admin.user.update"),
        &admin.access_token,
    )
    .await;
    let entries = items(&log);
    assert_eq!(entries.len(), 1, "{log}");
    let entry = &entries[0];
    assert_eq!(entry["actor_user_id"], admin_id.as_str());
    assert_eq!(entry["target_type"], "user");
    assert_eq!(entry["ip"], "127.0.0.1");
    assert_eq!(
        entry["detail"]["before"],
        json!({"role": "USER", "vip": false, "status": "ACTIVE"})
    );
    assert_eq!(
        entry["detail"]["after"],
        json!({"role": "ORGANIZER", "vip": true, "status": "ACTIVE"})
    );
    assert!(entry["created_at"].as_str().expect("time").ends_with('Z'));

    // Setting what is already there changes nothing and writes nothing.
    let same = patch_as(
        &app,
        &format!("/admin/users/{id}"),
        &admin.access_token,
        &json!({"vip": true}),
    )
    .await;
    assert_eq!(same.status(), StatusCode::OK);
    let log = get_json(
        &app,
        &format!("/admin/audit-log?target_id={id}&action=admin.user.update"),
        &admin.access_token,
    )
    .await;
    assert_eq!(items(&log).len(), 1);
}

#[tokio::test]
async fn a_demoted_user_loses_the_higher_role_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let id = user_id(&app, &organizer.access_token).await;
    let response = patch_as(
        &app,
        &format!("/admin/users/{id}"),
        &admin.access_token,
        &json!({"role": "USER"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The old token said ORGANIZER: it must not outlive the demotion.
    assert_problem(
        app.get_as("/auth/me", &organizer.access_token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let (access, _) = app.login(&organizer.email).await;
    assert_eq!(get_json(&app, "/auth/me", &access).await["role"], "USER");
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_on_every_instance_at_once() {
    let first = TestApp::spawn().await;
    let second = first.spawn_peer().await;
    wait_until_peer_listens(&first, &second).await;
    let admin = first.admin().await;
    let user = first.user().await;
    let (other_access, other_refresh) = first.login(&user.email).await;
    let id = user_id(&first, &user.access_token).await;
    assert_eq!(
        second.get_as("/auth/me", &user.access_token).await.status(),
        StatusCode::OK,
        "peer has cached the token"
    );

    let response = patch_as(
        &first,
        &format!("/admin/users/{id}"),
        &admin.access_token,
        &json!({"status": "DISABLED"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("json")["status"],
        "DISABLED"
    );

    for token in [&user.access_token, &other_access] {
        assert_problem(
            first.get_as("/auth/me", token).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    eventually("the peer refuses the disabled user's tokens", async || {
        second.get_as("/auth/me", &user.access_token).await.status() == StatusCode::UNAUTHORIZED
            && second.get_as("/auth/me", &other_access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    for refresh in [&user.refresh_token, &other_refresh] {
        let response = second
            .post("/auth/refresh", &json!({"refresh_token": refresh}))
            .await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let login = first
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_problem(login, StatusCode::FORBIDDEN, "account_disabled").await;
    // A wrong password still says only "invalid credentials".
    let wrong = first
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": "not the password at all"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let log = get_json(
        &first,
        &format!("/admin/audit-log?target_id={id}"),
        &admin.access_token,
    )
    .await;
    let entry = items(&log)
        .iter()
        .find(|e| e["action"] == "admin.user.update")
        .expect("audited");
    assert_eq!(entry["detail"]["after"]["status"], "DISABLED");
    assert_eq!(entry["detail"]["sessions_revoked"], 2);

    // Enabled again, the account can sign in.
    let enable = patch_as(
        &first,
        &format!("/admin/users/{id}"),
        &admin.access_token,
        &json!({"status": "ACTIVE"}),
    )
    .await;
    assert_eq!(enable.status(), StatusCode::OK);
    first.login(&user.email).await;
}

#[tokio::test]
async fn the_last_admin_can_be_neither_demoted_nor_disabled() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = user_id(&app, &admin.access_token).await;
    for change in [json!({"role": "ORGANIZER"}), json!({"status": "DISABLED"})] {
        let response = patch_as(
            &app,
            &format!("/admin/users/{id}"),
            &admin.access_token,
            &change,
        )
        .await;
        assert_problem(response, StatusCode::CONFLICT, "last_admin").await;
    }
    // With a second active admin, the first may step down.
    let other = app.admin().await;
    let response = patch_as(
        &app,
        &format!("/admin/users/{id}"),
        &other.access_token,
        &json!({"role": "USER"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let other_id = user_id(&app, &other.access_token).await;
    let response = patch_as(
        &app,
        &format!("/admin/users/{other_id}"),
        &other.access_token,
        &json!({"status": "DISABLED"}),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "last_admin").await;
}

#[tokio::test]
async fn a_disabled_admin_does_not_count_as_the_other_admin() {
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    let second_id = user_id(&app, &second.access_token).await;
    let first_id = user_id(&app, &first.access_token).await;
    let disable = patch_as(
        &app,
        &format!("/admin/users/{second_id}"),
        &first.access_token,
        &json!({"status": "DISABLED"}),
    )
    .await;
    assert_eq!(disable.status(), StatusCode::OK);
    let response = patch_as(
        &app,
        &format!("/admin/users/{first_id}"),
        &first.access_token,
        &json!({"role": "USER"}),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "last_admin").await;
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_exactly_one_admin() {
    let app = TestApp::spawn().await;
    let mut survivor = app.admin().await;
    // Several rounds, each the survivor against a new admin, make a lost race likely to show.
    for _ in 0..4 {
        let newcomer = app.admin().await;
        let (a, b) = (survivor.clone(), newcomer.clone());
        let a_path = format!("/admin/users/{}", user_id(&app, &a.access_token).await);
        let b_path = format!("/admin/users/{}", user_id(&app, &b.access_token).await);
        let demote = json!({"role": "USER"});
        let (a_demotes_b, b_demotes_a) = tokio::join!(
            patch_as(&app, &b_path, &a.access_token, &demote),
            patch_as(&app, &a_path, &b.access_token, &demote),
        );
        let statuses = [a_demotes_b.status(), b_demotes_a.status()];
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "{statuses:?}"
        );
        // The loser either waited and found itself the last admin, or its session had ended.
        assert!(
            statuses.iter().all(|s| [
                StatusCode::OK,
                StatusCode::CONFLICT,
                StatusCode::UNAUTHORIZED
            ]
            .contains(s)),
            "{statuses:?}"
        );
        survivor = if statuses[0] == StatusCode::OK { a } else { b };
        let admins = get_json(
            &app,
            "/admin/users?role=ADMIN&status=ACTIVE",
            &survivor.access_token,
        )
        .await;
        assert_eq!(emails(&admins), vec![survivor.email.clone()], "{admins}");
    }
}

#[tokio::test]
async fn deleted_users_are_listed_but_cannot_be_changed() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let id = user_id(&app, &user.access_token).await;
    boxoffice::db::entities::users::ActiveModel {
        id: Set(id.clone()),
        status: Set("DELETED".into()),
        deleted_at: Set(Some(boxoffice::infra::clock::to_db(app.clock.now()))),
        ..Default::default()
    }
    .update(&app.state.db)
    .await
    .expect("soft delete");

    let deleted = get_json(&app, "/admin/users?status=DELETED", &admin.access_token).await;
    assert_eq!(emails(&deleted), vec![user.email.clone()]);
    assert!(items(&deleted)[0]["deleted_at"].is_string());
    let shown = get_json(&app, &format!("/admin/users/{id}"), &admin.access_token).await;
    assert_eq!(shown["status"], "DELETED");
    for change in [json!({"status": "ACTIVE"}), json!({"vip": true})] {
        let response = patch_as(
            &app,
            &format!("/admin/users/{id}"),
            &admin.access_token,
            &change,
        )
        .await;
        assert_problem(response, StatusCode::CONFLICT, "user_deleted").await;
    }
}

#[tokio::test]
async fn an_empty_or_unknown_change_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let id = user_id(&app, &user.access_token).await;
    for change in [
        json!({}),
        json!({"status": "DELETED"}),
        json!({"status": "asleep"}),
        json!({"role": "ROOT"}),
        json!({"vip": "yes"}),
        json!({"email": "x@example.com"}),
    ] {
        let response = patch_as(
            &app,
            &format!("/admin/users/{id}"),
            &admin.access_token,
            &change,
        )
        .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_target_and_action_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    let first_id = user_id(&app, &first.access_token).await;
    let user = app.user().await;
    let id = user_id(&app, &user.access_token).await;
    let path = format!("/admin/users/{id}");
    for (admin, change) in [
        (&first, json!({"vip": true})),
        (&second, json!({"vip": false})),
        (&first, json!({"role": "ORGANIZER"})),
    ] {
        app.clock.advance(Duration::seconds(1));
        let response = patch_as(&app, &path, &admin.access_token, &change).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    let by_first = get_json(
        &app,
        &format!("/admin/audit-log?actor_user_id={first_id}&action=admin.user.update"),
        &first.access_token,
    )
    .await;
    let afters: Vec<&Value> = items(&by_first)
        .iter()
        .map(|e| &e["detail"]["after"])
        .collect();
    assert_eq!(afters.len(), 2);
    assert_eq!(afters[0]["role"], "ORGANIZER", "newest first");
    assert_eq!(afters[1]["vip"], true);

    // The sign-up of the user is audited too, so the target has four records.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_path = format!("/admin/audit-log?target_id={id}&limit=1");
        if let Some(c) = &cursor {
            page_path.push_str(&format!("&cursor={c}"));
        }
        let page = get_json(&app, &page_path, &first.access_token).await;
        assert!(items(&page).len() <= 1);
        seen.extend(
            items(&page)
                .iter()
                .map(|e| e["action"].as_str().expect("action").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "admin.user.update",
            "admin.user.update",
            "admin.user.update",
            "user.email_verified",
            "user.signup"
        ]
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_admin_route_with_examples() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    for (path, methods) in [
        ("/admin/users", &["get"][..]),
        ("/admin/users/{id}", &["get", "patch"][..]),
        ("/admin/audit-log", &["get"][..]),
        ("/admin/security/events", &["get"][..]),
        ("/admin/ip-blocks", &["get", "post"][..]),
        ("/admin/ip-blocks/{id}", &["delete"][..]),
    ] {
        for method in methods {
            let op = &doc["paths"][path][method];
            assert_eq!(op["tags"][0], "admin", "{method} {path}");
            assert!(
                op["security"].is_array(),
                "{method} {path} needs credentials"
            );
            assert!(op["responses"]["403"].is_object(), "{method} {path}");
        }
    }
    for schema in [
        "AdminUser",
        "UserPatch",
        "AuditEntry",
        "SecurityEvent",
        "IpBlockView",
        "NewIpBlock",
    ] {
        assert!(
            doc["components"]["schemas"][schema]["example"].is_object(),
            "{schema} has an example"
        );
    }
    let params = doc["paths"]["/admin/security/events"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "severity" && p["in"] == "query")
    );
}
