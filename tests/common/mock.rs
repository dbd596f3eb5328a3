//! Starts `rsr-mock` on 127.0.0.1 for a test and stops it when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

pub struct Mock {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
}

impl Mock {
    /// `rsr-mock --port 0 ARGS`; waits for its address on stdout.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rsr-mock"))
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rsr-mock");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read address");
        let root = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Self { child, root }
    }

    /// The OpenAI base URL (`…/v1`).
    pub fn url(&self) -> String {
        format!("{}/v1", self.root)
    }

    /// `sampler.base_url=…` for this server.
    pub fn base_url_arg(&self) -> String {
        format!("sampler.base_url={}", self.url())
    }

    /// The counters of `GET /stats`.
    pub fn stats(&self) -> serde_json::Value {
        let addr = self.root.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("connect to mock");
        write!(
            s,
            "GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).expect("http body");
        serde_json::from_str(body).expect("stats json")
    }

    /// `POST /v1/chat/completions` with `body`: the status and the answer.
    pub fn chat(&self, body: &str) -> (u16, serde_json::Value) {
        let addr = self.root.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("connect to mock");
        write!(
            s,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().expect("http status");
        let answer = text.split("\r\n\r\n").nth(1).expect("http body");
        (status, serde_json::from_str(answer).expect("json answer"))
    }

    /// One counter of `GET /stats`.
    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no stat {name}"))
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
