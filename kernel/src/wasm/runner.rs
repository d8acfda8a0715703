//! Runs one workload: validate, instantiate with WASI, call `_start`, classify the end.

use super::limits::{MemoryDenial, WorkloadLimits};
use super::wasi::{self, WasiCtx};
use crate::{channel, memory, time};
use alloc::format;
use alloc::string::{String, ToString};
use halcyon_hal::bundle::Workload;
use halcyon_hal::channel::{Frame, Outcome};
use halcyon_hal::measurement::Measurement;
use halcyon_hal::platform::TeeKind;
use wasmi::{Config, TrapCode, Engine, Error, Linker, Module, Store};

/// The store's data: everything host functions may touch.
pub struct WorkloadCtx {
    pub wasi: WasiCtx,
    pub hal: super::hal::HalState,
    pub limits: WorkloadLimits,
}

pub struct RunResult {
    pub outcome: Outcome,
    pub reason: String,
}

impl RunResult {
    /// The reason becomes one line: some errors (wasmparser's) span several.
    fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        let reason: String = reason.into();
        let mut one_line = String::with_capacity(reason.len());
        for word in reason.split_whitespace() {
            if !one_line.is_empty() {
                one_line.push(' ');
            }
            one_line.push_str(word);
        }
        Self { outcome, reason: one_line }
    }

    pub fn describe(&self) -> String {
        match self.outcome {
            Outcome::Exited(code) => format!("exited with status {code}"),
            _ => format!("{:?}: {}", self.outcome, self.reason),
        }
    }
}

/// wasmi value-stack slots a workload may use (8 bytes each); bounds the kernel memory
/// deep recursion can take, which becomes a clean stack-overflow trap.
const MAX_STACK_SLOTS: usize = 512 * 1024;

/// Without `--memory`, a workload may use this share of the heap that is free when it
/// starts (growing a memory briefly needs old + new size, as the buffer is reallocated).
pub fn default_memory_limit() -> usize {
    memory::heap::free_bytes() / 2
}

pub fn run(index: u8, workload: &Workload<'_>, tee: TeeKind, measurements: &[Measurement]) -> RunResult {
    channel::send(&Frame::Start { workload: index, boot_ns: time::since_reset_ns(), name: workload.name });
    let free = memory::heap::free_bytes();
    // Parsing and translating a module takes a multiple of its size in kernel memory.
    if workload.wasm.len() > free / 4 {
        return RunResult::new(
            Outcome::Other,
            format!(
                "the module ({} KiB) is too large for this VM's free memory ({} KiB); give the VM more RAM",
                workload.wasm.len() / 1024,
                free / 1024
            ),
        );
    }

    let mut config = Config::default();
    // Fuel metering costs every workload time (wasmi instruments each basic block); only
    // pay for it when a fuel limit was asked for, as wasmtime does.
    config.consume_fuel(workload.fuel.is_some());
    config.set_max_stack_height(MAX_STACK_SLOTS);
    let engine = Engine::new(&config);
    // `Module::new` validates: host-supplied modules are never used unchecked.
    let module = match Module::new(&engine, workload.wasm) {
        Ok(module) => module,
        Err(e) => return RunResult::new(Outcome::InvalidModule, e.to_string()),
    };

    let memory_limit = workload
        .memory_limit
        .and_then(|limit| usize::try_from(limit).ok())
        .unwrap_or_else(default_memory_limit);
    let wasi = match WasiCtx::new(index, &workload.args, &workload.env, &workload.tcp_listen, tee) {
        Ok(wasi) => wasi,
        Err(e) => return RunResult::new(Outcome::Other, format!("cannot open its listening sockets: {e}")),
    };
    let ctx = WorkloadCtx {
        wasi,
        hal: super::hal::HalState::new(tee, measurements),
        limits: WorkloadLimits::new(memory_limit),
    };
    let mut store = Store::new(&engine, ctx);
    store.limiter(|ctx| &mut ctx.limits);
    if let Some(fuel) = workload.fuel {
        if store.set_fuel(fuel).is_err() {
            return RunResult::new(Outcome::Other, "internal: fuel metering is not enabled");
        }
    }

    let mut linker = Linker::<WorkloadCtx>::new(&engine);
    if let Err(e) = wasi::add_to_linker(&mut linker).and_then(|()| super::hal::add_to_linker(&mut linker)) {
        return RunResult::new(Outcome::Other, format!("internal: cannot define the host imports: {e}"));
    }

    crate::kprintln!("workload {index}: first instruction at {} us after VM reset", time::since_reset_ns() / 1000);
    let instance = match linker.instantiate_and_start(&mut store, &module) {
        Ok(instance) => instance,
        Err(e) => return classify(&store, e, true),
    };
    let Ok(start) = instance.get_typed_func::<(), ()>(&store, "_start") else {
        return RunResult::new(
            Outcome::LinkError,
            "the module exports no `_start` function of type () -> () (is it a WASI command?)",
        );
    };
    match start.call(&mut store, ()) {
        Ok(()) => RunResult::new(Outcome::Exited(0), ""),
        Err(e) => classify(&store, e, false),
    }
}

fn classify(store: &Store<WorkloadCtx>, error: Error, instantiating: bool) -> RunResult {
    if let Some(code) = error.i32_exit_status() {
        return RunResult::new(Outcome::Exited(code), "");
    }
    if let Some(denial) = store.data().limits.denial {
        let reason = match denial {
            MemoryDenial::Limit { desired, limit } => format!(
                "linear memory of {} KiB requested, limit is {} KiB ({error})",
                desired / 1024,
                limit / 1024
            ),
            MemoryDenial::KernelOutOfMemory => format!("the VM ran out of memory ({error})"),
        };
        return RunResult::new(Outcome::MemoryLimit, reason);
    }
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => RunResult::new(Outcome::FuelExhausted, error.to_string()),
        Some(_) => RunResult::new(Outcome::Trap, error.to_string()),
        None if instantiating && matches!(error.kind(), wasmi::errors::ErrorKind::Linker(_)) => {
            RunResult::new(Outcome::LinkError, error.to_string())
        }
        None => RunResult::new(Outcome::Trap, error.to_string()),
    }
}
