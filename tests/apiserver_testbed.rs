//! The test bed itself, against the real kube-apiserver started by `signet-testkit`: CRD schema
//! validation, watches, server-side apply and conflicts, owner-reference garbage collection,
//! ServiceAccount tokens and RBAC. One API server is shared by the tests of this file; each
//! test works in its own namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use signet_testkit::ApiServer;
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
