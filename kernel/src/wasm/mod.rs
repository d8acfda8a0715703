//! Running workloads: each module of the bundle is validated, measured, linked against
//! WASI and run in wasmi with its own fuel and memory limits. Whatever one workload does —
//! trap, exhaust its fuel or memory, fail to validate or link — is reported on the
//! workload channel and the kernel goes on with the next.

mod guest_memory;
mod hal;
mod limits;
mod runner;
mod wasi;
mod wasi_sockets;

use crate::channel;
use alloc::boxed::Box;
use core::cell::{Cell, RefCell};
use halcyon_hal::bundle;
use halcyon_hal::channel::{Frame, Outcome};
use alloc::vec::Vec;
use halcyon_hal::measurement::{Measurement, MeasurementKind, MeasurementLog};
use halcyon_hal::platform::TeeKind;
use spin::Mutex;

/// Every workload measured so far, in load order: what the runtime measurement registers
/// hold at this moment (a workload that waits lets the next one load, and extend, before it
/// asks for evidence, so each workload's own snapshot would fall behind the registers).
static LOADED: Mutex<Vec<Measurement>> = Mutex::new(Vec::new());

/// The workload entries of the measurement log as of now (see [`LOADED`]).
pub fn loaded_measurements() -> Vec<Measurement> {
    LOADED.lock().clone()
}

/// Runs every workload in the bundle (in order; a waiting one lets the next start) and
/// sends the final DONE frame.
pub fn run_bundle(bytes: &[u8], tee: TeeKind, log: &mut MeasurementLog) {
    let workloads = match bundle::parse(bytes) {
        Ok(workloads) => workloads,
        Err(e) => {
            crate::kprintln!("bundle: rejected: {e}");
            channel::send(&Frame::Exit { workload: 0, outcome: Outcome::InvalidModule, reason: "the workload bundle is malformed" });
            channel::send(&Frame::Done { workloads_run: 0, workloads_failed: 1 });
            return;
        }
    };
    crate::kprintln!("bundle: {} workload(s)", workloads.len());

    // Each workload runs on a thread of its own: one that waits (network, sleep) lets the
    // next ones start, and the kernel keeps polling the network meanwhile.
    let failed = Cell::new(0u32);
    let log = RefCell::new(log);
    let jobs = workloads.iter().enumerate().map(|(index, workload)| {
        let (failed, log) = (&failed, &log);
        Box::new(move || {
            let index = index as u8; // bundle::parse caps the count at MAX_WORKLOADS (255)
            let entries = {
                let mut log = log.borrow_mut();
                let measurement = log.record(MeasurementKind::Workload, workload.name, workload.wasm);
                crate::kprintln!(
                    "workload {index} '{}': {} bytes, sha256 {}",
                    workload.name,
                    workload.wasm.len(),
                    halcyon_hal::measurement::hex(&measurement.sha256)
                );
                // Into the TD's RTMRs where there are any, before the workload runs.
                if let Err(e) = crate::platform::extend_runtime_measurement(measurement) {
                    crate::fatal!("cannot extend the runtime measurement of workload '{}': {e}", workload.name);
                }
                LOADED.lock().push(measurement.clone());
                log.entries().to_vec()
            };
            let result = runner::run(index, workload, tee, &entries);
            crate::kprintln!(
                "workload {index} '{}': {} (kernel heap in use after it: {} KiB)",
                workload.name,
                result.describe(),
                crate::memory::heap::used_bytes() / 1024
            );
            if !matches!(result.outcome, Outcome::Exited(0)) {
                failed.set(failed.get() + 1);
            }
            channel::send(&Frame::Exit { workload: index, outcome: result.outcome, reason: &result.reason });
        }) as Box<dyn FnOnce() + '_>
    });
    crate::sched::run_all(jobs);
    let failed = failed.get();
    channel::send(&Frame::Done { workloads_run: workloads.len() as u32, workloads_failed: failed });
}
