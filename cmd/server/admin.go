package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/admin"
)

// adminServer is the admin HTTP endpoint on a listener from the upgrader.
type adminServer struct {
	srv  *http.Server
	done chan struct{}
}

func startAdmin(ln net.Listener, src admin.Source, ready *admin.Readiness, log *zap.Logger) *adminServer {
	a := &adminServer{
		srv: &http.Server{
			Handler:           admin.Handler(src, ready),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          zap.NewStdLog(log),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", zap.Error(err))
		}
	}()
	return a
}

// close stops accepting and lets in-flight requests finish briefly. Safe on nil and
// when called twice.
func (a *adminServer) close() {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.srv.Shutdown(ctx)
	<-a.done
}

func (s *server) adminSource() admin.Source {
	return admin.Source{
		Gatherer:    s.met.Registry,
		Connections: s.conns.Connections,
		Config:      func() map[string]any { return s.cfg.Load().Redacted() },
		Pprof:       func() bool { return s.cfg.Load().Admin.Pprof },
	}
}
