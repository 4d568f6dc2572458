package daemon

import (
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds the process logger. The level is an AtomicLevel so a reload can
// change it without rebuilding the logger; pid and version go on every line so the
// two processes of an upgrade can be told apart in one stream.
func newLogger(format string, level zap.AtomicLevel, version string) *zap.Logger {
	var enc zapcore.Encoder
	if format == "json" {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), level)
	return zap.New(core).With(zap.Int("pid", os.Getpid()), zap.String("version", version))
}
