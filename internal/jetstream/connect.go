package jetstream

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// natsOptions builds the NATS connection's options: credentials and TLS from
// Options, reconnecting forever, and the handlers that keep Healthy and the logs
// current.
func (d *Destination) natsOptions() ([]nats.Option, error) {
	opts, err := baseOptions(d.opts)
	if err != nil {
		return nil, err
	}
	return append(opts,
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if d.closing.Load() {
				return
			}
			why := "NATS disconnected"
			if err != nil {
				why += ": " + err.Error()
			}
			d.setHealthy(&why)
			d.obs.Connected(false)
			d.log.Warn("NATS disconnected: reports are NACKed until it is back", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// Healthy again only once the prober has seen the stream answer.
			d.obs.Connected(true)
			d.log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			why := "NATS connection closed"
			d.setHealthy(&why)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			d.log.Warn("NATS error", zap.Error(err))
		}),
	), nil
}

// baseOptions are the connection options every NATS connection of hawk shares:
// its name, reconnecting forever without buffering, credentials and TLS.
func baseOptions(o Options) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// No buffering while disconnected: a publish then fails at once and the agent
		// gets its retryable NACK (or the forwarder retries from the spool), instead
		// of the report waiting in this process's memory for a reconnect it might
		// not live to see.
		nats.ReconnectBufSize(-1),
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, fmt.Errorf("jetstream: jetstream.tls_cert and jetstream.tls_key go together")
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	return opts, nil
}
