//! AWS Lambda glue (placeholder: SQS partial batch responses and Kinesis responses from a
//! `FoldReport` land here).
