//! `signet git`: a scripted repository where `git merge` merges concurrent edits of sops files of
//! every store through the merge driver (upstream sops opens the result; only changed values have
//! new ciphertext), a real conflict fails naming the key and leaves no plaintext anywhere (work
//! tree, `.git`, git's object store), `git diff` / `git log -p` show plaintext through the
//! textconv with no terminal and a timeout, and `signet git setup` is idempotent.

use signet_tests::sandbox::{Run, Sandbox, signet_bin};
use std::collections::BTreeSet;
use std::path::Path;

/// Plaintext that must never reach a file on disk or git's object store unencrypted.
const CANARY: &str = "canary-git-4b7d1c";

/// A repository with an age key, a `.sops.yaml` rule for `*.enc.*` and `signet git setup` done.
fn repo() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.signet(["keygen", "-o", "keys.txt"]).ok();
    let text = String::from_utf8(sb.read("keys.txt")).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned();
    // The key lives outside the repository: its directory is checked for the canary.
    std::fs::create_dir_all(sb.join("repo")).unwrap();
    sb.env("SOPS_AGE_KEY_FILE", sb.join("keys.txt"));
    let bin_dir = signet_bin().parent().unwrap().to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir];
    dirs.extend(std::env::split_paths(&path));
    sb.env("PATH", std::env::join_paths(dirs).unwrap());
    sb.env("GIT_PAGER", "cat");
    sb.env("GIT_TERMINAL_PROMPT", "0");
    sb.env("GIT_CONFIG_NOSYSTEM", "1");
    sb.env("GIT_AUTHOR_NAME", "t");
    sb.env("GIT_AUTHOR_EMAIL", "t@example.invalid");
    sb.env("GIT_COMMITTER_NAME", "t");
    sb.env("GIT_COMMITTER_EMAIL", "t@example.invalid");
    sb.write(
        "repo/.sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: \\.enc\\.(yaml|json|env|ini)$\n    age: {recipient}\n"
        ),
    );
    git(&sb, &["init", "-q", "-b", "main"]).ok();
    in_repo(&sb, signet_bin(), &["git", "setup"]).ok();
    git(&sb, &["add", "-A"]).ok();
    git(&sb, &["commit", "-q", "-m", "setup"]).ok();
    sb
}

/// `program ARGS` in the repository, stdin closed, killed after 60 s (a hang fails the test).
fn in_repo(sb: &Sandbox, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Run {
    let mut cmd = sb.command("timeout");
    cmd.arg("60").arg(program).args(args);
    cmd.current_dir(sb.join("repo"));
    let run = Run::of(cmd);
    assert_ne!(run.code(), 124, "{} timed out", run.cmdline);
    run
}

fn git(sb: &Sandbox, args: &[&str]) -> Run {
    in_repo(sb, "git", args)
}

fn signet(sb: &Sandbox, args: &[&str]) -> Run {
    in_repo(sb, signet_bin(), args)
}

/// The `ENC[…]` values of an encrypted file, the MAC left out.
fn ciphertexts(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.contains("mac"))
        .flat_map(|l| {
            l.match_indices("ENC[").map(move |(i, _)| {
                let end = l[i..].find(']').map_or(l.len(), |e| i + e + 1);
                l[i..end].to_owned()
            })
        })
        .collect()
}

/// Everything under `dir`, and every object git stores (decompressed), must be free of `needle`.
fn assert_nowhere(sb: &Sandbox, needle: &str) {
    fn walk(dir: &Path, needle: &[u8]) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, needle);
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "plaintext found in {}",
                    path.display()
                );
            }
        }
    }
    walk(&sb.join("repo"), needle.as_bytes());
    let objects = git(sb, &["cat-file", "--batch-all-objects", "--batch"]).ok();
    assert!(!objects.is_empty());
    assert!(
        !objects
            .windows(needle.len())
            .any(|w| w == needle.as_bytes()),
        "plaintext found in git's object store"
    );
}

