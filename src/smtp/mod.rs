//! The SMTP journaling receiver (`akte serve --smtp ADDR`): the mail server sends a copy
//! of every message, in and out, and akte archives it through the one ingest pipeline
//! with its envelope (`MAIL FROM`, every `RCPT TO` — the Bcc recipients the headers do
//! not show).
//!
//! A message is answered `250` only after its record is committed (the journal entry is
//! durable); anything else is a `4xx`, so that the sending server keeps it and retries —
//! never a 250 for something not stored. ESMTP with SIZE, 8BITMIME, PIPELINING,
//! STARTTLS (PEM certificate and key) and AUTH PLAIN/LOGIN with an akte token of a role
//! that may ingest (admin, archivist), or an allow-list of client addresses. Limits:
//! message size, recipients, connections, commands per connection, idle time. Commands
//! are parsed by `smtp-proto`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::access::Role;
use crate::api::AppState;
use crate::error::{Error, Result};
use crate::ingest::batch::{Envelope, IngestDefaults};

/// What the receiver accepts.
#[derive(Debug, Clone)]
pub struct Config {
    /// STARTTLS, when a certificate and key are configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Clients that may send without AUTH.
    pub allow: Vec<ipnet::IpNet>,
    pub max_size: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    pub max_commands: usize,
    pub idle: Duration,
    /// The name in the greeting.
    pub hostname: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tls: None,
            allow: Vec::new(),
            max_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_connections: 64,
            max_commands: 10_000,
            idle: Duration::from_secs(300),
            hostname: "akte".into(),
        }
    }
}

/// Parses an allow-list entry: an address (`192.0.2.7`, `::1`) or a network
/// (`10.0.0.0/8`).
pub fn parse_allow(s: &str) -> Result<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| Error::invalid("smtp-allow", format!("{s:?} is not an address or network")))
}

/// A TLS configuration from a PEM certificate chain and a PEM private key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |p: &Path, e: String| Error::invalid("smtp-tls", format!("{}: {e}", p.display()));
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "holds no PEM certificate".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| bad(cert, e.to_string()))?;
    Ok(Arc::new(config))
}

/// Serves SMTP on `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: AppState, config: Config) {
    let config = Arc::new(config);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("smtp: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let _ = stream
                .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                .await;
            continue;
        };
        let (state, config) = (state.clone(), config.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = connection(stream, peer, &state, &config).await {
                tracing::debug!(%peer, "smtp: connection ended: {e}");
            }
            drop(slot);
        });
    }
}

/// One connection: plain, then (after STARTTLS) the same session over TLS.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: &AppState,
    config: &Config,
) -> std::io::Result<()> {
    let mut s = Session::new(peer, state, config, false);
    let mut stream = stream;
    s.reply(
        &mut stream,
        &format!("220 {} akte ESMTP journaling receiver", config.hostname),
    )
    .await?;
    match s.run(&mut stream).await? {
        Next::Close => Ok(()),
        Next::StartTls => {
            let Some(tls) = &config.tls else {
                return Ok(());
            };
            let mut tls = tokio_rustls::TlsAcceptor::from(tls.clone())
                .accept(stream)
                .await?;
            // RFC 3207: everything said before is forgotten.
            let mut s = Session::new(peer, state, config, true);
            s.run(&mut tls).await.map(|_| ())
        }
    }
}

enum Next {
    Close,
    StartTls,
}

/// Where a session is between commands.
enum Phase {
    Command,
    /// AUTH LOGIN: waiting for the user name, then the password.
    LoginUser,
    LoginPassword,
    /// AUTH PLAIN without an initial response: waiting for it.
    PlainResponse,
    Data,
}

struct Session<'a> {
    peer: SocketAddr,
    state: &'a AppState,
    config: &'a Config,
    tls: bool,
    greeted: bool,
    /// The actor messages are archived as, once the client may send.
    actor: Option<String>,
    from: Option<String>,
    to: Vec<String>,
    commands: usize,
}

