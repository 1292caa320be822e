use std::process::ExitCode;

/// A size-class allocator: per-connection allocations live for minutes while per-request
/// buffers come and go in microseconds; glibc's malloc lets the two fragment each other and
/// idle connections then hold pages they do not use.
#[cfg(not(feature = "alloc-count"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The same allocator, counted (the `alloc-count` feature: bench builds only).
#[cfg(feature = "alloc-count")]
#[global_allocator]
static ALLOC: ringside::alloc_count::Counting<mimalloc::MiMalloc> =
    ringside::alloc_count::Counting(mimalloc::MiMalloc);

/// Opts the process out of transparent huge pages before its first allocation (the loader
/// runs `.init_array` before `main` and before the Rust runtime allocates). mimalloc's arenas
/// are huge-page eligible, so under THP's common `madvise` mode each first byte touched in a
/// 2 MiB range costs 2 MiB of RSS: 10 MB of an idle sidecar's 19 MB, in every pod. A
/// sidecar's working set is small enough for 4 KiB pages. Set from `main` instead, it comes
/// after the runtime's and clap's first allocations and leaves 4 MB of huge pages behind.
/// `prctl(PR_SET_THP_DISABLE)` is process-wide and kept across `execve`; on a kernel without
/// THP it fails harmlessly.
#[used]
#[link_section = ".init_array"]
static NO_HUGE_PAGES: extern "C" fn() = no_huge_pages;

extern "C" fn no_huge_pages() {
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

use clap::Parser;
use ringside::backend;
use ringside::cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            #[cfg(feature = "alloc-count")]
            ringside::alloc_count::publish();
            let log_level = match ringside::logging::init(&args.log_level, args.log_format) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("ringside: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            match ringside::app::run(&args, Some(log_level)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("ringside: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match control::load_file(&config) {
            Ok(snap) => {
                println!("{}: ok: {}", config.display(), snap.summary());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!("{problems}");
                ExitCode::FAILURE
            }
        },
        Command::Iptables(args) => iptables(&args),
        Command::Compare { admin, watch } => match ringside::compare::table::run(&admin, watch) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringside compare: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Probe => {
            let _ = ringside::logging::init("warn", LogFormat::Text);
            println!("{}", backend::probe::probe());
            ExitCode::SUCCESS
        }
    }
}

fn iptables(args: &ringside::cli::IptablesArgs) -> ExitCode {
    use ringside::iptables;
    let bin = &args.iptables_cmd;
    if args.dry_run {
        print!("{}", iptables::dry_run(&args.plan(), bin));
        return ExitCode::SUCCESS;
    }
    let mut sys = iptables::System { bin: bin.clone() };
    let (what, res) = if args.remove {
        ("removed", iptables::remove(&mut sys, bin))
    } else {
        ("installed", iptables::apply(&args.plan(), &mut sys, bin))
    };
    match res {
        Ok(()) => {
            println!("ringside iptables: rules {what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringside iptables: {e}");
            ExitCode::FAILURE
        }
    }
}
