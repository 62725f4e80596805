//! The test bed itself, against the real kube-apiserver started by `signet-testkit`: CRD schema
//! validation, watches, server-side apply and conflicts, owner-reference garbage collection,
//! ServiceAccount tokens and RBAC, the server's version; and the node test bed
//! (`ApiServer::start_with_node`): Deployments, Services, the service proxy, Pods reaching the API
//! server and exposed host ports, and teardown. One API server is shared by the plain tests of
//! this file, one node test bed by the node tests; each test works in its own namespace.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use signet_testkit::{ApiServer, NodeOptions};
use signet_tests::poll::eventually;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn admin() -> Result<(&'static ApiServer, Client), Box<dyn std::error::Error>> {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let client = server.client().await?;
    Ok((server, client))
}

fn api_status(err: &kube::Error) -> Option<&kube::core::Status> {
    match err {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

#[tokio::test]
async fn crd_structural_schema_rejects_invalid_objects_and_prunes_unknown_fields() -> TestResult {
    let (server, client) = admin().await?;
    let group = "testbed.signet.example.com";
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["replicas"],
                        "properties": {
                            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                            "color": {"type": "string", "enum": ["red", "blue"]}
                        }
                    }}
                }}
            }]
        }
    }))?;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    eventually("CRD Established", Duration::from_secs(30), || {
        let crds = crds.clone();
        async move {
            let crd = crds.get(&format!("widgets.{group}")).await.ok()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await?;

    let ns = server.create_namespace(&client, "crd").await?;
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), "widgets");
    let widgets = Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &resource);
    let widget =
        |name: &str, spec: serde_json::Value| -> Result<DynamicObject, serde_json::Error> {
            serde_json::from_value(json!({
                "apiVersion": format!("{group}/v1"), "kind": "Widget",
                "metadata": {"name": name}, "spec": spec
            }))
        };

    // The resource may take a moment to be served after Established.
    let valid = widget(
        "good",
        json!({"replicas": 3, "color": "red", "notInSchema": "dropped"}),
    )?;
    let created = eventually(
        "a valid Widget is accepted",
        Duration::from_secs(15),
        || {
            let widgets = widgets.clone();
            let valid = valid.clone();
            async move { widgets.create(&PostParams::default(), &valid).await.ok() }
        },
    )
    .await?;
    assert_eq!(created.data["spec"]["replicas"], json!(3));
    assert!(
        created.data["spec"].get("notInSchema").is_none(),
        "the server prunes fields outside a structural schema: {}",
        created.data
    );

    for (name, spec, field) in [
        ("too-many", json!({"replicas": 11}), "spec.replicas"),
        ("wrong-type", json!({"replicas": "three"}), "spec.replicas"),
        (
            "bad-color",
            json!({"replicas": 1, "color": "green"}),
            "spec.color",
        ),
        ("missing", json!({"color": "blue"}), "spec.replicas"),
    ] {
        let err = widgets
            .create(&PostParams::default(), &widget(name, spec)?)
            .await
            .expect_err("the server must reject an object that breaks the schema");
        let status = api_status(&err).ok_or_else(|| format!("not an API error: {err}"))?;
        assert_eq!(status.code, 422, "{name}: {err}");
        assert!(status.is_invalid(), "{name}: {err}");
        assert!(
            status.message.contains(field),
            "{name}: message should name {field}: {}",
            status.message
        );
        assert!(
            widgets.get_opt(name).await?.is_none(),
            "{name} must not have been stored"
        );
    }
    Ok(())
}

