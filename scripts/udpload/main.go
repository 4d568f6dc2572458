// Command udpload sends numbered datagrams at a paced rate to 127.0.0.1 and reports how many the kernel dropped, or is the minimal reader that stores nothing.
//
//	udpload -addr 127.0.0.1:7390 -rate 50000 -d 3s -format lines   # prints {"rate":..,"sent":..,"drops":..}
//	udpload -sink 127.0.0.1:7391 -rcvbuf 4194304                     # reads and discards until killed
//
// drops is the receiving socket's counter in /proc/net/udp (found by its port)
// over the run: datagrams the kernel accepted for the socket and dropped because
// its receive buffer was full.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hawk-agents/hawk/internal/udp"
)

func main() {
	addr := flag.String("addr", "", "where to send")
	rate := flag.Int("rate", 50000, "datagrams per second")
	dur := flag.Duration("d", 3*time.Second, "how long to send")
	format := flag.String("format", "lines", "lines or syslog")
	sink := flag.String("sink", "", "instead: read and discard on this address")
	rcvbuf := flag.Int("rcvbuf", 4<<20, "the sink's SO_RCVBUF")
	flag.Parse()
	if *sink != "" {
		runSink(*sink, *rcvbuf)
		return
	}
	ua, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		log.Fatal(err)
	}
	before := drops(ua.Port)
	sent := 0
	buf := make([]byte, 0, 256)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for time.Since(start) < *dur {
		<-tick.C
		due := int(time.Since(start).Seconds() * float64(*rate))
		for ; sent < due; sent++ {
			buf = buf[:0]
			if *format == "syslog" {
				buf = append(buf, "<134>1 2026-12-05T16:00:00.000Z bench udpload 1 M - n="...)
			} else {
				buf = append(buf, `{"n":`...)
			}
			buf = strconv.AppendInt(buf, int64(sent), 10)
			if *format != "syslog" {
				buf = append(buf, '}')
			}
			c.Write(buf)
		}
	}
	time.Sleep(500 * time.Millisecond) // the receiver empties its buffer; drops are counted at enqueue anyway
	json.NewEncoder(os.Stdout).Encode(map[string]any{"rate": *rate, "sent": sent, "drops": drops(ua.Port) - before})
}

func runSink(addr string, rcvbuf int) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		log.Fatal(err)
	}
	pc.(*net.UDPConn).SetReadBuffer(rcvbuf)
	buf := make([]byte, 65536)
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			log.Fatal(err)
		}
	}
}

// drops is the drop counter of the UDP socket bound to port.
func drops(port int) uint64 {
	n, err := udp.KernelDropsOfPort(port)
	if err != nil {
		log.Fatal(err)
	}
	return n
}
