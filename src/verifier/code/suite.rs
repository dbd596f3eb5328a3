//! A prompt's tests, read from its gold (a JSON value) in the shapes code
//! datasets use:
//!
//! - APPS / TACO `input_output`: `{"inputs": [...], "outputs": [...],
//!   "fn_name"?}` (or the object as a JSON string, or under
//!   `input_output`): stdin/stdout tests, or calls of `fn_name` (a plain
//!   function or a method of `class Solution`) whose expected value may be
//!   wrapped in a one-element list, as APPS writes it;
//! - open-r1 `verification_info`: `{"language", "test_cases": [{"input",
//!   "output", "type": "stdin_stdout"}]}`;
//! - LiveCodeBench: a list of `{"input", "output", "testtype": "stdin" |
//!   "functional"}` (or `{"tests": …, "func_name"}` for functional tests,
//!   the list possibly a JSON string), functional inputs one JSON argument
//!   per line;
//! - MBPP: `{"test_list": ["assert …"], "test_setup_code"?, "test_imports"?}`;
//! - HumanEval: `{"prompt", "test", "entry_point"}`: `check(entry_point)`.

use serde_json::{Map, Value};

/// Where a suite's tests came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// APPS / TACO `input_output`.
    Apps,
    /// open-r1 `verification_info`.
    OpenR1,
    /// LiveCodeBench test lists.
    LiveCodeBench,
    /// MBPP `test_list`.
    Mbpp,
    /// HumanEval `check(entry_point)`.
    HumanEval,
}

/// One test of a program.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// The program reads `input` on stdin; its stdout is compared with
    /// `output`.
    Stdio {
        /// Standard input.
        input: String,
        /// Expected standard output.
        output: String,
    },
    /// The suite's function called with `args`; its value compared with
    /// `expected`.
    Call {
        /// Positional arguments.
        args: Vec<Value>,
        /// Expected value.
        expected: Value,
    },
    /// A Python statement (an `assert`) run after the program.
    Assert(String),
    /// HumanEval's `test` code, then `check(entry_point)`.
    Check {
        /// The code defining `check`.
        test: String,
    },
}

/// A prompt's tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// Which shape they were read from.
    pub shape: Shape,
    /// The tests, in order.
    pub tests: Vec<Test>,
    /// The function [`Test::Call`] and [`Test::Check`] call.
    pub entry_point: Option<String>,
    /// Code run before the tests (MBPP's setup and imports, the imports of
    /// HumanEval's prompt).
    pub setup: String,
}

/// Reads the tests of a gold value; the error names what is missing.
pub fn parse(gold: &str) -> Result<Suite, String> {
    let v: Value = serde_json::from_str(gold.trim()).map_err(|e| {
        format!("the gold is not JSON ({e}); code-rlvr reads its tests from a JSON value")
    })?;
    from_value(v)
}

fn from_value(v: Value) -> Result<Suite, String> {
    match v {
        Value::Array(tests) => lcb(tests, None),
        Value::Object(mut o) => {
            if let Some(inner) = o.remove("input_output") {
                return apps(json_or_string(inner)?);
            }
            if o.contains_key("inputs") && o.contains_key("outputs") {
                return apps(Value::Object(o));
            }
            if let Some(cases) = o.remove("test_cases") {
                return open_r1(&o, json_or_string(cases)?);
            }
            if let Some(tests) = o.remove("tests") {
                let func = o
                    .get("func_name")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                return match json_or_string(tests)? {
                    Value::Array(t) => lcb(t, func),
                    _ => Err("`tests` is not a list of LiveCodeBench tests".into()),
                };
            }
            if let Some(list) = o.remove("test_list") {
                return mbpp(&o, json_or_string(list)?);
            }
            if o.contains_key("test") && o.contains_key("entry_point") {
                return human_eval(&o);
            }
            let keys: Vec<&str> = o.keys().map(String::as_str).collect();
            Err(format!(
                "no tests in the gold (keys: {}): code-rlvr reads input_output (APPS), test_cases (open-r1), a LiveCodeBench test list, test_list (MBPP) or test + entry_point (HumanEval)",
                keys.join(", ")
            ))
        }
        other => Err(format!(
            "the gold is {other}, not the tests of a code prompt"
        )),
    }
}

