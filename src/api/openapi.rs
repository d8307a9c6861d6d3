//! The OpenAPI document: generated from the router's `#[utoipa::path]` annotations, then
//! completed with what holds for every operation alike, so that the document lists every
//! status the server can answer (a conformance run in `.ci/conformance` checks it):
//!
//! - an operation that needs a token answers 401 (no or a bad token), 403 (its role may
//!   not) and 429 (a per-token limit, with `Retry-After`);
//! - every operation but `/healthz` may answer 503 (the store or the index is
//!   unavailable, or the operation ran out of time);
//! - an operation with parameters or a body answers 400 when one is invalid, one with a
//!   body 413 beyond its size limit and 415 for a media type it does not take;
//! - an operation with a path parameter answers 404 (no such object, or not visible to
//!   a party-restricted token); every path parameter is an object id (a UUID);
//! - the shapes of names and values ([`crate::ids::shape`]) are stated as `pattern`s from
//!   the very constants validation matches against ([`PROPERTIES`], [`PARAMETERS`]).

use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::api_router;
use crate::ids::shape;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "akte",
        description = "Revision-safe archive for the Kundenakte. Every endpoint but /healthz, /readyz and /v1/openapi.json needs `Authorization: Bearer <token>`. Errors are application/problem+json (RFC 9457).",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "records", description = "Archived records: upload, metadata, revisions, content"),
        (name = "parties", description = "Business partners and their file (Kundenakte)"),
        (name = "cases", description = "Business events (Vorgänge) of a party"),
        (name = "search", description = "Full-text search, over everything or one party's file"),
        (name = "retention", description = "Legal holds and four-eyes disposal"),
        (name = "audit", description = "Journal and verification"),
        (name = "tokens", description = "API tokens (admin)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, as `schemas/openapi.json` holds it.
pub fn openapi_json() -> String {
    let (_, doc) = api_router().split_for_parts();
    let mut value = serde_json::to_value(&doc).unwrap_or(Value::Null);
    complete(&mut value);
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
    s.push('\n');
    s
}

/// `GET /v1/openapi.json`: the API's own description (no token needed, like `/healthz`).
pub(super) async fn document() -> axum::response::Response {
    use axum::response::IntoResponse;
    static DOC: std::sync::LazyLock<String> = std::sync::LazyLock::new(openapi_json);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        DOC.as_str(),
    )
        .into_response()
}

