//go:build tools

// Package tools pins the reference provider's command (the Go provider AKS ships) so that `go build` of it resolves
// from this module's go.sum. The benchmark runs it beside ours.
package tools

import _ "github.com/Azure/secrets-store-csi-driver-provider-azure/cmd"
