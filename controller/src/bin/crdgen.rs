//! `crdgen`: prints this controller's CustomResourceDefinitions as YAML (the chart's
//! `files/crds/` files). `crdgen` prints the SealedSecret CRD; `crdgen NAME` the CRD of that name
//! (e.g. `sopssecrets.signet.dev`); `crdgen --list` the names.

fn main() -> std::process::ExitCode {
    let crds = signet_controller::all_crds();
    let name_of = |crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        crd.metadata.name.clone().unwrap_or_default()
    };
    let wanted = std::env::args().nth(1);
    if wanted.as_deref() == Some("--list") {
        for crd in &crds {
            println!("{}", name_of(crd));
        }
        return std::process::ExitCode::SUCCESS;
    }
    let name = wanted.unwrap_or_else(|| "sealedsecrets.bitnami.com".to_owned());
    let Some(crd) = crds.iter().find(|c| name_of(c) == name) else {
        eprintln!("crdgen: no CRD named {name:?} (see --list)");
        return std::process::ExitCode::FAILURE;
    };
    match serde_saphyr::to_string(crd) {
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