#[tokio::test]
async fn watch_and_server_side_apply_with_conflicts() -> TestResult {
    let (server, client) = admin().await?;
    let ns = server.create_namespace(&client, "ssa").await?;
    let maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);

    // Watch the namespace from before the first write: wait for the initial (empty) list.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let (listed_tx, listed_rx) = tokio::sync::oneshot::channel();
    let watch = tokio::spawn({
        let maps = maps.clone();
        async move {
            let mut listed_tx = Some(listed_tx);
            let mut events = std::pin::pin!(watcher(maps, watcher::Config::default()));
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                        let value = cm.data.as_ref().and_then(|d| d.get("color")).cloned();
                        if seen_tx.send((cm.metadata.name.clone(), value)).is_err() {
                            break;
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = listed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), listed_rx)
        .await
        .map_err(|_| "watcher did not finish its initial list")??;

    let apply = |color: &str| {
        serde_json::from_value::<ConfigMap>(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"color": color}
        }))
    };
    let first = maps
        .patch(
            "settings",
            &PatchParams::apply("signet-a"),
            &Patch::Apply(&apply("red")?),
        )
        .await?;
    let first_rv = first
        .metadata
        .resource_version
        .clone()
        .ok_or("no resourceVersion")?;

    // A second field manager may not take over a field it does not own…
    let err = maps
        .patch(
            "settings",
            &PatchParams::apply("signet-b"),
            &Patch::Apply(&apply("blue")?),
        )
        .await
        .expect_err("a conflicting apply without force must fail");
    let status = api_status(&err).ok_or_else(|| format!("not an API error: {err}"))?;
    assert!(status.is_conflict(), "{err}");
    assert!(
        status.message.contains("signet-a"),
        "conflict names the owner: {}",
        status.message
    );
    // …unless it forces, and then it owns the field.
    let forced = maps
        .patch(
            "settings",
            &PatchParams::apply("signet-b").force(),
            &Patch::Apply(&apply("blue")?),
        )
        .await?;
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    let owners: Vec<_> = forced
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(owners.contains(&"signet-b".to_owned()), "{owners:?}");

    // An update based on a stale resourceVersion is refused with 409; re-read and retry.
    let mut stale = first.clone();
    stale.metadata.managed_fields = None;
    stale.data = Some(BTreeMap::from([("color".to_owned(), "green".to_owned())]));
    assert_eq!(
        stale.metadata.resource_version.as_deref(),
        Some(first_rv.as_str())
    );
    let err = maps
        .replace("settings", &PostParams::default(), &stale)
        .await
        .expect_err("a stale resourceVersion must conflict");
    assert!(api_status(&err).is_some_and(|s| s.is_conflict()), "{err}");
    let updated = loop {
        let mut current = maps.get("settings").await?;
        current
            .data
            .get_or_insert_with(BTreeMap::new)
            .insert("color".to_owned(), "green".to_owned());
        match maps
            .replace("settings", &PostParams::default(), &current)
            .await
        {
            Ok(updated) => break updated,
            Err(e) if api_status(&e).is_some_and(|s| s.is_conflict()) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    assert_ne!(
        updated.metadata.resource_version,
        first.metadata.resource_version
    );

    // The watcher saw every state, ending with the retried update.
    let mut colors = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while colors.last().map(String::as_str) != Some("green") {
        let (name, color) = tokio::time::timeout_at(deadline, seen_rx.recv())
            .await
            .map_err(|_| format!("watcher did not see the final update; saw {colors:?}"))?
            .ok_or("watcher ended")?;
        assert_eq!(name.as_deref(), Some("settings"));
        colors.extend(color);
    }
    assert!(colors.contains(&"blue".to_owned()), "saw {colors:?}");
    watch.abort();
    Ok(())
}

#[tokio::test]
async fn owned_secret_is_garbage_collected_after_its_owner_is_deleted() -> TestResult {
    let (server, client) = admin().await?;
    let ns = server.create_namespace(&client, "gc").await?;
    let maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);

    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}}))?;
    let owner = maps.create(&PostParams::default(), &owner).await?;
    let owner_ref = OwnerReference {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        name: "owner".to_owned(),
        uid: owner.metadata.uid.clone().ok_or("owner has no uid")?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut owned: Secret = serde_json::from_value(json!({
        "metadata": {"name": "owned"},
        "stringData": {"k": "v"}
    }))?;
    owned.metadata.owner_references = Some(vec![owner_ref]);
    secrets.create(&PostParams::default(), &owned).await?;
    let bystander: Secret = serde_json::from_value(json!({"metadata": {"name": "bystander"}}))?;
    secrets.create(&PostParams::default(), &bystander).await?;

    maps.delete("owner", &DeleteParams::background()).await?;
    eventually(
        "owned Secret garbage-collected",
        Duration::from_secs(60),
        || {
            let secrets = secrets.clone();
            async move { matches!(secrets.get_opt("owned").await, Ok(None)).then_some(()) }
        },
    )
    .await?;
    assert!(
        secrets.get_opt("bystander").await?.is_some(),
        "an unowned Secret must stay"
    );
    Ok(())
}

