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

#[derive(Template)]
#[template(path = "mail/notice.txt")]
struct NoticeText<'a> {
    greeting: &'a str,
    paragraphs: &'a [String],
    code: Option<&'a str>,
    footer: &'a [String],
}

#[derive(Template)]
#[template(path = "mail/notice.html")]
struct NoticeHtml<'a> {
    ko: bool,
    subject: &'a str,
    greeting: &'a str,
    paragraphs: &'a [String],
    code: Option<&'a str>,
    footer: &'a [String],
}

/// A plain notice: greeting, paragraphs, an optional code, a footer.
struct Notice {
    subject: String,
    greeting: String,
    paragraphs: Vec<String>,
    code: Option<String>,
    footer: Vec<String>,
}

impl Notice {
    fn render(self, ko: bool) -> anyhow::Result<Rendered> {
        let text = NoticeText {
            greeting: &self.greeting,
            paragraphs: &self.paragraphs,
            code: self.code.as_deref(),
            footer: &self.footer,
        }
        .render()?;
        let html = NoticeHtml {
            ko,
            subject: &self.subject,
            greeting: &self.greeting,
            paragraphs: &self.paragraphs,
            code: self.code.as_deref(),
            footer: &self.footer,
        }
        .render()?;
        Ok(Rendered {
            subject: self.subject,
            text,
            html,
        })
    }
}

fn greeting(ko: bool, name: &str) -> String {
    match (ko, name.is_empty()) {
        (true, false) => format!("{name}님, 안녕하세요."),
        (true, true) => "안녕하세요.".to_owned(),
        (false, false) => format!("Hello {name},"),
        (false, true) => "Hello,".to_owned(),
    }
}

