//! Bitnami v0.40.0 and Signet side by side on one API server (with Bitnami's CRD), sharing one
//! sealing key, each watching a namespace of its own, given the same SealedSecrets: every template
//! of `tests/fixtures/templates/bitnami-v0.40-templates.json` (the Go template language and every
//! sprig function Bitnami enables that Signet renders) must give the same Secret, byte for byte;
//! a function Bitnami does not enable, and `fail`, fail in both; `null` entries end the same way (the API
//! server prunes them: the CRD does not allow null values).

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use signet_controller::{Config, SealedSecret};
use signet_testkit::{ApiServer, BitnamiController};
use signet_tests::poll::eventually;
use std::collections::BTreeMap;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const FIXTURE: &str = include_str!("fixtures/templates/bitnami-v0.40-templates.json");

/// Installs the CRD of Bitnami's chart (v0.40.0) and waits until it is served.
pub async fn install_bitnami_crd(client: &kube::Client, namespace: &str) -> TestResult {
    let crd: CustomResourceDefinition = serde_saphyr::from_str(include_str!(
        "../controller/tests/fixtures/bitnami-sealedsecrets-crd.yaml"
    ))?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            "sealedsecrets.bitnami.com",
            &PatchParams::apply("bitnami-chart").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), namespace);
    eventually("CRD served", Duration::from_secs(30), || async {
        sealed_api.list(&ListParams::default()).await.ok()
    })
    .await?;
    Ok(())
}

/// A Bitnami-format sealing key Secret in `keys_ns` (so that neither controller makes its own),
/// and its certificate.
async fn shared_key(
    client: &kube::Client,
    keys_ns: &str,
) -> Result<signet_seal::SealingCertificate, Box<dyn std::error::Error>> {
    let generated = signet_seal::generate_sealing_key(
        2048,
        signet_seal::cert::DEFAULT_CERT_VALIDITY,
        "side-by-side",
    )?;
    let key = signet_controller::keyring::active_key_secret(&generated, "sealed-secrets-key");
    Api::<Secret>::namespaced(client.clone(), keys_ns)
        .create(&PostParams::default(), &key)
        .await?;
    Ok(signet_seal::SealingCertificate::from_pem(
        generated.certificate_pem.as_bytes(),
    )?)
}

/// The SealedSecret `name` in `namespace` holding `values`, with `templates` as its template data.
fn sealed(
    cert: &signet_seal::SealingCertificate,
    namespace: &str,
    name: &str,
    values: &serde_json::Value,
    templates: &BTreeMap<String, Option<String>>,
) -> Result<SealedSecret, Box<dyn std::error::Error>> {
    let secret: signet_api::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": values,
    }))?;
    let mut sealed = signet_seal::seal_secret(&secret, cert, &signet_seal::SealOptions::default())?;
    sealed.spec.template.data = Some(templates.clone());
    Ok(serde_json::from_value(serde_json::to_value(&sealed)?)?)
}

