package client

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/upload/uploadtest"
)

const benchFileSize = 64 << 20

// BenchmarkUpload uploads a 64 MiB file over loopback into a store (fsync never);
// BenchmarkRawCopy is the baseline: the same bytes over one TCP connection into
// a file in the same kind of directory.
func BenchmarkUpload(b *testing.B) {
	file := bytes.Repeat([]byte("0123456789abcdef"), benchFileSize/16)
	srv := uploadtest.Start(b, b.TempDir(), "127.0.0.1:0", 4<<20)
	c, err := Dial(context.Background(), Options{Addr: srv.Addr, ClientID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(benchFileSize)
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		if err := c.Upload(context.Background(), Upload{ID: "b-" + strconv.Itoa(i), Name: "f", File: bytes.NewReader(file),
			Size: benchFileSize, ChunkSize: 1<<20 - 64}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawCopy(b *testing.B) {
	file := bytes.Repeat([]byte("0123456789abcdef"), benchFileSize/16)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	dir := b.TempDir()
	b.SetBytes(benchFileSize)
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		done := make(chan error, 1)
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer nc.Close()
			f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
			if err != nil {
				done <- err
				return
			}
			_, err = io.Copy(f, nc)
			f.Close()
			done <- err
		}()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		nc.Write(file)
		nc.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports the process's CPU time (user and system, server and client
// together) per operation: on a shared machine wall time says little.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
