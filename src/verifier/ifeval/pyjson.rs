//! Whether text is a JSON document as Python's `json.loads` reads it:
//! any value at the top, `NaN`/`Infinity`/`-Infinity`, duplicate keys,
//! unpaired surrogate escapes, no control characters inside strings, only
//! space, tab, CR and LF around values, and nothing after the value.

/// Whether `json.loads(text)` succeeds.
pub fn loads(text: &str) -> bool {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    // An explicit stack instead of recursion: nesting depth is unbounded.
    p.value() && {
        p.ws();
        p.i == p.s.len()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

#[derive(Clone, Copy)]
enum Frame {
    Array,
    Object,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// One value, containers included.
    fn value(&mut self) -> bool {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // Read a value's start: a scalar, or the opening of a container.
            self.ws();
            match self.peek() {
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        stack.push(Frame::Array);
                        continue;
                    }
                }
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    } else {
                        if !self.key() {
                            return false;
                        }
                        stack.push(Frame::Object);
                        continue;
                    }
                }
                _ => {
                    if !self.scalar() {
                        return false;
                    }
                }
            }
            // After a value: close containers or move to the next item.
            loop {
                let Some(&frame) = stack.last() else {
                    return true;
                };
                self.ws();
                let close = match frame {
                    Frame::Array => b']',
                    Frame::Object => b'}',
                };
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if let Frame::Object = frame {
                            self.ws();
                            if !self.key() {
                                return false;
                            }
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => return false,
                }
            }
        }
    }

    /// `"key"` then `:`.
    fn key(&mut self) -> bool {
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.ws();
        self.eat(b":")
    }

    fn scalar(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'n') => self.eat(b"null"),
            Some(b't') => self.eat(b"true"),
            Some(b'f') => self.eat(b"false"),
            Some(b'N') => self.eat(b"NaN"),
            Some(b'I') => self.eat(b"Infinity"),
            Some(b'-') if self.s[self.i + 1..].starts_with(b"Infinity") => {
                self.i += 9;
                true
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> bool {
        self.eat(b"-");
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        // A fraction or exponent without digits ends the number before it
        // (then the trailing text fails the document), as Python's scanner.
        let mark = self.i;
        if self.eat(b".") && self.digits() == 0 {
            self.i = mark;
            return true;
        }
        let mark = self.i;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                self.i = mark;
            }
        }
        true
    }

    fn string(&mut self) -> bool {
        self.i += 1;
        loop {
            match self.peek() {
                None => return false,
                Some(b'"') => {
                    self.i += 1;
                    return true;
                }
                Some(0..=0x1f) => return false,
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.s.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.i += 5;
                        }
                        _ => return false,
                    }
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::loads;

    #[test]
    fn accepts_what_python_accepts() {
        for ok in [
            "{}",
            "[]",
            "5",
            "\"x\"",
            "null",
            " {\"a\": [1, 2.5e-3, -0, true, null, NaN, -Infinity]} ",
            "{\"a\": 1, \"a\": 2}",
            "\"\\ud800\"",
            "[[[[[]]]]]",
        ] {
            assert!(loads(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "",
            "{",
            "{\"a\" 1}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "1e",
            "'x'",
            "\"a\tb\"",
            "\"\\x\"",
            "{} {}",
            "\u{feff}{}",
            "\u{a0}{}",
            "nan",
            "+1",
        ] {
            assert!(!loads(bad), "{bad:?}");
        }
        assert!(loads(&format!(
            "{}{}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )));
    }
}
