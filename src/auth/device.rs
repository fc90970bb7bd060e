//! A short, human description of a device from its user agent.

/// "Chrome on Windows", "Safari on iOS", or "Unknown device".
pub fn describe(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "Unknown device".to_owned();
    };
    match woothee::parser::Parser::new().parse(ua) {
        Some(parsed) if parsed.name != "UNKNOWN" => {
            if parsed.os == "UNKNOWN" {
                parsed.name.to_owned()
            } else {
                format!("{} on {}", parsed.name, parsed.os)
            }
        }
        _ => crate::error::truncate(ua, 40),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_with_their_system() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(describe(Some(chrome)), "Chrome on Windows 10");
        assert_eq!(describe(None), "Unknown device");
        assert_eq!(describe(Some("curl/8.5.0")), "HTTP Library");
        assert_eq!(describe(Some("something odd")), "something odd");
    }
}
