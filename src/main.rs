use std::process::ExitCode;

fn main() -> ExitCode {
    match reconad::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
