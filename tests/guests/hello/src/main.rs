//! Prints a greeting, its arguments and the environment variables whose names start
//! with `TEST_`, one per line, writes a line to stderr, and exits with the status given
//! by `--exit N` (0 otherwise).
fn main() {
    println!("hello from halcyon");
    let args: Vec<String> = std::env::args().collect();
    for (i, arg) in args.iter().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("TEST_")).collect();
    vars.sort();
    for (key, value) in vars {
        println!("env {key}={value}");
    }
    eprintln!("this line goes to stderr");
    let code = args
        .windows(2)
        .find(|w| w[0] == "--exit")
        .and_then(|w| w[1].parse::<i32>().ok())
        .unwrap_or(0);
    std::process::exit(code);
}
