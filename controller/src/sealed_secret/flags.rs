//! Flags of the Bitnami controller (v0.40.0) that users set in its chart and that change what it
//! does: each is accepted with Bitnami's meaning, or refused when the process starts with a message
//! saying why and what to use instead — never silently ignored. (`--rate-limit` and
//! `--rate-limit-burst` are Signet's own flags already, with the same meaning.)
//!
//! Bitnami's boolean flags are Go flags: `--flag`, `--flag=true`, `--flag=false`.

use clap::ArgAction;

/// The Bitnami flags `signet-controller` understands.
#[derive(Debug, Clone, clap::Args)]
pub struct BitnamiFlags {
    /// Bitnami's `--all-namespaces`: `false` watches only the controller namespace (as
    /// `--watch-namespace=<controller namespace>`).
    #[arg(long, env = "SIGNET_ALL_NAMESPACES", default_value_t = true, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub all_namespaces: bool,
    /// Bitnami's `--additional-namespaces`: refused (Signet watches all namespaces or one).
    #[arg(long, env = "SIGNET_ADDITIONAL_NAMESPACES", value_parser = refuse_additional_namespaces)]
    pub additional_namespaces: Option<String>,
    /// Name prefix of generated sealing-key Secrets (Bitnami's `--key-prefix`; lower-case letters,
    /// digits and `-`, at most 245 characters).
    #[arg(long, env = "SIGNET_KEY_PREFIX", default_value = crate::keyring::SEALING_KEY_NAME_PREFIX,
        value_parser = parse_key_prefix)]
    pub key_prefix: String,
    /// Bitnami's `--update-status`: `true` (the default) is accepted; `false` is refused.
    #[arg(long, env = "SIGNET_UPDATE_STATUS", default_value_t = true, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", action = ArgAction::Set,
        value_parser = parse_update_status)]
    pub update_status: bool,
    /// Bitnami's `--max-unseal-retries`: refused (Signet retries when the object or the keys change
    /// and at every resync).
    #[arg(long, env = "SIGNET_MAX_UNSEAL_RETRIES", value_parser = refuse_max_unseal_retries)]
    pub max_unseal_retries: Option<u32>,
    /// Bitnami's `--kubeclient-qps`: a negative value (no client-side limit, what Signet does) is
    /// accepted; a limit is refused.
    #[arg(long, env = "SIGNET_KUBECLIENT_QPS", allow_negative_numbers = true,
        value_parser = parse_kubeclient_qps)]
    pub kubeclient_qps: Option<f64>,
    /// Bitnami's `--kubeclient-burst`: accepted only with a negative `--kubeclient-qps`, where it
    /// has no effect in client-go either.
    #[arg(long, env = "SIGNET_KUBECLIENT_BURST", requires = "kubeclient_qps")]
    pub kubeclient_burst: Option<u32>,
    /// Bitnami's `--metrics-omit-secret-labels`: accepted; Signet's metrics never carry
    /// SealedSecret names or namespaces, whatever its value.
    #[arg(long, env = "SIGNET_METRICS_OMIT_SECRET_LABELS", default_value_t = false, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub metrics_omit_secret_labels: bool,
}

impl BitnamiFlags {
    /// The namespace `--all-namespaces=false` restricts the controller to, if any.
    pub fn watch_namespace<'a>(&self, controller_namespace: &'a str) -> Option<&'a str> {
        (!self.all_namespaces).then_some(controller_namespace)
    }
}

fn refuse_additional_namespaces(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    Err(
        "Signet watches every namespace (the default) or the one --watch-namespace names; \
         to limit it to several, run it cluster-wide and grant its RBAC only in those namespaces"
            .to_owned(),
    )
}

/// Bitnami's `validateKeyPrefix`: what a Secret name may start with.
fn parse_key_prefix(text: &str) -> Result<String, String> {
    if text.len() > 245 {
        return Err(format!(
            "too long: at most 245 characters, got {}",
            text.len()
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "{bad:?} is not allowed: lower-case letters, digits and '-' only"
        ));
    }
    Ok(text.to_owned())
}

