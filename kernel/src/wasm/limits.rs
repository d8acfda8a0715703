//! Per-workload resource limits enforced through wasmi's `ResourceLimiter`.

use wasmi::errors::{MemoryError, TableError};
use wasmi_core::LimiterError;
use wasmi::ResourceLimiter;

/// Table elements a workload may have; bounds the kernel memory a table can take.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Why a memory growth was refused, for the workload's exit report.
#[derive(Clone, Copy, Debug)]
pub enum MemoryDenial {
    /// The workload's own limit (`--memory`).
    Limit { desired: usize, limit: usize },
    /// The kernel heap could not supply the memory.
    KernelOutOfMemory,
}

pub struct WorkloadLimits {
    /// Linear-memory limit in bytes; `resources.request-memory` may raise it.
    pub memory_limit: usize,
    pub denial: Option<MemoryDenial>,
}

impl WorkloadLimits {
    pub fn new(memory_limit: usize) -> Self {
        Self { memory_limit, denial: None }
    }
}

impl ResourceLimiter for WorkloadLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if desired > self.memory_limit {
            self.denial = Some(MemoryDenial::Limit { desired, limit: self.memory_limit });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn memory_grow_failed(&mut self, _error: &MemoryError) -> Result<(), LimiterError> {
        if self.denial.is_none() {
            self.denial = Some(MemoryDenial::KernelOutOfMemory);
        }
        Ok(())
    }

    fn table_grow_failed(&mut self, _error: &TableError) -> Result<(), LimiterError> {
        Ok(())
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        1
    }
}
