//! `signet-dev-cluster [--moto] [--openbao]`: starts a local kube-apiserver (and, when asked,
//! moto and OpenBao), prints eval-able `export` lines followed by `ready`, and runs until
//! interrupted (Ctrl-C or SIGTERM), then stops every peer and removes their data.
//!
//! ```text
//! cargo run -p signet-testkit --bin signet-dev-cluster -- --moto --openbao
//! ```

use std::io::Write;
use std::process::ExitCode;

use signet_testkit::{ApiServer, Moto, OpenBao};

const USAGE: &str = "usage: signet-dev-cluster [--moto] [--openbao]

Starts a real kube-apiserver on 127.0.0.1 (plus moto and/or OpenBao when asked), prints
`export NAME=value` lines for your shell, then `ready`, and runs until Ctrl-C or SIGTERM.";

fn main() -> ExitCode {
    let mut with_moto = false;
    let mut with_openbao = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--moto" => with_moto = true,
            "--openbao" => with_openbao = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("signet-dev-cluster: unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(with_moto, with_openbao) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet-dev-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(with_moto: bool, with_openbao: bool) -> Result<(), Box<dyn std::error::Error>> {
    eprintln!("signet-dev-cluster: starting kube-apiserver…");
    let apiserver = ApiServer::start()?;
    let moto = with_moto.then(Moto::start).transpose()?;
    let openbao = with_openbao.then(OpenBao::start).transpose()?;

    let mut exports = apiserver.env();
    if let Some(moto) = &moto {
        exports.extend(moto.env());
    }
    if let Some(openbao) = &openbao {
        exports.extend(openbao.env());
    }
    let mut out = std::io::stdout().lock();
    for (name, value) in exports {
        writeln!(out, "export {name}={}", shell_quote(&value))?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    eprintln!("signet-dev-cluster: stopping");
    // Dropping the peers stops them and removes their data.
    drop(openbao);
    drop(moto);
    drop(apiserver);
    Ok(())
}

/// Single-quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}
