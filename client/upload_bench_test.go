package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
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
	for _, chunk := range []int{256 << 10, 1<<20 - 64} {
		b.Run(strconv.Itoa(chunk>>10)+"KiB", func(b *testing.B) { benchUpload(b, chunk, false) })
	}
	// The caller passes the sha256 it knows: the client does not hash the file.
	b.Run("1023KiB-known-sha256", func(b *testing.B) { benchUpload(b, 1<<20-64, true) })
}

func benchUpload(b *testing.B, chunk int, known bool) {
	file := bytes.Repeat([]byte("0123456789abcdef"), benchFileSize/16)
	var sum string
	if known {
		h := sha256.Sum256(file)
		sum = hex.EncodeToString(h[:])
	}
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
			Size: benchFileSize, ChunkSize: chunk, SHA256: sum}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawCopy(b *testing.B) {
	benchCopy(b, func(f *os.File, nc net.Conn) error {
		_, err := io.Copy(f, nc)
		return err
	})
}

// benchCopy sends the 64 MiB file over loopback per iteration, into a new file
// in one directory, receive moving the bytes.
func benchCopy(b *testing.B, receive func(f *os.File, nc net.Conn) error) {
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
			err = receive(f, nc)
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

// BenchmarkUserspaceCopy is BenchmarkRawCopy with the receiver's bytes passing
// through user space: read into a 128 KiB buffer, then write to the file (no
// splice). An upload's server must do at least that, for its checks.
func BenchmarkUserspaceCopy(b *testing.B) {
	buf := make([]byte, 128<<10)
	benchCopy(b, func(f *os.File, nc net.Conn) error {
		for {
			n, err := nc.Read(buf)
			if _, werr := f.Write(buf[:n]); werr != nil {
				return werr
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// BenchmarkChecksums is the checking an upload adds, alone, over the same 64
// MiB: the whole file's sha256 (both client and server compute it, unless the
// caller gives it) and the CRC-32C of each frame. On a shared machine the
// wall-clock MB/s is the share of a core the benchmark got; cpu-ns/op is the work.
func BenchmarkChecksums(b *testing.B) {
	file := bytes.Repeat([]byte("0123456789abcdef"), benchFileSize/16)
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		defer reportCPU(b)()
		for b.Loop() {
			sha256.Sum256(file)
		}
	})
	b.Run("crc32c", func(b *testing.B) {
		t := crc32.MakeTable(crc32.Castagnoli)
		b.SetBytes(benchFileSize)
		defer reportCPU(b)()
		for b.Loop() {
			crc32.Checksum(file, t)
		}
	})
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

// BenchmarkReportAckDuringUpload measures the ack latency of reports sent one at a
// time on a connection, alone and while the same client uploads a file on it
// (chunks of 1 MiB, 4 MiB in flight): what a chunk holds a report back by.
func BenchmarkReportAckDuringUpload(b *testing.B) {
	for _, uploading := range []bool{false, true} {
		name := "alone"
		if uploading {
			name = "uploading"
		}
		b.Run(name, func(b *testing.B) {
			srv := uploadtest.Start(b, b.TempDir(), "127.0.0.1:0", 4<<20)
			c, err := Dial(context.Background(), Options{Addr: srv.Addr, ClientID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				file := bytes.Repeat([]byte("0123456789abcdef"), benchFileSize/16)
				for i := 0; uploading && ctx.Err() == nil; i++ {
					c.Upload(ctx, Upload{ID: "u-" + strconv.Itoa(i), Name: "f", File: bytes.NewReader(file), Size: benchFileSize})
				}
			}()
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := c.Report(context.Background(), []byte(`{"x":1}`)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			stop()
			<-done
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