fn not_you(ko: bool) -> Vec<String> {
    vec![if ko {
        "본인이 한 일이 아니라면 즉시 비밀번호를 재설정하고 고객센터에 알려 주세요.".to_owned()
    } else {
        "If this was not you, reset your password now and tell us.".to_owned()
    }]
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
        Mail::PasswordReset {
            name,
            code,
            minutes,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] 비밀번호 재설정 코드 {code}")
            } else {
                format!("[boxoffice] Your password reset code is {code}")
            },
            greeting: greeting(ko, name),
            paragraphs: vec![if ko {
                format!("아래 코드를 입력해 새 비밀번호를 설정하세요. 코드는 {minutes}분 동안 유효합니다.")
            } else {
                format!("Enter the code below to choose a new password. It is valid for {minutes} minutes.")
            }],
            code: Some(code.clone()),
            footer: vec![if ko {
                "비밀번호 재설정을 요청하지 않았다면 이 메일을 무시하세요. 비밀번호는 바뀌지 않습니다.".to_owned()
            } else {
                "If you did not ask for this, ignore this e-mail; your password stays as it is.".to_owned()
            }],
        }
        .render(ko),
        Mail::PasswordChanged { name } => Notice {
            subject: if ko {
                "[boxoffice] 비밀번호가 변경되었습니다".to_owned()
            } else {
                "[boxoffice] Your password was changed".to_owned()
            },
            greeting: greeting(ko, name),
            paragraphs: vec![if ko {
                "계정의 비밀번호가 변경되었고, 다른 기기의 로그인은 모두 종료되었습니다.".to_owned()
            } else {
                "The password of your account was changed and your other sessions were signed out.".to_owned()
            }],
            code: None,
            footer: not_you(ko),
        }
        .render(ko),
        Mail::NewSignIn {
            name,
            ip,
            device,
            at,
        } => Notice {
            subject: if ko {
                "[boxoffice] 새로운 기기에서 로그인했습니다".to_owned()
            } else {
                "[boxoffice] New sign-in to your account".to_owned()
            },
            greeting: greeting(ko, name),
            paragraphs: if ko {
                vec![
                    "처음 보는 기기 또는 네트워크에서 로그인이 있었습니다.".to_owned(),
                    format!("기기: {device} · IP: {ip} · 시각: {at}"),
                ]
            } else {
                vec![
                    "Your account was signed in from a device or network we had not seen before.".to_owned(),
                    format!("Device: {device} · IP: {ip} · Time: {at}"),
                ]
            },
            code: None,
            footer: not_you(ko),
        }
        .render(ko),
        Mail::AccountLocked { name, minutes } => Notice {
            subject: if ko {
                "[boxoffice] 계정이 일시적으로 잠겼습니다".to_owned()
            } else {
                "[boxoffice] Your account is locked for now".to_owned()
            },
            greeting: greeting(ko, name),
            paragraphs: vec![if ko {
                format!("잘못된 비밀번호가 여러 번 입력되어 계정을 {minutes}분 동안 잠갔습니다. 비밀번호 재설정으로 바로 풀 수 있습니다.")
            } else {
                format!("After several wrong passwords we locked your account for {minutes} minutes. Resetting your password unlocks it at once.")
            }],
            code: None,
            footer: not_you(ko),
        }
        .render(ko),
        Mail::AccountDeleted { name } => Notice {
            subject: if ko {
                "[boxoffice] 계정이 삭제되었습니다".to_owned()
            } else {
                "[boxoffice] Your account was deleted".to_owned()
            },
            greeting: greeting(ko, name),
            paragraphs: vec![if ko {
                "요청하신 대로 계정을 삭제했습니다. 주문 기록은 회계 목적으로 익명 상태로 보관됩니다. 같은 주소로 언제든 다시 가입할 수 있습니다.".to_owned()
            } else {
                "As you asked, your account was deleted. Orders are kept anonymously for accounting. You can sign up again with this address at any time.".to_owned()
            }],
            code: None,
            footer: Vec::new(),
        }
        .render(ko),
        Mail::BackInStock {
            name,
            product_name,
            event_title,
            url,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] {product_name} 다시 구매할 수 있습니다")
            } else {
                format!("[boxoffice] {product_name} is available again")
            },
            greeting: greeting(ko, name),
            paragraphs: if ko {
                vec![
                    format!("알림을 신청하신 {event_title}의 {product_name} 상품을 다시 구매할 수 있습니다. 수량이 한정되어 먼저 주문하신 분께 판매됩니다."),
                    url.clone(),
                ]
            } else {
                vec![
                    format!("{product_name} for {event_title}, which you asked us about, can be bought again. Quantities are limited: first come, first served."),
                    url.clone(),
                ]
            },
            code: None,
            footer: vec![if ko {
                "알림은 한 번만 보내 드립니다. 다시 받으려면 상품 페이지에서 다시 신청하세요.".to_owned()
            } else {
                "We send this once. To hear about the next restock, ask again on the product page.".to_owned()
            }],
        }
        .render(ko),
        Mail::OrderConfirmed {
            name,
            event_title,
            order_id,
            lines,
            total,
            url,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] {event_title} 주문이 확정되었습니다")
            } else {
                format!("[boxoffice] Your order for {event_title} is confirmed")
            },
            greeting: greeting(ko, name),
            paragraphs: {
                let mut p = vec![if ko {
                    format!("결제가 완료되어 주문({order_id})이 확정되었습니다.")
                } else {
                    format!("We received your payment; order {order_id} is confirmed.")
                }];
                p.extend(lines.iter().cloned());
                p.push(if ko {
                    format!("결제 금액: {total}")
                } else {
                    format!("Total paid: {total}")
                });
                p.push(if ko {
                    format!("티켓(QR 코드)과 주문 내역은 여기에서 볼 수 있습니다: {url}")
                } else {
                    format!("Your tickets (QR codes) and the order are here: {url}")
                });
                p
            },
            code: None,
            footer: vec![if ko {
                "입장 시 티켓의 QR 코드를 보여 주세요. 취소 규정은 주문 페이지에서 확인할 수 있습니다.".to_owned()
            } else {
                "Show the ticket's QR code at the entrance. The cancellation policy is on the order page.".to_owned()
            }],
        }
        .render(ko),
        Mail::OrderCanceled {
            name,
            event_title,
            order_id,
            note,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] {event_title} 주문이 취소되었습니다")
            } else {
                format!("[boxoffice] Your order for {event_title} was canceled")
            },
            greeting: greeting(ko, name),
            paragraphs: with_note(
                ko,
                vec![if ko {
                    format!("{event_title} 주문(주문번호 {order_id})이 취소되었습니다. 결제 전 주문이므로 청구된 금액은 없습니다.")
                } else {
                    format!("Your order {order_id} for {event_title} was canceled. It was not paid, so nothing was charged.")
                }],
                note.as_deref(),
            ),
            code: None,
            footer: Vec::new(),
        }
        .render(ko),
        Mail::OrderRefunded {
            name,
            event_title,
            order_id,
            amount,
            fee,
            note,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] {event_title} 주문이 환불되었습니다")
            } else {
                format!("[boxoffice] Your order for {event_title} was refunded")
            },
            greeting: greeting(ko, name),
            paragraphs: with_note(
                ko,
                if ko {
                    vec![
                        format!("{event_title} 주문(주문번호 {order_id})이 취소되어 환불을 요청했습니다."),
                        format!("환불 금액: {amount} · 취소 수수료: {fee}"),
                        "카드사에 따라 환불 금액이 반영되기까지 3~5 영업일이 걸릴 수 있습니다. 티켓은 더 이상 사용할 수 없습니다.".to_owned(),
                    ]
                } else {
                    vec![
                        format!("Your order {order_id} for {event_title} was canceled and we asked for the refund."),
                        format!("Refund: {amount} · Cancellation fee: {fee}"),
                        "Your card issuer may take 3 to 5 business days to show it. The tickets can no longer be used.".to_owned(),
                    ]
                },
                note.as_deref(),
            ),
            code: None,
            footer: Vec::new(),
        }
        .render(ko),
        Mail::EventCanceled {
            name,
            event_title,
            order_id,
            reason,
            refund,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] {event_title} 공연이 취소되었습니다")
            } else {
                format!("[boxoffice] {event_title} was canceled")
            },
            greeting: greeting(ko, name),
            paragraphs: {
                let mut p = if ko {
                    vec![
                        format!("안타깝게도 {event_title} 공연이 취소되었습니다."),
                        format!("취소 사유: {reason}"),
                    ]
                } else {
                    vec![
                        format!("We are sorry: {event_title} was canceled."),
                        format!("Reason: {reason}"),
                    ]
                };
                p.push(match (ko, refund) {
                    (true, Some(r)) => format!("주문(주문번호 {order_id})의 결제 금액 {r} 전액을 수수료 없이 환불합니다. 카드사에 따라 3~5 영업일이 걸릴 수 있습니다."),
                    (false, Some(r)) => format!("We refund the whole {r} of order {order_id}, without any fee. Your card issuer may take 3 to 5 business days to show it."),
                    (true, None) => format!("결제 전 주문(주문번호 {order_id})은 취소되었고 청구된 금액은 없습니다."),
                    (false, None) => format!("Your unpaid order {order_id} was canceled; nothing was charged."),
                });
                p
            },
            code: None,
            footer: Vec::new(),
        }
        .render(ko),
        Mail::MerchShipped {
            name,
            event_title,
            product_name,
            carrier,
            tracking_number,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] {product_name} 상품이 발송되었습니다")
            } else {
                format!("[boxoffice] {product_name} is on its way")
            },
            greeting: greeting(ko, name),
            paragraphs: if ko {
                vec![
                    format!("{event_title}에서 주문하신 {product_name} 상품을 발송했습니다."),
                    format!("택배사: {carrier} · 운송장 번호: {tracking_number}"),
                ]
            } else {
                vec![
                    format!("{product_name} from {event_title} was shipped."),
                    format!("Carrier: {carrier} · Tracking number: {tracking_number}"),
                ]
            },
            code: None,
            footer: Vec::new(),
        }
        .render(ko),
        Mail::LoginCode {
            name,
            code,
            minutes,
        } => Notice {
            subject: if ko {
                format!("[boxoffice] 로그인 코드 {code}")
            } else {
                format!("[boxoffice] Your sign-in code is {code}")
            },
            greeting: greeting(ko, name),
            paragraphs: vec![if ko {
                format!("아래 코드를 입력하면 로그인됩니다. 코드는 {minutes}분 동안 유효합니다.")
            } else {
                format!("Enter the code below to sign in. It is valid for {minutes} minutes.")
            }],
            code: Some(code.clone()),
            footer: not_you(ko),
        }
        .render(ko),
    }
}

/// Adds the organizer's note, when there is one.
fn with_note(ko: bool, mut paragraphs: Vec<String>, note: Option<&str>) -> Vec<String> {
    if let Some(note) = note {
        paragraphs.push(if ko {
            format!("주최 측 안내: {note}")
        } else {
            format!("From the organizer: {note}")
        });
    }
    paragraphs
}
