//! E-mail: written to the outbox in the transaction that causes it, delivered by a worker.

pub mod retention;
mod templates;
pub mod worker;

use sea_orm::{ConnectionTrait, Set};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{db::entities::mail_outbox, error::AppResult, infra::clock::to_db};

pub use templates::{Rendered, render};

/// Languages mails are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailLocale {
    /// Korean (the default).
    Ko,
    /// English.
    En,
}

impl MailLocale {
    /// From a stored locale tag; anything not English is Korean.
    pub fn from_tag(tag: &str) -> Self {
        if tag.eq_ignore_ascii_case("en") {
            Self::En
        } else {
            Self::Ko
        }
    }
    /// The tag stored with the mail.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Ko => "ko",
            Self::En => "en",
        }
    }
}

/// Every kind of mail with its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "template",
    content = "params",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum Mail {
    /// The 6-digit code confirming a new address.
    VerifyEmail {
        /// Greeting name.
        name: String,
        /// The code.
        code: String,
        /// Validity in minutes.
        minutes: u32,
    },
    /// The 6-digit code that lets a user set a new password.
    PasswordReset {
        /// Greeting name.
        name: String,
        /// The code.
        code: String,
        /// Validity in minutes.
        minutes: u32,
    },
    /// The password was changed (or reset).
    PasswordChanged {
        /// Greeting name.
        name: String,
    },
    /// A sign-in from a device or network not seen before.
    NewSignIn {
        /// Greeting name.
        name: String,
        /// Client address.
        ip: String,
        /// Browser and system.
        device: String,
        /// When (RFC 3339).
        at: String,
    },
    /// The account was locked after repeated wrong passwords.
    AccountLocked {
        /// Greeting name.
        name: String,
        /// Lock duration in minutes.
        minutes: u32,
    },
    /// The account was deleted.
    AccountDeleted {
        /// Greeting name.
        name: String,
    },
    /// A product the user asked about ("notify me") can be bought again.
    BackInStock {
        /// Greeting name.
        name: String,
        /// The product (text).
        product_name: String,
        /// Its event (text).
        event_title: String,
        /// The event's page.
        url: String,
    },
    /// An order was paid: what was bought and where the tickets are.
    OrderConfirmed {
        /// Greeting name.
        name: String,
        /// The event (text).
        event_title: String,
        /// The order id.
        order_id: String,
        /// One line per order line ("스탠딩 × 2 — 110000.00 KRW").
        lines: Vec<String>,
        /// What was paid, with the currency.
        total: String,
        /// The order's page.
        url: String,
    },
    /// A pending order was canceled (by the buyer or an organizer).
    OrderCanceled {
        /// Greeting name.
        name: String,
        /// The event (text).
        event_title: String,
        /// The order.
        order_id: String,
        /// The organizer's reason, when an organizer canceled it.
        note: Option<String>,
    },
    /// A paid order was refunded (by the buyer under the policy, or by an organizer).
    OrderRefunded {
        /// Greeting name.
        name: String,
        /// The event (text).
        event_title: String,
        /// The order.
        order_id: String,
        /// Paid back, with currency ("49500.00 KRW").
        amount: String,
        /// Kept as a cancellation fee, with currency.
        fee: String,
        /// The organizer's reason, when an organizer refunded it.
        note: Option<String>,
    },
    /// The event was canceled; the order was canceled or fully refunded.
    EventCanceled {
        /// Greeting name.
        name: String,
        /// The event (text).
        event_title: String,
        /// The order.
        order_id: String,
        /// The organizer's reason.
        reason: String,
        /// Paid back, with currency (absent for an unpaid order).
        refund: Option<String>,
    },
    /// Merchandise was handed to a carrier.
    MerchShipped {
        /// Greeting name.
        name: String,
        /// The event (text).
        event_title: String,
        /// The product (text).
        product_name: String,
        /// The carrier.
        carrier: String,
        /// Its tracking number.
        tracking_number: String,
    },
    /// A one-time code to sign in without a password (or passkey).
    LoginCode {
        /// Greeting name.
        name: String,
        /// The code.
        code: String,
        /// Validity in minutes.
        minutes: u32,
    },
}

/// Status of an outbox row.
pub mod status {
    /// Waiting for (re)delivery.
    pub const PENDING: &str = "PENDING";
    /// Handed to the SMTP relay.
    pub const SENT: &str = "SENT";
    /// Written to the log (demo without SMTP).
    pub const LOGGED: &str = "LOGGED";
    /// Gave up after the last retry.
    pub const FAILED: &str = "FAILED";
}

/// Adds a mail to the outbox inside the caller's transaction; wake the worker after commit.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    to: &str,
    locale: MailLocale,
    mail: &Mail,
) -> AppResult<()> {
    enqueue_all(conn, now, [(to, locale, mail)]).await
}

