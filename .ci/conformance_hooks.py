"""Schemathesis hooks for .ci/conformance: never revoke a token the runs use."""

import os

import schemathesis

OWN = set(os.environ.get("AKTE_OWN_TOKEN_IDS", "").split())


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    operation = context.operation
    if operation is None or operation.method.upper() != "DELETE":
        return True
    if not operation.path.startswith("/v1/tokens/"):
        return True
    return (path_parameters or {}).get("id") not in OWN


@schemathesis.serializer("message/rfc822", "application/mbox", "text/csv")
def raw_bytes(ctx, value):
    """Emails, mailboxes and CSV files are bytes on the wire (`format: binary`)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("utf-8")
