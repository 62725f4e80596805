//! `signet-providers` against moto: AWS Secrets Manager (string and binary secrets, stages and
//! version ids, properties, fields) and SSM Parameter Store (SecureString decryption, versions and
//! labels, paths over several pages), and the errors (not found, unreachable).

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_ssm::types::ParameterType;
use signet_providers::{
    AwsConfig, AwsStaticCredentials, Error, ParameterStore, RemoteRef, SecretProvider,
    SecretsManager,
};
use signet_testkit::{Moto, unique_name};
use zeroize::Zeroizing;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn moto() -> &'static Moto {
    tokio::task::spawn_blocking(Moto::shared)
        .await
        .expect("the moto start task panicked")
        .unwrap_or_else(|e| panic!("moto is needed for this test (scripts/bootstrap): {e}"))
}

fn provider_config(moto: &Moto) -> AwsConfig {
    AwsConfig {
        region: Moto::REGION.to_owned(),
        endpoint_url: Some(moto.endpoint_url()),
        credentials: Some(AwsStaticCredentials {
            access_key_id: Moto::ACCESS_KEY_ID.to_owned(),
            secret_access_key: Zeroizing::new(Moto::SECRET_ACCESS_KEY.to_owned()),
            session_token: None,
        }),
        role_arn: None,
    }
}

/// The SDK configuration the fixtures are made with.
async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(Moto::REGION))
        .endpoint_url(moto.endpoint_url())
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            Moto::ACCESS_KEY_ID,
            Moto::SECRET_ACCESS_KEY,
            None,
            None,
            "providers-test",
        ))
        .load()
        .await
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("utf-8 value")
}

fn texts(map: &BTreeMap<String, signet_providers::SecretBytes>) -> BTreeMap<&str, &str> {
    map.iter().map(|(k, v)| (k.as_str(), text(v))).collect()
}