/// A value stored as a JSON string (datasets often do) read as JSON.
fn json_or_string(v: Value) -> Result<Value, String> {
    match v {
        Value::String(s) => serde_json::from_str(&s)
            .map_err(|e| format!("a test field holds text that is not JSON ({e})")),
        v => Ok(v),
    }
}

/// Text of an APPS/TACO input or output: a string, or lines to join.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(lines) if lines.iter().all(Value::is_string) => lines
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

fn apps(v: Value) -> Result<Suite, String> {
    let o = v.as_object().ok_or("input_output is not an object")?;
    let list = |k: &str| {
        o.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("input_output has no `{k}` list"))
    };
    let (inputs, outputs) = (list("inputs")?, list("outputs")?);
    if inputs.len() != outputs.len() {
        return Err(format!(
            "input_output has {} inputs for {} outputs",
            inputs.len(),
            outputs.len()
        ));
    }
    let entry_point = o.get("fn_name").and_then(Value::as_str).map(str::to_string);
    let tests = inputs
        .iter()
        .zip(outputs)
        .map(|(i, out)| match &entry_point {
            Some(_) => Test::Call {
                args: match i {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                },
                expected: out.clone(),
            },
            None => Test::Stdio {
                input: text(i),
                output: text(out),
            },
        })
        .collect();
    suite(Shape::Apps, tests, entry_point, String::new())
}

