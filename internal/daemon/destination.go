package daemon

import (
	"os"
	"strconv"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/spool"
)

// destination is where reports become durable (destination): the spool or a
// JetStream stream.
type destination struct {
	spool *spool.Spool           // nil unless destination is spool
	js    *jetstream.Destination // nil unless destination is jetstream
	dest  ingest.Destination     // the one of the two in use
}

// open opens the destination cfg names. With JetStream, /readyz also requires the
// broker to be reachable.
func (d *destination) open(cfg *config.Config, met *metrics.Metrics, ready *admin.Readiness, log *zap.Logger) error {
	if cfg.Destination == config.DestinationJetStream {
		j := cfg.JetStream
		host, _ := os.Hostname()
		js, err := jetstream.Open(jetstream.Options{
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
			Observer:  met.JetStream(),
		})
		if err != nil {
			return err
		}
		d.js, d.dest = js, js
		ready.Depend(js.Healthy)
		return nil
	}
	sp, err := spool.Open(spool.Options{
		Dir:         cfg.Spool.Dir,
		Fsync:       cfg.Spool.Fsync == config.FsyncAlways,
		SegmentSize: cfg.Spool.SegmentSize,
		Logger:      log.Named("spool"),
		Observer:    met.Spool(),
		MaxBytes:    cfg.Spool.MaxBytes,
		MaxAge:      cfg.Spool.MaxAge,
		// Retention starts with Retain, once the dedup rebuild has read the tail.
		RetentionObserver: met.SpoolRetention(),
	})
	if err != nil {
		return err
	}
	d.spool, d.dest = sp, sp
	return nil
}

// close waits for what the destination holds to be durable or failed (every
// Waiter answered), then closes it.
func (d *destination) close(log *zap.Logger) {
	if d.js != nil {
		if err := d.js.Close(); err != nil {
			log.Error("jetstream close failed", zap.Error(err))
		}
		return
	}
	if d.spool != nil {
		if err := d.spool.Close(); err != nil {
			log.Error("spool close failed", zap.Error(err))
		}
	}
}
