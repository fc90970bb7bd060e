//! The seeded-users file (`boxoffice bench seed --out tokens.jsonl`) and the live tokens of a run.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::http;
use crate::scenario::Status;

/// One line of the tokens file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TokenLine {
    /// Seeded user's id.
    pub user_id: String,
    /// Login email.
    pub email: String,
    /// Login password.
    pub password: String,
    /// Bearer token for authenticated calls.
    pub access_token: String,
    /// Single-use refresh token; rotated by every refresh.
    pub refresh_token: String,
    /// Fields loadgen does not use, kept so rewriting the file loses nothing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Parses JSON lines, skipping blank ones; errors name the line.
pub fn parse(text: &str) -> Result<Vec<TokenLine>> {
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line).with_context(|| format!("line {}", number + 1))
        })
        .collect::<Result<Vec<TokenLine>>>()?;
    if lines.is_empty() {
        bail!("no token lines");
    }
    Ok(lines)
}

/// Reads and parses the tokens file.
pub fn load(path: &Path) -> Result<Vec<TokenLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Rewrites the tokens file via a temporary file, so an interrupted write cannot truncate it.
pub fn save(path: &Path, lines: &[TokenLine]) -> Result<()> {
    let mut text = String::new();
    for line in lines {
        text.push_str(&serde_json::to_string(line).context("serialising a token line")?);
        text.push('\n');
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, text)
        .with_context(|| format!("writing {}", Path::new(&temporary).display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))
}

/// The current tokens of every line, updated as refreshes rotate them.
#[derive(Debug)]
pub struct TokenStore {
    lines: Vec<Mutex<TokenLine>>,
    rotations: AtomicU64,
}

impl TokenStore {
    /// Wraps the lines read from the file.
    pub fn new(lines: Vec<TokenLine>) -> Self {
        Self {
            lines: lines.into_iter().map(Mutex::new).collect(),
            rotations: AtomicU64::new(0),
        }
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// A copy of line `index`, wrapping around.
    pub fn get(&self, index: usize) -> TokenLine {
        self.slot(index)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the tokens a refresh of line `index` returned.
    pub fn rotate(&self, index: usize, access_token: &str, refresh_token: &str) {
        let mut line = self
            .slot(index)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        access_token.clone_into(&mut line.access_token);
        refresh_token.clone_into(&mut line.refresh_token);
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    /// How many refreshes have rotated a line so far.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// A copy of every line, for writing back.
    pub fn snapshot(&self) -> Vec<TokenLine> {
        (0..self.len()).map(|index| self.get(index)).collect()
    }

    fn slot(&self, index: usize) -> &Mutex<TokenLine> {
        // parse() rejects empty files, so there is always a line to wrap around to.
        &self.lines[index % self.lines.len()]
    }
}

/// Writes the rotated tokens back to `path` when any were rotated, and says so (`None` when the
/// file's tokens are still the live ones).
pub fn write_back(path: &Path, store: &TokenStore) -> Option<String> {
    if store.rotations() == 0 {
        return None;
    }
    // The file's refresh tokens are spent now; without the new ones the next run would only
    // measure revoked sessions.
    let note = match save(path, &store.snapshot()) {
        Ok(()) => format!(
            "{} rotated token pairs were written back to {}",
            store.rotations(),
            path.display()
        ),
        Err(error) => format!(
            "could not write the rotated tokens back ({error:#}); {} now holds spent refresh tokens",
            path.display()
        ),
    };
    eprintln!("{note}");
    Some(note)
}

#[derive(Serialize)]
struct RefreshRequest<'a> {
    refresh_token: &'a str,
}

/// A successful answer of `POST /auth/refresh`.
#[derive(Debug, Deserialize)]
pub struct TokenPair {
    /// The new access token.
    pub access_token: String,
    /// The new refresh token; the presented one is spent.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
}

/// What `POST /auth/refresh` answered.
#[derive(Debug)]
pub enum Refreshed {
    /// A new pair.
    Pair(TokenPair),
    /// Any other answer, labelled for the report.
    Refused(Status),
}

/// Trades `refresh_token` for a new pair at `url` (`…/auth/refresh`); `Err` only when no answer came.
pub async fn refresh(client: &Client, url: Url, refresh_token: &str) -> Result<Refreshed> {
    let response = client
        .post(url)
        .json(&RefreshRequest { refresh_token })
        .send()
        .await?;
    if response.status() != StatusCode::OK {
        return Ok(Refreshed::Refused(
            http::expect(Ok(response), StatusCode::OK).await?,
        ));
    }
    match response.json::<TokenPair>().await {
        Ok(pair) => Ok(Refreshed::Pair(pair)),
        Err(error) if error.is_decode() => Ok(Refreshed::Refused(Status::Unexpected(
            "200 with unexpected body".to_owned(),
        ))),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"user_id":"u1","email":"a@example.test","password":"pw","access_token":"at","refresh_token":"rt","extra":1}"#;

    #[test]
    fn parses_rotates_and_keeps_unknown_fields() {
        let lines = parse(&format!("{LINE}\n\n{LINE}\n")).expect("valid");
        assert_eq!(lines.len(), 2);
        let store = TokenStore::new(lines);
        store.rotate(3, "at2", "rt2");
        assert_eq!(store.get(1).refresh_token, "rt2");
        assert_eq!(store.get(0).refresh_token, "rt");
        assert_eq!(store.rotations(), 1);
        let written = serde_json::to_string(&store.get(1)).expect("serialises");
        assert!(written.contains(r#""extra":1"#));
    }

    #[test]
    fn names_the_bad_line() {
        let error = parse(&format!("{LINE}\n{{\"email\":1}}\n")).expect_err("invalid");
        assert!(format!("{error:#}").starts_with("line 2"));
        assert!(parse("\n").is_err());
    }
}
