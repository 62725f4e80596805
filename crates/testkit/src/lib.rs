//! Starts the real peers the tests need (kube-apiserver, moto, OpenBao, sops, kubeseal).
