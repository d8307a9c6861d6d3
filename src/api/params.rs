//! Query-string parsing with field-precise errors (400 naming the parameter).

use std::collections::HashMap;

use chrono::NaiveDate;

use super::problem::{ApiError, ApiResult};

pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses the query of `uri`, refusing parameters not in `allowed`.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> ApiResult<Params> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::invalid(
                    &k,
                    format!("unknown query parameter (allowed: {})", allowed.join(", ")),
                ));
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ApiError::invalid(&k, "given more than once"));
            }
        }
        Ok(Params(map))
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// An object id (UUID), refused with 400 when it is not one.
    pub fn id(&self, name: &str) -> ApiResult<Option<String>> {
        self.0
            .get(name)
            .map(|v| {
                crate::ids::validate_id(v)
                    .map(|_| v.clone())
                    .map_err(|_| ApiError::invalid(name, format!("{v:?} is not an id (UUID)")))
            })
            .transpose()
    }

    /// Object ids separated by commas (none if absent).
    pub fn ids(&self, name: &str) -> ApiResult<Vec<String>> {
        let Some(v) = self.0.get(name) else {
            return Ok(Vec::new());
        };
        if !crate::ids::shape::matches(crate::ids::shape::UUIDS, v) {
            return Err(ApiError::invalid(
                name,
                format!("{v:?} is not a comma-separated list of ids (UUIDs)"),
            ));
        }
        Ok(v.split(',').map(str::to_string).collect())
    }

    /// A value of the shape `pattern` (one of [`crate::ids::shape`]).
    pub fn shaped(&self, name: &str, pattern: &'static str) -> ApiResult<Option<String>> {
        self.0
            .get(name)
            .map(|v| {
                if crate::ids::shape::matches(pattern, v) {
                    Ok(v.clone())
                } else {
                    Err(ApiError::invalid(
                        name,
                        format!("{v:?} does not have the shape {pattern}"),
                    ))
                }
            })
            .transpose()
    }

    pub fn date(&self, name: &str) -> ApiResult<Option<NaiveDate>> {
        self.0
            .get(name)
            .map(|v| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                    ApiError::invalid(name, format!("{v:?} is not a date (YYYY-MM-DD)"))
                })
            })
            .transpose()
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> ApiResult<Option<T>> {
        self.0
            .get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| ApiError::invalid(name, format!("{v:?} is not a valid number")))
            })
            .transpose()
    }
}

/// Deserializes an optional revision number that JSON may write as `3` or `3.0` (JSON
/// Schema's `integer` admits both).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::Deserialize;
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n
        .as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                .map(|f| f as u64)
        })
        .and_then(|v| u32::try_from(v).ok());
    whole
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not a revision number")))
}

/// Reads a request body of at most `limit` bytes (413 beyond).
pub async fn body_bytes(req: axum::extract::Request, limit: usize) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            use std::error::Error as _;
            let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
            while let Some(s) = src {
                if s.is::<http_body_util::LengthLimitError>() {
                    return ApiError::too_large(limit as u64);
                }
                src = s.source();
            }
            ApiError::invalid("body", format!("the request body could not be read: {e}"))
        })
}

/// Reads a request body of at most `limit` bytes (413 beyond) that may take as long as
/// it needs, as long as it never stalls for `idle` (uploads are bounded by bytes and idle
/// time, not by a wall clock).
pub async fn body_bytes_idle(
    req: axum::extract::Request,
    limit: usize,
    idle: std::time::Duration,
) -> ApiResult<bytes::Bytes> {
    use futures::StreamExt;
    let mut body = req.into_body().into_data_stream();
    let mut buf = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => return Err(ApiError::invalid("body", "the upload stalled")),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => {
                return Err(ApiError::invalid(
                    "body",
                    format!("the upload was cut off: {e}"),
                ));
            }
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(ApiError::too_large(limit as u64));
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

/// Reads a request body of at most `limit` bytes (413 beyond) and decodes it as JSON.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    req: axum::extract::Request,
    limit: usize,
) -> ApiResult<T> {
    json(&body_bytes(req, limit).await?)
}

/// Decodes a JSON body, naming the offending field on error.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("not JSON: {e}")))?;
    serde_path_to_error::deserialize(super::strict::Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::invalid(&field, e.inner().to_string())
    })
}
