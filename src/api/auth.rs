//! Authentication (Bearer tokens) and per-token limits, as an extractor every
//! protected handler takes: `caller: Caller`, then `caller.require(&[…])`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppState;
use super::problem::{ApiError, ApiResult};
use crate::access::{AuthFailure, Principal, Role};

/// An authenticated caller holding one of its token's concurrency slots.
#[derive(Debug)]
pub struct Caller {
    pub principal: Principal,
    _slot: OwnedSemaphorePermit,
}

impl Caller {
    /// Refuses with 403 unless the caller has one of `roles` and is not restricted to
    /// parties (a restricted token may only use endpoints that check [`Caller::require_scoped`]).
    pub fn require(&self, roles: &[Role]) -> ApiResult<()> {
        if !self.principal.parties.is_empty() {
            return Err(ApiError::forbidden(
                "this token is restricted to parties: it may only open their files, their records and search them",
            ));
        }
        self.refuse_limited()?;
        self.require_scoped(roles)
    }

    /// Refuses a token limited to fiscal years: for endpoints that would show more than
    /// the records of those years (a party's file, its history).
    pub fn refuse_limited(&self) -> ApiResult<()> {
        if let Some(y) = self.principal.years {
            return Err(ApiError::forbidden(format!(
                "this token is limited to the fiscal years {y}: it may only read the records dated then and search them"
            )));
        }
        if !self.principal.classes.is_empty() {
            return Err(ApiError::forbidden(format!(
                "this token is limited to the classes {}: it may only read the records of those classes and search them",
                self.principal.classes.join(", ")
            )));
        }
        Ok(())
    }

    /// The retention classes this caller reads records of, or `None` when unlimited.
    pub fn classes(&self) -> Option<&[String]> {
        Some(self.principal.classes.as_slice()).filter(|c| !c.is_empty())
    }

    /// The fiscal years this caller reads records of, or `None` when unlimited.
    pub fn years(&self) -> Option<crate::access::FiscalYears> {
        self.principal.years
    }

    /// Like [`Caller::require`], but admits a party-restricted token: for endpoints that
    /// check what they show against [`Caller::restriction`].
    pub fn require_scoped(&self, roles: &[Role]) -> ApiResult<()> {
        if roles.contains(&self.principal.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role {} may not do this (allowed: {})",
                self.principal.role,
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    pub fn actor(&self) -> String {
        self.principal.actor()
    }

    /// The parties this caller is restricted to, or `None` when unrestricted.
    pub fn restriction(&self) -> Option<&[String]> {
        (!self.principal.parties.is_empty()).then_some(self.principal.parties.as_slice())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = match parts.headers.get(AUTHORIZATION) {
            None => return Err(ApiError::unauthorized(AuthFailure::Missing)),
            Some(v) => {
                let v = v
                    .to_str()
                    .map_err(|_| ApiError::unauthorized(AuthFailure::Invalid))?;
                match v.split_once(' ') {
                    Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => {
                        t.trim().to_string()
                    }
                    _ => return Err(ApiError::unauthorized(AuthFailure::Invalid)),
                }
            }
        };
        let tokens = &state.tokens;
        let arrived = std::time::Instant::now();
        let principal = match tokens.authenticate(&presented).await {
            // The token may have been created by another process since the last load.
            Err(AuthFailure::Invalid) => {
                state.refresh_tokens_since(arrived).await;
                tokens.authenticate(&presented).await
            }
            r => r,
        }
        .map_err(ApiError::unauthorized)?;
        let slot = state.limits.admit(&principal.token_id)?;
        parts.extensions.insert(principal.clone());
        Ok(Caller {
            principal,
            _slot: slot,
        })
    }
}

/// Limits per token: request rate (token bucket), concurrent requests, upload bandwidth.
#[derive(Debug, Clone)]
pub struct LimitConfig {
    pub requests_per_second: f64,
    pub burst: f64,
    pub concurrent_requests: usize,
    /// Bytes per second of upload per token.
    pub upload_bytes_per_second: f64,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            requests_per_second: 500.0,
            burst: 1000.0,
            concurrent_requests: 64,
            upload_bytes_per_second: 256.0 * 1024.0 * 1024.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    rate: f64,
    level: f64,
    last: Instant,
}

impl Bucket {
    fn new(capacity: f64, rate: f64) -> Bucket {
        Bucket {
            capacity,
            rate,
            level: capacity,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.level = (self.level + dt * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Takes `n` if available; otherwise says how long until it would be.
    fn take(&mut self, n: f64) -> Result<(), Duration> {
        self.refill();
        if self.level >= n {
            self.level -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (n - self.level) / self.rate.max(1e-9),
            ))
        }
    }

    /// Takes `n` unconditionally (may go negative) and returns how long to wait to be even.
    fn debit(&mut self, n: f64) -> Duration {
        self.refill();
        self.level -= n;
        if self.level >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.level / self.rate.max(1e-9))
        }
    }
}

#[derive(Debug)]
struct TokenLimits {
    requests: Mutex<Bucket>,
    upload: Mutex<Bucket>,
    slots: Arc<Semaphore>,
}

#[derive(Debug)]
pub struct Limits {
    cfg: LimitConfig,
    per_token: Mutex<HashMap<String, Arc<TokenLimits>>>,
}

impl Limits {
    pub fn new(cfg: LimitConfig) -> Limits {
        Limits {
            cfg,
            per_token: Mutex::new(HashMap::new()),
        }
    }