/// `GET /docs`: a browsable API reference (Swagger UI, its files vendored into the
/// binary: no CDN) reading `/v1/openapi.json`. No token needed to read it; trying an
/// operation asks for one ("Authorize").
pub(super) fn reference<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::new(["/v1/openapi.json"]).try_it_out_enabled(true))
        .into()
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// How a value is constrained, beyond its type.
#[derive(Clone, Copy)]
enum Rule {
    /// A string matching a [`shape`] pattern.
    Shape(&'static str),
    /// A string matching a shape, at most this many characters.
    ShapeMax(&'static str, u64),
    /// An object id.
    Uuid,
    /// A day, `YYYY-MM-DD`.
    Date,
    /// At most this many characters.
    Max(u64),
    /// An array of at least one element.
    NonEmpty,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A string matching a pattern made at run time (from a list of names).
    Computed(fn() -> String),
}

impl Rule {
    fn schema(self) -> Value {
        match self {
            Rule::Shape(p) => json!({"pattern": p}),
            Rule::ShapeMax(p, n) => json!({"pattern": p, "maxLength": n}),
            Rule::Uuid => json!({"format": "uuid"}),
            Rule::Date => json!({"format": "date", "pattern": DATE_PATTERN}),
            Rule::Max(n) => json!({"maxLength": n}),
            Rule::NonEmpty => json!({"minItems": 1}),
            Rule::OneOf(v) => json!({"enum": v}),
            Rule::Computed(f) => json!({"pattern": f()}),
        }
    }
}

/// `format: date` as a pattern too (some generators treat `format` as a hint only).
const DATE_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

const TITLE: Rule = Rule::ShapeMax(shape::LINE, crate::record::MAX_TITLE as u64);
const NAME: Rule = Rule::ShapeMax(shape::NAME, crate::record::MAX_TITLE as u64);

/// Constraints of request schemas' properties: (schema, property, rule). `name[]` means
/// the items of the array `name`; a property of a `oneOf` member counts as the schema's.
const PROPERTIES: &[(&str, &str, Rule)] = &[
    ("NewCase", "kind", Rule::Shape(shape::SLUG)),
    ("NewCase", "title", NAME),
    ("NewCase", "party", Rule::Uuid),
    ("CaseChange", "title", NAME),
    (
        "PlaceHold",
        "name",
        Rule::ShapeMax(shape::NAME, crate::disposal::hold::MAX_NAME as u64),
    ),
    ("PlaceHold", "reason", Rule::Shape(shape::TEXT)),
    ("HoldScope", "ids", Rule::NonEmpty),
    ("HoldScope", "ids[]", Rule::Uuid),
    ("HoldScope", "id", Rule::Uuid),
    ("HoldScope", "class", Rule::Shape(shape::SLUG)),
    ("HoldScope", "from", Rule::Date),
    ("HoldScope", "to", Rule::Date),
    ("Reason", "reason", Rule::Shape(shape::TEXT)),
    ("DisposalRequest", "records", Rule::NonEmpty),
    ("DisposalRequest", "records[]", Rule::Uuid),
    ("DisposalRequest", "reason", Rule::Shape(shape::TEXT)),
    (
        "PartyData",
        "name",
        Rule::ShapeMax(shape::NAME, crate::party::MAX_NAME as u64),
    ),
    ("PartyData", "emails[]", Rule::Shape(shape::EMAIL)),
    ("PartyData", "phones[]", Rule::Shape(shape::PHONE)),
    ("PartyData", "domains[]", Rule::Shape(shape::DOMAIN)),
    ("PartyData", "vat_id", Rule::Shape(shape::VAT_ID)),
    ("RoleEntry", "role", Rule::Shape(shape::SLUG)),
    ("Relation", "kind", Rule::Shape(shape::SLUG)),
    ("Relation", "party", Rule::Uuid),
    ("EraseRequest", "reason", Rule::Shape(shape::TEXT)),
    ("MergeRequest", "into", Rule::Uuid),
    ("NoteInput", "text", Rule::Shape(shape::TEXT)),
    ("NoteInput", "kind", Rule::OneOf(&["phone-note", "memo"])),
    ("NoteInput", "case", Rule::Uuid),
    ("NoteInput", "title", TITLE),
    ("RecordMeta", "class", Rule::Shape(shape::SLUG)),
    ("RecordMeta", "title", TITLE),
    (
        "RecordMeta",
        "media_type",
        Rule::ShapeMax(shape::MEDIA_TYPE, 255),
    ),
    ("RecordMeta", "cases[]", Rule::Uuid),
    ("RecordMeta", "from[]", Rule::Shape(shape::EMAIL)),
    ("RecordMeta", "to[]", Rule::Shape(shape::EMAIL)),
    ("AmendRequest", "class", Rule::Shape(shape::SLUG)),
    ("AmendRequest", "title", TITLE),
    ("LinkRequest", "add_cases[]", Rule::Uuid),
    ("LinkRequest", "remove_cases[]", Rule::Uuid),
    ("LinkItem", "party", Rule::Uuid),
    ("LinkItem", "role", Rule::Shape(shape::LINK_ROLE)),
    ("CreateToken", "name", Rule::Shape(shape::LOGIN)),
    ("CreateToken", "person", Rule::Shape(shape::LOGIN)),
    ("CreateToken", "parties[]", Rule::Uuid),
];

/// Constraints of query parameters: (operation path or `*` for all, parameter, rule).
const PARAMETERS: &[(&str, &str, Rule)] = &[
    ("/v1/emails", "party", Rule::Shape(shape::UUIDS)),
    ("/v1/emails", "case", Rule::Shape(shape::UUIDS)),
    ("/v1/imports", "party", Rule::Shape(shape::UUIDS)),
    ("/v1/imports", "case", Rule::Shape(shape::UUIDS)),
    ("/v1/records", "party", Rule::Shape(shape::UUIDS)),
    ("/v1/records", "case", Rule::Shape(shape::UUIDS)),
    ("/v1/records", "from", Rule::Shape(shape::EMAILS)),
    ("/v1/records", "to", Rule::Shape(shape::EMAILS)),
    ("/v1/retention/eligible", "after", Rule::Uuid),
    ("*", "party", Rule::Uuid),
    ("*", "case", Rule::Uuid),
    ("*", "class", Rule::Shape(shape::SLUG)),
    ("*", "role", Rule::Shape(shape::SLUG)),
    ("*", "date", Rule::Date),
    ("*", "from", Rule::Date),
    ("*", "to", Rule::Date),
    ("*", "title", TITLE),
    ("*", "media_type", Rule::ShapeMax(shape::MEDIA_TYPE, 255)),
    ("*", "q", Rule::Max(crate::search::MAX_QUERY as u64)),
    (
        "*",
        "map",
        Rule::Computed(crate::ingest::parties::mapping_pattern),
    ),
];

/// Adds the statuses and constraints that hold for every operation alike (module doc).
fn complete(doc: &mut Value) {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    complete_operation(path, method, op);
                }
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, property, rule) in PROPERTIES {
            if let Some(schema) = schemas.get_mut(*name) {
                constrain_property(schema, property, *rule);
            }
        }
        // A view flattening a request schema (`PartyView` = `PartyData` + id, rev …)
        // becomes one object: `allOf` with a member that refuses unknown fields would
        // refuse the view's own fields.
        if let Some(upload) = schemas.get_mut("RecordUpload") {
            upload["additionalProperties"] = Value::Bool(false);
        }
        for schema in schemas.values_mut() {
            string_keys(schema);
        }
        let originals = schemas.clone();
        for schema in schemas.values_mut() {
            merge_all_of(schema, &originals);
        }
    }
}

