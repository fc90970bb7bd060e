//! Drives Debian's Chromium through chromedriver (WebDriver, via fantoccini). When either is
//! missing the tests print why and pass, so `cargo test` works on a new machine; with
//! `BOXOFFICE_REQUIRE_BROWSER=1` (set by `.ci/run`) a missing browser fails instead.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use fantoccini::{
    Client, ClientBuilder, Locator, elements::Element, wd::WebDriverCompatibleCommand,
};
use serde_json::{Value, json};

/// Desktop window.
pub const DESKTOP: (u32, u32) = (1280, 900);
/// Phone window.
pub const PHONE: (u32, u32) = (390, 844);

fn find(candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() {
            if p.exists() {
                return Some(p.to_path_buf());
            }
        } else if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let full = dir.join(c);
                if full.exists() {
                    return Some(full);
                }
            }
        }
    }
    None
}

/// Chromium and chromedriver, or the reason they cannot be used.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find(&[
        "/usr/bin/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
    ])
    .ok_or("Chromium is not installed (Debian: apt install chromium)")?;
    let driver = find(&["/usr/bin/chromedriver", "chromedriver"])
        .ok_or("chromedriver is not installed (Debian: apt install chromium-driver)")?;
    Ok((chromium, driver))
}

/// How a browser is opened.
#[derive(Clone, Copy)]
pub struct Options {
    /// Window size.
    pub size: (u32, u32),
    /// JavaScript on.
    pub javascript: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            size: DESKTOP,
            javascript: true,
        }
    }
}

/// A headless Chromium with its own chromedriver and a fresh profile.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    /// The app's origin (`http://localhost:PORT`).
    pub base: String,
    _driver: tokio::process::Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    /// Opens a browser on the app at `base`, or `None` (after saying why) when none is installed.
    pub async fn open(base: &str, options: Options) -> Option<Self> {
        let (chromium, driver) = match tools() {
            Ok(t) => t,
            Err(reason) => {
                if std::env::var("BOXOFFICE_REQUIRE_BROWSER").as_deref() == Ok("1") {
                    panic!("BOXOFFICE_REQUIRE_BROWSER=1 but {reason}");
                }
                eprintln!("skipping a real-browser test: {reason}");
                return None;
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{webdriver}/status")).send().await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver did not start within 10 s");
        let profile =
            std::env::temp_dir().join(format!("bo-chromium-{}", uuid::Uuid::now_v7().simple()));
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--lang=ko-KR".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", options.size.0, options.size.1),
        ];
        if !options.javascript {
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": args,
                "prefs": {"intl.accept_languages": "ko-KR,ko"},
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .expect("a Chromium session");
        client
            .set_window_size(options.size.0, options.size.1)
            .await
            .expect("window size");
        Some(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            _driver: child,
            profile,
        })
    }

    /// Opens a path of the app.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits up to 15 s for an element.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` within 15 s: {e}"))
    }

    /// Polls a JavaScript condition (an expression) every 50 ms for up to 15 s.
    pub async fn wait_until(&self, what: &str, expression: &str) {
        for _ in 0..300 {
            if self.js(&format!("return !!({expression});")).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: `{expression}` did not hold within 15 s");
    }

    /// Types into a field (cleared first).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks an element.
    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("click");
    }

    /// The visible text of an element.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    /// Runs JavaScript (a function body) and returns its value.
    pub async fn js(&self, body: &str) -> Value {
        self.client.execute(body, vec![]).await.expect("script")
    }

    /// Runs asynchronous JavaScript: the body gets `done` to call with its result.
    pub async fn js_async(&self, body: &str) -> Value {
        let script = format!("const done = arguments[arguments.length - 1]; {body}");
        self.client
            .execute_async(&script, vec![])
            .await
            .expect("async script")
    }

    /// Saves `docs/screenshots/<name>.png`, only with `BOXOFFICE_SCREENSHOTS=1` (ordinary runs
    /// must not change the working tree).
    pub async fn screenshot(&self, name: &str) {
        if std::env::var("BOXOFFICE_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Sends a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, method: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp {
                method: method.to_owned(),
                params,
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {method}: {e}"))
    }

    /// Adds a virtual platform authenticator that holds resident keys and verifies the user,
    /// the way a phone or laptop passkey does.
    pub async fn add_virtual_authenticator(&self) -> String {
        self.cdp("WebAuthn.enable", json!({"enableUI": false}))
            .await;
        let added = self
            .cdp(
                "WebAuthn.addVirtualAuthenticator",
                json!({"options": {
                    "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                    "hasUserVerification": true, "isUserVerified": true,
                    "automaticPresenceSimulation": true,
                }}),
            )
            .await;
        added["authenticatorId"]
            .as_str()
            .expect("authenticator id")
            .to_owned()
    }

    /// Ends the session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    method: String,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.method, "params": self.params}).to_string()),
        )
    }
}
