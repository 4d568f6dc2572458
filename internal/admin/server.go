package admin

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// closeTimeout bounds how long Close waits for requests in flight.
const closeTimeout = 2 * time.Second

// Server is the admin HTTP endpoint on a listener from the upgrader. It owns its
// Serve goroutine and the connections it accepts; Close stops all of them.
type Server struct {
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}  // closed when Serve has returned
	conns sync.WaitGroup // accepted connections not yet closed (ConnState)
	once  sync.Once
}

// Serve serves Handler(src, ready) on ln until Close.
func Serve(ln net.Listener, src Source, ready *Readiness, log *zap.Logger) *Server {
	a := &Server{ln: ln, done: make(chan struct{})}
	a.srv = &http.Server{
		Handler:           Handler(src, ready),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          zap.NewStdLog(log),
		// Called on Serve's goroutine for StateNew, before its next Accept: once
		// Serve has returned, every accepted connection has been counted.
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				a.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				a.conns.Done()
			}
		},
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", zap.Error(err))
		}
	}()
	return a
}

// Close stops accepting, answers every request already accepted, then closes what
// is left after closeTimeout. Safe on nil; later calls wait for the first.
//
// Not http.Server.Shutdown: a connection that Shutdown finds new (accepted, request
// not yet read) is left to finish, but once its request has been read the server
// sees it is shutting down and closes the connection without an answer (net/http
// conn.serve: "if c.server.shuttingDown() { return }" after readRequest). During an
// upgrade the socket is shared with the successor, so requests keep arriving until
// the last moment, and some client got EOF instead of its answer. Here the listener
// closes first (the successor accepts from then on), keep-alives end (answers say
// "Connection: close", idle connections are closed), and the accepted connections
// are answered and waited for.
func (a *Server) Close() {
	if a == nil {
		return
	}
	a.once.Do(func() {
		a.srv.SetKeepAlivesEnabled(false)
		a.ln.Close()
		<-a.done
		served := make(chan struct{})
		go func() { a.conns.Wait(); close(served) }()
		select {
		case <-served:
		case <-time.After(closeTimeout):
		}
		a.srv.Close() // what did not finish in time; the waiter above then ends too
	})
}