fn assert_not_found(error: &Error, key: &str, moto: &Moto) {
    assert_eq!(error.reason(), "NotFound", "{error}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains(key), "{message}");
    assert!(message.contains(&moto.endpoint_url()), "{message}");
}

#[tokio::test]
async fn secrets_manager_string_secret_whole_property_and_fields() -> TestResult {
    let moto = moto().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk(moto).await);
    let name = unique_name("app/db");
    let value = r#"{"user":"app","password":"pw-1","port":5432,"nested":{"a":{"b":"deep"}},"tls.key":"KEY"}"#;
    client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await?;

    let sm = SecretsManager::new(provider_config(moto)).await?;
    assert_eq!(sm.kind(), "aws-secretsmanager");
    sm.validate().await?;
    assert_eq!(text(&sm.get(&RemoteRef::new(&name)).await?), value);
    for (property, want) in [
        ("password", "pw-1"),
        ("port", "5432"),
        ("nested.a.b", "deep"),
        ("nested.a", r#"{"b":"deep"}"#),
        ("tls.key", "KEY"),
    ] {
        let got = sm
            .get(&RemoteRef::new(&name).with_property(property))
            .await?;
        assert_eq!(text(&got), want, "property {property}");
    }
    let error = sm
        .get(&RemoteRef::new(&name).with_property("nested.x"))
        .await
        .expect_err("no such property");
    assert_eq!(error.reason(), "InvalidProperty");
    assert!(!format!("{error} {error:?}").contains("pw-1"), "{error}");

    let all = sm.get_all(&RemoteRef::new(&name)).await?;
    assert_eq!(
        texts(&all),
        BTreeMap::from([
            ("nested", r#"{"a":{"b":"deep"}}"#),
            ("password", "pw-1"),
            ("port", "5432"),
            ("tls.key", "KEY"),
            ("user", "app"),
        ])
    );

    // By ARN too.
    let arn = client
        .describe_secret()
        .secret_id(&name)
        .send()
        .await?
        .arn
        .expect("an ARN");
    assert_eq!(
        text(&sm.get(&RemoteRef::new(&arn).with_property("user")).await?),
        "app"
    );

    // A plain (non-JSON) secret: whole value fine, fields refused without showing the value.
    let plain = unique_name("plain");
    client
        .create_secret()
        .name(&plain)
        .secret_string("plain-canary-value")
        .send()
        .await?;
    assert_eq!(
        text(&sm.get(&RemoteRef::new(&plain)).await?),
        "plain-canary-value"
    );
    let error = sm
        .get_all(&RemoteRef::new(&plain))
        .await
        .expect_err("not JSON");
    assert_eq!(error.reason(), "InvalidValue");
    assert!(!format!("{error} {error:?}").contains("canary"), "{error}");
    Ok(())
}

#[tokio::test]
async fn secrets_manager_binary_secrets() -> TestResult {
    let moto = moto().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk(moto).await);
    let bytes = vec![0u8, 1, 2, 0xfe, 0xff, b'\n'];
    let name = unique_name("binary");
    client
        .create_secret()
        .name(&name)
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await?;
    let json_name = unique_name("binary-json");
    client
        .create_secret()
        .name(&json_name)
        .secret_binary(Blob::new(br#"{"token":"from-binary"}"#.to_vec()))
        .send()
        .await?;

    let sm = SecretsManager::new(provider_config(moto)).await?;
    assert_eq!(sm.get(&RemoteRef::new(&name)).await?.as_slice(), bytes);
    assert_eq!(
        text(
            &sm.get(&RemoteRef::new(&json_name).with_property("token"))
                .await?
        ),
        "from-binary"
    );
    Ok(())
}

#[tokio::test]
async fn secrets_manager_stages_and_version_ids() -> TestResult {
    let moto = moto().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk(moto).await);
    let name = unique_name("rotating");
    let first = client
        .create_secret()
        .name(&name)
        .secret_string(r#"{"password":"old"}"#)
        .send()
        .await?
        .version_id
        .expect("a version id");
    let second = client
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"password":"new"}"#)
        .send()
        .await?
        .version_id
        .expect("a version id");
    assert_ne!(first, second);

    let sm = SecretsManager::new(provider_config(moto)).await?;
    let password = RemoteRef::new(&name).with_property("password");
    for (version, want) in [
        (None, "new"),
        (Some("AWSCURRENT".to_owned()), "new"),
        (Some("AWSPREVIOUS".to_owned()), "old"),
        (Some(format!("uuid/{first}")), "old"),
        (Some(format!("uuid/{second}")), "new"),
    ] {
        let mut reference = password.clone();
        reference.version = version.clone();
        assert_eq!(
            text(&sm.get(&reference).await?),
            want,
            "version {version:?}"
        );
    }
    let previous = sm
        .get_all(&RemoteRef::new(&name).with_version("AWSPREVIOUS"))
        .await?;
    assert_eq!(texts(&previous), BTreeMap::from([("password", "old")]));

    let error = sm
        .get(&RemoteRef::new(&name).with_version("uuid/00000000-0000-0000-0000-000000000000"))
        .await
        .expect_err("no such version");
    assert_not_found(&error, &name, moto);
    assert!(error.to_string().contains("uuid/0000"), "{error}");
    Ok(())
}

#[tokio::test]
async fn secrets_manager_missing_and_deleted_secrets_are_not_found() -> TestResult {
    let moto = moto().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk(moto).await);
    let sm = SecretsManager::new(provider_config(moto)).await?;
    let missing = unique_name("missing");
    let error = sm
        .get(&RemoteRef::new(&missing))
        .await
        .expect_err("never created");
    assert_not_found(&error, &missing, moto);
    let error = sm
        .get_all(&RemoteRef::new(&missing))
        .await
        .expect_err("never created");
    assert_not_found(&error, &missing, moto);

    let deleted = unique_name("deleted");
    client
        .create_secret()
        .name(&deleted)
        .secret_string("gone")
        .send()
        .await?;
    client
        .delete_secret()
        .secret_id(&deleted)
        .recovery_window_in_days(7)
        .send()
        .await?;
    let error = sm
        .get(&RemoteRef::new(&deleted))
        .await
        .expect_err("scheduled for deletion");
    assert_not_found(&error, &deleted, moto);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_and_retryable() -> TestResult {
    let port = signet_testkit::free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut config = AwsConfig {
        region: Moto::REGION.to_owned(),
        endpoint_url: Some(endpoint.clone()),
        credentials: Some(AwsStaticCredentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: Zeroizing::new("canary-secret-access-key".to_owned()),
            session_token: Some(Zeroizing::new("canary-session-token".to_owned())),
        }),
        role_arn: None,
    };
    let sm = SecretsManager::new(config.clone()).await?;
    let ssm = ParameterStore::new(config.clone()).await?;
    for shown in [format!("{config:?}"), format!("{sm:?}"), format!("{ssm:?}")] {
        assert!(
            !shown.contains("canary"),
            "Debug shows a credential: {shown}"
        );
    }
    assert!(format!("{sm:?}").contains(&endpoint));
    let errors = [
        sm.get(&RemoteRef::new("app"))
            .await
            .expect_err("closed port"),
        sm.validate().await.expect_err("closed port"),
        ssm.get(&RemoteRef::new("/app/x"))
            .await
            .expect_err("closed port"),
        ssm.get_by_path("/app", true)
            .await
            .expect_err("closed port"),
        ssm.validate().await.expect_err("closed port"),
    ];
    for error in errors {
        assert_eq!(error.reason(), "ProviderUnavailable", "{error}");
        assert!(error.is_retryable());
        let shown = format!("{error} {error:?}");
        assert!(shown.contains(&endpoint), "{shown}");
        assert!(!shown.contains("canary"), "{shown}");
    }
    config.region = String::new();
    config.endpoint_url = Some("::not a url".into());
    assert_eq!(
        SecretsManager::new(config)
            .await
            .expect_err("bad endpoint")
            .reason(),
        "InvalidConfig"
    );
    Ok(())
}

/// Puts a parameter (overwriting); its new version.
async fn put(
    client: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    kind: ParameterType,
) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await?
        .version)
}

