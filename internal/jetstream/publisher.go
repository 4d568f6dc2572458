package jetstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/ingest"
)

// Publisher publishes record lines that are already durable elsewhere (the spool,
// for the forwarder) to the stream, each with its Nats-Msg-Id, and waits for their
// acknowledgements. Unlike Open, NewPublisher does not need NATS to be up: it
// connects in the background, and Publish fails until the broker answers and the
// stream passed CheckStream.
type Publisher struct {
	opts    Options
	log     *zap.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	checked atomic.Bool // CheckStream passed once: the stream's configuration is known good
}

// NewPublisher starts connecting to NATS with opts (the fields Open uses; MaxPending,
// Observer and ProbeInterval are not used). It fails only on a bad option.
func NewPublisher(opts Options) (*Publisher, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	p := &Publisher{opts: opts, log: opts.Logger}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	var err error
	if p.nc, err = connectBackground(opts, p.log, "forwarding waits"); err != nil {
		return nil, err
	}
	// Publish itself gives up after PublishTimeout without an acknowledgement; the
	// library's timeout per message only frees what a lost connection left behind.
	if p.js, err = jetstream.New(p.nc, jetstream.WithPublishAsyncMaxPending(maxBatch),
		jetstream.WithPublishAsyncTimeout(max(opts.PublishTimeout, forgetAfter))); err != nil {
		p.nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return p, nil
}

// ErrNotConnected is Publish's error while NATS is not connected.
var ErrNotConnected = errors.New("jetstream: NATS not connected")

// forgetAfter is when the library fails a publish whose acknowledgement never
// came (a lost connection's): long after Publish stopped waiting for it.
const forgetAfter = time.Minute

// Publish publishes lines (record lines, without their '\n'; at most 65536) and
// waits until JetStream acknowledged every one, or one failed, or none came for
// PublishTimeout: a stream slower than the whole publish, but acknowledging, is
// waited for (nothing waits on the forwarder but its lag), since what it has not
// acknowledged yet is still in its queue, and publishing it again would only
// lengthen that queue. acked is how many lines from the first were acknowledged,
// all of them when err is nil; after an error the caller publishes the others
// again, and the stream drops the copies it already has by their Nats-Msg-Id. dups
// is how many of the acked were acknowledged as duplicates.
func (p *Publisher) Publish(ctx context.Context, lines [][]byte) (acked, dups int, err error) {
	if len(lines) > maxBatch {
		return 0, 0, fmt.Errorf("jetstream: %d lines in one publish, at most %d", len(lines), maxBatch)
	}
	if !p.nc.IsConnected() {
		return 0, 0, ErrNotConnected
	}
	if err := p.check(ctx); err != nil {
		return 0, 0, err
	}
	futs := make([]jetstream.PubAckFuture, 0, len(lines))
	var subject, clientID string
	for _, line := range lines {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		id, seq, ok := ingest.ParseKey(line, nil)
		if !ok {
			return 0, 0, fmt.Errorf("jetstream: not a record line: %.80q", line)
		}
		if len(futs) == 0 || string(id) != clientID {
			clientID = string(id)
			subject = Subject(p.opts.Subject, clientID)
		}
		msg := &nats.Msg{Subject: subject, Data: line, Header: nats.Header{jetstream.MsgIDHeader: []string{MsgID(clientID, seq)}}}
		f, perr := p.js.PublishMsgAsync(msg)
		if perr != nil {
			// The lines published so far are waited for: what the stream
			// acknowledges of them need not be published again.
			err = fmt.Errorf("jetstream: publish: %w", perr)
			break
		}
		futs = append(futs, f)
	}
	stalled := time.NewTimer(p.opts.PublishTimeout)
	defer stalled.Stop()
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
			acked++
			stalled.Reset(p.opts.PublishTimeout)
		case ferr := <-f.Err():
			return acked, dups, fmt.Errorf("jetstream: publish acknowledgement: %w", ferr)
		case <-stalled.C:
			return acked, dups, ackTimeout{fmt.Errorf("jetstream: no publish acknowledgement for jetstream.publish_timeout (%s), %d of %d acknowledged",
				p.opts.PublishTimeout, acked, len(futs))}
		case <-ctx.Done():
			return acked, dups, ctx.Err()
		}
	}
	return acked, dups, err
}

// ackTimeout is Publish's error when no acknowledgement came for the publish
// timeout: the stream stalled (a leader election, a full disk). Its Timeout method
// says so, as a net.Error's does.
type ackTimeout struct{ error }

func (e ackTimeout) Unwrap() error { return e.error }
func (ackTimeout) Timeout() bool   { return true }

// check runs CheckStream until it passed once; its warnings are logged then.
func (p *Publisher) check(ctx context.Context) error {
	if p.checked.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	st, err := p.js.Stream(ctx, p.opts.Stream)
	if err != nil {
		return fmt.Errorf("jetstream: stream %q: %w", p.opts.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("jetstream: stream %q: %w", p.opts.Stream, err)
	}
	warnings, err := CheckStream(info.Config, p.opts)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		p.log.Warn("jetstream stream is not durable enough: forwarded reports can be lost", zap.String("stream", p.opts.Stream), zap.String("problem", w))
	}
	p.checked.Store(true)
	p.log.Info("jetstream stream checked: forwarding", zap.String("stream", p.opts.Stream), zap.Int("replicas", info.Config.Replicas),
		zap.Duration("duplicate_window", info.Config.Duplicates))
	return nil
}

// Connected reports whether the NATS connection is up.
func (p *Publisher) Connected() bool { return p.nc.IsConnected() }

// Close closes the NATS connection; a Publish in progress fails.
func (p *Publisher) Close() { p.nc.Close() }

// connectBackground connects to NATS with opts without waiting for it to be up:
// the connection retries forever, and what depends on it (the waiting named by
// waits, in the logs) fails until it is connected.
func connectBackground(opts Options, log *zap.Logger, waits string) (*nats.Conn, error) {
	nopts, err := baseOptions(opts)
	if err != nil {
		return nil, err
	}
	nopts = append(nopts,
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected: "+waits, zap.Error(err))
			}
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", zap.Error(err))
		}),
	)
	nc, err := nats.Connect(opts.URLs, nopts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect to %s: %w", opts.URLs, err)
	}
	return nc, nil
}
