//! HTTPS to a server whose certificate is signed by an agency's own
//! authority: refused until that authority is trusted, then verified.
//! The server is Python's `ssl` module with a certificate made by the
//! `openssl` command; without either the test prints a notice and skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use civitas_http_client::{AddressPolicy, HttpClient, HttpClientError};

const SERVER: &str = r#"
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client() -> HttpClient {
    let policy = AddressPolicy {
        allowed_internal_hosts: vec!["127.0.0.1".to_owned()],
    };
    HttpClient::new(policy, Duration::from_secs(10), 1024).unwrap()
}

#[tokio::test]
async fn https_is_verified_against_the_trusted_authorities() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // The agency's authority, and a server certificate it signs.
    let (ca, ca_key, csr) = (
        dir.path().join("ca.pem"),
        dir.path().join("ca-key.pem"),
        dir.path().join("server.csr"),
    );
    let extensions = dir.path().join("server.ext");
    std::fs::write(
        &extensions,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [Vec<&std::ffi::OsStr>; 3] = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Agency CA",
            "-keyout",
        ]
        .iter()
        .map(std::ffi::OsStr::new)
        .chain([ca_key.as_os_str(), "-out".as_ref(), ca.as_os_str()])
        .collect(),
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ]
        .iter()
        .map(std::ffi::OsStr::new)
        .chain([key.as_os_str(), "-out".as_ref(), csr.as_os_str()])
        .collect(),
        ["x509", "-req", "-days", "1", "-CAcreateserial", "-in"]
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([
                csr.as_os_str(),
                "-CA".as_ref(),
                ca.as_os_str(),
                "-CAkey".as_ref(),
                ca_key.as_os_str(),
            ])
            .chain([
                "-extfile".as_ref(),
                extensions.as_os_str(),
                "-out".as_ref(),
                cert.as_os_str(),
            ])
            .collect(),
    ];
    for step in steps {
        let made = Command::new("openssl")
            .args(step)
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status();
        if !made.is_ok_and(|status| status.success()) {
            eprintln!("notice: the openssl command is missing or failed; TLS test skipped");
            return;
        }
    }
    let Ok(mut child) = Command::new("python3")
        .args(["-c", SERVER])
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("notice: python3 is missing; TLS test skipped");
        return;
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let url = format!("https://127.0.0.1:{}/", line.trim());

    // Not trusted yet: the handshake fails and nothing is read.
    let refused = client().get(&url, None).await.unwrap_err();
    assert!(matches!(refused, HttpClientError::Transport(_)), "{refused}");
    assert!(
        refused.to_string().contains("certificate"),
        "the cause is named: {refused}"
    );

    // Trusted through SSL_CERT_FILE (read when a client is built).
    std::env::set_var("SSL_CERT_FILE", &ca);
    let answer = client().get(&url, None).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, br#"{"ok": true}"#);
    // The body bound still applies over TLS.
    let small = HttpClient::new(
        AddressPolicy {
            allowed_internal_hosts: vec!["127.0.0.1".to_owned()],
        },
        Duration::from_secs(10),
        4,
    )
    .unwrap();
    assert!(matches!(
        small.get(&url, None).await.unwrap_err(),
        HttpClientError::BodyTooLarge { .. }
    ));
}