/// A store's test file: name, plain content, and (path, new value, the text it shows as) for our
/// edit and theirs.
struct Case {
    file: &'static str,
    plain: String,
    ours: (&'static str, &'static str),
    theirs: (&'static str, &'static str),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            file: "app.enc.yaml",
            plain: format!(
                "# database login\nuser: admin\npassword: {CANARY}\nnested:\n    host: db\n    port: 5432\nlist:\n    - a\n    - b\n"
            ),
            ours: (r#"["user"]"#, "root"),
            theirs: (r#"["nested"]["host"]"#, "db2"),
        },
        Case {
            file: "app.enc.json",
            plain: format!(
                "{{\n\t\"user\": \"admin\",\n\t\"password\": \"{CANARY}\",\n\t\"nested\": {{\n\t\t\"host\": \"db\"\n\t}}\n}}\n"
            ),
            ours: (r#"["user"]"#, "root"),
            theirs: (r#"["nested"]["host"]"#, "db2"),
        },
        Case {
            file: "app.enc.env",
            plain: format!("USER=admin\nPASSWORD={CANARY}\nHOST=db\n"),
            ours: (r#"["USER"]"#, "root"),
            theirs: (r#"["HOST"]"#, "db2"),
        },
        Case {
            file: "app.enc.ini",
            plain: format!("[db]\nuser = admin\npassword = {CANARY}\n\n[net]\nhost = db\n"),
            ours: (r#"["db"]["user"]"#, "root"),
            theirs: (r#"["net"]["host"]"#, "db2"),
        },
    ]
}

/// Writes and encrypts every case's file in place and commits them on `main`.
fn commit_encrypted(sb: &Sandbox, cases: &[Case]) {
    for c in cases {
        sb.write(&format!("repo/{}", c.file), &c.plain);
        signet(sb, &["encrypt", "--in-place", c.file]).ok();
    }
    git(sb, &["add", "-A"]).ok();
    git(sb, &["commit", "-q", "-m", "secrets"]).ok();
}

fn set(sb: &Sandbox, file: &str, path: &str, value: &str) {
    signet(sb, &["set", file, path, &format!("\"{value}\"")]).ok();
}

#[test]
fn git_merge_merges_edits_of_different_keys_in_every_store() {
    let sb = repo();
    let cases = cases();
    commit_encrypted(&sb, &cases);
    git(&sb, &["checkout", "-q", "-b", "theirs"]).ok();
    for c in &cases {
        set(&sb, c.file, c.theirs.0, c.theirs.1);
    }
    git(&sb, &["commit", "-q", "-am", "their edits"]).ok();
    git(&sb, &["checkout", "-q", "main"]).ok();
    for c in &cases {
        set(&sb, c.file, c.ours.0, c.ours.1);
    }
    git(&sb, &["commit", "-q", "-am", "our edits"]).ok();

    let merge = git(&sb, &["merge", "--no-edit", "theirs"]);
    merge.ok();
    assert!(!merge.stdout().contains(CANARY) && !merge.stderr().contains(CANARY));
    assert!(git(&sb, &["status", "--porcelain"]).stdout().is_empty());
    for c in &cases {
        let show = |rev: &str| {
            String::from_utf8(git(&sb, &["show", &format!("{rev}:{}", c.file)]).ok()).unwrap()
        };
        let (merged, ours, theirs, base) = (
            show("HEAD"),
            show("HEAD^1"),
            show("HEAD^2"),
            show("HEAD~1~1"),
        );
        assert!(!merged.contains(CANARY), "{}", c.file);
        // Upstream sops opens the result, MAC checked, with both edits in it.
        let mut cmd = sb.command(signet_tests::sandbox::peer("sops"));
        cmd.args(["decrypt", c.file]).current_dir(sb.join("repo"));
        let plain = String::from_utf8(Run::of(cmd).ok()).unwrap();
        for expect in [c.ours.1, c.theirs.1, CANARY] {
            assert!(
                plain.contains(expect),
                "{}: {expect} missing:\n{plain}",
                c.file
            );
        }
        assert!(
            !plain.contains("admin"),
            "{}: our edit lost:\n{plain}",
            c.file
        );
        // Only changed values have new ciphertext: every value's ciphertext is one of a parent's,
        // and every value both parents kept from the base is unchanged.
        let (m, o, t, b) = (
            ciphertexts(&merged),
            ciphertexts(&ours),
            ciphertexts(&theirs),
            ciphertexts(&base),
        );
        assert!(!m.is_empty());
        assert!(
            m.iter().all(|x| o.contains(x) || t.contains(x)),
            "{}: new ciphertext in the merge",
            c.file
        );
        let kept: BTreeSet<_> = o.intersection(&t).cloned().collect();
        assert!(kept.is_subset(&m) && kept.is_subset(&b), "{}", c.file);
        assert_eq!(m.len(), o.len(), "{}: one ciphertext per value", c.file);
        assert_eq!(
            m.difference(&b).count(),
            2,
            "{}: two values changed",
            c.file
        );
    }
}

#[test]
fn a_conflicting_edit_fails_naming_the_key_and_leaves_no_plaintext() {
    let sb = repo();
    let cases = cases();
    commit_encrypted(&sb, &cases[..1]);
    let ours_secret = format!("{CANARY}-ours");
    let theirs_secret = format!("{CANARY}-theirs");
    git(&sb, &["checkout", "-q", "-b", "theirs"]).ok();
    set(&sb, "app.enc.yaml", r#"["password"]"#, &theirs_secret);
    git(&sb, &["commit", "-q", "-am", "theirs"]).ok();
    git(&sb, &["checkout", "-q", "main"]).ok();
    set(&sb, "app.enc.yaml", r#"["password"]"#, &ours_secret);
    set(&sb, "app.enc.yaml", r#"["user"]"#, "root");
    git(&sb, &["commit", "-q", "-am", "ours"]).ok();
    let ours_file = sb.read("repo/app.enc.yaml");

    let merge = git(&sb, &["merge", "--no-edit", "theirs"]);
    assert_ne!(merge.code(), 0, "the merge must fail");
    let said = format!("{}{}", merge.stdout(), merge.stderr());
    assert!(
        said.contains(r#"["password"] (changed differently on both sides)"#),
        "{said}"
    );
    assert!(!said.contains(r#"["user"]"#), "{said}");
    assert!(!said.contains(CANARY), "{said}");
    assert!(
        git(&sb, &["status", "--porcelain"])
            .stdout()
            .contains("UU app.enc.yaml"),
        "git records the conflict"
    );
    // The work tree keeps ours, encrypted; no plaintext anywhere.
    assert_eq!(sb.read("repo/app.enc.yaml"), ours_file);
    for needle in [CANARY, &ours_secret, &theirs_secret] {
        assert_nowhere(&sb, needle);
    }
}

#[test]
fn the_driver_refuses_without_a_key_and_merges_plain_files_as_text() {
    let mut sb = repo();
    let cases = cases();
    commit_encrypted(&sb, &cases[..1]);
    sb.write("repo/notes.enc.yaml", "a: 1\nb: 2\nc: 3\nd: 4\n");
    git(&sb, &["add", "-A"]).ok();
    git(&sb, &["commit", "-q", "-m", "plain"]).ok();
    git(&sb, &["checkout", "-q", "-b", "theirs"]).ok();
    set(&sb, "app.enc.yaml", r#"["user"]"#, "root");
    sb.write("repo/notes.enc.yaml", "a: 1\nb: 2\nc: 3\nd: 5\n");
    git(&sb, &["commit", "-q", "-am", "theirs"]).ok();
    git(&sb, &["checkout", "-q", "main"]).ok();
    set(&sb, "app.enc.yaml", r#"["nested"]["host"]"#, "db2");
    sb.write("repo/notes.enc.yaml", "a: 0\nb: 2\nc: 3\nd: 4\n");
    git(&sb, &["commit", "-q", "-am", "ours"]).ok();
    let ours_file = sb.read("repo/app.enc.yaml");

    sb.env("SOPS_AGE_KEY_FILE", sb.join("no-such-key.txt"));
    let merge = git(&sb, &["merge", "--no-edit", "theirs"]);
    assert_ne!(merge.code(), 0);
    let said = format!("{}{}", merge.stdout(), merge.stderr());
    assert!(said.contains("app.enc.yaml (ours)"), "{said}");
    assert_eq!(sb.read("repo/app.enc.yaml"), ours_file);
    // The file that is not a sops file went through `git merge-file`, cleanly.
    assert_eq!(sb.read("repo/notes.enc.yaml"), b"a: 0\nb: 2\nc: 3\nd: 5\n");
}

#[test]
fn git_diff_and_log_show_plaintext_without_a_terminal() {
    let mut sb = repo();
    let cases = cases();
    commit_encrypted(&sb, &cases);
    for c in &cases {
        set(&sb, c.file, c.ours.0, c.ours.1);
    }
    // Work tree against the index.
    let diff = String::from_utf8(git(&sb, &["diff"]).ok()).unwrap();
    for line in [
        "-user: admin",
        "+user: root",
        "-USER=admin",
        "+USER=root",
        "+user     = root",
    ] {
        assert!(diff.lines().any(|l| l == line), "{line} missing:\n{diff}");
    }
    assert!(diff.contains("-\t\"user\": \"admin\","), "{diff}");
    assert!(!diff.contains("ENC["), "the textconv was not used:\n{diff}");
    git(&sb, &["commit", "-q", "-am", "edit"]).ok();
    let log = String::from_utf8(git(&sb, &["log", "-p", "--", "app.enc.yaml"]).ok()).unwrap();
    assert!(log.lines().any(|l| l == "+user: root"), "{log}");
    assert!(
        log.lines().any(|l| l == format!("+password: {CANARY}")),
        "{log}"
    );
    // No textconv cache: nothing decrypted is kept in git notes.
    assert!(
        git(&sb, &["notes", "--ref=textconv/signet", "list"])
            .stdout()
            .is_empty()
    );

    // Without a key: a summary, still exit 0, naming what changed by key path.
    sb.env("SOPS_AGE_KEY_FILE", sb.join("no-such-key.txt"));
    let diff = String::from_utf8(
        git(
            &sb,
            &["diff", "-U100", "HEAD~1", "HEAD", "--", "app.enc.yaml"],
        )
        .ok(),
    )
    .unwrap();
    assert!(
        diff.contains("# sops file (no key available here opens it; summary only)"),
        "{diff}"
    );
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with(['+', '-']) && l.contains("ENC sha256:"))
        .collect();
    assert_eq!(changed.len(), 2, "{diff}");
    assert!(
        changed
            .iter()
            .all(|l| l.contains(r#"["user"]: ENC sha256:"#)),
        "{diff}"
    );
    assert!(diff.contains("# key group 1: age age1"), "{diff}");
    for line in [
        "# mac: present",
        "# encrypted values: 6",
        "# lastmodified: 20",
    ] {
        assert!(diff.contains(line), "{line} missing:\n{diff}");
    }
    assert!(!diff.contains(CANARY) && !diff.contains("admin"), "{diff}");
}

#[test]
fn git_diff_of_a_sealed_secret_names_the_changed_item() {
    let sb = repo();
    let manifest = |password: &str| {
        format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: app\n  namespace: prod\nspec:\n  encryptedData:\n    password: {password}\n    user: AgB0dXNlcg==\n  template:\n    metadata:\n      name: app\n      namespace: prod\n"
        )
    };
    let attributes = String::from_utf8(sb.read("repo/.gitattributes")).unwrap();
    sb.write(
        "repo/.gitattributes",
        format!("{attributes}*.sealed.yaml diff=signet\n"),
    );
    sb.write("repo/app.sealed.yaml", manifest("AgAxMTExMQ=="));
    // A file the attributes route to the textconv that is neither: shown as it is.
    sb.write("repo/notes.enc.yaml", "a: 1\n");
    git(&sb, &["add", "-A"]).ok();
    git(&sb, &["commit", "-q", "-m", "sealed"]).ok();
    sb.write("repo/app.sealed.yaml", manifest("AgAyMjIyMg=="));
    sb.write("repo/notes.enc.yaml", "a: 2\n");
    let plain = String::from_utf8(git(&sb, &["diff", "--", "notes.enc.yaml"]).ok()).unwrap();
    assert!(plain.contains("\n-a: 1\n+a: 2\n"), "{plain}");
    let diff = String::from_utf8(git(&sb, &["diff", "--", "app.sealed.yaml"]).ok()).unwrap();
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert_eq!(changed.len(), 2, "{diff}");
    assert!(
        changed[0].starts_with("-  encryptedData password: sha256:"),
        "{diff}"
    );
    assert!(
        changed[1].starts_with("+  encryptedData password: sha256:"),
        "{diff}"
    );
    assert!(
        diff.contains(" SealedSecret app (apiVersion bitnami.com/v1alpha1)"),
        "{diff}"
    );
    assert!(diff.contains("   scope: strict"), "{diff}");
}

#[test]
fn setup_writes_attributes_from_sops_yaml_and_config_and_is_idempotent() {
    let sb = repo();
    let attributes = String::from_utf8(sb.read("repo/.gitattributes")).unwrap();
    for ext in ["yaml", "json", "env", "ini"] {
        let line = format!("*.enc.{ext} merge=signet diff=signet");
        assert!(attributes.lines().any(|l| l == line), "{attributes}");
    }
    let config = |key: &str| {
        git(&sb, &["config", "--get", key])
            .stdout()
            .trim()
            .to_owned()
    };
    assert_eq!(
        config("merge.signet.driver"),
        "signet git merge-driver %O %A %B %P"
    );
    assert_eq!(config("diff.signet.textconv"), "signet git diff");
    assert_eq!(config("diff.signet.cachetextconv"), "false");
    let check = git(
        &sb,
        &["check-attr", "merge", "diff", "--", "x/app.enc.json"],
    )
    .stdout();
    assert_eq!(
        check,
        "x/app.enc.json: merge: signet\nx/app.enc.json: diff: signet\n"
    );

    let git_config = sb.read("repo/.git/config");
    let again = signet(&sb, &["git", "setup"]);
    let said = String::from_utf8(again.ok()).unwrap();
    assert!(said.lines().all(|l| l.ends_with(": unchanged")), "{said}");
    assert_eq!(sb.read("repo/.gitattributes"), attributes.as_bytes());
    assert_eq!(sb.read("repo/.git/config"), git_config);

    // --global: the user's config and global attributes file, default patterns.
    signet(&sb, &["git", "setup", "--global"]).ok();
    let global = String::from_utf8(sb.read("home/.config/git/attributes")).unwrap();
    assert!(
        global
            .lines()
            .any(|l| l == "*.enc.yaml merge=signet diff=signet"),
        "{global}"
    );
    let gitconfig = String::from_utf8(sb.read("home/.gitconfig")).unwrap();
    assert!(
        gitconfig.contains("driver = signet git merge-driver %O %A %B %P"),
        "{gitconfig}"
    );
}

#[test]
fn edits_of_different_items_of_a_list_merge() {
    let sb = repo();
    sb.write(
        "repo/users.enc.yaml",
        format!(
            "users:\n    - name: a\n      pw: {CANARY}-a\n    - name: b\n      pw: {CANARY}-b\n"
        ),
    );
    signet(&sb, &["encrypt", "--in-place", "users.enc.yaml"]).ok();
    git(&sb, &["add", "-A"]).ok();
    git(&sb, &["commit", "-q", "-m", "users"]).ok();
    git(&sb, &["checkout", "-q", "-b", "theirs"]).ok();
    set(&sb, "users.enc.yaml", r#"["users"][1]["pw"]"#, "new-b");
    git(&sb, &["commit", "-q", "-am", "theirs"]).ok();
    git(&sb, &["checkout", "-q", "main"]).ok();
    set(&sb, "users.enc.yaml", r#"["users"][0]["pw"]"#, "new-a");
    git(&sb, &["commit", "-q", "-am", "ours"]).ok();
    git(&sb, &["merge", "--no-edit", "theirs"]).ok();
    let mut cmd = sb.command(signet_tests::sandbox::peer("sops"));
    cmd.args(["decrypt", "users.enc.yaml"])
        .current_dir(sb.join("repo"));
    let plain = String::from_utf8(Run::of(cmd).ok()).unwrap();
    assert_eq!(
        plain,
        "users:\n    - name: a\n      pw: new-a\n    - name: b\n      pw: new-b\n"
    );
}
