//! Text read from files (class names, tensor names), made safe to print: output and messages are one line each,
//! with fields split by tabs, so a name must not be able to end a line, split a field, move the cursor or turn the
//! text around.

use std::borrow::Cow;

/// `text` with control characters (tabs and line breaks among them), Unicode line and paragraph separators, bidi
/// controls and backslashes written as escapes (`\t`, `\n`, `\r`, `\\`, else `\u{202e}`), and all other text,
/// ordinary Unicode included, as it is. Borrowed when nothing needs escaping.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_breaks_a_line_or_a_field_and_keeps_the_rest() {
        assert!(matches!(printable("chat noir 🐈 Ünïcödé"), Cow::Borrowed("chat noir 🐈 Ünïcödé")));
        assert_eq!(printable("a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
        assert_eq!(printable("\u{1b}[2Jbell\u{7}"), "\\u{1b}[2Jbell\\u{7}");
        assert_eq!(printable("abc\u{202e}fed\u{2028}"), "abc\\u{202e}fed\\u{2028}");
        assert_eq!(printable("nul\0"), "nul\\u{0}");
    }
}