impl<'a> Session<'a> {
    fn new(peer: SocketAddr, state: &'a AppState, config: &'a Config, tls: bool) -> Self {
        let allowed = config.allow.iter().any(|n| n.contains(&peer.ip()));
        Session {
            peer,
            state,
            config,
            tls,
            greeted: false,
            actor: allowed.then(|| format!("smtp:{}", peer.ip())),
            from: None,
            to: Vec::new(),
            commands: 0,
        }
    }

    async fn reply<S: AsyncWrite + Unpin>(&self, s: &mut S, line: &str) -> std::io::Result<()> {
        s.write_all(line.as_bytes()).await?;
        s.write_all(b"\r\n").await?;
        s.flush().await
    }

    /// AUTH is offered over TLS, or without it when no certificate is configured at all
    /// (the operator's choice, for a receiver on loopback or a private network).
    fn auth_offered(&self) -> bool {
        self.tls || self.config.tls.is_none()
    }

    /// Runs commands until the client quits, the connection ends, or STARTTLS.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(&mut self, s: &mut S) -> std::io::Result<Next> {
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut receiver = RequestReceiver::default();
        let mut data = DataReceiver::new();
        let mut message: Vec<u8> = Vec::new();
        let mut too_big = false;
        let mut phase = Phase::Command;
        let mut login_user = String::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // Work through what has arrived before reading more (PIPELINING).
            loop {
                match phase {
                    Phase::Data => {
                        let mut it = buf.iter();
                        let done = data.ingest(&mut it, &mut message);
                        let used = buf.len() - it.as_slice().len();
                        buf.drain(..used);
                        if message.len() > self.config.max_size {
                            too_big = true;
                            message.clear();
                        }
                        if !done {
                            break;
                        }
                        phase = Phase::Command;
                        data = DataReceiver::new();
                        let raw = std::mem::take(&mut message);
                        let answer = if std::mem::take(&mut too_big) {
                            self.state.metrics.intake("smtp", "refused", 0);
                            format!(
                                "552 5.3.4 Message exceeds the size limit of {} bytes",
                                self.config.max_size
                            )
                        } else {
                            self.archive(raw).await
                        };
                        self.from = None;
                        self.to.clear();
                        self.reply(s, &answer).await?;
                    }
                    Phase::LoginUser | Phase::LoginPassword | Phase::PlainResponse => {
                        let Some(end) = buf.iter().position(|b| *b == b'\n') else {
                            break;
                        };
                        let line: Vec<u8> = buf.drain(..=end).collect();
                        let line = String::from_utf8_lossy(&line).trim().to_string();
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(&line)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok());
                        if line == "*" || decoded.is_none() {
                            phase = Phase::Command;
                            self.reply(s, "501 5.5.2 Authentication cancelled").await?;
                            continue;
                        }
                        let decoded = decoded.unwrap_or_default();
                        match phase {
                            Phase::LoginUser => {
                                login_user = decoded;
                                phase = Phase::LoginPassword;
                                self.reply(s, "334 UGFzc3dvcmQ6").await?;
                            }
                            Phase::LoginPassword => {
                                phase = Phase::Command;
                                let answer = self.authenticate(&login_user, &decoded).await;
                                self.reply(s, answer).await?;
                            }
                            _ => {
                                phase = Phase::Command;
                                let answer = self.plain(&decoded).await;
                                self.reply(s, answer).await?;
                            }
                        }
                    }
                    Phase::Command => {
                        if buf.is_empty() {
                            break;
                        }
                        let mut it = buf.iter();
                        let parsed = receiver.ingest(&mut it).map(owned);
                        let used = buf.len() - it.as_slice().len();
                        buf.drain(..used);
                        let cmd = match parsed {
                            Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                            Err(e) => {
                                self.commands += 1;
                                let answer = match e {
                                    smtp_proto::Error::UnknownCommand => {
                                        "500 5.5.1 Command not recognised".to_string()
                                    }
                                    smtp_proto::Error::ResponseTooLong => {
                                        "500 5.5.6 Line too long".to_string()
                                    }
                                    smtp_proto::Error::InvalidSenderAddress => {
                                        "501 5.1.7 Bad sender address".to_string()
                                    }
                                    smtp_proto::Error::InvalidRecipientAddress => {
                                        "501 5.1.3 Bad recipient address".to_string()
                                    }
                                    other => format!("501 5.5.4 Syntax error ({other:?})"),
                                };
                                self.reply(s, &answer).await?;
                                if self.commands > self.config.max_commands {
                                    self.reply(s, "421 4.7.0 Too many commands").await?;
                                    return Ok(Next::Close);
                                }
                                continue;
                            }
                            Ok(c) => c,
                        };
                        self.commands += 1;
                        if self.commands > self.config.max_commands {
                            self.reply(s, "421 4.7.0 Too many commands, closing")
                                .await?;
                            return Ok(Next::Close);
                        }
                        match cmd {
                            Cmd::Ehlo(host) => {
                                self.greeted = true;
                                self.from = None;
                                self.to.clear();
                                let mut lines = vec![
                                    format!("{} greets {host}", self.config.hostname),
                                    format!("SIZE {}", self.config.max_size),
                                    "8BITMIME".into(),
                                    "PIPELINING".into(),
                                    "ENHANCEDSTATUSCODES".into(),
                                ];
                                if self.config.tls.is_some() && !self.tls {
                                    lines.push("STARTTLS".into());
                                }
                                if self.auth_offered() {
                                    lines.push("AUTH PLAIN LOGIN".into());
                                }
                                let n = lines.len();
                                let mut out = String::new();
                                for (i, l) in lines.iter().enumerate() {
                                    out.push_str(&format!(
                                        "250{}{l}\r\n",
                                        if i + 1 == n { ' ' } else { '-' }
                                    ));
                                }
                                s.write_all(out.as_bytes()).await?;
                                s.flush().await?;
                            }
                            Cmd::Helo(host) => {
                                self.greeted = true;
                                self.from = None;
                                self.to.clear();
                                let line = format!("250 {} greets {host}", self.config.hostname);
                                self.reply(s, &line).await?;
                            }
                            Cmd::StartTls => {
                                if self.config.tls.is_none() || self.tls {
                                    self.reply(s, "502 5.5.1 STARTTLS not available").await?;
                                } else if !buf.is_empty() {
                                    // Commands pipelined after STARTTLS would be taken
                                    // over into the TLS session (a known injection).
                                    self.reply(s, "501 5.5.4 Nothing may follow STARTTLS")
                                        .await?;
                                    return Ok(Next::Close);
                                } else {
                                    self.reply(s, "220 2.0.0 Ready to start TLS").await?;
                                    return Ok(Next::StartTls);
                                }
                            }
                            Cmd::Auth { mechanism, initial } => {
                                if !self.auth_offered() {
                                    self.reply(s, "538 5.7.11 Encryption required: STARTTLS first")
                                        .await?;
                                } else if self.from.is_some() {
                                    // Not within a mail transaction (RFC 4954).
                                    self.reply(s, "503 5.5.1 AUTH not allowed now").await?;
                                } else if mechanism == AUTH_PLAIN {
                                    if initial.is_empty() {
                                        phase = Phase::PlainResponse;
                                        self.reply(s, "334 ").await?;
                                    } else {
                                        let decoded = base64::engine::general_purpose::STANDARD
                                            .decode(initial.trim())
                                            .ok()
                                            .and_then(|b| String::from_utf8(b).ok())
                                            .unwrap_or_default();
                                        let answer = self.plain(&decoded).await;
                                        self.reply(s, answer).await?;
                                    }
                                } else if mechanism == AUTH_LOGIN {
                                    phase = Phase::LoginUser;
                                    self.reply(s, "334 VXNlcm5hbWU6").await?;
                                } else {
                                    self.reply(
                                        s,
                                        "504 5.5.4 Mechanism not supported (PLAIN, LOGIN)",
                                    )
                                    .await?;
                                }
                            }
                            Cmd::Mail { from, size } => {
                                let answer = if !self.greeted {
                                    "503 5.5.1 EHLO first".to_string()
                                } else if self.actor.is_none() {
                                    "530 5.7.0 Authentication required".to_string()
                                } else if self.from.is_some() {
                                    "503 5.5.1 Nested MAIL command".to_string()
                                } else if size > self.config.max_size {
                                    self.state.metrics.intake("smtp", "refused", 0);
                                    format!(
                                        "552 5.3.4 Message size exceeds the limit of {} bytes",
                                        self.config.max_size
                                    )
                                } else {
                                    self.from = Some(from);
                                    self.to.clear();
                                    "250 2.1.0 Ok".to_string()
                                };
                                self.reply(s, &answer).await?;
                            }
                            Cmd::Rcpt(to) => {
                                let answer = if self.from.is_none() {
                                    "503 5.5.1 MAIL first".to_string()
                                } else if self.to.len() >= self.config.max_recipients {
                                    "452 4.5.3 Too many recipients".to_string()
                                } else {
                                    self.to.push(to);
                                    "250 2.1.5 Ok".to_string()
                                };
                                self.reply(s, &answer).await?;
                            }
                            Cmd::Data => {
                                if self.from.is_none() || self.to.is_empty() {
                                    self.reply(s, "503 5.5.1 MAIL and RCPT first").await?;
                                } else {
                                    phase = Phase::Data;
                                    self.reply(s, "354 End data with <CR><LF>.<CR><LF>").await?;
                                }
                            }
                            Cmd::Bdat => {
                                self.reply(s, "502 5.5.1 BDAT not supported, use DATA")
                                    .await?;
                            }
                            Cmd::Rset => {
                                self.from = None;
                                self.to.clear();
                                self.reply(s, "250 2.0.0 Ok").await?;
                            }
                            Cmd::Noop => self.reply(s, "250 2.0.0 Ok").await?,
                            Cmd::Vrfy => {
                                self.reply(s, "252 2.5.0 Cannot verify, send the message")
                                    .await?
                            }
                            Cmd::Quit => {
                                self.reply(s, "221 2.0.0 Bye").await?;
                                return Ok(Next::Close);
                            }
                            Cmd::Other => {
                                self.reply(s, "502 5.5.1 Command not implemented").await?
                            }
                        }
                    }
                }
            }
            let n = match tokio::time::timeout(self.config.idle, s.read(&mut chunk)).await {
                Err(_) => {
                    let _ = self.reply(s, "421 4.4.2 Idle too long, closing").await;
                    return Ok(Next::Close);
                }
                Ok(r) => r?,
            };
            if n == 0 {
                return Ok(Next::Close);
            }
            buf.extend_from_slice(&chunk[..n]);
            // A command line may not grow without end; data is bounded by max_size.
            if matches!(
                phase,
                Phase::LoginUser | Phase::LoginPassword | Phase::PlainResponse
            ) && buf.len() > 16 * 1024
            {
                self.reply(s, "500 5.5.6 Line too long").await?;
                return Ok(Next::Close);
            }
        }
    }

    /// AUTH PLAIN: `authzid NUL authcid NUL password`; the password is an akte token.
    async fn plain(&mut self, decoded: &str) -> &'static str {
        let mut parts = decoded.split('\0');
        let (_authz, user, pass) = (parts.next(), parts.next(), parts.next());
        match (user, pass) {
            (Some(u), Some(p)) => self.authenticate(u, p).await,
            _ => "501 5.5.2 Malformed AUTH PLAIN response",
        }
    }

    async fn authenticate(&mut self, _user: &str, token: &str) -> &'static str {
        let arrived = std::time::Instant::now();
        let mut found = self.state.tokens.authenticate(token).await;
        if matches!(found, Err(crate::access::AuthFailure::Invalid)) {
            // Perhaps made since this node last looked (another process, another node).
            self.state.refresh_tokens_since(arrived).await;
            found = self.state.tokens.authenticate(token).await;
        }
        match found {
            Ok(p) if matches!(p.role, Role::Admin | Role::Archivist) && p.parties.is_empty() => {
                self.actor = Some(format!("{} (smtp {})", p.actor(), self.peer.ip()));
                "235 2.7.0 Authentication successful"
            }
            Ok(_) => "535 5.7.8 This token's role may not archive mail (admin, archivist)",
            Err(_) => "535 5.7.8 Authentication credentials invalid",
        }
    }

    /// Archives one message; the answer says whether it is stored.
    async fn archive(&self, raw: Vec<u8>) -> String {
        let size = raw.len() as u64;
        if raw.is_empty() {
            self.state.metrics.intake("smtp", "refused", size);
            return "554 5.6.0 Empty message".into();
        }
        let actor = self.actor.clone().unwrap_or_default();
        let mut d = IngestDefaults {
            envelope: Some(Envelope {
                from: self.from.clone().unwrap_or_default(),
                to: self.to.clone(),
            }),
            ..Default::default()
        };
        // A journal report (Exchange): the original is the record, the envelope is the
        // report's.
        let raw = match crate::ingest::journaling::unwrap_report(&raw) {
            Some((original, envelope)) => {
                d.envelope = Some(envelope);
                d.extra
                    .insert("journal_report".into(), "exchange (unwrapped)".into());
                original
            }
            None => raw,
        };
        match self
            .state
            .ingest
            .archive_email(&actor, bytes::Bytes::from(raw), &d)
            .await
        {
            Ok(o) => {
                if !o.duplicate {
                    self.state
                        .metrics
                        .add_records(1 + o.attachments.len() as i64);
                }
                self.state.metrics.intake("smtp", "accepted", size);
                if o.duplicate {
                    format!("250 2.0.0 Ok: already archived as {}", o.id)
                } else {
                    format!("250 2.0.0 Ok: archived as {}", o.id)
                }
            }
            Err(e @ (Error::Invalid { .. } | Error::Unprocessable { .. })) => {
                self.state.metrics.intake("smtp", "refused", size);
                format!("554 5.6.0 Not archived: {}", one_line(&e.to_string()))
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, "smtp: message not archived, deferred: {e}");
                self.state.metrics.intake("smtp", "deferred", size);
                "451 4.3.0 Not archived now, try again later".into()
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// A command, owned (the parser's borrows end with the buffer they point into).
enum Cmd {
    Ehlo(String),
    Helo(String),
    StartTls,
    Auth { mechanism: u64, initial: String },
    Mail { from: String, size: usize },
    Rcpt(String),
    Data,
    Bdat,
    Rset,
    Noop,
    Vrfy,
    Quit,
    Other,
}

fn owned(r: Request<std::borrow::Cow<'_, str>>) -> Cmd {
    match r {
        Request::Ehlo { host } | Request::Lhlo { host } => Cmd::Ehlo(host.into_owned()),
        Request::Helo { host } => Cmd::Helo(host.into_owned()),
        Request::StartTls => Cmd::StartTls,
        Request::Auth {
            mechanism,
            initial_response,
        } => Cmd::Auth {
            mechanism,
            initial: initial_response.into_owned(),
        },
        Request::Mail { from } => Cmd::Mail {
            from: from.address.into_owned(),
            size: from.size,
        },
        Request::Rcpt { to } => Cmd::Rcpt(to.address.into_owned()),
        Request::Data => Cmd::Data,
        Request::Bdat { .. } => Cmd::Bdat,
        Request::Rset => Cmd::Rset,
        Request::Noop { .. } => Cmd::Noop,
        Request::Vrfy { .. } => Cmd::Vrfy,
        Request::Quit => Cmd::Quit,
        _ => Cmd::Other,
    }
}
