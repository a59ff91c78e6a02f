//! Runtime classification rules given to a manager: the original's `error_classifier=`.

use crate::classify::errors_along_chain;
use crate::{Classify, ErrorCategory};
use std::error::Error;
use std::fmt;
use std::sync::Arc;

type Rule = Arc<dyn Fn(&(dyn Error + 'static)) -> Option<ErrorCategory> + Send + Sync>;

/// Rules that refine or override how errors are classified, applied before the error's own
/// [`Classify`] answer. `Default` has no rules.
///
/// Rules are tried in the order they were added, on the error and then along its `source()`
/// chain (through [`Classify::as_error`]); the first rule that answers wins.
///
/// ```
/// use resilience_core::{ErrorCategory, ErrorClassifier};
///
/// let classifier = ErrorClassifier::default()
///     // a parse error means the upstream sent garbage: not worth retrying
///     .categorize::<std::num::ParseIntError>(ErrorCategory::Validation)
///     // anything whose message says "locked" is a busy database
///     .rule(|e| e.to_string().contains("locked").then_some(ErrorCategory::Database))
///     // and we never retry authentication failures, even if configs say so
///     .retryable(ErrorCategory::Authentication, false);
///
/// let err = "x".parse::<u8>().unwrap_err();
/// assert_eq!(classifier.classify(&std::io::Error::other(err)), ErrorCategory::Validation);
/// assert_eq!(classifier.is_retryable(ErrorCategory::Authentication), Some(false));
/// ```
#[derive(Clone, Default)]
pub struct ErrorClassifier {
    rules: Vec<Rule>,
    retryable: [Option<bool>; ErrorCategory::ALL.len()],
}

impl ErrorClassifier {
    /// Errors of type `T` (on the error or along its chain) get `category`.
    pub fn categorize<T: Error + 'static>(self, category: ErrorCategory) -> Self {
        self.rule(move |e| e.is::<T>().then_some(category))
    }

    /// A rule over any error in the chain: `Some(category)` decides, `None` passes.
    pub fn rule<F>(mut self, rule: F) -> Self
    where
        F: Fn(&(dyn Error + 'static)) -> Option<ErrorCategory> + Send + Sync + 'static,
    {
        self.rules.push(Arc::new(rule));
        self
    }

    /// Errors of `category` are retried (`true`) or not (`false`), whatever a `RetryConfig`'s
    /// `retryable_categories` says.
    pub fn retryable(mut self, category: ErrorCategory, retryable: bool) -> Self {
        self.retryable[category.index()] = Some(retryable);
        self
    }

    /// The category of `error`: the first rule that answers, else the error's own.
    // Inline: a classifier without rules (the common case) costs one test before the error's
    // own answer; the walk along the chain stays out of line.
    #[inline]
    pub fn classify<E: Classify + ?Sized>(&self, error: &E) -> ErrorCategory {
        if !self.rules.is_empty() {
            if let Some(category) = error.as_error().and_then(|err| self.by_rules(err)) {
                return category;
            }
        }
        error.category()
    }

    /// The answer of the first rule that answers for `err` or an error along its chain.
    fn by_rules(&self, err: &(dyn Error + 'static)) -> Option<ErrorCategory> {
        errors_along_chain(err).find_map(|e| self.rules.iter().find_map(|rule| rule(e)))
    }

    /// Whether this classifier decides the retryability of `category` (`None`: the config does).
    #[inline]
    pub fn is_retryable(&self, category: ErrorCategory) -> Option<bool> {
        self.retryable[category.index()]
    }
}

impl fmt::Debug for ErrorClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overrides: Vec<_> = ErrorCategory::ALL
            .iter()
            .filter_map(|c| self.retryable[c.index()].map(|r| (c.as_str(), r)))
            .collect();
        f.debug_struct("ErrorClassifier")
            .field("rules", &self.rules.len())
            .field("retryable", &overrides)
            .finish()
    }
}