/// JSON object keys are strings: a map keyed by numbers (years) has keys of digits.
fn string_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map
                .get("propertyNames")
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str)
                == Some("integer")
            {
                map.insert("propertyNames".into(), json!({"pattern": "^-?[0-9]+$"}));
            }
            for child in map.values_mut() {
                string_keys(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(string_keys),
        _ => {}
    }
}

/// Replaces `allOf` of object schemas (by reference or inline) with one object schema
/// holding all their properties.
fn merge_all_of(schema: &mut Value, schemas: &serde_json::Map<String, Value>) {
    let Some(members) = schema.get("allOf").and_then(Value::as_array).cloned() else {
        return;
    };
    let mut properties = serde_json::Map::new();
    let mut required: Vec<Value> = Vec::new();
    for m in &members {
        let resolved = match m.get("$ref").and_then(Value::as_str) {
            Some(r) => match r
                .strip_prefix("#/components/schemas/")
                .and_then(|n| schemas.get(n))
            {
                Some(s) => s,
                None => return,
            },
            None => m,
        };
        let Some(props) = resolved.get("properties").and_then(Value::as_object) else {
            return;
        };
        properties.extend(props.clone());
        if let Some(r) = resolved.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
    }
    let mut merged = json!({"type": "object", "properties": properties, "required": required});
    if let Some(d) = schema.get("description") {
        merged["description"] = d.clone();
    }
    *schema = merged;
}

/// Merges `rule` into `property` of `schema` (or of each of its `oneOf` members).
fn constrain_property(schema: &mut Value, property: &str, rule: Rule) {
    if let Some(members) = schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        for m in members {
            constrain_property(m, property, rule);
        }
        return;
    }
    let (name, items) = match property.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (property, false),
    };
    let Some(mut target) = schema.pointer_mut(&format!("/properties/{name}")) else {
        return;
    };
    if items {
        let Some(t) = target.get_mut("items") else {
            return;
        };
        target = t;
    }
    merge(target, rule.schema());
    // An optional property (`type: [T, "null"]`) may be null: its enum must say so too,
    // or null breaks the enum although the server takes it as absent.
    let nullable = target
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|x| x == "null"));
    if nullable
        && let Some(e) = target.get_mut("enum").and_then(Value::as_array_mut)
        && !e.contains(&Value::Null)
    {
        e.push(Value::Null);
    }
}

fn merge(target: &mut Value, add: Value) {
    if let (Some(t), Value::Object(a)) = (target.as_object_mut(), add) {
        t.extend(a);
    }
}

