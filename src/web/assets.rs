//! Stylesheets and ES modules compiled into the binary and served under content-hashed names with
//! year-long immutable caching, so a new release is picked up at once and nothing is fetched twice.

use std::{collections::HashMap, sync::LazyLock};

use axum::{
    extract::Path,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// Every asset, in dependency order: a module may import (`./name.js`) only those listed before it.
const SOURCES: &[(&str, &str)] = &[
    ("app.css", include_str!("static/app.css")),
    ("enhance.js", include_str!("static/enhance.js")),
    ("countdown.js", include_str!("static/countdown.js")),
    ("buy.css", include_str!("static/buy.css")),
    ("seatdraw.js", include_str!("static/seatdraw.js")),
    ("seatmap.js", include_str!("static/seatmap.js")),
    ("queue.js", include_str!("static/queue.js")),
    ("checkout.js", include_str!("static/checkout.js")),
    ("account.css", include_str!("static/account.css")),
    ("passkey.js", include_str!("static/passkey.js")),
    ("passkeys-page.js", include_str!("static/passkeys-page.js")),
    ("manage.css", include_str!("static/manage.css")),
    ("manage.js", include_str!("static/manage.js")),
    (
        "seatmap-editor.js",
        include_str!("static/seatmap-editor.js"),
    ),
    ("chart.js", include_str!("static/chart.js")),
    ("manage-queue.js", include_str!("static/manage-queue.js")),
    ("checkin.js", include_str!("static/checkin.js")),
];

/// One built asset.
struct Asset {
    body: String,
    content_type: &'static str,
}

/// Assets by hashed name, and the hashed name of each logical name.
struct Assets {
    by_hashed: HashMap<String, Asset>,
    hashed_of: HashMap<&'static str, String>,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(build);

fn build() -> Assets {
    let mut by_hashed = HashMap::new();
    let mut hashed_of: HashMap<&'static str, String> = HashMap::new();
    for (name, source) in SOURCES {
        // Point imports at the hashed names, so a changed dependency changes this file's hash too.
        let mut body = (*source).to_owned();
        for (dep, hashed) in &hashed_of {
            body = body.replace(&format!("\"./{dep}\""), &format!("\"./{hashed}\""));
        }
        let digest = Sha256::digest(body.as_bytes());
        let short: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let hashed = format!("{stem}.{short}.{ext}");
        let content_type = match ext {
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "svg" => "image/svg+xml",
            _ => "application/octet-stream",
        };
        by_hashed.insert(hashed.clone(), Asset { body, content_type });
        hashed_of.insert(name, hashed);
    }
    Assets {
        by_hashed,
        hashed_of,
    }
}

/// The URL of an asset by its logical name (`"app.css"` → `/static/app.1a2b3c4d5e.css`).
pub fn url(name: &str) -> String {
    match ASSETS.hashed_of.get(name) {
        Some(hashed) => format!("/static/{hashed}"),
        // A template naming an asset that does not exist is a programming error; the test
        // `every_template_asset_exists` keeps this branch unreachable.
        None => format!("/static/{name}"),
    }
}

/// Serves `/static/{hashed name}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.by_hashed.get(&file) {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.body.clone(),
        )
            .into_response(),
        None => crate::error::AppError::not_found().into_response(),
    }
}

/// Logical names of all assets (tests).
pub fn names() -> Vec<&'static str> {
    SOURCES.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_gets_a_distinct_hashed_url() {
        let urls: std::collections::HashSet<String> = names().iter().map(|n| url(n)).collect();
        assert_eq!(urls.len(), names().len());
        for u in urls {
            assert!(
                u.starts_with("/static/") && u.matches('.').count() == 2,
                "{u}"
            );
        }
    }

    #[test]
    fn imports_point_at_hashed_names() {
        for asset in ASSETS.by_hashed.values() {
            for name in names() {
                assert!(
                    !asset.body.contains(&format!("\"./{name}\"")),
                    "an import of {name} was not rewritten"
                );
            }
        }
    }
}