#[tokio::test]
async fn service_account_with_limited_rbac_is_refused_forbidden_calls() -> TestResult {
    let (server, client) = admin().await?;
    let ns = server.create_namespace(&client, "rbac").await?;
    let other_ns = server.create_namespace(&client, "rbac-other").await?;

    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "read-configmaps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]
    }))?;
    Api::<Role>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "limited-reads-configmaps"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
        "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": ns}]
    }))?;
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await?;

    let limited = server.service_account_client(&ns, "limited").await?;

    // The minted token authenticates as the ServiceAccount.
    let review: SelfSubjectReview = serde_json::from_value(json!({}))?;
    let review = Api::<SelfSubjectReview>::all(limited.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let username = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username);
    assert_eq!(
        username,
        Some(format!("system:serviceaccount:{ns}:limited"))
    );

    // Granted: list ConfigMaps in its namespace (the RBAC cache may lag the binding briefly).
    let own_maps = Api::<ConfigMap>::namespaced(limited.clone(), &ns);
    eventually("RoleBinding in effect", Duration::from_secs(15), || {
        let own_maps = own_maps.clone();
        async move { own_maps.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await?;

    // Refused: Secrets in its namespace, ConfigMaps elsewhere, writes.
    let forbidden = [
        Api::<Secret>::namespaced(limited.clone(), &ns)
            .list(&Default::default())
            .await
            .err(),
        Api::<ConfigMap>::namespaced(limited.clone(), &other_ns)
            .list(&Default::default())
            .await
            .err(),
        own_maps
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "x"}}))?,
            )
            .await
            .err(),
    ];
    for (i, err) in forbidden.into_iter().enumerate() {
        let err = err.ok_or_else(|| format!("call {i} should have been refused"))?;
        let status =
            api_status(&err).ok_or_else(|| format!("call {i}: not an API error: {err}"))?;
        assert_eq!(status.code, 403, "call {i}: {err}");
        assert!(status.is_forbidden(), "call {i}: {err}");
        assert!(
            status
                .message
                .contains(&format!("system:serviceaccount:{ns}:limited")),
            "{}",
            status.message
        );
    }
    // The admin still sees that nothing was written.
    assert!(
        Api::<ConfigMap>::namespaced(client, &ns)
            .get_opt("x")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn namespace_and_serviceaccount_controllers_run() -> TestResult {
    let (server, client) = admin().await?;
    let ns = server.create_namespace(&client, "nsctl").await?;
    // The serviceaccount controller gives every namespace its `default` ServiceAccount.
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
    eventually("default ServiceAccount", Duration::from_secs(30), || {
        let accounts = accounts.clone();
        async move { accounts.get_opt("default").await.ok().flatten() }
    })
    .await?;
    let maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let content: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "content"}}))?;
    maps.create(&PostParams::default(), &content).await?;

    // Deleting a namespace only finishes once the namespace controller emptied it.
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    eventually("namespace deleted", Duration::from_secs(90), || {
        let namespaces = namespaces.clone();
        let ns = ns.clone();
        async move { matches!(namespaces.get_opt(&ns).await, Ok(None)).then_some(()) }
    })
    .await?;
    assert!(maps.get_opt("content").await?.is_none());
    Ok(())
}

