//! Sign-in with Google (OpenID Connect), Naver and Kakao (OAuth 2.0 + user info): the
//! authorization code flow with PKCE, account creation and linking.

pub mod flow;
pub mod handlers;
pub mod id_token;
pub mod providers;
pub mod redirect;

pub use providers::{OAuth, ProviderId, ProviderIdentity};