/// Adds mails (address, language, mail) to the outbox with multi-row statements, inside the
/// caller's transaction; wake the worker after commit.
pub async fn enqueue_all<'a, C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    mails: impl IntoIterator<Item = (&'a str, MailLocale, &'a Mail)>,
) -> AppResult<()> {
    let rows = mails
        .into_iter()
        .map(|(to, locale, mail)| {
            let value = serde_json::to_value(mail).map_err(anyhow::Error::from)?;
            Ok(mail_outbox::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                to_address: Set(to.to_owned()),
                template: Set(value["template"].as_str().unwrap_or_default().to_owned()),
                locale: Set(locale.tag().to_owned()),
                params: Set(value["params"].to_string()),
                status: Set(status::PENDING.to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(to_db(now)),
                locked_until: Set(None),
                last_error: Set(None),
                created_at: Set(to_db(now)),
                sent_at: Set(None),
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    // Without returning: on MariaDB `ActiveModel::insert` reads each row back, a second round
    // trip inside the paying transaction.
    crate::db::insert_all::<mail_outbox::Entity, _>(conn, rows).await
}

/// Rebuilds the mail from an outbox row.
pub fn from_row(row: &mail_outbox::Model) -> anyhow::Result<Mail> {
    let params: serde_json::Value = serde_json::from_str(&row.params)?;
    Ok(serde_json::from_value(serde_json::json!({
        "template": row.template,
        "params": params,
    }))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_render_in_both_languages() {
        let mail = Mail::VerifyEmail {
            name: "<b>Kim</b>".into(),
            code: "012345".into(),
            minutes: 5,
        };
        let ko = render(&mail, MailLocale::Ko).expect("renders");
        assert!(ko.text.contains("012345"));
        assert!(ko.text.contains("인증 코드"));
        assert!(
            !ko.html.contains("<b>Kim"),
            "names are escaped in HTML: {}",
            ko.html
        );
        let en = render(&mail, MailLocale::En).expect("renders");
        assert!(en.subject.contains("012345") || en.text.contains("valid for 5 minutes"));
    }

    #[test]
    fn the_order_confirmation_lists_the_lines_and_links_the_order() {
        let mail = Mail::OrderConfirmed {
            name: "Kim".into(),
            event_title: "<b>Winter</b>".into(),
            order_id: "o-1".into(),
            lines: vec!["스탠딩 × 2 — 110000.00 KRW".into()],
            total: "110000.00 KRW".into(),
            url: "http://localhost:8080/account/orders/o-1".into(),
        };
        for locale in [MailLocale::Ko, MailLocale::En] {
            let r = render(&mail, locale).expect("renders");
            assert!(r.text.contains("스탠딩 × 2") && r.text.contains("110000.00 KRW"));
            assert!(r.text.contains("/account/orders/o-1"), "{}", r.text);
            assert!(!r.html.contains("<b>Winter"), "escaped: {}", r.html);
        }
    }

    #[test]
    fn order_mails_render_in_both_languages_with_their_amounts() {
        let mails = [
            Mail::OrderCanceled {
                name: "Kim".into(),
                event_title: "Winter".into(),
                order_id: "o-1".into(),
                note: Some("<b>dup</b>".into()),
            },
            Mail::OrderRefunded {
                name: "Kim".into(),
                event_title: "Winter".into(),
                order_id: "o-1".into(),
                amount: "49500.00 KRW".into(),
                fee: "5500.00 KRW".into(),
                note: None,
            },
            Mail::EventCanceled {
                name: "Kim".into(),
                event_title: "Winter".into(),
                order_id: "o-1".into(),
                reason: "Storm".into(),
                refund: Some("55000.00 KRW".into()),
            },
            Mail::MerchShipped {
                name: "Kim".into(),
                event_title: "Winter".into(),
                product_name: "Tee".into(),
                carrier: "CJ".into(),
                tracking_number: "123-456".into(),
            },
        ];
        for mail in mails {
            for locale in [MailLocale::Ko, MailLocale::En] {
                let r = render(&mail, locale).expect("renders");
                assert!(r.text.contains("Winter"), "{}", r.text);
                assert!(!r.html.contains("<b>dup"), "escaped: {}", r.html);
            }
        }
        let shipped = Mail::MerchShipped {
            name: "Kim".into(),
            event_title: "Winter".into(),
            product_name: "Tee".into(),
            carrier: "CJ".into(),
            tracking_number: "123-456".into(),
        };
        let ko = render(&shipped, MailLocale::Ko).expect("renders");
        assert!(ko.text.contains("CJ") && ko.text.contains("123-456") && ko.text.contains("발송"));
    }

    #[test]
    fn back_in_stock_names_the_product_and_escapes_it_in_html() {
        let mail = Mail::BackInStock {
            name: "Kim".into(),
            product_name: "<i>Tee</i>".into(),
            event_title: "Winter".into(),
            url: "http://localhost:8080/e/1".into(),
        };
        for locale in [MailLocale::Ko, MailLocale::En] {
            let r = render(&mail, locale).expect("renders");
            assert!(r.text.contains("<i>Tee</i>") && r.text.contains("/e/1"));
            assert!(!r.html.contains("<i>Tee"), "escaped: {}", r.html);
        }
    }
}