/// `kubectl version -o json` against `server`: the server's version must be the real release
/// (the harness is built with Kubernetes' version variables), which Helm's `kubeVersion` checks and
/// `kubectl version` parse.
fn assert_kubectl_reports_the_real_server_version(server: &ApiServer) -> TestResult {
    let kubectl = signet_testkit::peer_path("kubectl")?;
    let out = std::process::Command::new(kubectl)
        .args(["version", "-o", "json"])
        .env("KUBECONFIG", server.kubeconfig_path())
        .output()?;
    assert!(
        out.status.success(),
        "kubectl version: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let server_version = &version["serverVersion"];
    assert_eq!(server_version["gitVersion"], "v1.37.2", "{version}");
    assert_eq!(server_version["major"], "1", "{version}");
    assert_eq!(server_version["minor"], "37", "{version}");
    assert_eq!(server_version["gitTreeState"], "archive", "{version}");
    Ok(())
}

#[tokio::test]
async fn kubectl_version_parses_the_real_server_version() -> TestResult {
    let (server, client) = admin().await?;
    assert_kubectl_reports_the_real_server_version(server)?;
    // And as a client library sees it.
    let info = client.apiserver_version().await?;
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "37"));
    assert_eq!(info.git_version, "v1.37.2");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The node test bed.

/// The test image (`scripts/bootstrap node`): `/nodetool serve PORT | probe IP PORT TEXT`.
const NODETOOL: &str = "signet.test/nodetool:1";
/// What the host service exposed to Pods answers.
const EXPOSED_CANARY: &str = "signet-exposed-host-service";
/// What the host service that is not exposed answers.
const HIDDEN_CANARY: &str = "signet-hidden-host-service";

/// The node test bed shared by the node tests, and two services on the host's loopback, one of
/// them exposed to Pods.
struct NodeBed {
    server: ApiServer,
    exposed_port: u16,
    hidden_port: u16,
}

fn node_bed() -> Result<&'static NodeBed, String> {
    static BED: OnceLock<Result<NodeBed, String>> = OnceLock::new();
    BED.get_or_init(|| {
        let start = || -> Result<NodeBed, Box<dyn std::error::Error>> {
            let exposed_port = serve_on_loopback(EXPOSED_CANARY)?;
            let hidden_port = serve_on_loopback(HIDDEN_CANARY)?;
            let server = ApiServer::start_with_node(NodeOptions {
                images: vec![signet_testkit::peer_file("signet-nodetool.tar")?],
                expose_host_ports: vec![exposed_port],
            })?;
            Ok(NodeBed {
                server,
                exposed_port,
                hidden_port,
            })
        };
        // A start that fails is tried once more (the three node tests share this bed, so one
        // failed start would fail them all); the first error is kept in the message either way.
        start().or_else(|first| {
            eprintln!("node test bed: the first start failed, starting again: {first}");
            start().map_err(|second| format!("{second} (the first start failed too: {first})"))
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

async fn node_admin() -> Result<(&'static NodeBed, Client), Box<dyn std::error::Error>> {
    let bed = tokio::task::spawn_blocking(node_bed).await??;
    let client = bed.server.client().await?;
    Ok((bed, client))
}

/// A plain-HTTP service on the host's 127.0.0.1 answering `body` to every request (for the life
/// of the test process).
fn serve_on_loopback(body: &'static str) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = [0u8; 4096];
            let _ = conn.read(&mut head);
            let _ = write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(port)
}

/// A Deployment of `replicas` nodetool HTTP servers on port 8080, labelled `app: name`, Ready once
/// the port accepts connections.
fn web_deployment(name: &str, replicas: i32) -> Result<Deployment, serde_json::Error> {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "web",
                        "image": NODETOOL,
                        "imagePullPolicy": "Never",
                        "args": ["serve", "8080"],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    }],
                },
            },
        },
    }))
}

/// Waits until the Deployment has `replicas` available replicas and returns its Ready pods.
async fn available_pods(
    client: &Client,
    ns: &str,
    name: &str,
    replicas: i32,
) -> Result<Vec<Pod>, String> {
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    eventually(
        &format!("{replicas} available replicas of {ns}/{name}"),
        Duration::from_secs(120),
        || {
            let (deployments, pods) = (deployments.clone(), pods.clone());
            async move {
                let d = deployments.get(name).await.ok()?;
                let status = d.status?;
                if status.available_replicas != Some(replicas) || status.replicas != Some(replicas)
                {
                    return None;
                }
                let list = pods
                    .list(&ListParams::default().labels(&format!("app={name}")))
                    .await
                    .ok()?;
                let ready: Vec<Pod> = list
                    .items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_is_ready(p))
                    .collect();
                (ready.len() == replicas as usize).then_some(ready)
            }
        },
    )
    .await
}

fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

#[tokio::test]
async fn node_runs_a_deployment_and_replaces_a_deleted_pod() -> TestResult {
    let (bed, client) = node_admin().await?;
    let ns = bed.server.create_namespace(&client, "node-deploy").await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &web_deployment("web", 2)?)
        .await?;
    let first = available_pods(&client, &ns, "web", 2).await?;
    for pod in &first {
        let status = pod.status.as_ref().ok_or("pod status")?;
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some("signet-node")
        );
        let ip: std::net::Ipv4Addr = status.pod_ip.as_deref().ok_or("pod IP")?.parse()?;
        assert_eq!(
            ip.octets()[..3],
            [10, 244, 0],
            "a Pod IP of the CNI bridge: {ip}"
        );
    }

    // The ReplicaSet replaces a deleted Pod.
    let victim = pod_name(&first[0]);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    pods.delete(&victim, &DeleteParams::default()).await?;
    let after = eventually("a replacement Pod", Duration::from_secs(120), || {
        let client = client.clone();
        let (ns, victim) = (ns.clone(), victim.clone());
        async move {
            let pods = available_pods(&client, &ns, "web", 2).await.ok()?;
            (!pods.iter().any(|p| pod_name(p) == victim)).then_some(pods)
        }
    })
    .await?;
    let names: Vec<String> = after.iter().map(pod_name).collect();
    assert!(
        names
            .iter()
            .any(|n| !first.iter().any(|p| &pod_name(p) == n)),
        "a new Pod among {names:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_service_gets_endpoint_slices_and_the_api_server_proxy_reaches_its_pods() -> TestResult {
    let (bed, client) = node_admin().await?;
    let ns = bed.server.create_namespace(&client, "node-svc").await?;
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &web_deployment("web", 2)?)
        .await?;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }))?;
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &service)
        .await?;
    let pods = available_pods(&client, &ns, "web", 2).await?;
    let mut pod_ips: Vec<String> = pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    pod_ips.sort();

    // The endpointslice controller lists both Pods, ready, on the target port.
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), &ns);
    eventually("EndpointSlices of web", Duration::from_secs(60), || {
        let slices = slices.clone();
        let pod_ips = pod_ips.clone();
        async move {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .ok()?;
            let mut ready: Vec<String> = list
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter().flatten())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .flat_map(|e| e.addresses.iter().cloned())
                .collect();
            ready.sort();
            let port_ok = list.items.iter().all(|s| {
                s.ports
                    .as_ref()
                    .is_some_and(|ps| ps.iter().any(|p| p.port == Some(8080)))
            });
            (ready == pod_ips && port_ok).then_some(())
        }
    })
    .await?;

    // The API server's service proxy (what kubeseal's default route uses) reaches a Pod.
    let path = format!("/api/v1/namespaces/{ns}/services/http:web:http/proxy/");
    let body = eventually(
        "an answer through the service proxy",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            let path = path.clone();
            async move {
                let request = http::Request::get(path).body(Vec::new()).ok()?;
                client.request_text(request).await.ok()
            }
        },
    )
    .await?;
    let names: Vec<String> = pods.iter().map(pod_name).collect();
    let answered_by = body
        .trim()
        .strip_prefix("signet-nodetool ")
        .ok_or_else(|| format!("unexpected answer: {body:?}"))?;
    assert!(
        names.iter().any(|n| n == answered_by),
        "{answered_by} among {names:?}"
    );
    Ok(())
}

