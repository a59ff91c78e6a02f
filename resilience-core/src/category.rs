//! What kind of failure an error is, and sets of such kinds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of failure an error is. Retry and breaker decisions are made on the category,
/// never on the concrete error type.
///
/// The transient categories (`Network`, `Timeout`, `Database`, `RateLimit`, `Unavailable`) and
/// `Unknown` are retried by default; the others describe a request that will fail again the same
/// way and are not.
///
/// ```
/// use resilience_core::ErrorCategory;
/// assert!(ErrorCategory::Timeout.is_transient());
/// assert!(!ErrorCategory::Validation.is_transient());
/// assert_eq!(ErrorCategory::RateLimit.to_string(), "rate_limit");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// A connection could not be made, was reset or broke mid-way.
    Network,
    /// The peer took too long.
    Timeout,
    /// A database was busy, locked or lost its connection.
    Database,
    /// The peer asked us to slow down (HTTP 429).
    RateLimit,
    /// The peer is down or overloaded (HTTP 502, 503, 504), or a circuit breaker is open.
    Unavailable,
    /// Credentials were missing, wrong or expired.
    Authentication,
    /// The request itself is wrong, or the answer could not be understood.
    Validation,
    /// What was asked for does not exist.
    NotFound,
    /// Our own setup is wrong.
    Configuration,
    /// Nothing more is known. Retried by default, as the original does.
    Unknown,
}

impl ErrorCategory {
    /// Every category, in declaration order.
    ///
    /// ```
    /// use resilience_core::ErrorCategory;
    /// assert_eq!(ErrorCategory::ALL.len(), 10);
    /// ```
    pub const ALL: [ErrorCategory; 10] = [
        ErrorCategory::Network,
        ErrorCategory::Timeout,
        ErrorCategory::Database,
        ErrorCategory::RateLimit,
        ErrorCategory::Unavailable,
        ErrorCategory::Authentication,
        ErrorCategory::Validation,
        ErrorCategory::NotFound,
        ErrorCategory::Configuration,
        ErrorCategory::Unknown,
    ];

    /// Whether a failure of this kind may go away on its own.
    ///
    /// ```
    /// use resilience_core::ErrorCategory;
    /// assert!(ErrorCategory::Network.is_transient());
    /// assert!(!ErrorCategory::Unknown.is_transient());
    /// ```
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCategory::Network
                | ErrorCategory::Timeout
                | ErrorCategory::Database
                | ErrorCategory::RateLimit
                | ErrorCategory::Unavailable
        )
    }

    /// The snake_case name used in JSON, metrics labels and log fields.
    ///
    /// ```
    /// use resilience_core::ErrorCategory;
    /// assert_eq!(ErrorCategory::NotFound.as_str(), "not_found");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Network => "network",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::Database => "database",
            ErrorCategory::RateLimit => "rate_limit",
            ErrorCategory::Unavailable => "unavailable",
            ErrorCategory::Authentication => "authentication",
            ErrorCategory::Validation => "validation",
            ErrorCategory::NotFound => "not_found",
            ErrorCategory::Configuration => "configuration",
            ErrorCategory::Unknown => "unknown",
        }
    }

    /// Parses the snake_case name (as in JSON) or the variant name.
    ///
    /// ```
    /// use resilience_core::ErrorCategory;
    /// assert_eq!(ErrorCategory::parse("rate_limit"), Some(ErrorCategory::RateLimit));
    /// assert_eq!(ErrorCategory::parse("RateLimit"), Some(ErrorCategory::RateLimit));
    /// assert_eq!(ErrorCategory::parse("nope"), None);
    /// ```
    pub fn parse(name: &str) -> Option<ErrorCategory> {
        ErrorCategory::ALL
            .into_iter()
            .find(|c| c.as_str() == name || format!("{c:?}") == name)
    }

    /// A dense index (0..10), used for per-category tables.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of categories, stored as bits so it is `Copy` and can be built in a `const`.
///
/// ```
/// use resilience_core::{CategorySet, ErrorCategory};
/// let set = CategorySet::EMPTY.with(ErrorCategory::Network).with(ErrorCategory::Timeout);
/// assert!(set.contains(ErrorCategory::Network));
/// assert!(!set.contains(ErrorCategory::Database));
/// assert!(CategorySet::DEFAULT_RETRYABLE.contains(ErrorCategory::Unknown));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CategorySet(u16);

impl CategorySet {
    /// No category.
    pub const EMPTY: CategorySet = CategorySet(0);

    /// Every transient category and `Unknown`: what is retried unless configured otherwise.
    pub const DEFAULT_RETRYABLE: CategorySet = CategorySet::EMPTY
        .with(ErrorCategory::Network)
        .with(ErrorCategory::Timeout)
        .with(ErrorCategory::Database)
        .with(ErrorCategory::RateLimit)
        .with(ErrorCategory::Unavailable)
        .with(ErrorCategory::Unknown);

    /// This set with `category` added.
    pub const fn with(self, category: ErrorCategory) -> CategorySet {
        CategorySet(self.0 | (1 << category as u16))
    }

    /// This set with `category` removed.
    ///
    /// ```
    /// use resilience_core::{CategorySet, ErrorCategory};
    /// let set = CategorySet::DEFAULT_RETRYABLE.without(ErrorCategory::Unknown);
    /// assert!(!set.contains(ErrorCategory::Unknown));
    /// ```
    pub const fn without(self, category: ErrorCategory) -> CategorySet {
        CategorySet(self.0 & !(1 << category as u16))
    }

    /// Whether `category` is in the set.
    #[inline]
    pub const fn contains(self, category: ErrorCategory) -> bool {
        self.0 & (1 << category as u16) != 0
    }

    /// The categories in the set, in declaration order.
    ///
    /// ```
    /// use resilience_core::{CategorySet, ErrorCategory};
    /// let set = CategorySet::EMPTY.with(ErrorCategory::Timeout);
    /// assert_eq!(set.iter().collect::<Vec<_>>(), [ErrorCategory::Timeout]);
    /// ```
    pub fn iter(self) -> impl Iterator<Item = ErrorCategory> {
        ErrorCategory::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<ErrorCategory> for CategorySet {
    fn from_iter<I: IntoIterator<Item = ErrorCategory>>(iter: I) -> Self {
        iter.into_iter().fold(CategorySet::EMPTY, CategorySet::with)
    }
}

impl fmt::Debug for CategorySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
