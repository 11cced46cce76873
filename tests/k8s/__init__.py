"""Offline checks of the Kubernetes manifests in deploy/k8s."""