/// Runs `nodetool probe ip port text` in a Pod and returns its container's exit code.
async fn probe_exit_code(
    client: &Client,
    ns: &str,
    name: &str,
    target: (&str, u16),
    text: &str,
) -> Result<i32, Box<dyn std::error::Error>> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "probe",
                "image": NODETOOL,
                "imagePullPolicy": "Never",
                "args": ["probe", target.0, target.1.to_string(), text],
            }],
        },
    }))?;
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod).await?;
    let code = eventually(
        &format!("{ns}/{name} terminated"),
        Duration::from_secs(120),
        || {
            let pods = pods.clone();
            async move {
                let pod = pods.get(name).await.ok()?;
                let status = pod.status?;
                let terminated = status
                    .container_statuses?
                    .first()?
                    .state
                    .as_ref()?
                    .terminated
                    .clone()?;
                let phase = status.phase?;
                // The phase follows the exit code once the kubelet reported both.
                matches!(phase.as_str(), "Succeeded" | "Failed")
                    .then_some((terminated.exit_code, phase))
            }
        },
    )
    .await?;
    let (exit_code, phase) = code;
    assert_eq!(
        phase,
        if exit_code == 0 {
            "Succeeded"
        } else {
            "Failed"
        },
        "{name}"
    );
    Ok(exit_code)
}

#[tokio::test]
async fn pods_reach_the_kubernetes_service_and_only_the_exposed_host_port() -> TestResult {
    let (bed, client) = node_admin().await?;
    let ns = bed.server.create_namespace(&client, "node-net").await?;
    let node_ip = bed.server.node_ip().ok_or("a node IP")?.to_string();
    let exposed = bed
        .server
        .pod_address_of_host_port(bed.exposed_port)
        .ok_or("the exposed port's address")?;
    assert_eq!(exposed.ip().to_string(), node_ip);
    assert_eq!(bed.server.pod_address_of_host_port(bed.hidden_port), None);

    // The kubernetes Service's ClusterIP, through kube-proxy, to the API server (which answers
    // a plain-HTTP request on its TLS port with Go's own message).
    let api = probe_exit_code(
        &client,
        &ns,
        "kubernetes-service",
        ("10.0.0.1", 443),
        "Client sent an HTTP request to an HTTPS server",
    );
    // The exposed host service, at the node IP.
    let host = probe_exit_code(
        &client,
        &ns,
        "exposed-host-port",
        (&node_ip, bed.exposed_port),
        EXPOSED_CANARY,
    );
    // A host service that was not exposed is out of reach, at the node IP as on the Pod's own
    // loopback.
    let hidden = probe_exit_code(
        &client,
        &ns,
        "hidden-host-port",
        (&node_ip, bed.hidden_port),
        HIDDEN_CANARY,
    );
    let loopback = probe_exit_code(
        &client,
        &ns,
        "host-loopback",
        ("127.0.0.1", bed.exposed_port),
        EXPOSED_CANARY,
    );
    let (api, host, hidden, loopback) = futures::try_join!(api, host, hidden, loopback)?;
    assert_eq!(
        (api, host),
        (0, 0),
        "reachable: kubernetes Service, exposed port"
    );
    assert_eq!(
        (hidden, loopback),
        (1, 1),
        "unreachable: hidden port, host loopback"
    );
    // The API server reaches the kubelet (by the node IP: there is no DNS) for a Pod's log.
    let log = Api::<Pod>::namespaced(client.clone(), &ns)
        .logs("kubernetes-service", &Default::default())
        .await?;
    assert!(
        log.contains("answered with \"Client sent an HTTP request"),
        "{log}"
    );

    // The node test bed reports the real version too.
    assert_kubectl_reports_the_real_server_version(&bed.server)?;
    Ok(())
}

