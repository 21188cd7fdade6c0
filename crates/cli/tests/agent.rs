//! `edgeplane agent reflect` and `edgeplane agent probe` as a user runs them, over
//! 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn edgeplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("edgeplane {args:?}: {e}"))
}

/// Kills the reflector when the test ends, however it ends.
struct Reflector(Child);

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A reflector on a free port, and its address once it listens.
fn reflector() -> (Reflector, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["agent", "reflect", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let mut reflector = Reflector(child);
    // The first line is printed once the socket is bound: the readiness signal.
    let mut line = String::new();
    if let Some(stdout) = reflector.0.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_default()
        .to_string();
    assert!(address.starts_with("127.0.0.1:"), "no address in {line:?}");
    (reflector, address)
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    k.sort_unstable();
    k
}

#[test]
fn probe_measures_a_reflector_and_prints_the_json_figures() {
    let (_reflector, address) = reflector();
    let out = edgeplane(&[
        "agent",
        "probe",
        "--target",
        &address,
        "--count",
        "20",
        "--interval",
        "1ms",
        "--wait",
        "10s",
        "-o",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        keys(&json),
        [
            "jitterUs",
            "lossRatio",
            "oneWayUs",
            "received",
            "rttUs",
            "sent"
        ]
    );
    assert_eq!(json["sent"], 20);
    assert_eq!(json["received"], 20);
    assert_eq!(json["lossRatio"], 0.0);
    let rtt = &json["rttUs"];
    assert_eq!(keys(rtt), ["max", "mean", "min", "p50", "p90", "p99"]);
    let at = |k: &str| {
        rtt[k]
            .as_f64()
            .unwrap_or_else(|| panic!("rttUs.{k}: {rtt}"))
    };
    assert!(at("min") >= 0.0);
    assert!(at("min") <= at("p50") && at("p50") <= at("p90") && at("p90") <= at("p99"));
    assert!(at("p99") <= at("max") && at("min") <= at("mean") && at("mean") <= at("max"));
    assert_eq!(keys(&json["jitterUs"]), ["interarrival", "ipdv"]);
    assert!(json["jitterUs"]["ipdv"].is_f64() && json["jitterUs"]["interarrival"].is_f64());
    // Clocks not declared synchronized: half the p90 round trip.
    // Both are rounded to the nanosecond, hence the one-nanosecond tolerance.
    let one_way = json["oneWayUs"]
        .as_f64()
        .unwrap_or_else(|| panic!("{json}"));
    assert!((one_way - at("p90") / 2.0).abs() <= 0.001, "{json}");
}

#[test]
fn probe_prints_text_by_default() {
    let (_reflector, address) = reflector();
    let out = edgeplane(&[
        "agent",
        "probe",
        "--target",
        &address,
        "--count",
        "3",
        "--interval",
        "1ms",
        "--wait",
        "10s",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "STAMP probe of {address}: 3 sent, 3 received, 0.00% loss\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("round trip (us): min "), "{stdout}");
    assert!(
        stdout.contains("half the p90 round trip: clocks not declared synchronized"),
        "{stdout}"
    );
}

#[test]
fn bad_flags_are_usage_errors_that_say_what_is_wrong() {
    let cases: [(&[&str], &str); 7] = [
        (&["--target", "127.0.0.1:862", "--count", "0"], "--count"),
        (
            &["--target", "127.0.0.1:862", "--count", "1000001"],
            "--count",
        ),
        (
            &["--target", "127.0.0.1:862", "--interval", "0s"],
            "must be longer than zero",
        ),
        (
            &["--target", "127.0.0.1:862", "--interval", "fast"],
            "--interval",
        ),
        (&["--target", "127.0.0.1:0"], "names no reflector"),
        (
            // Not a host name: refused before any name lookup.
            &["--target", "not an address!"],
            "is not a reflector address",
        ),
        (&["--target", "127.0.0.1:862", "--size", "43"], "--size"),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["agent", "probe"];
        argv.extend_from_slice(args);
        let out = edgeplane(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {stderr}");
        assert!(stderr.contains(expected), "{argv:?}: {stderr}");
    }
    let out = edgeplane(&["agent", "reflect", "--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an address to listen on"));
}

#[test]
fn probe_without_any_answer_fails_and_still_prints_the_figures() {
    // A port that was just free: nothing listens there once the socket is dropped.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let target = format!("127.0.0.1:{port}");
    let out = edgeplane(&[
        "agent",
        "probe",
        "--target",
        &target,
        "--count",
        "2",
        "--interval",
        "1ms",
        "--wait",
        "20ms",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (json["sent"].as_u64(), json["received"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(json["lossRatio"], 1.0);
    assert_eq!(json["rttUs"], Value::Null);
}

/// `edgeplane agent bandwidth` on loopback: a train capped at 50 Mbit/s arrives as fast
/// as it left (loopback is faster), so the estimate is the sender's rate, never above the
/// cap, and says it was sender-limited; the JSON has exactly its keys; a rate that is not
/// one is a usage error. (How close the sender keeps to the cap depends on how busy the
/// machine is, so that is not asserted.)
#[test]
fn bandwidth_estimates_a_train_and_says_when_the_sender_was_the_limit() {
    let (_reflector, address) = reflector();
    let out = edgeplane(&[
        "agent",
        "bandwidth",
        "--target",
        &address,
        "--packets",
        "40",
        "--max-rate",
        "50Mbps",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        keys(&json),
        [
            "bitsPerSecond",
            "received",
            "senderBitsPerSecond",
            "senderLimited",
            "sent",
            "trainUs"
        ]
    );
    assert_eq!(json["sent"], 40);
    assert_eq!(json["senderLimited"], true, "{json}");
    let rate = json["bitsPerSecond"].as_f64().unwrap_or_default();
    let sender = json["senderBitsPerSecond"].as_f64().unwrap_or_default();
    assert!(
        rate > 0.0 && rate <= 50e6 * 1.05,
        "never faster than the cap: {json}"
    );
    assert!(sender <= 50e6 * 1.05 && sender < rate * 1.1, "{json}");
    let text = edgeplane(&[
        "agent",
        "bandwidth",
        "--target",
        &address,
        "--packets",
        "20",
        "--max-rate",
        "20Mbps",
    ]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.starts_with(&format!("bandwidth to {address}: ")),
        "{stdout}"
    );
    assert!(stdout.contains("sender-limited:"), "{stdout}");
    let bad = edgeplane(&[
        "agent",
        "bandwidth",
        "--target",
        &address,
        "--max-rate",
        "fast",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--max-rate"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
