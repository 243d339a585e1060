//! Helpers shared by the api crate's tests that need a database of their own.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

/// The `billstream` binary under test.
pub fn billstream() -> Command {
    Command::new(env!("CARGO_BIN_EXE_billstream"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One request on its own connection; the status and body, or `None` if the server was not
/// there to answer in full.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> Option<(u16, String)> {
    request_with(port, method, path, key, "", body)
}

/// [`request`] with more header lines (`extra` ends each with `\r\n`).
pub fn request_with(
    port: u16,
    method: &str,
    path: &str,
    key: &str,
    extra: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}

pub fn server() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database name no one uses yet (the code under test creates it), dropped when the guard
/// goes.
pub struct FreshDatabase(pub String);

impl FreshDatabase {
    pub fn new() -> Self {
        Self(format!("billstream_api_{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn url(&self) -> String {
        format!("{}/{}", server(), self.0)
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        projections::testing::drop_database(&self.0);
    }
}
