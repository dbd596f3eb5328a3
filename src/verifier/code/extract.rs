//! The program a response gives: the last fenced code block of its final
//! part (the thinking is never read: models draft code there).

use crate::verifier::split::split;

/// What a response's final part holds as a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extracted {
    /// A Python program (tag `python`, `py`, `python3` or none).
    Python(String),
    /// A block in another language, by its tag (refused in this version).
    Other(String),
    /// No fenced block in the final part, or no final part (thinking that
    /// never closed).
    NoCode,
}

/// The language tags read as Python.
const PYTHON_TAGS: &[&str] = &["", "python", "py", "python3", "py3"];

/// The last fenced block (```` ``` ```` or `~~~`, three or more) of
/// `response`'s final part. A block the response did not close (cut off)
/// runs to the end of the text.
pub fn program(response: &str) -> Extracted {
    let Some(text) = split(response).final_part() else {
        return Extracted::NoCode;
    };
    let mut last: Option<(String, Vec<&str>)> = None;
    let mut open: Option<(&str, usize, String, Vec<&str>)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some((fence, n)) = fence_of(trimmed) {
                    let tag = trimmed[n..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_start_matches('{')
                        .trim_start_matches('.')
                        .trim_end_matches('}')
                        .to_ascii_lowercase();
                    open = Some((fence, n, tag, Vec::new()));
                }
            }
            Some((fence, n, _, body)) => {
                let closes = fence_of(trimmed)
                    .is_some_and(|(f, m)| f == *fence && m >= *n && trimmed[m..].trim().is_empty());
                if closes {
                    let (_, _, tag, body) = open.take().expect("open block");
                    last = Some((tag, body));
                } else {
                    body.push(line);
                }
            }
        }
    }
    if let Some((_, _, tag, body)) = open {
        last = Some((tag, body));
    }
    match last {
        None => Extracted::NoCode,
        Some((tag, body)) if PYTHON_TAGS.contains(&tag.as_str()) => {
            Extracted::Python(dedent(&body))
        }
        Some((tag, _)) => Extracted::Other(tag),
    }
}

/// The fence a line opens with (backticks or tildes, three or more) and
/// its length.
fn fence_of(line: &str) -> Option<(&'static str, usize)> {
    for (ch, name) in [('`', "`"), ('~', "~")] {
        let n = line.chars().take_while(|&c| c == ch).count();
        if n >= 3 {
            return Some((name, n));
        }
    }
    None
}

/// The block's lines with their common indentation removed (a block
/// indented inside a list item keeps its own structure).
fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for l in lines {
        out.push_str(l.get(indent..).unwrap_or_else(|| l.trim_start()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(s: &str) -> Extracted {
        Extracted::Python(s.to_string())
    }

    #[test]
    fn the_last_python_block_of_the_final_part() {
        let r = "<think>Try:\n```python\nprint(0)\n```\n</think>\nFirst a helper:\n\n```py\ndef f(x):\n    return x\n```\n\nThe solution:\n\n```python\nimport sys\nprint(sys.stdin.read())\n```\nDone.";
        assert_eq!(program(r), py("import sys\nprint(sys.stdin.read())\n"));
        // An untagged block is Python; tildes fence too.
        assert_eq!(program("~~~\nx = 1\n~~~"), py("x = 1\n"));
        // Longer fences hold shorter ones.
        assert_eq!(program("````python\ns = '```'\n````"), py("s = '```'\n"));
    }

    #[test]
    fn thinking_alone_other_languages_and_prose_are_not_python() {
        assert_eq!(
            program("<think>```python\nprint(1)\n```</think>The answer is 1."),
            Extracted::NoCode
        );
        assert_eq!(
            program("<think>```python\nprint(1)\n```"),
            Extracted::NoCode
        );
        assert_eq!(
            program("```cpp\nint main() {}\n```"),
            Extracted::Other("cpp".into())
        );
        assert_eq!(program("Use a loop over the list."), Extracted::NoCode);
    }

    #[test]
    fn a_block_cut_off_runs_to_the_end_and_indented_blocks_are_dedented() {
        assert_eq!(
            program("```python\ndef f():\n    return 1"),
            py("def f():\n    return 1\n")
        );
        assert_eq!(
            program("1. Code:\n   ```python\n   def f():\n       return 1\n   ```"),
            py("def f():\n    return 1\n")
        );
        assert_eq!(program("```{.python}\nx = 2\n```"), py("x = 2\n"));
    }
}
