// Package mlog provides the part of monis.app/mlog's API that the Secrets Store CSI Driver calls (main's log
// set-up and fatal errors), implemented over klog. The driver's own code is used unchanged.
package mlog

import (
	"context"

	"k8s.io/klog/v2"
)

// LogFormat names the driver's --log-format-json choice.
type LogFormat string

const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

// Setup returns the function the driver defers to flush logs at exit.
func Setup() func() { return klog.Flush }

// ValidateAndSetKlogLevelAndFormatGlobally accepts the level klog already parsed from -v; text format only.
func ValidateAndSetKlogLevelAndFormatGlobally(_ context.Context, _ klog.Level, _ LogFormat) error { return nil }

// Error logs err with a message and key/value pairs.
func Error(msg string, err error, keysAndValues ...any) { klog.ErrorS(err, msg, keysAndValues...) }

// Fatal logs err and exits with status 1.
func Fatal(err error, keysAndValues ...any) {
	klog.ErrorS(err, "fatal", keysAndValues...)
	klog.FlushAndExit(klog.ExitFlushTimeout, 1)
}
