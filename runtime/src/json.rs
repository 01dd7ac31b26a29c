//! The JSON of the log line ([`Wake::log_line`](crate::Wake::log_line)) and
//! of [`MigrateError::to_json`](crate::MigrateError::to_json), written by
//! hand.
//!
//! Both run in every Worker: `format!` and `to_string` at each field cost a
//! formatting call site apiece, several KB of wasm in all, for objects whose
//! values are only strings and integers. Here each value is appended to one
//! `String`.

/// A JSON object written field by field, in the order of the calls.
pub(crate) struct Object {
    out: String,
}

impl Object {
    pub(crate) fn new() -> Self {
        Self {
            out: String::from("{"),
        }
    }

    /// Writes `"name":` and returns the text, for the caller to append a
    /// value that is already JSON (a list, a nested object).
    pub(crate) fn key(&mut self, name: &str) -> &mut String {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
        &mut self.out
    }

    /// A string field.
    pub(crate) fn str(&mut self, name: &str, value: &str) {
        push_string(self.key(name), value);
    }

    /// An unsigned integer field.
    pub(crate) fn uint(&mut self, name: &str, value: u64) {
        push_uint(self.key(name), value);
    }

    /// A signed integer field.
    pub(crate) fn int(&mut self, name: &str, value: i64) {
        push_int(self.key(name), value);
    }

    /// The object's text.
    pub(crate) fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Appends `text` as a JSON string literal.
pub(crate) fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `n` in decimal.
pub(crate) fn push_uint(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// Appends `n` in decimal, with its sign.
pub(crate) fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_uint(out, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 4_294_967_295, u64::MAX] {
            let mut out = String::new();
            push_uint(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for n in [0, -1, 7, -10, i64::MIN, i64::MAX] {
            let mut out = String::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters() {
        let mut out = String::new();
        push_string(&mut out, "a\"b\\c\nd\re\tf\u{1}g\u{1f}h\u{7f}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh\u{7f}é\"");
    }

    #[test]
    fn fields_are_comma_separated_in_call_order() {
        let mut o = Object::new();
        assert_eq!(Object::new().finish(), "{}");
        o.str("a", "x");
        o.uint("b", 2);
        o.int("c", -3);
        o.key("d").push_str("[1,2]");
        assert_eq!(o.finish(), r#"{"a":"x","b":2,"c":-3,"d":[1,2]}"#);
    }
}
