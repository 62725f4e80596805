//! `signet-dev-cluster [--moto] [--openbao] [--node [--image OUT.tar]...]`: starts a local
//! kube-apiserver (and, when asked, moto, OpenBao and a real node that runs Pods), prints eval-able
//! `export` lines followed by `ready`, and runs until interrupted (Ctrl-C or SIGTERM), then stops
//! every peer and removes their data (with `--node`, every container too).
//!
//! ```text
//! cargo run -p signet-testkit --bin signet-dev-cluster -- --moto --openbao
//! cargo run -p signet-testkit --bin signet-dev-cluster -- --node --image signet-controller.tar
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use signet_testkit::{ApiServer, Moto, NodeOptions, OpenBao};

const USAGE: &str = "usage: signet-dev-cluster [--moto] [--openbao] [--node [--image OUT.tar]...]

Starts a real kube-apiserver on 127.0.0.1 (plus moto and/or OpenBao when asked), prints
`export NAME=value` lines for your shell, then `ready`, and runs until Ctrl-C or SIGTERM.

--node        also run a node (containerd + runc, a CNI network, the scheduler, a kubelet,
              kube-proxy) in network namespaces of its own, so Pods run; exports SIGNET_NODE_IP.
              moto and OpenBao are exposed to Pods at http://$SIGNET_NODE_IP:<their port>.
--image PATH  (with --node, repeatable) import an OCI image archive into the node's runtime
              (e.g. from scripts/build-image); Pods use it with imagePullPolicy: Never.";

/// What the command line asked for.
#[derive(Default)]
struct Request {
    moto: bool,
    openbao: bool,
    node: bool,
    images: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let mut request = Request::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--moto" => request.moto = true,
            "--openbao" => request.openbao = true,
            "--node" => request.node = true,
            "--image" => match args.next() {
                Some(path) => request.images.push(PathBuf::from(path)),
                None => {
                    eprintln!("signet-dev-cluster: --image needs a path\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
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
    if !request.images.is_empty() && !request.node {
        eprintln!("signet-dev-cluster: --image needs --node\n{USAGE}");
        return ExitCode::from(2);
    }
    match run(request) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet-dev-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(request: Request) -> Result<(), Box<dyn std::error::Error>> {
    // moto and OpenBao first: a node exposes their ports to its Pods.
    let moto = request.moto.then(Moto::start).transpose()?;
    let openbao = request.openbao.then(OpenBao::start).transpose()?;
    let apiserver = if request.node {
        eprintln!("signet-dev-cluster: starting kube-apiserver and a node…");
        let mut expose_host_ports = Vec::new();
        expose_host_ports.extend(moto.as_ref().map(Moto::port));
        expose_host_ports.extend(openbao.as_ref().map(OpenBao::port));
        ApiServer::start_with_node(NodeOptions {
            images: request.images,
            expose_host_ports,
        })?
    } else {
        eprintln!("signet-dev-cluster: starting kube-apiserver…");
        ApiServer::start()?
    };

    let mut exports = apiserver.env();
    if let Some(ip) = apiserver.node_ip() {
        exports.push(("SIGNET_NODE_IP".to_owned(), ip.to_string()));
    }
    if let Some(moto) = &moto {
        exports.extend(moto.env());
    }
    if let Some(openbao) = &openbao {
        exports.extend(openbao.env());
    }
    // The handlers are in place before `ready`: a SIGTERM sent as soon as `ready` is read must
    // stop the peers, not kill this process with them left running (a race CI lost under load).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;

    let mut out = std::io::stdout().lock();
    for (name, value) in exports {
        writeln!(out, "export {name}={}", shell_quote(&value))?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    runtime.block_on(async {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    });
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
