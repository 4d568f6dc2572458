package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// Example shows an agent's life: connect, report, close. It has no Output line, so
// it is compiled but not run (it needs a server).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{
		Addr:     "127.0.0.1:7700",
		ClientID: "agent-42",
		Token:    "secret",
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventGoaway {
				log.Printf("server is moving us: %s", e.Reason)
			}
		},
	})
	var refused *protocol.ErrorPayload
	if errors.As(err, &refused) {
		log.Fatalf("server refused us: %s", refused.Code) // not retried: fix the token
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	seq, err := c.Report(ctx, []byte(`{"cpu":0.42}`))
	var nack *client.NackError
	switch {
	case errors.As(err, &nack):
		log.Printf("report %d refused: %s", nack.Seq, nack.Code)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("persisted as seq", seq)
	}
}