#[tokio::test]
async fn parameter_store_decrypts_secure_strings_and_reads_versions_and_labels() -> TestResult {
    let moto = moto().await;
    let client = aws_sdk_ssm::Client::new(&sdk(moto).await);
    let name = format!("/{}/db/password", unique_name("params"));
    assert_eq!(
        put(&client, &name, "first", ParameterType::SecureString).await?,
        1
    );
    assert_eq!(
        put(&client, &name, "second", ParameterType::SecureString).await?,
        2
    );
    // What is stored is encrypted: reading without decryption does not give the value.
    let raw = client.get_parameter().name(&name).send().await?;
    assert_ne!(
        raw.parameter.and_then(|p| p.value).as_deref(),
        Some("second")
    );
    client
        .label_parameter_version()
        .name(&name)
        .parameter_version(1)
        .labels("previous")
        .send()
        .await?;

    let ssm = ParameterStore::new(provider_config(moto)).await?;
    assert_eq!(ssm.kind(), "aws-ssm");
    ssm.validate().await?;
    for (version, want) in [
        (None, "second"),
        (Some("2"), "second"),
        (Some("1"), "first"),
        (Some("previous"), "first"),
    ] {
        let mut reference = RemoteRef::new(&name);
        reference.version = version.map(str::to_owned);
        assert_eq!(
            text(&ssm.get(&reference).await?),
            want,
            "version {version:?}"
        );
    }
    let error = ssm
        .get(&RemoteRef::new(&name).with_version("9"))
        .await
        .expect_err("no version 9");
    assert_not_found(&error, &name, moto);
    let missing = format!("/{}/nothing", unique_name("params"));
    let error = ssm
        .get(&RemoteRef::new(&missing))
        .await
        .expect_err("never created");
    assert_not_found(&error, &missing, moto);
    Ok(())
}

