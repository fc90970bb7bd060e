//! Which characters free text (names, titles, labels, addresses) may hold.

/// Control characters, and the invisible formatting characters that make text read differently
/// from what it holds: bidirectional overrides and isolates (a name that shows as "evil" while
/// it is stored as "live"), directional marks, zero-width spaces and joiners that are not part
/// of a script, and the byte-order mark. Zero-width (non-)joiners stay allowed: emoji sequences
/// and several scripts need them.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Like [`is_forbidden`], but line breaks and tabs are allowed (descriptions).
pub fn is_forbidden_in_long_text(c: char) -> bool {
    is_forbidden(c) && !matches!(c, '\n' | '\t' | '\r')
}

/// What a field error says about such characters.
pub const FORBIDDEN_MESSAGE: &str = "must not contain control or invisible formatting characters";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangul_emoji_and_joined_emoji_are_text_but_overrides_and_controls_are_not() {
        let family = "👨\u{200D}👩\u{200D}👧";
        assert!(!"김민지 🎸 Café".chars().any(is_forbidden));
        assert!(!family.chars().any(is_forbidden));
        for c in [
            '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}', '\u{0007}', '\n',
        ] {
            assert!(is_forbidden(c), "{:?}", c);
        }
        assert!(!is_forbidden_in_long_text('\n'));
        assert!(is_forbidden_in_long_text('\u{202E}'));
    }
}