fn complete_operation(path: &str, method: &str, op: &mut Value) {
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let has_body = op.get("requestBody").is_some();
    let has_path_param = path.contains('{');
    let op_parameters = op.get("parameters").cloned().unwrap_or(Value::Null);

    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut() {
            if p.get("in").and_then(Value::as_str) == Some("path") {
                p["schema"] = json!({"type": "string", "format": "uuid"});
                continue;
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let rule = PARAMETERS
                .iter()
                .find(|(at, n, _)| (*at == path || *at == "*") && *n == name)
                .map(|(_, _, r)| *r);
            if let (Some(rule), Some(schema)) = (rule, p.get_mut("schema")) {
                merge(schema, rule.schema());
            }
        }
    }

    if let Some(content) = op
        .pointer_mut("/requestBody/content")
        .and_then(Value::as_object_mut)
    {
        for (media, body) in content.iter_mut() {
            binary_body(media, body);
            refused_bytes(media, body);
            if media == "multipart/form-data" {
                body["encoding"] = json!({"metadata": {"contentType": "application/json"}});
            }
        }
    }
    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
        for response in responses.values_mut() {
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                for (media, body) in content.iter_mut() {
                    binary_body(media, body);
                }
            }
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description));
    };
    if secured {
        add("401", "No token, or not a valid one");
        add("403", "The token's role may not do this");
        add(
            "503",
            "The store or the index is unavailable, or the operation ran out of time",
        );
    }
    if has_params || has_body {
        add("400", "A parameter or the body is invalid");
    }
    if has_body {
        add("413", "The body is over its size limit; nothing is stored");
        add(
            "415",
            "The body's media type is not one this operation takes",
        );
    }
    if has_body || query_parameter(&op_parameters, "q") {
        add(
            "422",
            "Each value has its documented shape, but together they break a rule (or the query text breaks the query language's)",
        );
    }
    if secured && method != "get" {
        add(
            "409",
            "The request does not fit the current state (a newer revision, nothing would change, already done)",
        );
    }
    // Reading a record (a tombstone has no content), creating anything (it may name a
    // disposed record or an erased party), changing a record or a party.
    let record = path.starts_with("/v1/records/{id}");
    let may_be_gone = match method {
        "get" => record,
        "post" => true,
        _ => record || path.starts_with("/v1/parties/{id}"),
    };
    if secured && may_be_gone {
        add(
            "410",
            "A record this names was disposed, or a party it names erased",
        );
    }
    let names_objects = has_path_param
        || (secured && method != "get")
        || ["party", "case"]
            .iter()
            .any(|n| query_parameter(&op_parameters, n));
    if names_objects {
        add(
            "404",
            "No such object (named in the path, the query or the body), or not visible to a party-restricted token",
        );
    }
    if secured {
        let limited = responses
            .entry("429".to_string())
            .or_insert_with(|| problem("A per-token limit was reached"));
        limited["headers"] = json!({
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer", "minimum": 0}
            }
        });
    }
}

fn query_parameter(parameters: &Value, name: &str) -> bool {
    parameters.as_array().is_some_and(|ps| {
        ps.iter()
            .any(|p| p.get("name").and_then(Value::as_str) == Some(name))
    })
}

/// What the server refuses (422) in a request's raw bytes, where a schema can say it:
/// an empty email, upload, content version or import. (That an import must be an mbox
/// or a zip is no shape that validation matches against, so only the prose says it.)
fn refused_bytes(media: &str, body: &mut Value) {
    if body.pointer("/schema/format").and_then(Value::as_str) != Some("binary") {
        return;
    }
    if matches!(
        media,
        "message/rfc822" | "application/octet-stream" | "application/mbox"
    ) {
        body["schema"]["minLength"] = json!(1);
    }
}

/// Bytes (`Vec<u8>` in Rust, an array of integers to utoipa) in any body that is not
/// JSON are a binary string.
fn binary_body(media: &str, body: &mut Value) {
    let is_bytes = body
        .pointer("/schema/items/type")
        .and_then(Value::as_str)
        .is_some_and(|t| t == "integer");
    if is_bytes && !media.contains("json") {
        body["schema"] = json!({"type": "string", "format": "binary"});
    }
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secured_operation_lists_the_common_statuses() {
        let doc: Value = serde_json::from_str(&openapi_json()).expect("json");
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                if op.get("security").is_none() {
                    continue;
                }
                checked += 1;
                for status in ["401", "403", "429", "503"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} lacks {status}"
                    );
                }
                if path.contains('{') {
                    assert!(op["responses"].get("404").is_some(), "{method} {path}");
                }
            }
        }
        assert!(checked > 30, "only {checked} secured operations");
    }

    /// Every pattern the document states is one that validation matches against.
    #[test]
    fn every_pattern_is_a_validated_shape() {
        fn patterns(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(p)) = m.get("pattern") {
                        out.push(p.clone());
                    }
                    m.values().for_each(|c| patterns(c, out));
                }
                Value::Array(a) => a.iter().for_each(|c| patterns(c, out)),
                _ => {}
            }
        }
        let doc: Value = serde_json::from_str(&openapi_json()).expect("json");
        let mut found = Vec::new();
        patterns(&doc, &mut found);
        let known: Vec<String> = shape::ALL
            .iter()
            .map(|s| s.to_string())
            .chain([
                crate::ingest::parties::mapping_pattern(),
                DATE_PATTERN.to_string(),
                "^-?[0-9]+$".to_string(),
            ])
            .collect();
        assert!(found.len() > 20, "{found:?}");
        for p in found {
            assert!(
                known.contains(&p),
                "pattern {p} is not a shape validation uses"
            );
        }
    }
}