#[tokio::test]
async fn parameter_store_json_parameters_give_properties_and_fields() -> TestResult {
    let moto = moto().await;
    let client = aws_sdk_ssm::Client::new(&sdk(moto).await);
    let name = format!("/{}/config", unique_name("params"));
    put(
        &client,
        &name,
        r#"{"user":"app","db":{"host":"db1","port":5432}}"#,
        ParameterType::SecureString,
    )
    .await?;
    let ssm = ParameterStore::new(provider_config(moto)).await?;
    assert_eq!(
        text(
            &ssm.get(&RemoteRef::new(&name).with_property("db.host"))
                .await?
        ),
        "db1"
    );
    let all = ssm.get_all(&RemoteRef::new(&name)).await?;
    assert_eq!(
        texts(&all),
        BTreeMap::from([("db", r#"{"host":"db1","port":5432}"#), ("user", "app")])
    );
    let db = ssm
        .get_all(&RemoteRef::new(&name).with_property("db"))
        .await?;
    assert_eq!(
        texts(&db),
        BTreeMap::from([("host", "db1"), ("port", "5432")])
    );
    Ok(())
}

#[tokio::test]
async fn parameter_store_reads_a_whole_path_over_several_pages() -> TestResult {
    let moto = moto().await;
    let client = aws_sdk_ssm::Client::new(&sdk(moto).await);
    let root = format!("/{}", unique_name("params-path"));
    let mut want = BTreeMap::new();
    // 13 direct children (more than one page of 10), 2 nested, and a neighbour outside.
    for i in 0..13 {
        let kind = if i % 2 == 0 {
            ParameterType::SecureString
        } else {
            ParameterType::String
        };
        let value = format!("value-{i}");
        put(&client, &format!("{root}/app/key{i:02}"), &value, kind).await?;
        want.insert(format!("key{i:02}"), value);
    }
    for (name, value) in [("sub/one", "nested-1"), ("sub/deeper/two", "nested-2")] {
        put(
            &client,
            &format!("{root}/app/{name}"),
            value,
            ParameterType::SecureString,
        )
        .await?;
    }
    put(
        &client,
        &format!("{root}/application/other"),
        "outside",
        ParameterType::String,
    )
    .await?;

    let ssm = ParameterStore::new(provider_config(moto)).await?;
    let direct = ssm.get_by_path(&format!("{root}/app"), false).await?;
    let direct: BTreeMap<String, String> = direct
        .iter()
        .map(|(k, v)| (k.clone(), text(v).to_owned()))
        .collect();
    assert_eq!(direct, want);

    let mut everything = want.clone();
    everything.insert("sub/one".into(), "nested-1".into());
    everything.insert("sub/deeper/two".into(), "nested-2".into());
    for path in [format!("{root}/app/"), format!("{root}/app")] {
        let all = ssm.get_by_path(&path, true).await?;
        let all: BTreeMap<String, String> = all
            .iter()
            .map(|(k, v)| (k.clone(), text(v).to_owned()))
            .collect();
        assert_eq!(all, everything, "path {path}");
    }
    // A key ending in `/` makes get_all read the path recursively.
    let all = ssm.get_all(&RemoteRef::new(format!("{root}/app/"))).await?;
    assert_eq!(all.len(), 15);
    assert_eq!(text(&all["sub/deeper/two"]), "nested-2");
    assert_eq!(text(&all["key00"]), "value-0");

    let nothing = ssm
        .get_by_path(&format!("/{}", unique_name("empty")), true)
        .await?;
    assert!(nothing.is_empty());
    Ok(())
}

/// A private `moto_server` on a port of the test's choosing, stopped when dropped.
struct PrivateMoto(std::process::Child);

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_moto(port: u16) -> PrivateMoto {
    let program = signet_testkit::peer_path("moto_server")
        .unwrap_or_else(|e| panic!("moto is needed for this test (scripts/bootstrap): {e}"));
    let server = PrivateMoto(
        std::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{port}/moto-api/"))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server did not answer within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    server
}

#[tokio::test]
async fn providers_recover_when_the_endpoint_comes_back() -> TestResult {
    let port = signet_testkit::free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = AwsConfig {
        region: Moto::REGION.to_owned(),
        endpoint_url: Some(endpoint.clone()),
        credentials: Some(AwsStaticCredentials {
            access_key_id: Moto::ACCESS_KEY_ID.to_owned(),
            secret_access_key: Zeroizing::new(Moto::SECRET_ACCESS_KEY.to_owned()),
            session_token: None,
        }),
        role_arn: None,
    };
    let fixtures = || async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(Moto::REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                Moto::ACCESS_KEY_ID,
                Moto::SECRET_ACCESS_KEY,
                None,
                None,
                "providers-test",
            ))
            .load()
            .await;
        (
            aws_sdk_secretsmanager::Client::new(&sdk),
            aws_sdk_ssm::Client::new(&sdk),
        )
    };
    let create = |value: &'static str| async move {
        let (sm, ssm) = fixtures().await;
        sm.create_secret()
            .name("restart")
            .secret_string(value)
            .send()
            .await?;
        put(&ssm, "/restart/value", value, ParameterType::SecureString).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    };

    let server = start_moto(port).await;
    create("before").await?;
    let sm = SecretsManager::new(config.clone()).await?;
    let ssm = ParameterStore::new(config).await?;
    assert_eq!(text(&sm.get(&RemoteRef::new("restart")).await?), "before");
    assert_eq!(
        text(&ssm.get(&RemoteRef::new("/restart/value")).await?),
        "before"
    );

    drop(server);
    for error in [
        sm.get(&RemoteRef::new("restart")).await.expect_err("down"),
        ssm.get(&RemoteRef::new("/restart/value"))
            .await
            .expect_err("down"),
    ] {
        assert_eq!(error.reason(), "ProviderUnavailable", "{error}");
        assert!(error.is_retryable());
    }

    // A fresh moto on the same address (it kept nothing): the same providers work again.
    let _server = start_moto(port).await;
    create("after").await?;
    assert_eq!(text(&sm.get(&RemoteRef::new("restart")).await?), "after");
    assert_eq!(
        text(&ssm.get(&RemoteRef::new("/restart/value")).await?),
        "after"
    );
    sm.validate().await?;
    ssm.validate().await?;
    Ok(())
}