#[tokio::test]
async fn every_template_renders_byte_identically_in_bitnami_and_signet() -> TestResult {
    // Its own server: Bitnami's CRD replaces the one every other suite's SealedSecrets live in.
    let server = tokio::task::spawn_blocking(ApiServer::start).await??;
    let client = server.client().await?;
    let keys_ns = server.create_namespace(&client, "sbskeys").await?;
    let bitnami_ns = server.create_namespace(&client, "sbsbitnami").await?;
    let signet_ns = server.create_namespace(&client, "sbssignet").await?;
    install_bitnami_crd(&client, &bitnami_ns).await?;
    let cert = shared_key(&client, &keys_ns).await?;

    let bitnami = BitnamiController::start(
        &server,
        &client,
        &keys_ns,
        &[
            "--all-namespaces=false".to_owned(),
            format!("--additional-namespaces={bitnami_ns}"),
            "--key-renew-period=0".to_owned(),
        ],
    )
    .await?;
    let mut config = Config::new(&keys_ns);
    config.watch_namespace = Some(signet_ns.clone());
    config.listen_addr = ([127, 0, 0, 1], 0).into();
    config.metrics_addr = ([127, 0, 0, 1], 0).into();
    config.key_renew_period = None;
    let signet = signet_controller::start(client.clone(), config).await?;

    let fixture: serde_json::Value = serde_json::from_str(FIXTURE)?;
    let values = &fixture["values"];
    let all: BTreeMap<String, Option<String>> = fixture["templates"]
        .as_array()
        .ok_or("no templates")?
        .iter()
        .map(|t| {
            (
                t[0].as_str().unwrap_or("").to_owned(),
                t[1].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert!(all.len() > 70, "the fixture lost its cases");
    let not_enabled = BTreeMap::from([("e".to_owned(), Some("{{ env \"HOME\" }}".to_owned()))]);
    let fails = BTreeMap::from([("f".to_owned(), Some("{{ fail \"stop\" }}".to_owned()))]);
    // `null` drops a sealed item (#1871), if the CRD lets the null through.
    let dropped = BTreeMap::from([
        ("user".to_owned(), None),
        ("copy".to_owned(), Some("{{ .user }}".to_owned())),
    ]);
    for ns in [&bitnami_ns, &signet_ns] {
        let api: Api<SealedSecret> = Api::namespaced(client.clone(), ns);
        for (name, templates) in [
            ("all", &all),
            ("not-enabled", &not_enabled),
            ("fails", &fails),
            ("dropped", &dropped),
        ] {
            api.create(
                &PostParams::default(),
                &sealed(&cert, ns, name, values, templates)?,
            )
            .await?;
        }
    }

    let secret_data = |ns: String, name: &'static str| {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        async move {
            eventually(
                &format!("Secret {ns}/{name}"),
                Duration::from_secs(90),
                || async {
                    let s = api.get_opt(name).await.ok()??;
                    Some((s.type_, s.data.unwrap_or_default()))
                },
            )
            .await
        }
    };
    let from_bitnami = secret_data(bitnami_ns.clone(), "all")
        .await
        .map_err(|e| format!("{e}; Bitnami's log:\n{}", bitnami.log()))?;
    let from_signet = secret_data(signet_ns.clone(), "all").await?;
    assert_eq!(from_bitnami.0, from_signet.0, "type");
    let (b, s) = (&from_bitnami.1, &from_signet.1);
    for key in all.keys() {
        let (bv, sv) = (b.get(key), s.get(key));
        assert!(bv.is_some(), "Bitnami did not render {key}");
        assert_eq!(
            bv.map(|v| String::from_utf8_lossy(&v.0).into_owned()),
            sv.map(|v| String::from_utf8_lossy(&v.0).into_owned()),
            "{key}"
        );
    }
    assert_eq!(b, s, "the whole Secret");

    let (bd, sd) = (
        secret_data(bitnami_ns.clone(), "dropped").await?,
        secret_data(signet_ns.clone(), "dropped").await?,
    );
    assert_eq!(bd.1, sd.1, "null entries");
    // Observed with v0.40.0's own CRD: its schema does not let template data values be null, so
    // the API server prunes the entry and the item stays, for both controllers.
    assert!(
        bd.1.contains_key("user") && bd.1.contains_key("copy"),
        "{:?}",
        bd.1.keys()
    );

    // A function Bitnami removed, and `fail`: no Secret from either; Signet says why.
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &signet_ns);
    let bitnami_sealed: Api<SealedSecret> = Api::namespaced(client.clone(), &bitnami_ns);
    for (name, says) in [("not-enabled", "\"env\" not defined"), ("fails", "stop")] {
        let refused = eventually(
            &format!("Signet refuses {name}"),
            Duration::from_secs(60),
            || async {
                let s = sealed_api.get(name).await.ok()?;
                let c = s.status.as_ref()?.synced()?.clone();
                (c.status == "False").then_some(c)
            },
        )
        .await;
        let refused = match refused {
            Ok(c) => c,
            Err(e) => {
                let status = sealed_api.get(name).await?.status;
                return Err(format!("{e}; status {status:?}").into());
            }
        };
        assert_eq!(refused.reason.as_deref(), Some("TemplateFailed"));
        let message = refused.message.unwrap_or_default();
        assert!(message.contains(says), "{message}");
        eventually(
            &format!("Bitnami refuses {name}"),
            Duration::from_secs(60),
            || async {
                let s = bitnami_sealed.get(name).await.ok()?;
                (s.status.as_ref()?.synced()?.status == "False").then_some(())
            },
        )
        .await?;
        for ns in [&bitnami_ns, &signet_ns] {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
            assert!(secrets.get_opt(name).await?.is_none(), "{ns}/{name}");
        }
    }
    signet.shutdown().await;
    bitnami.stop();
    Ok(())
}
