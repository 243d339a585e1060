//! A minimal HTTP/1.1 keep-alive client, in the spirit of wrk: the load generator shares the
//! machine's two cores with the server and PostgreSQL, so it should cost as little as
//! possible. Requests are written as bytes; responses carry a Content-Length (axum's JSON
//! answers do) or come chunked (the portal page, streamed).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// One kept-alive connection.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// When the last request was sent, and how long until its answer's first byte came.
    sent_at: Instant,
    first_byte: Option<Duration>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(4096),
            sent_at: Instant::now(),
            first_byte: None,
        })
    }

    /// Sends one request and answers the status and body.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&[u8]>,
    ) -> io::Result<(u16, Vec<u8>)> {
        let body = body.unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).await?;
        self.sent_at = Instant::now();
        self.first_byte = None;
        self.read_response().await
    }

    async fn read_response(&mut self) -> io::Result<(u16, Vec<u8>)> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end])
            .map_err(|_| invalid("response head is not UTF-8"))?;
        let status = head
            .get(9..12)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| invalid("no status code"))?;
        let header = |wanted: &str| {
            head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case(wanted)
                    .then(|| value.trim().to_owned())
            })
        };
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            self.buffer.drain(..head_end);
            let body = self.read_chunks().await?;
            return Ok((status, body));
        }
        let length = header("content-length")
            .and_then(|value| value.parse::<usize>().ok())
            .ok_or_else(|| invalid("response without Content-Length"))?;
        while self.buffer.len() < head_end + length {
            self.fill().await?;
        }
        let body = self.buffer[head_end..head_end + length].to_vec();
        self.buffer.drain(..head_end + length);
        Ok((status, body))
    }

    /// A chunked body, its head already read: each chunk's size line, its bytes, until the
    /// empty chunk and the blank line after it (no trailers are sent to us).
    async fn read_chunks(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.buffer, b"\r\n") {
                    break at;
                }
                self.fill().await?;
            };
            let size = std::str::from_utf8(&self.buffer[..line_end])
                .ok()
                .and_then(|line| usize::from_str_radix(line.split(';').next()?.trim(), 16).ok())
                .ok_or_else(|| invalid("bad chunk size"))?;
            while self.buffer.len() < line_end + 2 + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buffer[line_end + 2..line_end + 2 + size]);
            self.buffer.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        if self.first_byte.is_none() {
            self.first_byte = Some(self.sent_at.elapsed());
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// Idle connections to one server, handed to one request at a time.
pub struct Connections {
    addr: SocketAddr,
    idle: Mutex<Vec<Connection>>,
}

impl Connections {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends a request on an idle connection (or a new one) and keeps the connection for the
    /// next request unless it failed.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&[u8]>,
    ) -> io::Result<(u16, Vec<u8>)> {
        let (status, answer, _) = self.send_timed(method, path, key, body).await?;
        Ok((status, answer))
    }

    /// [`send`](Self::send), with how long the answer's first byte took.
    pub async fn send_timed(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&[u8]>,
    ) -> io::Result<(u16, Vec<u8>, Duration)> {
        let idle = self.idle.lock().await.pop();
        let (connection, answer) = match idle {
            Some(mut connection) => match connection.send(method, path, key, body).await {
                Ok(answer) => (connection, answer),
                // The server closes a connection idle for 10 s, as one left over from an
                // earlier phase may be: the request goes again on a new one.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    let mut fresh = Connection::open(self.addr).await?;
                    let answer = fresh.send(method, path, key, body).await?;
                    (fresh, answer)
                }
                Err(e) => return Err(e),
            },
            None => {
                let mut fresh = Connection::open(self.addr).await?;
                let answer = fresh.send(method, path, key, body).await?;
                (fresh, answer)
            }
        };
        let first_byte = connection.first_byte.unwrap_or_default();
        self.idle.lock().await.push(connection);
        Ok((answer.0, answer.1, first_byte))
    }
}
