//! `rsr view`: a local, read-only web server over a work dir. It serves
//! one page (`assets/view/`, compiled in: no CDN, works offline) and the
//! JSON it reads from [`data`]. Only `GET` is answered; model text reaches
//! the page as JSON and is put in the document as text, never as markup,
//! and a Content-Security-Policy forbids inline scripts, so a response
//! holding `<script>` or `onerror=` stays text.

pub mod data;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use data::{Data, Page, PromptQuery, ViewError};

const INDEX: &str = include_str!("../../assets/view/index.html");
const APP: &str = include_str!("../../assets/view/app.js");
const STYLE: &str = include_str!("../../assets/view/style.css");

/// The page's policy: its own script and style only, no inline code, no
/// plugins, no framing, nothing sent anywhere else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The report page: its inline style and embedded charts, no script at all.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

type Body = Full<Bytes>;

/// Serves `data` on `listener` until the process is stopped.
pub async fn serve(listener: tokio::net::TcpListener, data: Arc<Data>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let data = Arc::clone(&data);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let data = Arc::clone(&data);
                async move { Ok::<_, std::convert::Infallible>(handle(&data, req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds `host:port` (port 0: any free port).
pub async fn bind(host: &str, port: u16) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

fn response(
    status: StatusCode,
    content_type: &str,
    csp: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-security-policy", csp)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-store")
        .body(Full::new(body.into()))
        .expect("valid response")
}

fn json(status: StatusCode, v: &Value) -> Response<Body> {
    response(status, "application/json", CSP, v.to_string())
}

fn error(e: &ViewError) -> Response<Body> {
    let status = match e {
        ViewError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ViewError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json(status, &serde_json::json!({"error": e.to_string()}))
}

async fn handle<B>(data: &Arc<Data>, req: Request<B>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "rsr view is read-only: GET only"}),
        );
        r.headers_mut().insert(
            "allow",
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let q = params(req.uri().query().unwrap_or(""));
    let page = || Page {
        offset: q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0),
        limit: q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(50),
    };
    // The two verdict sources compared (`?a=inline&b=LABEL`).
    let pair = || {
        data.pair(
            q.get("a").map(String::as_str),
            q.get("b").map(String::as_str),
        )
    };
    let number = |k: &str| -> Result<Option<f64>, ViewError> {
        match q.get(k).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ViewError::BadRequest(format!("`{k}` must be a number, not {v:?}"))),
        }
    };
    let result: Result<Value, ViewError> = match req.uri().path() {
        "/" | "/index.html" => {
            return response(StatusCode::OK, "text/html; charset=utf-8", CSP, INDEX);
        }
        "/app.js" => return response(StatusCode::OK, "text/javascript; charset=utf-8", CSP, APP),
        "/style.css" => return response(StatusCode::OK, "text/css; charset=utf-8", CSP, STYLE),
        "/report" => {
            return match data.report().await {
                Ok(html) => response(StatusCode::OK, "text/html; charset=utf-8", REPORT_CSP, html),
                Err(e) => error(&e),
            };
        }
        "/api/info" => data.info().await,
        "/api/prompts" => match (number("min_pass_rate"), number("max_pass_rate"), pair()) {
            (Ok(min_pass_rate), Ok(max_pass_rate), Ok(pair)) => {
                data.prompts(&PromptQuery {
                    page: page(),
                    sort: q.get("sort").cloned(),
                    desc: q.get("desc").is_some_and(|v| v == "1" || v == "true"),
                    min_pass_rate,
                    max_pass_rate,
                    predicate: q.get("where").cloned(),
                    pair,
                })
                .await
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
        },
        "/api/prompt" => match q.get("id") {
            Some(id) => data.prompt(id).await,
            None => Err(ViewError::BadRequest("give the prompt's id: ?id=…".into())),
        },
        "/api/disagreements" => match pair() {
            Ok(pair) => data.disagreements(&page(), &pair).await,
            Err(e) => Err(e),
        },
        "/api/no-answer" => {
            data.no_answer(
                q.get("scores")
                    .map(String::as_str)
                    .filter(|s| !s.is_empty()),
                &page(),
            )
            .await
        }
        _ => Err(ViewError::NotFound("no such page".into())),
    };
    match result {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => error(&e),
    }
}

/// A query string's parameters, percent-decoded (`+` is a space).
pub fn params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded() {
        let p = params("where=pass_rate%20%3C%200.5+AND+n_valid%3E%3D8&offset=50&x");
        assert_eq!(p["where"], "pass_rate < 0.5 AND n_valid>=8");
        assert_eq!(p["offset"], "50");
        assert_eq!(p["x"], "");
        assert_eq!(params("id=%E7%AD%94%")["id"], "答%");
        assert_eq!(params("id=%zz")["id"], "%zz");
    }
}
