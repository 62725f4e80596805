//! `crdgen`: prints the SealedSecret CustomResourceDefinition as YAML (the chart's `crds/` file).

fn main() -> std::process::ExitCode {
    match serde_saphyr::to_string(&signet_controller::sealed_secret_crd()) {
        Ok(yaml) => {
            print!("{yaml}");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("crdgen: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
