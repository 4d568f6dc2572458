package daemon

import (
	"context"
	"os"
	"strconv"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/forward"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/metrics"
)

// forwarding is the forwarder of jetstream.mode spooled: the spool's records to
// the stream, from a position on disk, in the background (internal/forward).
type forwarding struct {
	pub    *jetstream.Publisher
	cancel context.CancelFunc
	done   chan struct{}
}

// jetStreamOptions are the jetstream.* keys as the jetstream package takes them.
func jetStreamOptions(cfg *config.Config, log *zap.Logger) jetstream.Options {
	j := cfg.JetStream
	host, _ := os.Hostname()
	return jetstream.Options{
		URLs: j.URLs, Stream: j.Stream, Subject: j.Subject, Creds: j.Creds,
		TLSCA: j.TLSCA, TLSCert: j.TLSCert, TLSKey: j.TLSKey,
		MaxPending: j.MaxPending, PublishTimeout: j.PublishTimeout, ConnectTimeout: j.ConnectTimeout,
		RetryAfter: j.RetryAfter, RetryHorizon: j.RetryHorizon,
		RequireDurable: j.RequireDurable, SyncAlways: j.SyncAlways,
		// A payload that is not JSON is stored as base64 (4/3), beside the other
		// fields (a client id of up to 256 bytes, escaped: at most 6 bytes each).
		MaxRecord: int64(cfg.Limits.MaxFrameSize+2)/3*4 + 2048,
		Name:      "hawk " + host + " pid " + strconv.Itoa(os.Getpid()),
		Logger:    log.Named("jetstream"),
	}
}

// startForwarding connects to NATS in the background and starts the forwarder;
// it fails only on a bad option, never because NATS is down.
func startForwarding(cfg *config.Config, met *metrics.Metrics, log *zap.Logger) (*forwarding, error) {
	pub, err := jetstream.NewPublisher(jetStreamOptions(cfg, log))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &forwarding{pub: pub, cancel: cancel, done: make(chan struct{})}
	flog := log.Named("forward")
	go func() {
		defer close(f.done)
		err := forward.Run(ctx, forward.Options{Dir: cfg.Spool.Dir, Publisher: pub, Logger: flog, Observer: met.Forward(),
			RetryAfter: cfg.JetStream.RetryAfter, PublishTimeout: cfg.JetStream.PublishTimeout})
		if err != nil {
			flog.Error("the forwarder cannot run: reports stay in the spool and retention keeps them", zap.Error(err))
		}
	}()
	return f, nil
}

// stop ends the forwarder (its position saved, its lock released for a successor)
// and closes the NATS connection.
func (f *forwarding) stop() {
	f.cancel()
	<-f.done
	f.pub.Close()
}
