//! Master keys that wrap a SOPS data key (age, AWS KMS, Vault transit), identity discovery, .sops.yaml creation rules.
