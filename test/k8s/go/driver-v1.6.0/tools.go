//go:build tools

// Package tools pins the driver's command so that `go build` of it resolves from this module's go.sum.
package tools

import _ "sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver"