fn parse_update_status(text: &str) -> Result<bool, String> {
    match parse_go_bool(text)? {
        true => Ok(true),
        false => Err(
            "Signet always writes SealedSecret status: it is how a resync knows \
                      nothing changed and writes nothing"
                .to_owned(),
        ),
    }
}

fn refuse_max_unseal_retries(_: &str) -> Result<u32, String> {
    Err(
        "Signet does not retry a failed unseal a number of times: it retries when the \
         SealedSecret or the sealing keys change, and at every --resync-period"
            .to_owned(),
    )
}

fn parse_kubeclient_qps(text: &str) -> Result<f64, String> {
    let qps: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a number"))?;
    if qps < 0.0 {
        return Ok(qps);
    }
    Err(
        "Signet's Kubernetes client has no client-side rate limit (as Bitnami's with a negative \
         value); its load is bounded by --max-concurrent-reconciles, and the API server's \
         priority and fairness protects it"
            .to_owned(),
    )
}

/// Go's `strconv.ParseBool`, which Bitnami's boolean flags use.
fn parse_go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(format!("{other:?}: expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use crate::Args;
    use clap::Parser;

    fn parse(flags: &[&str]) -> Result<Args, String> {
        let mut argv = vec!["signet-controller"];
        argv.extend_from_slice(flags);
        Args::try_parse_from(argv).map_err(|e| e.to_string())
    }

    #[test]
    fn accepted_flags_keep_bitnamis_meaning() {
        let args = parse(&[
            "--controller-namespace=keys",
            "--all-namespaces=false",
            "--key-prefix=team-a-key",
            "--update-status",
            "--kubeclient-qps=-1",
            "--kubeclient-burst=50",
            "--metrics-omit-secret-labels",
            "--additional-namespaces=",
        ])
        .unwrap();
        let config = args.to_config();
        assert_eq!(config.watch_namespace.as_deref(), Some("keys"));
        assert_eq!(config.key_prefix, "team-a-key");
        assert!(args.bitnami.metrics_omit_secret_labels);
        // Defaults: every namespace, Bitnami's key prefix; an explicit namespace wins.
        let defaults = parse(&[]).unwrap().to_config();
        assert_eq!(defaults.watch_namespace, None);
        assert_eq!(defaults.key_prefix, "sealed-secrets-key");
        let explicit = parse(&["--all-namespaces=false", "--watch-namespace=app"]).unwrap();
        assert_eq!(explicit.to_config().watch_namespace.as_deref(), Some("app"));
        assert!(parse(&["--update-status=true", "--all-namespaces=true"]).is_ok());
    }

    /// docs/bitnami-compatibility.md: each flag also reads `SIGNET_<FLAG>`.
    #[test]
    fn each_flag_has_its_environment_variable() {
        use clap::CommandFactory;
        let command = Args::command();
        for id in [
            "all_namespaces",
            "additional_namespaces",
            "key_prefix",
            "update_status",
            "max_unseal_retries",
            "kubeclient_qps",
            "kubeclient_burst",
            "metrics_omit_secret_labels",
        ] {
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("no flag {id}"));
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            assert_eq!(env, format!("SIGNET_{}", id.to_uppercase()));
            assert_eq!(arg.get_long(), Some(id.replace('_', "-").as_str()));
        }
    }

    #[test]
    fn refused_flags_say_why() {
        for (flags, says) in [
            (
                &["--update-status=false"][..],
                "always writes SealedSecret status",
            ),
            (
                &["--additional-namespaces=a,b"],
                "grant its RBAC only in those namespaces",
            ),
            (
                &["--max-unseal-retries=5"],
                "does not retry a failed unseal",
            ),
            (&["--kubeclient-qps=5"], "no client-side rate limit"),
            (&["--kubeclient-burst=20"], "--kubeclient-qps"),
            (
                &["--key-prefix=Team_A"],
                "lower-case letters, digits and '-' only",
            ),
            (&["--update-status=maybe"], "expected true or false"),
        ] {
            let err = parse(flags).unwrap_err();
            assert!(err.contains(says), "{flags:?}: {err}");
        }
    }
}
