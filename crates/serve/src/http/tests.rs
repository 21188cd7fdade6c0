use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::*;

/// Answers with the length of the body it was given; never answers for `/stall`.
#[derive(Clone)]
struct Length;

impl Respond for Length {
    type Body = Full<Bytes>;
    async fn respond(&self, request: Request<Bytes>) -> Response<Full<Bytes>> {
        if request.uri().path() == "/stall" {
            std::future::pending::<()>().await;
        }
        Response::new(Full::from(request.body().len().to_string()))
    }
    fn refuse(&self, refusal: &Refusal) -> Response<Full<Bytes>> {
        refusal.plain_text()
    }
}

fn limits(max_body_bytes: usize) -> HttpLimits {
    HttpLimits {
        max_body_bytes,
        ..HttpLimits::default()
    }
}

async fn text(response: Response<Full<Bytes>>) -> (StatusCode, String) {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let ok = Request::post("/")
        .body(Full::from("x".repeat(10)))
        .expect("test setup");
    assert_eq!(
        text(answer(&Length, &limits(10), ok).await).await,
        (StatusCode::OK, "10".into())
    );
    // Declared too large: refused before reading.
    let declared = Request::post("/")
        .header("content-length", "11")
        .body(Full::from("x".repeat(11)))
        .expect("test setup");
    assert_eq!(
        text(answer(&Length, &limits(10), declared).await).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request entity too large: limit is 10\n".into()
        )
    );
    // Chunked, with no length: cut off when it passes the limit.
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, Infallible>(http_body::Frame::data(Bytes::from("xxxx")))),
    );
    let streamed = Request::post("/")
        .body(StreamBody::new(chunks))
        .expect("test setup");
    assert_eq!(
        text(answer(&Length, &limits(10), streamed).await).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_not_answered_in_time_gets_504() {
    let stalled = Request::get("/stall")
        .body(Full::<Bytes>::default())
        .expect("test setup");
    let limits = HttpLimits {
        request_timeout: Duration::from_secs(5),
        ..HttpLimits::default()
    };
    assert_eq!(
        text(answer(&Length, &limits, stalled).await).await,
        (
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout: request did not complete within the allotted timeout of 5s\n".into()
        )
    );
}

async fn local_server(limits: HttpLimits) -> (std::net::SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("test setup");
    let addr = listener.local_addr().expect("test setup");
    let shutdown = CancellationToken::new();
    let acceptor = Acceptor::new("test", listener, limits.max_connections);
    tokio::spawn(serve(acceptor, limits, Length, shutdown.clone()));
    (addr, shutdown)
}

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_cut_off() {
    let (addr, shutdown) = local_server(HttpLimits {
        header_read_timeout: Duration::from_millis(200),
        ..HttpLimits::default()
    })
    .await;
    // A prompt client is answered.
    let mut prompt = tokio::net::TcpStream::connect(addr)
        .await
        .expect("test setup");
    prompt
        .write_all(
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        )
        .await
        .expect("test setup");
    let mut answer = String::new();
    prompt
        .read_to_string(&mut answer)
        .await
        .expect("test setup");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n3"), "{answer}");
    // A client that starts a request and stalls: the server closes the connection (read
    // returns end of file) rather than waiting for it. The outer timeout only turns a
    // hang into a failure.
    let mut slow = tokio::net::TcpStream::connect(addr)
        .await
        .expect("test setup");
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("test setup");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), slow.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the server kept a stalled connection open: {closed:?}"
    );
    shutdown.cancel();
}

#[test]
fn refusals_speak_like_the_api_server() {
    let too_large = Refusal::BodyTooLarge {
        limit: DEFAULT_MAX_BODY_BYTES,
    };
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        too_large.message(),
        "Request entity too large: limit is 3145728"
    );
}
