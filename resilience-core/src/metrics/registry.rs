//! The metrics of every operation of one manager.

use super::operation::OperationMetrics;
use super::snapshot::{key, MetricsSnapshot, OperationSnapshot};
use parking_lot::{RwLock, RwLockReadGuard};
use std::collections::HashMap;
use std::sync::Arc;

type Operations = HashMap<String, HashMap<String, Arc<OperationMetrics>>>;

/// One [`OperationMetrics`] per (component, operation), made on first use. Calls never come
/// here: they hold their operation's `Arc` (in its handle).
#[derive(Debug, Default)]
pub(crate) struct MetricsRegistry {
    operations: RwLock<Operations>,
}

impl MetricsRegistry {
    /// The metrics of (component, operation), created on first use.
    pub(crate) fn get(&self, component: &str, operation: &str) -> Arc<OperationMetrics> {
        if let Some(m) = self.find(component, operation) {
            return m;
        }
        let mut map = self.operations.write();
        Arc::clone(
            map.entry(component.to_owned())
                .or_default()
                .entry(operation.to_owned())
                .or_insert_with(|| Arc::new(OperationMetrics::new(component, operation))),
        )
    }

    /// The metrics of (component, operation), if it has been used.
    pub(crate) fn find(&self, component: &str, operation: &str) -> Option<Arc<OperationMetrics>> {
        self.read()
            .get(component)
            .and_then(|ops| ops.get(operation))
            .cloned()
    }

    /// Every operation's figures as of now.
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        // The map's lock is held only to copy the handles: summing every operation's tables
        // happens after, so the first call of a new operation never waits behind a snapshot.
        let operations: Vec<(String, Arc<OperationMetrics>)> = self
            .read()
            .iter()
            .flat_map(|(c, ops)| ops.iter().map(move |(o, m)| (key(c, o), Arc::clone(m))))
            .collect();
        MetricsSnapshot {
            operations: operations
                .into_iter()
                .map(|(key, m)| (key, m.snapshot()))
                .collect(),
        }
    }

    /// One operation's figures as of now, if it has been used.
    pub(crate) fn snapshot_of(
        &self,
        component: &str,
        operation: &str,
    ) -> Option<OperationSnapshot> {
        self.find(component, operation).map(|m| m.snapshot())
    }

    /// Forgets (component, operation) if its figures are `metrics` and nobody but the registry
    /// and the caller holds them. Whether it did.
    pub(crate) fn remove_if_unshared(
        &self,
        component: &str,
        operation: &str,
        metrics: &Arc<OperationMetrics>,
    ) -> bool {
        let mut map = self.operations.write();
        let Some(ops) = map.get_mut(component) else {
            return false;
        };
        match ops.get(operation) {
            Some(m) if Arc::ptr_eq(m, metrics) && Arc::strong_count(m) == 2 => {}
            _ => return false,
        }
        ops.remove(operation);
        if ops.is_empty() {
            map.remove(component);
        }
        true
    }

    /// Sets every operation's figures back to zero; the operations stay known.
    pub(crate) fn reset(&self) {
        for m in self.read().values().flat_map(HashMap::values) {
            m.reset();
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Operations> {
        self.operations.read()
    }
}
