// monis.app is not on the Go module proxy this project's machines reach, and the driver imports monis.app/mlog
// for its log set-up only. This module gives the driver the few calls it makes, over klog; nothing else changes.
module monis.app/mlog

go 1.24

require k8s.io/klog/v2 v2.130.1

require github.com/go-logr/logr v1.4.1 // indirect
