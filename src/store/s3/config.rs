//! `s3://BUCKET/PREFIX?endpoint=URL` → an `AmazonS3` client (environment, endpoint override,
//! no client-side retries).

use object_store::RetryConfig;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;

use super::BACKEND;
use crate::error::{Error, Result, StoreErrorKind};

/// The parts of a store URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct StoreUrl {
    pub bucket: String,
    /// The object prefix without leading or trailing `/` (empty: the bucket's root).
    pub prefix: String,
    pub endpoint: Option<String>,
}

fn config(message: impl core::fmt::Display) -> Error {
    Error::store(BACKEND, StoreErrorKind::Config, message)
}

impl StoreUrl {
    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL]`.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| config("an s3 store URL starts with s3://"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if bucket.is_empty() || !bucket.bytes().all(valid) {
            return Err(config(
                "s3:// needs a bucket name (letters, digits, - . _): s3://BUCKET/PREFIX",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && Path::parse(prefix).is_err() {
            return Err(config(
                "the s3 prefix must be a path without empty, `.` or `..` segments",
            ));
        }
        Ok(StoreUrl {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: endpoint_param(query)?,
        })
    }

    /// The client: `AmazonS3Builder::from_env()` (credentials, region, `AWS_ENDPOINT_URL`,
    /// `AWS_ENDPOINT_URL_S3`, …), then this URL's bucket and endpoint; path-style requests
    /// when an endpoint is set, plain HTTP allowed to a loopback endpoint. `retries`: how often
    /// the client itself retries a request that failed with a 5xx, 429 or before it was sent
    /// (0 for conditional writes: the fold loops retry those, re-reading first).
    pub fn build(&self, retries: usize) -> Result<AmazonS3> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&self.bucket);
        if let Some(endpoint) = &self.endpoint {
            b = b
                .with_endpoint(endpoint)
                .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
        }
        let endpoint = b
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| b.get_config_value(&AmazonS3ConfigKey::Endpoint));
        if let Some(endpoint) = endpoint {
            b = b.with_virtual_hosted_style_request(false);
            if is_loopback_http(&endpoint) {
                b = b.with_allow_http(true);
            }
        }
        let retry = RetryConfig {
            max_retries: retries,
            retry_timeout: std::time::Duration::from_secs(10),
            ..RetryConfig::default()
        };
        b.with_retry(retry)
            .build()
            .map_err(|e| Error::store_from(BACKEND, StoreErrorKind::Config, e))
    }
}

/// The `endpoint` of a query string (percent-decoded); any other parameter is an error.
fn endpoint_param(query: &str) -> Result<Option<String>> {
    let mut endpoint = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("endpoint", value)) if !value.is_empty() => {
                endpoint =
                    Some(crate::store::url::percent_decode(value).ok_or_else(|| {
                        config("bad percent-encoding in the s3 endpoint parameter")
                    })?);
            }
            _ => {
                return Err(config(
                    "the only s3 URL parameter is endpoint=URL (e.g. ?endpoint=http://127.0.0.1:5000)",
                ));
            }
        }
    }
    Ok(endpoint)
}

/// Whether `endpoint` is `http://` to this machine (127.0.0.0/8, `localhost`, `[::1]`).
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| h.trim_start_matches('['))
    } else {
        host.split(':').next()
    };
    match host {
        Some("localhost" | "::1") => true,
        Some(h) => h
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> StoreUrl {
        StoreUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn refused(url: &str) -> String {
        match StoreUrl::parse(url) {
            Err(Error::Store { kind, message, .. }) => {
                assert_eq!(kind, StoreErrorKind::Config);
                message
            }
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn urls_parse() {
        let u = parsed("s3://bucket");
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bucket", ""));
        assert_eq!(u.endpoint, None);
        let u = parsed("s3://b/a/b/?endpoint=http%3A%2F%2F127.0.0.1%3A5000");
        assert_eq!(u.prefix, "a/b");
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        let u = parsed("s3://b/p?endpoint=http://127.0.0.1:5000");
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(refused("s3://").contains("bucket name"));
        assert!(refused("s3:///p").contains("bucket name"));
        assert!(refused("s3://a b/p").contains("bucket name"));
        assert!(refused("s3://b/a//c").contains("empty"));
        assert!(refused("s3://b/p?region=x").contains("endpoint=URL"));
        assert!(refused("s3://b/p?endpoint=%zz").contains("percent"));
        assert!(refused("http://b").contains("s3://"));
    }

    #[test]
    fn only_loopback_endpoints_may_be_plain_http() {
        for yes in [
            "http://127.0.0.1:5000",
            "http://localhost:9000/",
            "http://[::1]:5000",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback_http(yes), "{yes}");
        }
        for no in [
            "https://127.0.0.1:5000",
            "http://10.0.0.1:5000",
            "http://s3.example.com",
            "http://127.0.0.1.example.com",
        ] {
            assert!(!is_loopback_http(no), "{no}");
        }
    }
}
