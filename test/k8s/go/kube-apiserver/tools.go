//go:build tools

// Package tools pins kube-apiserver's command so that `go build` of it resolves from this module's go.sum.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
