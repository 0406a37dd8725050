//! [`WindowedBuilder`]: a [`Windowed`] from [`Duration`]s.

use std::time::Duration;

use super::{Windowed, check_params};
use crate::error::{Error, Result};
use crate::time::millis;

/// Builds a [`Windowed`] from [`Duration`]s ([`Windowed::builder`]). Defaults: one-minute
/// windows, five minutes of allowed lateness, kept for a day, each window starting as
/// `A::default()`.
///
/// Every duration must be a whole number of milliseconds that fits in a `u64` (windows are
/// stored in milliseconds; a sub-millisecond part would be silently dropped otherwise).
///
/// ```
/// use std::time::Duration;
/// use shardfold::{Distinct, Windowed};
/// let w = Windowed::builder()
///     .width(Duration::from_secs(60))
///     .lateness(Duration::from_secs(30))
///     .retention(Duration::from_secs(3600))
///     .template(Distinct::new(12))
///     .build()?;
/// assert_eq!((w.width_ms(), w.lateness_ms(), w.retention_ms()), (60_000, 30_000, 3_600_000));
/// let zero = Windowed::<Distinct>::builder().width(Duration::ZERO).build();
/// assert!(matches!(zero, Err(shardfold::Error::InvalidParameter { name: "width", .. })));
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WindowedBuilder<A> {
    width: Duration,
    lateness: Duration,
    retention: Duration,
    template: A,
}

impl<A: Default> Windowed<A> {
    /// A builder taking [`Duration`]s (see [`WindowedBuilder`]).
    pub fn builder() -> WindowedBuilder<A> {
        WindowedBuilder {
            width: Duration::from_secs(60),
            lateness: Duration::from_secs(300),
            retention: Duration::from_secs(86_400),
            template: A::default(),
        }
    }
}

impl<A> WindowedBuilder<A> {
    /// The width `W` of the tumbling windows (aligned to the Unix epoch).
    pub fn width(mut self, width: Duration) -> Self {
        self.width = width;
        self
    }

    /// The allowed lateness `L`: a window closes (refuses events as late) once the latest
    /// event time reaches its end plus `L`.
    pub fn lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness;
        self
    }

    /// The retention `R ≥ L`: a window is evicted once the latest event time reaches its end
    /// plus `R`.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The aggregate every new window starts as (an empty one with the parameters wanted, such
    /// as a sketch's precision).
    pub fn template(mut self, template: A) -> Self {
        self.template = template;
        self
    }

    /// The empty windows.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `width`, `lateness` or `retention`: a duration that
    /// is not a whole number of milliseconds or beyond `u64` milliseconds, a zero width, a
    /// retention below the lateness, or a lateness above
    /// [`MAX_OPEN_WINDOWS`](super::MAX_OPEN_WINDOWS) widths.
    pub fn build(self) -> Result<Windowed<A>> {
        let width = millis("width", self.width)?;
        let lateness = millis("lateness", self.lateness)?;
        let retention = millis("retention", self.retention)?;
        check_params(width, lateness, retention).map_err(|e| match e {
            Error::InvalidParameter { name, reason } => Error::InvalidParameter {
                name: name.strip_suffix("_ms").unwrap_or(name),
                reason,
            },
            other => other,
        })?;
        Ok(Windowed::blank(width, lateness, retention, self.template))
    }
}
