package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/hawk-agents/hawk/client"
)

// sendUDP is send -udp: one report datagram, retransmitted until ACKed or ctx ends.
func sendUDP(ctx context.Context, addr, id, token string, payload []byte, stdout, stderr io.Writer) int {
	u, err := client.DialUDP(client.UDPOptions{Addr: addr, ClientID: id, Token: token, MaxAttempts: math.MaxInt})
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	defer u.Close()
	seq, err := u.Report(ctx, payload)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "acked seq=%d\n", seq)
	return 0
}
