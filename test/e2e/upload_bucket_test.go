package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	nj "github.com/nats-io/nats.go/jetstream"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

// bucketObject reads object name of the bucket FILES: its info and bytes.
func bucketObject(t *testing.T, ns *natstest.Server, name string) (*nj.ObjectInfo, []byte, error) {
	t.Helper()
	_, js := ns.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := js.ObjectStore(ctx, "FILES")
	if err != nil {
		return nil, nil, err
	}
	info, err := store.GetInfo(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	b, err := store.GetBytes(ctx, name)
	return info, b, err
}

// With destination: jetstream (spooled), finished files go into the Object Store
// bucket: a file uploaded while NATS is up is there, its digest the upload's
// sha256; one uploaded while NATS is down is committed all the same, waits in
// the uploads directory (the backlog metric says so) through an upgrade, and is
// put once NATS is back. The stream holds one record of each, naming the bucket
// and the object.
func TestUploadToObjectStoreBucket(t *testing.T) {
	ns := startNATS(t)
	flags := append(spooledFlags(ns.URL()), "-uploads.enabled=true", "-uploads.bucket=FILES", "-uploads.bucket_replicas=1")
	s := startServer(t, bin.serverV1, flags...)
	admin := s.adminAddr()
	c, err := client.Dial(context.Background(), client.Options{Addr: s.addr(), ClientID: "bucket-agent"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := rand.New(rand.NewPCG(3, 4))
	files := map[string][]byte{}
	send := func(id string, size int) {
		t.Helper()
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		files[id] = b
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Upload(ctx, client.Upload{ID: id, Name: id + ".bin", File: bytes.NewReader(b), Size: int64(size)}); err != nil {
			t.Fatalf("upload %s: %v", id, err)
		}
	}
	objectName := func(id string) string {
		h := sha256.Sum256([]byte("bucket-agent"))
		return hex.EncodeToString(h[:]) + "/" + id
	}
	waitObject := func(id string) {
		t.Helper()
		var info *nj.ObjectInfo
		var got []byte
		testutil.Eventually(t, 30*time.Second, func() bool {
			var err error
			info, got, err = bucketObject(t, ns, objectName(id))
			return err == nil
		}, "object %s in the bucket", id)
		sum := sha256.Sum256(files[id])
		if info.Digest != jetstream.Digest(sum[:]) || !bytes.Equal(got, files[id]) {
			t.Fatalf("object %s: digest %s, %d bytes; want %s, %d bytes", id, info.Digest, len(got), jetstream.Digest(sum[:]), len(files[id]))
		}
	}

	send("up", 3<<20)
	waitObject("up")
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_upload_bucket_files_total") == 1 }, "files_total 1")

	ns.Stop()
	send("down", 1<<20)
	testutil.Eventually(t, 10*time.Second, func() bool {
		return metric(t, admin, "hawk_upload_bucket_backlog_files") == 1 && metric(t, admin, `hawk_upload_bucket_failures_total{reason="unavailable"}`) > 0
	}, "the file waiting, failures counted")
	s.upgradeTo(bin.serverV2)
	testutil.Eventually(t, 10*time.Second, func() bool { return metric(t, admin, "hawk_upload_bucket_backlog_files") == 1 },
		"the new process to see the file waiting")
	ns.Restart()
	waitObject("down")
	testutil.Eventually(t, 30*time.Second, func() bool { return metric(t, admin, "hawk_upload_bucket_backlog_files") == 0 }, "the backlog to empty")

	// One record per file in the stream (the forwarder publishes it once the
	// spool has it).
	var records map[string]int
	testutil.Eventually(t, 30*time.Second, func() bool {
		byID, _ := ns.Messages(jsStream)
		records = map[string]int{}
		for id, n := range byID {
			if strings.HasPrefix(id, "upload:bucket-agent:") {
				records[id] = n
			}
		}
		return len(records) >= 2
	}, "two file records in the stream")
	for id, n := range records {
		if n != 1 {
			t.Errorf("record %s is in the stream %d times", id, n)
		}
	}
	if len(records) != 2 {
		t.Fatalf("records %v, want 2", records)
	}
	if _, _, err := bucketObject(t, ns, objectName("never")); !errors.Is(err, nj.ErrObjectNotFound) {
		t.Fatalf("an object never uploaded: %v", err)
	}
}
