//! The process's outbound settings: a proxy every call goes through
//! (except to allow-listed internal hosts), and a CA bundle that must hold
//! certificates. One process per test (nextest), as the settings are set
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use civitas_http_client::{configure, AddressPolicy, HttpClient, HttpClientError, Outbound};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP server answering `{"ok":true}` and keeping each request line.
async fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&lines);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                seen.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or_default().to_owned());
                let body = br#"{"ok":true}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.write_all(body).await;
            });
        }
    });
    (address, lines)
}

#[tokio::test]
async fn calls_go_through_the_proxy_except_to_the_agencys_own_hosts() {
    // A bundle without a certificate, or a proxy that is no URL, is refused
    // (and nothing is set).
    let refused = configure(Outbound {
        proxy: None,
        ca_bundle: Some(b"not a certificate".to_vec()),
    });
    assert!(matches!(refused, Err(HttpClientError::Transport(message)) if message.contains("CA bundle")));
    assert!(configure(Outbound {
        proxy: Some("::not a url::".to_owned()),
        ca_bundle: None,
    })
    .is_err());

    let (proxy, through_proxy) = recorder().await;
    let (direct, straight) = recorder().await;
    configure(Outbound {
        proxy: Some(format!("http://{proxy}")),
        ca_bundle: None,
    })
    .unwrap();
    let host = direct.split(':').next().unwrap().to_owned();
    let client = HttpClient::new(
        AddressPolicy {
            allowed_internal_hosts: vec![host],
        },
        Duration::from_secs(5),
        1 << 20,
    )
    .unwrap();
    // A name the local resolver does not know: the proxy resolves it.
    let answer = client
        .get_with("http://models.agency.example/v1/models", &[])
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        through_proxy.lock().unwrap().as_slice(),
        ["GET http://models.agency.example/v1/models HTTP/1.1"]
    );
    // The agency's own server (allow-listed) is reached directly.
    let answer = client
        .get_with(&format!("http://{direct}/v1/models"), &[])
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(straight.lock().unwrap().as_slice(), ["GET /v1/models HTTP/1.1"]);
    assert_eq!(through_proxy.lock().unwrap().len(), 1);
    // An internal address written in a URL is still refused here.
    let refused = client
        .get_with("http://10.1.2.3/v1/models", &[])
        .await
        .unwrap_err();
    assert!(matches!(refused, HttpClientError::ForbiddenAddress { .. }));
}
