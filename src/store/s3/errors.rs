//! object_store's errors → [`Error::Store`] with a [`StoreErrorKind`].

use object_store::client::{HttpError, HttpErrorKind};

use super::BACKEND;
use crate::error::{Error, StoreErrorKind};

/// The crate error for an object_store error `e`, keeping it as the source.
pub(super) fn err(e: object_store::Error) -> Error {
    if let object_store::Error::NotImplemented { .. } = e {
        return Error::NotImplemented {
            backend: BACKEND,
            operation: "conditional put",
        };
    }
    Error::store_from(BACKEND, kind_of(&e), e)
}

/// Whether a write failed only because its condition did not hold (`If-None-Match: *` on an
/// existing object, `If-Match` on a changed or deleted one; S3 answers a concurrent
/// conditional write with 409): nothing was written.
pub(super) fn is_conflict(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotModified { .. }
    )
}

/// Whether `e` says that the bucket does not exist (S3's `NoSuchBucket`, a 404 like a missing
/// key, told apart by its body).
pub(super) fn is_missing_bucket(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. }) && chain_text(e).contains("NoSuchBucket")
}

/// Whether retrying may help (see [`StoreErrorKind`]).
pub(super) fn kind_of(e: &object_store::Error) -> StoreErrorKind {
    use object_store::Error as E;
    match e {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreErrorKind::Auth,
        E::NotFound { .. } => StoreErrorKind::Rejected, // a missing bucket; keys are handled
        E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. } => StoreErrorKind::Rejected,
        E::UnknownConfigurationKey { .. } => StoreErrorKind::Config,
        _ => kind_of_cause(e),
    }
}

/// The kind of a generic error: by its HTTP transport error, else by the status code the
/// server returned (object_store's message says `status code: NNN`).
fn kind_of_cause(e: &(dyn std::error::Error + 'static)) -> StoreErrorKind {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<HttpError>() {
            return match http.kind() {
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Interrupted => {
                    StoreErrorKind::Connection
                }
                HttpErrorKind::Timeout => StoreErrorKind::Timeout,
                _ => StoreErrorKind::Other,
            };
        }
        cause = c.source();
    }
    let text = chain_text(e);
    if text.contains("redirect") {
        return StoreErrorKind::Config; // a bucket in another region than configured
    }
    if text.contains("Server returned error response") {
        return StoreErrorKind::Busy; // S3's 200 with an error body (InternalError, SlowDown)
    }
    match status_code(&text) {
        Some(408) => StoreErrorKind::Timeout,
        Some(429 | 500..=599) => StoreErrorKind::Busy,
        Some(300..=399) => StoreErrorKind::Config,
        Some(400..=499) => StoreErrorKind::Rejected,
        _ => StoreErrorKind::Other,
    }
}

/// The messages of `e` and its causes, joined.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        text.push_str(&c.to_string());
        text.push('\n');
        cause = c.source();
    }
    text
}

/// The HTTP status in object_store's "non-2xx status code: NNN …" message.
fn status_code(text: &str) -> Option<u16> {
    let (_, after) = text.split_once("status code: ")?;
    after.get(..3)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.to_owned().into(),
        }
    }

    #[test]
    fn statuses_are_classified() {
        let cases = [
            (
                "Server returned non-2xx status code: 503 Service Unavailable: SlowDown",
                StoreErrorKind::Busy,
            ),
            (
                "Server returned non-2xx status code: 500 Internal Server Error: ",
                StoreErrorKind::Busy,
            ),
            (
                "Server returned non-2xx status code: 429 Too Many Requests: ",
                StoreErrorKind::Busy,
            ),
            (
                "Server returned non-2xx status code: 408 Request Timeout: ",
                StoreErrorKind::Timeout,
            ),
            (
                "Server returned non-2xx status code: 400 Bad Request: EntityTooLarge",
                StoreErrorKind::Rejected,
            ),
            (
                "Server returned non-2xx status code: 301 Moved Permanently: ",
                StoreErrorKind::Config,
            ),
            (
                "Received redirect without LOCATION, this normally indicates an incorrectly configured region",
                StoreErrorKind::Config,
            ),
            (
                "Server returned error response: <Error><Code>InternalError</Code></Error>",
                StoreErrorKind::Busy,
            ),
            ("something else", StoreErrorKind::Other),
        ];
        for (message, kind) in cases {
            assert_eq!(kind_of(&generic(message)), kind, "{message}");
        }
    }

    #[test]
    fn transport_errors_are_transient() {
        let connect = HttpError::new(HttpErrorKind::Connect, std::io::Error::other("refused"));
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(connect),
        };
        assert_eq!(kind_of(&e), StoreErrorKind::Connection);
        let timeout = HttpError::new(HttpErrorKind::Timeout, std::io::Error::other("slow"));
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(timeout),
        };
        assert_eq!(kind_of(&e), StoreErrorKind::Timeout);
        assert!(kind_of(&e).is_transient());
    }

    #[test]
    fn a_missing_bucket_is_told_from_a_missing_key() {
        let missing = |body: &str| object_store::Error::NotFound {
            path: "k".into(),
            source: body.to_owned().into(),
        };
        assert!(is_missing_bucket(&missing("<Code>NoSuchBucket</Code>")));
        assert!(!is_missing_bucket(&missing("<Code>NoSuchKey</Code>")));
        assert_eq!(kind_of(&missing("NoSuchBucket")), StoreErrorKind::Rejected);
    }

    #[test]
    fn no_conditional_put_is_not_implemented() {
        let e = object_store::Error::NotImplemented {
            operation: "put_opts".into(),
            implementer: "S3".into(),
        };
        assert!(matches!(
            err(e),
            Error::NotImplemented {
                backend: "s3",
                operation: "conditional put"
            }
        ));
    }
}
