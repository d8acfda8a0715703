//! Cooperative threads for workloads: a workload that waits (for the network, or a
//! sleep) yields its CPU, so the kernel keeps polling the network and runs the next
//! workload meanwhile.
//!
//! One CPU, no preemption: a thread runs until it finishes or calls [`yield_now`]. The
//! scheduler (on the boot stack) resumes the started threads in turn; it starts the next
//! job only when every started thread is waiting, so workloads that never wait still run
//! one after another, in bundle order, as before.

use crate::arch::context;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

/// Each thread's stack (the boot stack is as large).
const STACK_WORDS: usize = 256 * 1024 / 8;
/// Written at the bottom of every thread stack and checked at every switch: a thread that
/// ran past its stack is caught before anything else runs.
const CANARY: u64 = 0x5AFE_57AC_CA4A_12E5;
const CANARY_WORDS: usize = 8;

type Job<'a> = Box<dyn FnOnce() + 'a>;

struct Thread {
    stack: Vec<u64>,
    rsp: u64,
    finished: bool,
}

/// Where the running thread and the scheduler keep their stack pointers.
struct Switchboard {
    scheduler_rsp: u64,
    current: Option<*mut Thread>,
}

struct Global(UnsafeCell<Switchboard>);
// SAFETY: one CPU runs the kernel and no interrupt handler touches the switchboard; it is
// only read and written by `run_all` and `yield_now`, which never run at the same time.
unsafe impl Sync for Global {}

static SWITCHBOARD: Global = Global(UnsafeCell::new(Switchboard { scheduler_rsp: 0, current: None }));

fn switchboard() -> *mut Switchboard {
    SWITCHBOARD.0.get()
}

/// Gives the CPU to the scheduler; returns when this thread is resumed. Outside a thread
/// (boot), it only hints the CPU that we are waiting.
pub fn yield_now() {
    // SAFETY: see `Global`. The current thread's `Thread` lives in `run_all`'s vector,
    // which outlives every thread; the scheduler's saved stack pointer is valid while
    // a thread runs.
    unsafe {
        let board = switchboard();
        let Some(thread) = (*board).current else {
            crate::arch::spin_hint();
            return;
        };
        context::switch_stack(&raw mut (*thread).rsp, (*board).scheduler_rsp);
    }
}

extern "C" fn thread_entry(job: u64) -> ! {
    // SAFETY: `job` is the `Box<Job>` leaked by `start` for exactly this thread.
    let job = unsafe { Box::from_raw(job as *mut Job<'static>) };
    job();
    // SAFETY: see `yield_now`; the scheduler never resumes a finished thread.
    unsafe {
        let board = switchboard();
        if let Some(thread) = (*board).current {
            (*thread).finished = true;
            context::switch_stack(&raw mut (*thread).rsp, (*board).scheduler_rsp);
        }
    }
    crate::fatal!("a finished workload thread was resumed")
}

fn start(job: Job<'_>, mut stack: Vec<u64>) -> Box<Thread> {
    stack.resize(STACK_WORDS, 0);
    stack[..CANARY_WORDS].fill(CANARY);
    // The job borrows from `run_all`'s caller, which outlives every thread.
    // SAFETY: only the lifetime is erased; `run_all` runs every job to completion
    // before it returns.
    let job: Job<'static> = unsafe { core::mem::transmute::<Job<'_>, Job<'static>>(job) };
    let argument = Box::into_raw(Box::new(job)) as u64;
    let rsp = context::prepare_stack(&mut stack, thread_entry, argument);
    Box::new(Thread { stack, rsp, finished: false })
}

fn resume(thread: &mut Thread) {
    // SAFETY: see `Global`. `thread.rsp` was written by `prepare_stack` or by the
    // thread's last switch away; the scheduler's slot stays valid while it waits here.
    unsafe {
        let board = switchboard();
        (*board).current = Some(thread as *mut Thread);
        context::switch_stack(&raw mut (*board).scheduler_rsp, thread.rsp);
        (*board).current = None;
    }
    if thread.stack[..CANARY_WORDS].iter().any(|w| *w != CANARY) {
        crate::fatal!("a workload thread overflowed its {} KiB stack", STACK_WORDS * 8 / 1024);
    }
}

/// Runs `jobs` as cooperative threads until all are done. A job that cannot get a stack
/// runs on the caller's stack instead (it then cannot yield to others).
pub fn run_all<'a>(jobs: impl IntoIterator<Item = Job<'a>>) {
    let mut pending = jobs.into_iter();
    let mut threads: Vec<Box<Thread>> = Vec::new();
    loop {
        // Resume every started thread once; note whether any finished.
        let mut progressed = false;
        for thread in threads.iter_mut() {
            resume(thread);
            progressed |= thread.finished;
        }
        threads.retain(|t| !t.finished);
        // Start the next job when nothing runs, or when every started thread waits.
        if threads.is_empty() || !progressed {
            match pending.next() {
                Some(job) => {
                    if let Some(thread) = start_or_run(job) {
                        threads.push(thread);
                    }
                }
                None if threads.is_empty() => return,
                None => crate::net::poll(),
            }
        }
    }
}

fn start_or_run(job: Job<'_>) -> Option<Box<Thread>> {
    let mut stack = Vec::new();
    if !crate::memory::heap::can_afford(STACK_WORDS * 8) || stack.try_reserve_exact(STACK_WORDS).is_err() {
        job();
        return None;
    }
    Some(start(job, stack))
}
