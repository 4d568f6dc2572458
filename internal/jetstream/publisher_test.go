package jetstream_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

func publisher(t *testing.T, url string, horizon time.Duration) *jetstream.Publisher {
	t.Helper()
	p, err := jetstream.NewPublisher(jetstream.Options{URLs: url, Stream: "REPORTS", Subject: "hawk.reports.<client_id>",
		PublishTimeout: 2 * time.Second, RetryHorizon: horizon, RequireDurable: true, SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func lines(client string, from uint64, n int) [][]byte {
	var out [][]byte
	for _, l := range bytes.SplitAfter(batch(client, from, n).Lines(), []byte{'\n'}) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// A Publisher is made while NATS is down, fails until it is up, then stores each
// line once: a republish is acknowledged as duplicates.
func TestPublisherStartsWithoutNATS(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	ns.Stop()
	p := publisher(t, ns.URL(), 2*time.Minute)
	ctx := context.Background()
	if _, _, err := p.Publish(ctx, lines("a", 1, 10)); err == nil {
		t.Fatal("Publish succeeded with NATS down")
	}
	ns.Restart()
	testutil.Eventually(t, 10*time.Second, p.Connected, "the publisher to connect")
	if acked, dups, err := p.Publish(ctx, lines("a", 1, 10)); err != nil || acked != 10 || dups != 0 {
		t.Fatalf("Publish: %d acked, %d dups, %v", acked, dups, err)
	}
	if acked, dups, err := p.Publish(ctx, lines("a", 5, 10)); err != nil || acked != 10 || dups != 6 {
		t.Fatalf("republish: %d acked, %d dups, %v; want 10 and 6 (seqs 5..10 are in the stream)", acked, dups, err)
	}
	byID, total := ns.Messages("REPORTS")
	if total != 14 || byID["a:1"] != 1 || byID["a:14"] != 1 {
		t.Fatalf("stream holds %d messages %v, want seqs 1..14 once", total, byID)
	}
}

// The stream is checked at the first publish, as Open checks it at start.
func TestPublisherRefusesShortDuplicateWindow(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*") // a 2-minute window
	p := publisher(t, ns.URL(), time.Hour)
	testutil.Eventually(t, 10*time.Second, p.Connected, "the publisher to connect")
	_, _, err := p.Publish(context.Background(), lines("a", 1, 1))
	if err == nil || !strings.Contains(err.Error(), "duplicate window") {
		t.Fatalf("Publish: %v, want the duplicate window refused", err)
	}
}
