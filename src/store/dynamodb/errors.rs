//! The AWS SDK's errors → [`Error::Store`] with a [`StoreErrorKind`].

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::BACKEND;
use crate::error::{Error, StoreErrorKind};

/// The request that failed, for the message.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Get,
    Put,
    Query,
    Delete,
    CreateTable,
    DescribeTable,
    UpdateTimeToLive,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "GetItem",
            Op::Put => "PutItem",
            Op::Query => "Query",
            Op::Delete => "DeleteItem",
            Op::CreateTable => "CreateTable",
            Op::DescribeTable => "DescribeTable",
            Op::UpdateTimeToLive => "UpdateTimeToLive",
        }
    }
}

/// An SDK error with a message that says what failed (the SDK's own `Display` is only
/// "service error"), kept as the source of [`Error::Store`].
#[derive(Debug)]
struct DynamoError {
    message: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for DynamoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DynamoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// The crate error for the SDK error `e` of `op` on `table`.
pub(super) fn err<E>(op: Op, table: &str, e: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = kind_of(&e);
    let mut message = format!(
        "{} on table {table}: {}",
        op.name(),
        DisplayErrorContext(&e)
    );
    if e.code() == Some("ResourceNotFoundException") {
        message.push_str(
            " (the table does not exist: create it with DynamoStore::create_table, or check \
             the region and endpoint)",
        );
    }
    let cause = DynamoError {
        message,
        source: Box::new(e),
    };
    Error::store_from(BACKEND, kind, cause)
}

/// Whether a conditional write failed only because its condition did not hold: nothing was
/// written.
pub(super) fn is_condition_failed<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// Whether `CreateTable` failed because the table exists (or is being created).
pub(super) fn is_table_in_use<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("ResourceInUseException")
}

/// Whether retrying may help (see [`StoreErrorKind`]).
fn kind_of<E: ProvideErrorMetadata>(e: &SdkError<E>) -> StoreErrorKind {
    match e {
        SdkError::ConstructionFailure(_) => StoreErrorKind::Config,
        SdkError::TimeoutError(_) => StoreErrorKind::Timeout,
        SdkError::DispatchFailure(c) if c.is_timeout() => StoreErrorKind::Timeout,
        SdkError::DispatchFailure(c) if c.is_user() => StoreErrorKind::Config,
        SdkError::DispatchFailure(_) => StoreErrorKind::Connection,
        SdkError::ResponseError(_) => StoreErrorKind::Other,
        SdkError::ServiceError(s) => match kind_of_code(e.code()) {
            Some(kind) => kind,
            None => kind_of_status(s.raw().status().as_u16()),
        },
        _ => StoreErrorKind::Other,
    }
}

/// The kind of a DynamoDB error code, where the code decides it.
fn kind_of_code(code: Option<&str>) -> Option<StoreErrorKind> {
    Some(match code? {
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "TransactionConflictException"
        | "ReplicatedWriteConflictException" => StoreErrorKind::Busy,
        "UnrecognizedClientException"
        | "AccessDeniedException"
        | "InvalidSignatureException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "ExpiredTokenException" => StoreErrorKind::Auth,
        "ResourceNotFoundException"
        | "ValidationException"
        | "SerializationException"
        | "ItemCollectionSizeLimitExceededException"
        | "ConditionalCheckFailedException"
        | "ResourceInUseException" => StoreErrorKind::Rejected,
        _ => return None,
    })
}

/// The kind of an error the code did not decide, by its HTTP status.
fn kind_of_status(status: u16) -> StoreErrorKind {
    match status {
        408 => StoreErrorKind::Timeout,
        429 | 500..=599 => StoreErrorKind::Busy,
        401 | 403 => StoreErrorKind::Auth,
        400..=499 => StoreErrorKind::Rejected,
        _ => StoreErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        use StoreErrorKind as K;
        assert_eq!(kind_of_code(Some("ThrottlingException")), Some(K::Busy));
        assert_eq!(
            kind_of_code(Some("ProvisionedThroughputExceededException")),
            Some(K::Busy)
        );
        assert_eq!(
            kind_of_code(Some("UnrecognizedClientException")),
            Some(K::Auth)
        );
        assert_eq!(
            kind_of_code(Some("ResourceNotFoundException")),
            Some(K::Rejected)
        );
        assert_eq!(kind_of_code(Some("ValidationException")), Some(K::Rejected));
        assert_eq!(kind_of_code(Some("SomethingNew")), None);
        assert_eq!(kind_of_code(None), None);
        assert!(!K::Rejected.is_transient() && !K::Auth.is_transient());
        assert!(K::Busy.is_transient());
        assert_eq!(kind_of_status(503), K::Busy);
        assert_eq!(kind_of_status(429), K::Busy);
        assert_eq!(kind_of_status(403), K::Auth);
        assert_eq!(kind_of_status(404), K::Rejected);
        assert_eq!(kind_of_status(408), K::Timeout);
    }
}