/// Without its container runtime (here: a PATH without containerd, runc, ctr, ip, iptables) node
/// mode stops at once and names what is missing, so a test needing the node fails loudly.
#[test]
fn node_mode_without_its_runtime_fails_at_once_naming_what_is_missing() -> TestResult {
    let harness = signet_testkit::peer_path("signet-apiserver")?;
    let empty = tempfile::tempdir()?;
    let out = std::process::Command::new(harness)
        .args(["--node", "--ready-timeout=20s"])
        .env("PATH", empty.path())
        .stdin(std::process::Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line: {:?}", out.stdout);
    for missing in [
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
        "ctr",
        "iptables",
    ] {
        assert!(stderr.contains(missing), "{missing} named in: {stderr}");
    }
    Ok(())
}

/// Pids of processes whose command line is exactly `args`.
fn processes_running(args: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

/// The node's cgroup (`…/signet-node-<pid>`) of a container process, in the pids hierarchy.
fn node_cgroup_of(pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_owned()))?;
    let end = path.find("/signet-node-")?;
    let rest = &path[end + 1..];
    let node = rest.split('/').next()?;
    Some(
        Path::new("/sys/fs/cgroup/pids")
            .join(path[..end].trim_start_matches('/'))
            .join(node),
    )
}

/// Each harness removes the `signet-apiserver-<pid>-…` temp entries of harnesses that are gone,
/// reading the pid in decimal. The testkit's own files must not be named so: the audit log was
/// (`signet-apiserver-<pid in hex>-…`), and one whose hex pid read as a dead decimal pid
/// (`…-6352-…`) was removed by another test's harness while its test ran.
#[tokio::test]
async fn the_audit_log_is_not_named_like_a_harness_temp_dir() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let name = server
        .audit_log()
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the audit log has no file name")?;
    assert!(!name.starts_with("signet-apiserver-"), "{name}");
    Ok(())
}

#[tokio::test]
async fn dropping_the_node_test_bed_removes_its_containers_cgroups_and_files() -> TestResult {
    // A harness killed with its session leaves a temp dir and no cgroup: the next node test bed
    // removes it, by the pid in its name, and leaves alone the one of a process that is alive.
    let dead_pid = {
        let mut child = std::process::Command::new("true").spawn()?;
        let pid = child.id();
        child.wait()?;
        pid
    };
    let stale_dir = std::env::temp_dir().join(format!("signet-apiserver-node-{dead_pid}-stale"));
    std::fs::create_dir_all(stale_dir.join("containerd/root"))?;
    let live_dir =
        std::env::temp_dir().join(format!("signet-apiserver-node-{}-live", std::process::id()));
    std::fs::create_dir_all(&live_dir)?;
    let server = tokio::task::spawn_blocking(|| -> Result<ApiServer, signet_testkit::Error> {
        ApiServer::start_with_node(NodeOptions {
            images: vec![signet_testkit::peer_file("signet-nodetool.tar")?],
            expose_host_ports: Vec::new(),
        })
    })
    .await??;
    let live_kept = live_dir.is_dir();
    std::fs::remove_dir_all(&live_dir)?;
    assert!(!stale_dir.exists(), "{} left", stale_dir.display());
    assert!(
        live_kept,
        "{} of a live process removed",
        live_dir.display()
    );
    let client = server.client().await?;
    let ns = server.create_namespace(&client, "node-teardown").await?;
    // A port no other test uses makes the container's command line unique on this machine.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let port_arg = port.to_string();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "server"},
        "spec": {"containers": [{
            "name": "web", "image": NODETOOL, "imagePullPolicy": "Never",
            "args": ["serve", port_arg],
        }]},
    }))?;
    Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await?;
    let command = ["/nodetool", "serve", port_arg.as_str()];
    let pids = eventually("the container's process", Duration::from_secs(120), || {
        let pids = processes_running(&command);
        async move { (!pids.is_empty()).then_some(pids) }
    })
    .await?;
    let cgroup = node_cgroup_of(pids[0]).ok_or("the container in a signet-node cgroup")?;
    assert!(cgroup.is_dir(), "{}", cgroup.display());
    let kubeconfig = server.kubeconfig_path().to_owned();
    let temp_dir = kubeconfig.parent().ok_or("kubeconfig dir")?.to_owned();
    assert!(
        temp_dir.join("containerd").is_dir(),
        "{}",
        temp_dir.display()
    );

    drop(client);
    tokio::task::spawn_blocking(move || drop(server)).await?;
    assert_eq!(
        processes_running(&command),
        Vec::<u32>::new(),
        "containers left"
    );
    assert!(!cgroup.exists(), "{} left", cgroup.display());
    assert!(!kubeconfig.exists(), "{} left", kubeconfig.display());
    assert!(!temp_dir.exists(), "{} left", temp_dir.display());
    Ok(())
}

