//! Sign-in sessions of the web interface.
//!
//! A session is server-side: the browser holds only a random id in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` behind TLS); the server keeps the person's token
//! and a CSRF token per session. Every request authenticates the token again, so a
//! revoked or expired token ends its sessions at once. A session ends after
//! [`IDLE`] without a request, after [`ABSOLUTE`] in any case, and at sign-out.
//! Sessions live in this process: behind a load balancer with several nodes, route a
//! browser to one node (sticky sessions), or it signs in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(60 * 60);
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// At most this many sessions at once; the oldest give way.
const MAX: usize = 20_000;

pub const COOKIE: &str = "akte_session";

#[derive(Debug, Clone)]
pub struct Session {
    /// The person's API token (the secret), used for every call the pages make.
    pub token: String,
    /// Sent with every form; compared in constant time.
    pub csrf: String,
    created: Instant,
    last: Instant,
}

impl Session {
    pub fn csrf_ok(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

#[derive(Debug, Default)]
pub struct Sessions {
    // Keyed by the SHA-256 of the session id: the table holds no usable cookie value.
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: no session (the caller sees an unusable, never-matching id).
        return String::new();
    }
    hex::encode(b)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session for `token`; returns its id (the cookie value).
    pub fn create(&self, token: String) -> Option<String> {
        let id = random_hex();
        let csrf = random_hex();
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX {
            map.retain(|_, s| !expired(s, now));
            if map.len() >= MAX
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            key(&id),
            Session {
                token,
                csrf,
                created: now,
                last: now,
            },
        );
        Some(id)
    }

    /// The live session with this id (and marks it used), or `None`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(id);
        let s = map.get_mut(&k)?;
        if expired(s, now) {
            map.remove(&k);
            return None;
        }
        s.last = now;
        Some(s.clone())
    }

    pub fn remove(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&key(id));
    }
}

fn expired(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last) > IDLE || now.duration_since(s.created) > ABSOLUTE
}

/// The `Set-Cookie` value for a session id (`secure` behind TLS).
pub fn cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ABSOLUTE.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A cookie's value from a `Cookie` header.
pub fn read_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_id_and_end_at_sign_out() {
        let s = Sessions::default();
        let id = s.create("tok".into()).expect("session");
        assert_eq!(id.len(), 64);
        let got = s.get(&id).expect("live");
        assert_eq!(got.token, "tok");
        assert!(got.csrf_ok(&got.csrf.clone()));
        assert!(!got.csrf_ok(""));
        assert!(!got.csrf_ok("x"));
        assert!(s.get("other").is_none());
        s.remove(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn cookies_are_strict_and_http_only() {
        let c = cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!cookie("abc", false).contains("Secure"));
        assert_eq!(
            read_cookie("a=1; akte_session=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(read_cookie("a=1", COOKIE), None);
    }
}
