//! A small but real SMTP server for tests, on a loopback port of its own.
//!
//! It speaks enough ESMTP for lettre and most clients: EHLO/HELO, optional
//! AUTH PLAIN, MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP and QUIT,
//! with the reply codes of RFC 5321 for commands out of order. It offers no
//! STARTTLS, so a client that requires encryption must refuse it. Every
//! message accepted is handed to the test through a channel.
//! (`#[path]`-included: `tests/support/` is not a test target of its own.)

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Longest command or data line accepted (RFC 5321 asks for 1,000; clients
/// that fold headers stay well within it).
const MAX_LINE: usize = 64 * 1024;
/// Largest message accepted.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// How long a test waits for a message before it fails (a safety net for a
/// broken client, never a measure of speed).
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The user name the client authenticated as, if it did.
    pub authenticated_as: Option<String>,
    /// The message itself, dot-unstuffed, lines ending in CRLF.
    pub data: Vec<u8>,
    /// The client's end of the connection it came over (tells apart the
    /// connections, and so the senders, of several instances).
    pub peer: SocketAddr,
}

/// A running test SMTP server; it stops when dropped.
pub struct SmtpServer {
    address: SocketAddr,
    received: mpsc::UnboundedReceiver<ReceivedMail>,
    accept_loop: tokio::task::JoinHandle<()>,
}

/// The user name and password the server accepts with AUTH PLAIN.
#[derive(Clone)]
struct Login {
    user: String,
    password: String,
}

impl SmtpServer {
    /// A server that accepts mail from anyone, without authentication.
    pub async fn start() -> SmtpServer {
        Self::spawn(None, 0, Duration::ZERO).await
    }

    /// A server like [`SmtpServer::start`] that takes `delay` to accept each
    /// message, as a busy server does: a client sending many messages is
    /// kept busy long enough for others to start sending meanwhile.
    pub async fn start_slow(delay: Duration) -> SmtpServer {
        Self::spawn(None, 0, delay).await
    }

    /// A server like [`SmtpServer::start`] on a port chosen beforehand: a
    /// test points the service at a port where nothing listens yet (an SMTP
    /// outage), then starts the server there (the outage ends).
    pub async fn start_on(port: u16) -> SmtpServer {
        Self::spawn(None, port, Duration::ZERO).await
    }