/// A harness that is SIGKILLed cannot clean up: its containers (and their shims) outlive it. The
/// next node test bed started on this machine kills them and removes the dead one's cgroups and
/// temp dir.
#[tokio::test]
async fn a_killed_node_test_bed_is_swept_by_the_next_one() -> TestResult {
    use std::io::BufRead;
    let harness = signet_testkit::peer_path("signet-apiserver")?;
    let image = signet_testkit::peer_file("signet-nodetool.tar")?;
    // Its log goes to a file, shown if it never gets ready.
    let log = tempfile::NamedTempFile::new()?;
    let mut victim = std::process::Command::new(harness)
        .arg("--node")
        .arg(format!("--image={}", image.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log.reopen()?)
        .spawn()?;
    let stdout = victim.stdout.take().ok_or("stdout")?;
    let kubeconfig = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("ready ").map(PathBuf::from))
    })
    .await?;
    let Some(kubeconfig) = kubeconfig else {
        let status = victim.wait()?;
        let text = std::fs::read_to_string(log.path())?;
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "the harness printed no ready line ({status}); its last output:\n{}",
            tail.join("\n")
        )
        .into());
    };
    let temp_dir = kubeconfig.parent().ok_or("temp dir")?.to_owned();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let port_arg = (40000 + (std::process::id() % 20000)).to_string();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan"},
        "spec": {"containers": [{
            "name": "web", "image": NODETOOL, "imagePullPolicy": "Never",
            "args": ["serve", port_arg],
        }]},
    }))?;
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await?;
    let command = ["/nodetool", "serve", port_arg.as_str()];
    let pids = eventually("the container's process", Duration::from_secs(120), || {
        let pids = processes_running(&command);
        async move { (!pids.is_empty()).then_some(pids) }
    })
    .await?;
    let cgroup = node_cgroup_of(pids[0]).ok_or("the container in a signet-node cgroup")?;

    victim.kill()?;
    victim.wait()?;
    drop(client);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !processes_running(&command).is_empty(),
        "the container outlives a SIGKILLed harness (what the sweep is for)"
    );

    let next = tokio::task::spawn_blocking(|| ApiServer::start_with_node(NodeOptions::default()))
        .await??;
    assert_eq!(
        processes_running(&command),
        Vec::<u32>::new(),
        "orphans left"
    );
    assert!(!cgroup.exists(), "{} left", cgroup.display());
    assert!(!temp_dir.exists(), "{} left", temp_dir.display());
    tokio::task::spawn_blocking(move || drop(next)).await?;
    Ok(())
}

/// A plain harness killed with SIGKILL leaves its temp dir (etcd's data) behind; the next harness
/// to start removes it, and leaves the dirs of harnesses still running alone.
#[tokio::test]
async fn a_killed_plain_test_bed_is_swept_by_the_next_one() -> TestResult {
    use std::io::BufRead;
    let harness = signet_testkit::peer_path("signet-apiserver")?;
    let mut victim = std::process::Command::new(harness)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = victim.stdout.take().ok_or("stdout")?;
    let kubeconfig = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("ready ").map(PathBuf::from))
    })
    .await?
    .ok_or("the harness printed no ready line")?;
    let temp_dir = kubeconfig.parent().ok_or("temp dir")?.to_owned();
    let alive = tokio::task::spawn_blocking(ApiServer::shared).await??;
    victim.kill()?;
    victim.wait()?;
    assert!(
        temp_dir.exists(),
        "a SIGKILLed harness leaves its temp dir (what the sweep is for)"
    );

    let next = tokio::task::spawn_blocking(ApiServer::start).await??;
    assert!(!temp_dir.exists(), "{} left", temp_dir.display());
    assert!(
        alive.client().await.is_ok() && alive.kubeconfig_path().exists(),
        "a running harness's temp dir was swept"
    );
    tokio::task::spawn_blocking(move || drop(next)).await?;
    Ok(())
}
