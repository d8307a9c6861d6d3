//! Errors as `application/problem+json` (RFC 9457). The only place that maps library
//! errors to HTTP statuses.
//!
//! Every problem has a stable `type` (`/problems/<slug>`), a `title` fixed per type,
//! a `status`, a `detail` naming what went wrong, and for bad input the offending `field`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::access::AuthFailure;
use crate::error::{Error, ErrorKind};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the problem type, e.g. `/problems/not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, for `/problems/invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on its way to becoming a problem response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub field: Option<String>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            slug,
            title,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid request",
            detail,
        );
        e.field = Some(field.to_string());
        e
    }

    pub fn unauthorized(f: AuthFailure) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            f.to_string(),
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed for this role",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    pub fn too_large(limit: u64) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Content too large",
            format!("the upload limit is {limit} bytes; nothing was stored"),
        )
    }

    pub fn rate_limited(retry_after: u64, detail: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            detail,
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn range_not_satisfiable(size: u64) -> Self {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range-not-satisfiable",
            "Range not satisfiable",
            format!("the content has {size} bytes"),
        )
    }

    pub fn timeout() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Request timed out",
            "the request took too long",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.slug),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let detail = e.to_string();
        match (&e, e.kind()) {
            (Error::Invalid { field, .. }, _) => ApiError::invalid(field, detail),
            (Error::Unprocessable { field, .. }, _) => {
                let mut p = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable",
                    "Request breaks a rule",
                    detail,
                );
                p.field = Some(field.clone());
                p
            }
            (Error::TooLarge { limit }, _) => ApiError::too_large(*limit),
            (Error::Disposed { .. }, _) => {
                ApiError::new(StatusCode::GONE, "disposed", "Disposed", detail)
            }
            (Error::Erased { .. }, _) => {
                ApiError::new(StatusCode::GONE, "erased", "Erased", detail)
            }
            (_, ErrorKind::NotFound) => ApiError::not_found(detail),
            (_, ErrorKind::Conflict) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            (_, ErrorKind::Locked) => {
                ApiError::new(StatusCode::LOCKED, "locked", "Locked by retention", detail)
            }
            (_, ErrorKind::Unavailable) => {
                tracing::error!("store unavailable: {detail}");
                let mut p = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Store unavailable",
                    "the store could not be reached; retry later",
                );
                p.retry_after = Some(5);
                p
            }
            (_, ErrorKind::Corrupt) => {
                tracing::error!("corrupt object: {detail}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "corrupt",
                    "Stored object is corrupt",
                    detail,
                )
            }
            _ => {
                tracing::error!("internal error: {detail}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"akte\""),
            );
        }
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;