    /// A server that offers AUTH PLAIN and requires it before MAIL.
    pub async fn start_with_login(user: &str, password: &str) -> SmtpServer {
        Self::spawn(
            Some(Login {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            0,
            Duration::ZERO,
        )
        .await
    }

    async fn spawn(login: Option<Login>, port: u16, delay: Duration) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binding the test SMTP server");
        let address = listener.local_addr().unwrap();
        let (sender, received) = mpsc::unbounded_channel();
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let sender = sender.clone();
                let login = login.clone();
                tokio::spawn(async move {
                    // A client that hangs up mid-session is not the server's failure.
                    let _ = Session::new(login, sender, peer, delay).run(stream).await;
                });
            }
        });
        SmtpServer {
            address,
            received,
            accept_loop,
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The next message accepted; panics if none arrives in time.
    pub async fn next_mail(&mut self) -> ReceivedMail {
        tokio::time::timeout(RECEIVE_TIMEOUT, self.received.recv())
            .await
            .expect("no mail arrived at the test SMTP server")
            .expect("the test SMTP server stopped")
    }

    /// A message accepted so far that nobody took yet, without waiting.
    pub fn try_next_mail(&mut self) -> Option<ReceivedMail> {
        self.received.try_recv().ok()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// The state of one SMTP connection.
struct Session {
    login: Option<Login>,
    sender: mpsc::UnboundedSender<ReceivedMail>,
    peer: SocketAddr,
    /// How long each accepted message waits for its `250`.
    delay: Duration,
    greeted: bool,
    authenticated_as: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Session {
    fn new(
        login: Option<Login>,
        sender: mpsc::UnboundedSender<ReceivedMail>,
        peer: SocketAddr,
        delay: Duration,
    ) -> Session {
        Session {
            login,
            sender,
            peer,
            delay,
            greeted: false,
            authenticated_as: None,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    async fn run(mut self, stream: TcpStream) -> std::io::Result<()> {
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        writer
            .write_all(b"220 localhost ESMTP marginalia test server\r\n")
            .await?;
        loop {
            let Some(line) = read_line(&mut reader).await? else {
                return Ok(());
            };
            let line = String::from_utf8_lossy(&line).into_owned();
            let (verb, argument) = match line.split_once(' ') {
                Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
                None => (line.to_ascii_uppercase(), ""),
            };
            let reply = match verb.as_str() {
                "EHLO" => {
                    self.greeted = true;
                    self.reset();
                    let auth = if self.login.is_some() {
                        "250-AUTH PLAIN\r\n"
                    } else {
                        ""
                    };
                    format!("250-localhost\r\n250-8BITMIME\r\n{auth}250 SMTPUTF8\r\n")
                }
                "HELO" => {
                    self.greeted = true;
                    self.reset();
                    "250 localhost\r\n".to_owned()
                }
                "AUTH" => self.auth(argument, &mut reader, &mut writer).await?,
                "MAIL" => self.mail(argument),
                "RCPT" => self.rcpt(argument),
                "DATA" => {
                    if self.rcpt_to.is_empty() {
                        "503 5.5.1 RCPT first\r\n".to_owned()
                    } else {
                        writer
                            .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await?;
                        match read_data(&mut reader).await? {
                            Some(data) => {
                                tokio::time::sleep(self.delay).await;
                                let _ = self.sender.send(ReceivedMail {
                                    mail_from: self.mail_from.take().unwrap_or_default(),
                                    rcpt_to: std::mem::take(&mut self.rcpt_to),
                                    authenticated_as: self.authenticated_as.clone(),
                                    data,
                                    peer: self.peer,
                                });
                                "250 2.0.0 Ok: queued\r\n".to_owned()
                            }
                            None => {
                                self.reset();
                                "552 5.3.4 Message too big\r\n".to_owned()
                            }
                        }
                    }
                }
                "RSET" => {
                    self.reset();
                    "250 2.0.0 Ok\r\n".to_owned()
                }
                "NOOP" => "250 2.0.0 Ok\r\n".to_owned(),
                "QUIT" => {
                    writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => "502 5.5.2 Command not recognized\r\n".to_owned(),
            };
            writer.write_all(reply.as_bytes()).await?;
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    async fn auth(
        &mut self,
        argument: &str,
        reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        writer: &mut tokio::net::tcp::OwnedWriteHalf,
    ) -> std::io::Result<String> {
        let Some(login) = self.login.clone() else {
            return Ok("502 5.5.1 AUTH not offered\r\n".into());
        };
        if !self.greeted {
            return Ok("503 5.5.1 EHLO first\r\n".into());
        }
        if self.authenticated_as.is_some() {
            return Ok("503 5.5.1 Already authenticated\r\n".into());
        }
        let (mechanism, initial) = match argument.split_once(' ') {
            Some((mechanism, initial)) => (mechanism, Some(initial.trim().to_owned())),
            None => (argument, None),
        };
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Ok("504 5.5.4 Only PLAIN\r\n".into());
        }
        let response = match initial {
            Some(initial) => initial,
            None => {
                writer.write_all(b"334 \r\n").await?;
                match read_line(reader).await? {
                    Some(line) => String::from_utf8_lossy(&line).into_owned(),
                    None => return Ok(String::new()),
                }
            }
        };
        // PLAIN is "authzid NUL user NUL password", base64-encoded (RFC 4616).
        let decoded = STANDARD.decode(response.trim()).unwrap_or_default();
        let mut parts = decoded.split(|byte| *byte == 0);
        let (_authzid, user, password) = (parts.next(), parts.next(), parts.next());
        if user == Some(login.user.as_bytes()) && password == Some(login.password.as_bytes()) {
            self.authenticated_as = Some(login.user);
            Ok("235 2.7.0 Authentication successful\r\n".into())
        } else {
            Ok("535 5.7.8 Authentication credentials invalid\r\n".into())
        }
    }

    fn mail(&mut self, argument: &str) -> String {
        if !self.greeted {
            return "503 5.5.1 EHLO first\r\n".into();
        }
        if self.login.is_some() && self.authenticated_as.is_none() {
            return "530 5.7.0 Authentication required\r\n".into();
        }
        if self.mail_from.is_some() {
            return "503 5.5.1 Nested MAIL\r\n".into();
        }
        match path_argument(argument, "FROM:") {
            Some(address) => {
                self.mail_from = Some(address);
                "250 2.1.0 Ok\r\n".into()
            }
            None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
        }
    }

    fn rcpt(&mut self, argument: &str) -> String {
        if self.mail_from.is_none() {
            return "503 5.5.1 MAIL first\r\n".into();
        }
        match path_argument(argument, "TO:") {
            Some(address) if !address.is_empty() => {
                self.rcpt_to.push(address);
                "250 2.1.5 Ok\r\n".into()
            }
            _ => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
        }
    }
}

/// The address in `FROM:<address> [parameters]`, without brackets.
fn path_argument(argument: &str, prefix: &str) -> Option<String> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (address, _parameters) = rest.split_once('>')?;
    Some(address.to_owned())
}

/// One line without its CRLF, or `None` at the end of the stream.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long",
        ));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(Some(line))
}

/// The message after DATA up to the lone dot, dot-unstuffed, with CRLF line
/// ends; `None` when it is larger than the server takes (the rest is read
/// and dropped so the session can go on).
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut too_big = false;
    loop {
        let Some(line) = read_line(reader).await? else {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        };
        if line == b"." {
            return Ok((!too_big).then_some(data));
        }
        // A line that starts with a dot was sent with one more (RFC 5321, 4.5.2).
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + line.len() + 2 > MAX_MESSAGE {
            too_big = true;
        }
        if !too_big {
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
    }
}
