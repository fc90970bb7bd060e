#![forbid(unsafe_code)]

use std::process::ExitCode;

/// The server allocates and frees many small buffers per request (headers, JSON, SQL
/// parameters); glibc's malloc was 13 % of the whole machine in the sell-out profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    boxoffice::cli::main()
}
