//! One scenario per auth endpoint.

use std::sync::Arc;

use anyhow::{Result, bail};
use reqwest::{Client, StatusCode, Url};
use serde::Serialize;

use crate::http;
use crate::scenario::{Scenario, Status, Step};
use crate::tokens::{self, Refreshed, TokenStore};

/// What every auth scenario needs: the client, one endpoint URL per target, and the tokens.
#[derive(Debug, Clone)]
pub struct Shared {
    /// HTTP client shared by all users.
    pub client: Client,
    /// Base URLs of the service instances.
    pub targets: Vec<String>,
    /// Live tokens.
    pub store: Arc<TokenStore>,
}

impl Shared {
    fn endpoints(&self, path: &str) -> Result<Vec<Url>> {
        // `pick` divides by the number of URLs, so an empty list must never get that far.
        if self.targets.is_empty() {
            bail!("no --target given");
        }
        self.targets
            .iter()
            .map(|target| http::endpoint(target, path))
            .collect()
    }
}

/// Virtual users go round-robin over the targets.
fn pick(urls: &[Url], index: usize) -> Url {
    urls[index % urls.len()].clone()
}

/// `GET /auth/me` with a bearer access token.
pub struct Me {
    shared: Shared,
    urls: Vec<Url>,
}

impl Me {
    /// Prepares the endpoint URLs.
    pub fn new(shared: Shared) -> Result<Self> {
        let urls = shared.endpoints("/auth/me")?;
        Ok(Self { shared, urls })
    }
}

/// A `me` user's endpoint and access token.
pub struct MeUser {
    url: Url,
    access_token: String,
}

impl Scenario for Me {
    type User = MeUser;

    fn name(&self) -> &'static str {
        "me"
    }

    fn user(&self, index: usize) -> Result<MeUser> {
        Ok(MeUser {
            url: pick(&self.urls, index),
            access_token: self.shared.store.get(index).access_token,
        })
    }

    async fn step(&self, user: &mut MeUser) -> Step {
        let response = self
            .shared
            .client
            .get(user.url.clone())
            .bearer_auth(&user.access_token)
            .send()
            .await;
        ("GET /auth/me", http::expect(response, StatusCode::OK).await)
    }
}

/// `POST /auth/refresh`; each user owns one line and keeps the rotated token.
pub struct Refresh {
    shared: Shared,
    urls: Vec<Url>,
}

impl Refresh {
    /// Prepares the endpoint URLs; the caller has checked there is a line per user.
    pub fn new(shared: Shared) -> Result<Self> {
        let urls = shared.endpoints("/auth/refresh")?;
        Ok(Self { shared, urls })
    }
}

/// A `refresh` user's endpoint, its own line, and that line's current refresh token.
pub struct RefreshUser {
    url: Url,
    line: usize,
    refresh_token: String,
}

impl Scenario for Refresh {
    type User = RefreshUser;

    fn name(&self) -> &'static str {
        "refresh"
    }

    fn user(&self, index: usize) -> Result<RefreshUser> {
        Ok(RefreshUser {
            url: pick(&self.urls, index),
            line: index,
            refresh_token: self.shared.store.get(index).refresh_token,
        })
    }

    async fn step(&self, user: &mut RefreshUser) -> Step {
        let answer =
            tokens::refresh(&self.shared.client, user.url.clone(), &user.refresh_token).await;
        let outcome = match answer {
            Ok(Refreshed::Pair(pair)) => {
                // Keep the new token before judging the rest: the old one is spent either way.
                self.shared
                    .store
                    .rotate(user.line, &pair.access_token, &pair.refresh_token);
                user.refresh_token = pair.refresh_token;
                if pair.token_type == "Bearer" {
                    Ok(Status::Ok)
                } else {
                    Ok(Status::Unexpected(format!(
                        "token_type {:?}",
                        pair.token_type
                    )))
                }
            }
            Ok(Refreshed::Refused(status)) => Ok(status),
            Err(error) => Err(error),
        };
        ("POST /auth/refresh", outcome)
    }
}

/// `POST /auth/login` with the seeded email and password.
pub struct Login {
    shared: Shared,
    urls: Vec<Url>,
}

impl Login {
    /// Prepares the endpoint URLs.
    pub fn new(shared: Shared) -> Result<Self> {
        let urls = shared.endpoints("/auth/login")?;
        Ok(Self { shared, urls })
    }
}

/// A `login` user's endpoint and credentials.
pub struct LoginUser {
    url: Url,
    credentials: Credentials,
}

#[derive(Serialize)]
struct Credentials {
    email: String,
    password: String,
}

impl Scenario for Login {
    type User = LoginUser;

    fn name(&self) -> &'static str {
        "login"
    }

    fn user(&self, index: usize) -> Result<LoginUser> {
        let line = self.shared.store.get(index);
        Ok(LoginUser {
            url: pick(&self.urls, index),
            credentials: Credentials {
                email: line.email,
                password: line.password,
            },
        })
    }

    async fn step(&self, user: &mut LoginUser) -> Step {
        let response = self
            .shared
            .client
            .post(user.url.clone())
            .json(&user.credentials)
            .send()
            .await;
        (
            "POST /auth/login",
            http::expect(response, StatusCode::OK).await,
        )
    }
}
