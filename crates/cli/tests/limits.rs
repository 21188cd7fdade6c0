//! Server limits seen from outside the process: `cluster serve` with a low file-descriptor
//! limit backs off (and says so) when `accept` fails, and answers `/readyz` again once
//! connections close.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next line of `lines` that contains `text`, or the lines seen when none came in a
/// minute (a hang turned into a failure; the wait is for the line, not for time).
fn line_with(lines: &mpsc::Receiver<String>, text: &str) -> Result<String, Vec<String>> {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(text) => return Ok(line),
            Ok(line) => seen.push(line),
            Err(_) => return Err(seen),
        }
    }
}

fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_and_recovers() {
    // 64 descriptors for the whole process, and a connection cap above it, so that
    // `accept` itself fails with EMFILE.
    let child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" cluster serve --listen 127.0.0.1:0 --nodes 0 --no-crds --max-connections 1000")
        .arg(env!("CARGO_BIN_EXE_edgeplane"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting cluster serve");
    let mut server = Server(child);
    let stdout = lines_of(server.0.stdout.take().expect("stdout"));
    let stderr = lines_of(server.0.stderr.take().expect("stderr"));
    let serving = line_with(&stdout, "serving on http://").expect("the server never said where");
    let addr = serving
        .rsplit("http://")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();

    // More connections than the process has descriptors: the kernel completes them (the
    // backlog), the server runs out of descriptors accepting them.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    let warning = line_with(&stderr, "accept failed");
    assert!(
        warning
            .as_ref()
            .is_ok_and(|w| w.contains("waiting before the next try")),
        "no backoff when accept failed: {warning:?}"
    );

    // Once the connections close, descriptors are free and /readyz is answered.
    drop(held);
    let mut probe = TcpStream::connect(&addr).expect("connect");
    probe
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("write");
    probe
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = probe.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn cluster_serve_refuses_limits_that_are_not_ones() {
    for (flag, value, message) in [
        (
            "--request-timeout",
            "0s",
            "error: --request-timeout: must be longer than 0",
        ),
        (
            "--header-read-timeout",
            "soon",
            "error: --header-read-timeout: \"soon\" is not a duration",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(["cluster", "serve", "--listen", "127.0.0.1:0", flag, value])
            .output()
            .expect("running cluster serve");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(message), "{flag} {value}: {stderr}");
    }
}
