//! How a key is named in the inventory: `TYPE:ID`, one spelling per key kind, the same in every file
//! that needs it (so that two files encrypted to one key share one entry).

use signet_sops::metadata::MasterKeyEntry;

/// The inventory name of a sops master key: `age:RECIPIENT`, `pgp:FINGERPRINT`, `kms:ARN`,
/// `hc_vault:ADDRESS/v1/ENGINE/keys/NAME` (sops' own URI for a transit key),
/// `gcp_kms:RESOURCE_ID`, `azure_kv:VAULT_URL/keys/NAME/VERSION`.
pub fn sops_key(entry: &MasterKeyEntry) -> String {
    match entry {
        MasterKeyEntry::Age(a) => format!("age:{}", a.recipient.trim()),
        MasterKeyEntry::Pgp(p) => format!("pgp:{}", p.fp.trim().to_ascii_uppercase()),
        MasterKeyEntry::Kms(k) => format!("kms:{}", k.arn.trim()),
        MasterKeyEntry::HcVault(v) => format!(
            "hc_vault:{}/v1/{}/keys/{}",
            v.vault_address.trim_end_matches('/'),
            v.engine_path.trim_matches('/'),
            v.key_name
        ),
        MasterKeyEntry::Other(o) => {
            let field = |name: &str| {
                o.fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default()
            };
            match o.kind.as_str() {
                "gcp_kms" => format!("gcp_kms:{}", field("resource_id")),
                "azure_kv" => format!(
                    "azure_kv:{}/keys/{}/{}",
                    field("vault_url").trim_end_matches('/'),
                    field("name"),
                    field("version")
                ),
                kind => format!(
                    "{kind}:{}",
                    o.fields
                        .iter()
                        .find(|(k, _)| k != "enc" && k != "created_at")
                        .map(|(_, v)| v.as_str())
                        .unwrap_or_default()
                ),
            }
        }
    }
}

/// The inventory name of a sealing key: `sealing:` and the hex SHA-256 of its public key (the
/// fingerprint `rekey` reports).
pub fn sealing_key(fingerprint: &str) -> String {
    format!("sealing:{fingerprint}")
}

/// The type part of an inventory name (`age`, `sealing`, …).
pub fn kind_of(key: &str) -> &str {
    key.split_once(':').map_or(key, |(k, _)| k)
}

/// Whether `wanted` (as given to `keys retire`) names `key`: the whole name, or the part after
/// `TYPE:`; PGP fingerprints in any case.
pub fn names(wanted: &str, key: &str) -> bool {
    let wanted = wanted.trim();
    if wanted == key {
        return true;
    }
    match key.split_once(':') {
        Some(("pgp", fp)) => wanted.eq_ignore_ascii_case(fp),
        Some((_, id)) => wanted == id,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_sops::metadata::{AgeEntry, HcVaultEntry, KmsEntry, OtherEntry, PgpEntry};

    #[test]
    fn every_kind_has_one_name() {
        let age = MasterKeyEntry::Age(AgeEntry {
            recipient: "age1abc".into(),
            enc: "x".into(),
        });
        let pgp = MasterKeyEntry::Pgp(PgpEntry {
            created_at: String::new(),
            enc: String::new(),
            fp: "85d77543b3d624b63cea9e6dbc17301b491b3f21".into(),
        });
        let kms = MasterKeyEntry::Kms(KmsEntry {
            arn: "arn:aws:kms:eu-west-1:111122223333:key/k1".into(),
            role: None,
            context: vec![],
            created_at: String::new(),
            enc: String::new(),
            aws_profile: String::new(),
        });
        let vault = MasterKeyEntry::HcVault(HcVaultEntry {
            vault_address: "http://127.0.0.1:8200/".into(),
            engine_path: "transit".into(),
            key_name: "sops".into(),
            created_at: String::new(),
            enc: String::new(),
        });
        let gcp = MasterKeyEntry::Other(OtherEntry {
            kind: "gcp_kms".into(),
            fields: vec![
                (
                    "resource_id".into(),
                    "projects/p/keyRings/r/cryptoKeys/k".into(),
                ),
                ("enc".into(), "x".into()),
            ],
        });
        let azure = MasterKeyEntry::Other(OtherEntry {
            kind: "azure_kv".into(),
            fields: vec![
                ("vault_url".into(), "https://v.vault.azure.net".into()),
                ("name".into(), "k".into()),
                ("version".into(), "1".into()),
            ],
        });
        let got: Vec<String> = [age, pgp, kms, vault, gcp, azure]
            .iter()
            .map(sops_key)
            .collect();
        assert_eq!(
            got,
            [
                "age:age1abc",
                "pgp:85D77543B3D624B63CEA9E6DBC17301B491B3F21",
                "kms:arn:aws:kms:eu-west-1:111122223333:key/k1",
                "hc_vault:http://127.0.0.1:8200/v1/transit/keys/sops",
                "gcp_kms:projects/p/keyRings/r/cryptoKeys/k",
                "azure_kv:https://v.vault.azure.net/keys/k/1",
            ]
        );
        assert_eq!(kind_of(&got[2]), "kms");
        assert_eq!(sealing_key("ab12"), "sealing:ab12");
    }

    #[test]
    fn retire_accepts_the_name_with_or_without_its_type() {
        assert!(names("age:age1abc", "age:age1abc"));
        assert!(names("age1abc", "age:age1abc"));
        assert!(names(
            "85d77543b3d624b63cea9e6dbc17301b491b3f21",
            "pgp:85D77543B3D624B63CEA9E6DBC17301B491B3F21"
        ));
        assert!(names("ab12", "sealing:ab12"));
        assert!(!names("ab1", "sealing:ab12"));
        assert!(!names("age1abc", "sealing:age1abc2"));
    }
}
