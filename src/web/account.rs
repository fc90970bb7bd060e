//! Signing in and up in the browser: `/account/sign-in` (password, passkey with conditional UI,
//! the configured OAuth providers, a one-time e-mail code), `/account/sign-up`,
//! `/account/verify` (the 6-digit code) and `/account/reset` (forgotten password). Every form talks
//! to the `/auth/*` JSON API, which sets the `bo_session` cookie (`?session=cookie`).

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::context::{Ctx, PageResult, encode, render, safe_next};
use crate::app::AppState;

crate::texts! {
    /// Texts of the sign-in and sign-up pages.
    pub struct AccountTexts {
        sign_in: "로그인", "Sign in";
        sign_up: "회원가입", "Sign up";
        email: "이메일", "E-mail";
        password: "비밀번호", "Password";
        password_help: "10자 이상, 흔한 비밀번호는 쓸 수 없습니다.", "At least 10 characters; common passwords are refused.";
        name: "이름", "Name";
        nickname: "닉네임 (선택)", "Nickname (optional)";
        language: "언어", "Language";
        passkey: "패스키로 로그인", "Sign in with a passkey";
        passkey_unsupported: "이 브라우저는 패스키를 지원하지 않습니다.", "This browser does not support passkeys.";
        or: "또는", "or";
        with_provider: "(으)로 계속하기", "Continue with";
        email_code: "이메일로 받은 코드로 로그인", "Sign in with a code by e-mail";
        send_code: "코드 보내기", "Send code";
        code: "6자리 코드", "6-digit code";
        code_sent: "코드를 보냈습니다. 메일함을 확인해 주세요.", "We sent a code. Please check your inbox.";
        no_account: "계정이 없으신가요?", "No account yet?";
        have_account: "이미 계정이 있으신가요?", "Already have an account?";
        forgot: "비밀번호를 잊으셨나요?", "Forgot your password?";
        verify: "이메일 인증", "Confirm your e-mail";
        verify_help: "가입한 이메일로 6자리 코드를 보냈습니다. 10분 안에 입력해 주세요.", "We e-mailed you a 6-digit code. Enter it within 10 minutes.";
        verify_button: "인증하기", "Confirm";
        verified: "인증되었습니다. 이제 로그인하세요.", "Confirmed. You can sign in now.";
        resend: "코드 다시 보내기", "Send the code again";
        reset: "비밀번호 재설정", "Reset your password";
        reset_help: "가입한 이메일을 입력하면 재설정 코드를 보내 드립니다.", "Enter your e-mail and we send you a reset code.";
        new_password: "새 비밀번호", "New password";
        reset_button: "비밀번호 바꾸기", "Change password";
        reset_done: "비밀번호를 바꿨습니다. 새 비밀번호로 로그인하세요.", "Password changed. Sign in with the new one.";
        korean: "한국어", "Korean";
        english: "English", "English";
    }
}

/// `?next=` (and `?email=` on the code pages).
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    next: Option<String>,
    email: Option<String>,
    verified: Option<String>,
    reset: Option<String>,
}

/// A configured OAuth provider's button.
pub struct ProviderButton {
    label: &'static str,
    url: String,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "web/sign_in.html")]
struct SignInPage {
    ctx: Ctx,
    a: &'static AccountTexts,
    next: String,
    next_encoded: String,
    email: String,
    providers: Vec<ProviderButton>,
    notice: Option<&'static str>,
}

/// `GET /account/sign-in`.
pub async fn sign_in(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<Params>,
) -> PageResult {
    let next = safe_next(p.next.as_deref());
    if ctx.signed_in() {
        return Ok(axum::response::IntoResponse::into_response(
            axum::response::Redirect::to(&next),
        ));
    }
    let a = AccountTexts::of(ctx.lang);
    let providers = state
        .oauth
        .configured()
        .map(|provider| {
            let id = provider.id.as_str();
            let (label, class) = match id {
                "google" => ("Google", "google"),
                "naver" => (
                    if ctx.lang == super::i18n::Lang::Ko {
                        "네이버"
                    } else {
                        "Naver"
                    },
                    "naver",
                ),
                "kakao" => (
                    if ctx.lang == super::i18n::Lang::Ko {
                        "카카오"
                    } else {
                        "Kakao"
                    },
                    "kakao",
                ),
                _ => ("OAuth", "other"),
            };
            ProviderButton {
                label,
                url: format!("/auth/oauth/{id}/start?return_to={}", encode(&next)),
                class,
            }
        })
        .collect();
    let notice = if p.verified.is_some() {
        Some(a.verified)
    } else if p.reset.is_some() {
        Some(a.reset_done)
    } else {
        None
    };
    render(&SignInPage {
        a,
        next_encoded: encode(&next),
        next,
        email: p.email.unwrap_or_default(),
        providers,
        notice,
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/sign_up.html")]
struct SignUpPage {
    ctx: Ctx,
    a: &'static AccountTexts,
    next_encoded: String,
}

/// `GET /account/sign-up`.
pub async fn sign_up(ctx: Ctx, Query(p): Query<Params>) -> PageResult {
    let a = AccountTexts::of(ctx.lang);
    render(&SignUpPage {
        a,
        next_encoded: encode(&safe_next(p.next.as_deref())),
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/verify.html")]
struct VerifyPage {
    ctx: Ctx,
    a: &'static AccountTexts,
    email: String,
    email_encoded: String,
    next_encoded: String,
}

/// `GET /account/verify?email=`: enter the sign-up code.
pub async fn verify(ctx: Ctx, Query(p): Query<Params>) -> PageResult {
    let a = AccountTexts::of(ctx.lang);
    let email = p.email.unwrap_or_default();
    render(&VerifyPage {
        a,
        email_encoded: encode(&email),
        email,
        next_encoded: encode(&safe_next(p.next.as_deref())),
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/reset.html")]
struct ResetPage {
    ctx: Ctx,
    a: &'static AccountTexts,
    email: String,
}

/// `GET /account/reset`: ask for a code, then set a new password with it.
pub async fn reset(ctx: Ctx, Query(p): Query<Params>) -> PageResult {
    let a = AccountTexts::of(ctx.lang);
    render(&ResetPage {
        a,
        email: p.email.unwrap_or_default(),
        ctx,
    })
}
