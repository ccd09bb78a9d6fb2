//! The Kubernetes REST API over HTTPS, backed by the store.
