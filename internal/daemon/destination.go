package daemon

import (
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/forward"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/spool"
)

// destination is where reports become durable (destination): the spool or a
// JetStream stream, or the spool and a forwarder to the stream (jetstream.mode
// spooled).
type destination struct {
	spool *spool.Spool           // nil unless destination is spool
	js    *jetstream.Destination // nil unless destination is jetstream
	dest  ingest.Destination     // the one of the two in use
	fwd   *forwarding            // with jetstream.mode spooled: the spool's records to the stream
}

// open opens the destination cfg names. With JetStream direct, /readyz also requires the
// broker to be reachable.
func (d *destination) open(cfg *config.Config, met *metrics.Metrics, ready *admin.Readiness, log *zap.Logger) error {
	if !cfg.Spooled() {
		opts := jetStreamOptions(cfg, log)
		opts.Observer = met.JetStream()
		js, err := jetstream.Open(opts)
		if err != nil {
			return err
		}
		d.js, d.dest = js, js
		ready.Depend(js.Healthy)
		return nil
	}
	var unsent func() func(string) (bool, int64)
	if cfg.Destination == config.DestinationJetStream {
		// Retention keeps what the forwarder (this process's or a successor's) has
		// not sent, unless spool.discard says otherwise; the position on disk says
		// what that is.
		unsent = func() func(string) (bool, int64) { return forward.Unsent(cfg.Spool.Dir) }
	}
	sp, err := spool.Open(spool.Options{
		Dir:         cfg.Spool.Dir,
		Fsync:       cfg.Spool.Fsync == config.FsyncAlways,
		SegmentSize: cfg.Spool.SegmentSize,
		FileMode:    cfg.Spool.SegmentMode(),
		Logger:      log.Named("spool"),
		Observer:    met.Spool(),
		MaxBytes:    cfg.Spool.MaxBytes,
		MaxAge:      cfg.Spool.MaxAge,
		CacheBytes:  cfg.Spool.CacheBytes,
		// Retention starts with Retain, once the dedup rebuild has read the tail.
		RetentionObserver: met.SpoolRetention(),
		Unsent:            unsent,
		DiscardUnsent:     cfg.Spool.Discard == config.DiscardOld,
	})
	if err != nil {
		return err
	}
	d.spool, d.dest = sp, sp
	if cfg.Destination == config.DestinationJetStream {
		if d.fwd, err = startForwarding(cfg, met, log); err != nil {
			sp.Close()
			return err
		}
	}
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
	if d.fwd != nil {
		d.fwd.stop()
	}
}
