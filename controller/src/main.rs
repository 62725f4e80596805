//! `signet-controller`: flags, logging, the Kubernetes client, then [`signet_controller::start`]
//! until SIGTERM or Ctrl-C.

use clap::Parser;
use signet_controller::{Args, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    signet_controller::supervise::install_quiet_panic_hook();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "signet-controller stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // In-cluster configuration, or KUBECONFIG / ~/.kube/config outside a cluster.
    let client = kube::Client::try_default().await?;
    let controller = signet_controller::start(client, args.to_config()).await?;
    tracing::info!(
        http = %controller.http_addr,
        metrics = %controller.metrics_addr,
        "signet-controller started"
    );
    let failure = tokio::select! {
        () = shutdown_signal() => None,
        failure = controller.failed() => Some(failure),
    };
    tracing::info!("shutting down");
    controller.shutdown().await;
    match failure {
        None => Ok(()),
        Some(failure) => Err(failure.into()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
