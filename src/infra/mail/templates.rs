//! Mail bodies (askama): text and HTML, Korean and English.

use askama::Template;

use super::{Mail, MailLocale};

/// A mail ready for the transport.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyEmailText<'a> {
    ko: bool,
    name: &'a str,
    code: &'a str,
    minutes: u32,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyEmailHtml<'a> {
    ko: bool,
    subject: &'a str,
    name: &'a str,
    code: &'a str,
    minutes: u32,
}

/// Renders a mail in the recipient's language.
pub fn render(mail: &Mail, locale: MailLocale) -> anyhow::Result<Rendered> {
    let ko = locale == MailLocale::Ko;
    match mail {
        Mail::VerifyEmail {
            name,
            code,
            minutes,
        } => {
            let subject = if ko {
                format!("[boxoffice] 이메일 인증 코드 {code}")
            } else {
                format!("[boxoffice] Your verification code is {code}")
            };
            let text = VerifyEmailText {
                ko,
                name,
                code,
                minutes: *minutes,
            }
            .render()?;
            let html = VerifyEmailHtml {
                ko,
                subject: &subject,
                name,
                code,
                minutes: *minutes,
            }
            .render()?;
            Ok(Rendered {
                subject,
                text,
                html,
            })
        }
    }
}