fn open_r1(info: &Map<String, Value>, cases: Value) -> Result<Suite, String> {
    if let Some(lang) = info.get("language").and_then(Value::as_str)
        && !lang.eq_ignore_ascii_case("python")
    {
        return Err(format!(
            "verification_info is for {lang}; code-rlvr runs Python"
        ));
    }
    let cases = cases.as_array().ok_or("test_cases is not a list")?;
    let tests = cases
        .iter()
        .map(|c| {
            let kind = c
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("stdin_stdout");
            if kind != "stdin_stdout" {
                return Err(format!(
                    "test_cases of type {kind} are not read (stdin_stdout only)"
                ));
            }
            Ok(Test::Stdio {
                input: c.get("input").map(text).unwrap_or_default(),
                output: c.get("output").map(text).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    suite(Shape::OpenR1, tests, None, String::new())
}

fn lcb(tests: Vec<Value>, func_name: Option<String>) -> Result<Suite, String> {
    let mut out = Vec::with_capacity(tests.len());
    for t in &tests {
        let field = |k: &str| t.get(k).map(text).unwrap_or_default();
        match t.get("testtype").and_then(Value::as_str).unwrap_or("stdin") {
            "stdin" => out.push(Test::Stdio {
                input: field("input"),
                output: field("output"),
            }),
            "functional" => {
                if func_name.is_none() {
                    return Err("functional LiveCodeBench tests need func_name beside them ({\"tests\": …, \"func_name\": …})".into());
                }
                let args = field("input")
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| {
                        serde_json::from_str(l)
                            .map_err(|e| format!("a functional input line is not JSON ({e}): {l}"))
                    })
                    .collect::<Result<Vec<Value>, String>>()?;
                let expected = serde_json::from_str(&field("output"))
                    .map_err(|e| format!("a functional output is not JSON ({e})"))?;
                out.push(Test::Call { args, expected });
            }
            other => {
                return Err(format!(
                    "LiveCodeBench testtype {other} is not read (stdin, functional)"
                ));
            }
        }
    }
    suite(Shape::LiveCodeBench, out, func_name, String::new())
}

fn mbpp(o: &Map<String, Value>, list: Value) -> Result<Suite, String> {
    let asserts = list.as_array().ok_or("test_list is not a list")?;
    let tests = asserts
        .iter()
        .map(|a| {
            a.as_str()
                .map(|s| Test::Assert(s.to_string()))
                .ok_or("test_list holds a value that is not code")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut setup = String::new();
    for imp in o
        .get("test_imports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(s) = imp.as_str() {
            setup.push_str(s);
            setup.push('\n');
        }
    }
    if let Some(s) = o.get("test_setup_code").and_then(Value::as_str) {
        setup.push_str(s);
        setup.push('\n');
    }
    suite(Shape::Mbpp, tests, None, setup)
}

fn human_eval(o: &Map<String, Value>) -> Result<Suite, String> {
    let s = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // The prompt's imports (`from typing import List`): a program written
    // as the whole function often leaves them out.
    let setup = s("prompt")
        .lines()
        .filter(|l| l.starts_with("import ") || l.starts_with("from "))
        .map(|l| format!("{l}\n"))
        .collect();
    suite(
        Shape::HumanEval,
        vec![Test::Check { test: s("test") }],
        Some(s("entry_point")),
        setup,
    )
}

fn suite(
    shape: Shape,
    tests: Vec<Test>,
    entry_point: Option<String>,
    setup: String,
) -> Result<Suite, String> {
    if tests.is_empty() {
        return Err("the gold holds no tests".into());
    }
    Ok(Suite {
        shape,
        tests,
        entry_point,
        setup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_stdin_and_call_tests_as_object_or_string() {
        let s = parse(r#"{"input_output": "{\"inputs\": [\"1 2\\n\", [\"3\", \"4\"]], \"outputs\": [\"3\\n\", \"7\"]}"}"#).unwrap();
        assert_eq!(s.shape, Shape::Apps);
        assert_eq!(
            s.tests,
            [
                Test::Stdio {
                    input: "1 2\n".into(),
                    output: "3\n".into()
                },
                Test::Stdio {
                    input: "3\n4".into(),
                    output: "7".into()
                },
            ]
        );
        let s = parse(r#"{"inputs": [[1, 2], [[3]]], "outputs": [[3], [3]], "fn_name": "add"}"#)
            .unwrap();
        assert_eq!(s.entry_point.as_deref(), Some("add"));
        assert_eq!(
            s.tests[1],
            Test::Call {
                args: vec![serde_json::json!([3])],
                expected: serde_json::json!([3])
            }
        );
        assert!(
            parse(r#"{"inputs": ["1"], "outputs": []}"#)
                .unwrap_err()
                .contains("1 inputs for 0 outputs")
        );
    }

    #[test]
    fn open_r1_livecodebench_mbpp_and_humaneval() {
        let s = parse(r#"{"language": "python", "test_cases": [{"input": "5\n", "output": "25\n", "type": "stdin_stdout"}]}"#).unwrap();
        assert_eq!((s.shape, s.tests.len()), (Shape::OpenR1, 1));
        assert!(
            parse(r#"{"language": "cpp", "test_cases": []}"#)
                .unwrap_err()
                .contains("cpp")
        );

        let s = parse(r#"[{"input": "2\n", "output": "4\n", "testtype": "stdin"}]"#).unwrap();
        assert_eq!(s.shape, Shape::LiveCodeBench);
        let s = parse(r#"{"tests": "[{\"input\": \"[1, 2]\\n3\", \"output\": \"true\", \"testtype\": \"functional\"}]", "func_name": "has"}"#).unwrap();
        assert_eq!(
            s.tests,
            [Test::Call {
                args: vec![serde_json::json!([1, 2]), serde_json::json!(3)],
                expected: Value::Bool(true)
            }]
        );
        assert!(
            parse(r#"[{"input": "1", "output": "1", "testtype": "functional"}]"#)
                .unwrap_err()
                .contains("func_name")
        );

        let s = parse(r#"{"test_list": ["assert f(1) == 2"], "test_setup_code": "import math", "test_imports": ["import re"]}"#).unwrap();
        assert_eq!(s.tests, [Test::Assert("assert f(1) == 2".into())]);
        assert_eq!(s.setup, "import re\nimport math\n");

        let s = parse(r#"{"prompt": "from typing import List\n\ndef f(x: List[int]) -> int:\n", "test": "def check(c):\n    assert c([1]) == 1\n", "entry_point": "f"}"#).unwrap();
        assert_eq!(
            (s.shape, s.entry_point.as_deref()),
            (Shape::HumanEval, Some("f"))
        );
        assert_eq!(s.setup, "from typing import List\n");
    }

    #[test]
    fn a_gold_without_tests_says_what_it_reads() {
        let e = parse(r#"{"answer": "42"}"#).unwrap_err();
        assert!(
            e.contains("keys: answer") && e.contains("input_output"),
            "{e}"
        );
        assert!(parse("42").unwrap_err().contains("not the tests"));
        assert!(parse("print(1)").unwrap_err().contains("not JSON"));
    }
}
