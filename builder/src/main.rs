//! `hcikit`: parse arguments, call the library, map the error to an exit code.

fn main() {
    let cli = <hcikit::cli::Cli as clap::Parser>::parse();
    hcikit::cli::init_logging(cli.verbose);
    if let Err(err) = hcikit::cli::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(hcikit::error::exit_code(&err));
    }
}
