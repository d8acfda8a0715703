//! Checks the clocks from inside the guest and prints what it measured:
//! the wall clock is after 2026-01-01 and before 2100, the monotonic clock never goes
//! backwards, and a 50 ms sleep takes at least 50 ms on both clocks.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const JAN_2026: u64 = 1_767_225_600;
const JAN_2100: u64 = 4_102_444_800;

fn main() {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).expect("wall clock after 1970");
    println!("wall_seconds={}", wall.as_secs());
    assert!((JAN_2026..JAN_2100).contains(&wall.as_secs()), "implausible wall clock");

    let mut last = Instant::now();
    for _ in 0..10_000 {
        let now = Instant::now();
        assert!(now >= last, "monotonic clock went backwards");
        last = now;
    }

    let (wall_before, mono_before) = (SystemTime::now(), Instant::now());
    std::thread::sleep(Duration::from_millis(50));
    let slept_mono = mono_before.elapsed();
    let slept_wall = wall_before.elapsed().expect("wall clock moved forward");
    println!("slept_monotonic_ms={}", slept_mono.as_millis());
    println!("slept_wall_ms={}", slept_wall.as_millis());
    assert!(slept_mono >= Duration::from_millis(50), "sleep returned early");
    assert!(slept_mono < Duration::from_secs(5), "sleep took far too long");
    assert!(slept_wall >= Duration::from_millis(49), "wall clock does not advance with the monotonic one");
    println!("clock ok");
}
