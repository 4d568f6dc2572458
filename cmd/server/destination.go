package main

import (
	"os"
	"strconv"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/spool"
)

// openDestination opens where reports become durable (destination): the spool
// (s.spool) or a JetStream stream (s.js), and returns it. With JetStream, /readyz
// also requires the broker to be reachable.
func (s *server) openDestination(cfg *config.Config) (ingest.Destination, error) {
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
			Logger:    s.log.Named("jetstream"),
			Observer:  s.met.JetStream(),
		})
		if err != nil {
			return nil, err
		}
		s.js = js
		s.ready.Depend(js.Healthy)
		return js, nil
	}
	sp, err := spool.Open(spool.Options{
		Dir:         cfg.Spool.Dir,
		Fsync:       cfg.Spool.Fsync == config.FsyncAlways,
		SegmentSize: cfg.Spool.SegmentSize,
		Logger:      s.log.Named("spool"),
		Observer:    s.met.Spool(),
	})
	if err != nil {
		return nil, err
	}
	s.spool = sp
	return sp, nil
}

// closeDestination waits for what the destination holds to be durable or failed
// (every Waiter answered), then closes it.
func (s *server) closeDestination() {
	if s.js != nil {
		if err := s.js.Close(); err != nil {
			s.log.Error("jetstream close failed", zap.Error(err))
		}
		return
	}
	if s.spool != nil {
		if err := s.spool.Close(); err != nil {
			s.log.Error("spool close failed", zap.Error(err))
		}
	}
}
