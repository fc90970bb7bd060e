//! The `auth` scenario: login, refresh and /me against a running boxoffice.

mod endpoints;

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::cli::{AuthMix, Cli};
use crate::http;
use crate::report::RunOutput;
use crate::runner::{self, RunConfig};
use crate::tokens::{self, TokenStore};
use endpoints::{Login, Me, Refresh, Shared};

/// Runs the `--mix` phases in order, each reported on its own.
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    if cli.targets.is_empty() {
        bail!("auth needs --target URL of a running boxoffice");
    }
    let path = cli.tokens.as_deref().context(
        "auth needs --tokens FILE; create it with `boxoffice bench seed --users N --out tokens.jsonl`",
    )?;
    let store = Arc::new(TokenStore::new(tokens::load(path)?));
    let users = config.users as usize;
    if cli.mix.contains(&AuthMix::Refresh) && store.len() < users {
        bail!(
            "refresh needs one token line per virtual user, because refresh tokens rotate and a reused \
             one revokes its session: {} has {} lines for {users} users; seed at least {users} \
             (`boxoffice bench seed --users {users} --out {}`) or lower --users",
            path.display(),
            store.len(),
            path.display()
        );
    }
    let shared = Shared {
        client: http::client(config.users, config.timeout)?,
        targets: cli.targets.clone(),
        store: Arc::clone(&store),
    };

    let mut output = RunOutput::default();
    for mix in &cli.mix {
        let phase = match mix {
            AuthMix::Me => runner::measure(Me::new(shared.clone())?, config).await,
            AuthMix::Refresh => runner::measure(Refresh::new(shared.clone())?, config).await,
            AuthMix::Login => runner::measure(Login::new(shared.clone())?, config).await,
        };
        output.phases.push(phase);
    }

    if let Some(note) = tokens::write_back(path, &store) {
        output.notes.push(format!("refresh: {note}"));
    }
    if cli.mix.contains(&AuthMix::Login) {
        output.notes.push(
            "login: every call hashes a password with Argon2id, so it is CPU-bound by design."
                .to_owned(),
        );
    }
    Ok(output)
}
