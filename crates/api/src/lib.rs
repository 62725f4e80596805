//! Kubernetes custom resource types shared by the CLI and the controller.
