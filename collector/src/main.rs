//! `outpost-collector`: the central service.

fn main() -> std::process::ExitCode {
    eprintln!("outpost-collector: not built yet (see issue 5)");
    std::process::ExitCode::from(2)
}