    fn of(&self, token: &str) -> Arc<TokenLimits> {
        let mut map = match self.per_token.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry(token.to_string())
            .or_insert_with(|| {
                Arc::new(TokenLimits {
                    requests: Mutex::new(Bucket::new(self.cfg.burst, self.cfg.requests_per_second)),
                    upload: Mutex::new(Bucket::new(
                        self.cfg.upload_bytes_per_second,
                        self.cfg.upload_bytes_per_second,
                    )),
                    slots: Arc::new(Semaphore::new(self.cfg.concurrent_requests)),
                })
            })
            .clone()
    }

    /// Admits one request of `token`, or refuses with 429.
    pub fn admit(&self, token: &str) -> ApiResult<OwnedSemaphorePermit> {
        let l = self.of(token);
        {
            let mut b = match l.requests.lock() {
                Ok(b) => b,
                Err(p) => p.into_inner(),
            };
            if let Err(wait) = b.take(1.0) {
                return Err(ApiError::rate_limited(
                    wait.as_secs().max(1),
                    format!(
                        "more than {} requests per second for this token",
                        self.cfg.requests_per_second
                    ),
                ));
            }
        }
        l.slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::rate_limited(
                1,
                format!(
                    "more than {} concurrent requests for this token",
                    self.cfg.concurrent_requests
                ),
            )
        })
    }

    /// How long an upload of `token` should pause after `n` more bytes.
    pub fn upload_pause(&self, token: &str, n: usize) -> Duration {
        let l = self.of(token);
        let mut b = match l.upload.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        b.debit(n as f64)
    }
}

/// Allowed roles, named once so handlers read like the role table in the README.
pub mod roles {
    use crate::access::Role::{self, *};

    pub const READ: &[Role] = &[Admin, Archivist, Clerk, Auditor];
    pub const INGEST: &[Role] = &[Admin, Archivist];
    /// Notes, links and cases: the clerk's own work.
    pub const NOTE: &[Role] = &[Admin, Archivist, Clerk];
    pub const AUDIT: &[Role] = &[Admin, Auditor];
    /// Holds, eligibility and disposals: archivists work them, auditors read them.
    pub const RETENTION_READ: &[Role] = &[Admin, Archivist, Auditor];
    pub const ADMIN: &[Role] = &[Admin];
}
