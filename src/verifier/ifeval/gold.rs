//! IFEval gold in the shapes datasets store it: Google's and the Hub's rows
//! (`instruction_id_list` + a `kwargs` list, null kwargs ignored as
//! lm-eval does), open-instruct's ground truth (`instruction_id` +
//! `kwargs`, as JSON or as the Python literal it writes with `str()`), in
//! the answer or in the prompt's metadata.

use serde_json::{Map, Value};

use super::checks::Instruction;

/// A prompt's instructions: ids and their checks, in order.
#[derive(Debug, Clone)]
pub struct Gold {
    /// The instruction ids.
    pub ids: Vec<String>,
    /// Their kwargs, null values dropped.
    pub kwargs: Vec<Map<String, Value>>,
    /// The checks, one per id.
    pub checks: Vec<Instruction>,
}

impl Gold {
    /// The gold as rsr stores it: `{"instruction_id_list": […], "kwargs": […]}`.
    pub fn canonical(&self) -> String {
        serde_json::json!({"instruction_id_list": self.ids, "kwargs": self.kwargs}).to_string()
    }
}

/// Reads the gold from the answer, else from the metadata. The error names
/// what is wrong and where.
pub fn read(answer: Option<&str>, metadata: Option<&str>) -> Result<Gold, String> {
    if let Some(text) = answer.filter(|a| !a.trim().is_empty()) {
        let value = parse_text(text).map_err(|e| format!("answer: {e}"))?;
        return from_value(&value).map_err(|e| format!("answer: {e}"));
    }
    let meta: Value = metadata
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null);
    let Some(obj) = meta.as_object() else {
        return Err("no gold: the answer is empty and there is no metadata".into());
    };
    for key in ["answer", "ground_truth"] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            let v = match v {
                Value::String(s) => parse_text(s).map_err(|e| format!("metadata.{key}: {e}"))?,
                other => other.clone(),
            };
            return from_value(&v).map_err(|e| format!("metadata.{key}: {e}"));
        }
    }
    from_value(&meta).map_err(|e| format!("metadata: {e}"))
}

/// A gold text as JSON, else as a Python literal; a JSON string holding
/// either is read again.
fn parse_text(text: &str) -> Result<Value, String> {
    let value = match serde_json::from_str::<Value>(text) {
        Ok(v) => v,
        Err(_) => python_literal(text)?,
    };
    match value {
        Value::String(inner) if inner.trim_start().starts_with(['{', '[']) => parse_text(&inner),
        other => Ok(other),
    }
}

fn from_value(value: &Value) -> Result<Gold, String> {
    let obj = match value {
        Value::Object(o) => o,
        // open-instruct sometimes keeps a list of one ground truth.
        Value::Array(items) if items.len() == 1 => return from_value(&items[0]),
        other => {
            return Err(format!(
                "expected an object with instruction_id_list and kwargs, got {}",
                short(other)
            ));
        }
    };
    // A field may hold its list as JSON text (a reader that could not give
    // the varying kwargs objects one type keeps them as text).
    let field = |key: &str| -> Result<Option<Value>, String> {
        match obj.get(key) {
            Some(Value::String(s)) if s.trim_start().starts_with(['[', '{']) => {
                parse_text(s).map(Some).map_err(|e| format!("{key}: {e}"))
            }
            other => Ok(other.cloned()),
        }
    };
    let ids_value = field("instruction_id_list")?
        .or(field("instruction_id")?)
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            "no instruction ids: expected `instruction_id_list` (IFEval) or `instruction_id` (open-instruct)".to_string()
        })?;
    let kwargs_value = field("kwargs")?;
    let ids: Vec<String> = match &ids_value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("instruction ids must be text, got {}", short(v)))
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "instruction ids must be a list, got {}",
                short(other)
            ));
        }
    };
    if ids.is_empty() {
        return Err("the instruction id list is empty".into());
    }
    let empty = Map::new();
    let kwargs: Vec<&Map<String, Value>> = match kwargs_value.as_ref() {
        None | Some(Value::Null) => vec![&empty; ids.len()],
        Some(Value::Object(one)) if ids.len() == 1 => vec![one],
        Some(Value::Array(items)) => {
            if items.len() != ids.len() {
                return Err(format!(
                    "{} instruction ids but {} kwargs entries",
                    ids.len(),
                    items.len()
                ));
            }
            items
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(m),
                    Value::Null => Ok(&empty),
                    other => Err(format!(
                        "kwargs entries must be objects, got {}",
                        short(other)
                    )),
                })
                .collect::<Result<_, _>>()?
        }
        Some(other) => return Err(format!("kwargs must be a list, got {}", short(other))),
    };
    let kwargs: Vec<Map<String, Value>> = kwargs
        .into_iter()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    let checks = ids
        .iter()
        .zip(&kwargs)
        .map(|(id, kw)| Instruction::parse(id, kw))
        .collect::<Result<_, _>>()?;
    Ok(Gold {
        ids,
        kwargs,
        checks,
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Reads a Python literal (`repr` of dicts, lists, tuples, strings,
/// numbers, `None`, `True`, `False`) as JSON.
pub fn python_literal(text: &str) -> Result<Value, String> {
    let mut p = Literal {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "neither JSON nor a Python literal (stops at byte {})",
            p.i
        ));
    }
    Ok(v)
}

struct Literal<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Literal<'_> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!(
            "neither JSON nor a Python literal ({what} at byte {})",
            self.i
        ))
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut map = Map::new();
                loop {
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Object(map));
                    }
                    let key = match self.value()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return self.err("expected `:`");
                    }
                    self.i += 1;
                    let v = self.value()?;
                    map.insert(key, v);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return self.err("expected `,` or `}`"),
                    }
                }
            }
            Some(&open @ (b'[' | b'(')) => {
                let close = if open == b'[' { b']' } else { b')' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.i) == Some(&close) {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(&c) if c == close => {}
                        _ => return self.err("expected `,` or a closing bracket"),
                    }
                }
            }
            Some(&q @ (b'\'' | b'"')) => self.string(q),
            Some(_) => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_')
                }) {
                    self.i += 1;
                }
                match &self.text[start..self.i] {
                    "None" => Ok(Value::Null),
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    word => match serde_json::from_str::<Value>(word) {
                        Ok(n @ Value::Number(_)) => Ok(n),
                        _ => {
                            self.i = start;
                            self.err("unexpected text")
                        }
                    },
                }
            }
            None => self.err("unexpected end"),
        }
    }

    fn string(&mut self, quote: u8) -> Result<Value, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let Some(c) = rest.chars().next() else {
                return self.err("unclosed string");
            };
            self.i += c.len_utf8();
            match c {
                c if c as u32 == u32::from(quote) => return Ok(Value::String(out)),
                '\\' => {
                    let Some(e) = self.text[self.i..].chars().next() else {
                        return self.err("unclosed string");
                    };
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        'x' | 'u' | 'U' => {
                            let len = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex = self.text.get(self.i..self.i + len).unwrap_or_default();
                            let Some(decoded) =
                                u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                            else {
                                return self.err("bad escape");
                            };
                            out.push(decoded);
                            self.i += len;
                        }
                        '\n' => {}
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape() {
        let google = r#"{"instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"], "kwargs": [{}, {"relation": "at least", "num_words": 300, "keywords": null}]}"#;
        assert_eq!(read(Some(google), None).unwrap().ids.len(), 2);
        let open_instruct = r#"{'instruction_id': ['detectable_content:postscript'], 'kwargs': [{'postscript_marker': 'P.S.'}]}"#;
        let g = read(Some(open_instruct), None).unwrap();
        assert_eq!(g.ids, ["detectable_content:postscript"]);
        let as_json_string = serde_json::to_string(open_instruct).unwrap();
        assert!(read(Some(&as_json_string), None).is_ok());
        let metadata =
            r#"{"key": 1, "instruction_id_list": ["startend:quotation"], "kwargs": [{}]}"#;
        assert!(read(None, Some(metadata)).is_ok());
        let in_metadata = format!(r#"{{"ground_truth": {}}}"#, as_json_string);
        assert!(read(None, Some(&in_metadata)).is_ok());
    }

    #[test]
    fn bad_gold_names_the_id_and_key() {
        let e = read(
            Some(r#"{"instruction_id_list": ["keywords:nope"], "kwargs": [{}]}"#),
            None,
        )
        .unwrap_err();
        assert!(e.contains("unknown instruction id `keywords:nope`"), "{e}");
        let e = read(
            Some(r#"{"instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"relation": "at least"}]}"#),
            None,
        )
        .unwrap_err();
        assert!(
            e.contains("length_constraints:number_words: kwargs.num_words is missing"),
            "{e}"
        );
        let e = read(
            Some(r#"{"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"num_words": 3}]}"#),
            None,
        )
        .unwrap_err();
        assert!(
            e.contains("kwargs.num_words is not one of its arguments"),
            "{e}"
        );
        let e = read(
            Some(r#"{"instruction_id_list": ["a", "b"], "kwargs": [{}]}"#),
            None,
        )
        .unwrap_err();
        assert!(e.contains("2 instruction ids but 1 kwargs"), "{e}");
        assert!(read(None, None).is_err());
    }

    #[test]
    fn python_literals() {
        let v =
            python_literal(r#"{'a': [1, 2.5, None, True], "b": ('x', 'it\'s'), 'c': -3}"#).unwrap();
        assert_eq!(v["a"][2], Value::Null);
        assert_eq!(v["b"][1], "it's");
        assert_eq!(v["c"], -3);
        assert!(python_literal("{'a': }").is_err());
    }
}
