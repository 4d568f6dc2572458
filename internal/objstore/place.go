package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/upload"
)

// stopGrace is how long a put that has read its file may still take once Run is
// stopped.
const stopGrace = 5 * time.Second

// Name is a file's object name: the hex SHA-256 of the client id, '/', the upload
// id. Both are in the character set every Object Store client accepts
// ([-/_=.a-zA-Z0-9]), whatever the client id holds; the object's metadata and the
// record say the client id itself.
func Name(rec upload.FileRecord) string {
	h := sha256.Sum256([]byte(rec.ClientID))
	return hex.EncodeToString(h[:]) + "/" + rec.UploadID
}

// place puts rec into the bucket and announces it.
func place(ctx context.Context, o Options, rec upload.FileRecord) (existed bool, reason string, err error) {
	sum, err := hex.DecodeString(rec.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return false, ReasonDigest, fmt.Errorf("the record's sha256 %q is not a SHA-256", rec.SHA256)
	}
	f, err := os.Open(rec.Path)
	if err != nil {
		return false, ReasonRead, err
	}
	defer f.Close()
	v := &verifier{r: f, h: sha256.New(), size: rec.Size, sum: sum, stop: ctx.Done()}
	// Not ctx: a stop ends the put through the reader, so that the library purges
	// the chunks it sent while the connection is still there.
	pctx, cancel := context.WithTimeout(context.Background(), o.PutTimeout+time.Duration(rec.Size/o.MinRate)*time.Second)
	defer cancel()
	// A put past its reads (awaiting the acknowledgements) gets a grace period.
	defer context.AfterFunc(ctx, func() { time.AfterFunc(stopGrace, cancel) })()
	name := Name(rec)
	existed, err = o.Bucket.Put(pctx, name, map[string]string{"client_id": rec.ClientID, "upload_id": rec.UploadID,
		"name": rec.Name, "sha256": rec.SHA256}, rec.Size, sum, v)
	switch {
	case err == nil:
	case errors.Is(err, errMismatch):
		return false, ReasonDigest, err
	case v.readErr != nil && errors.Is(err, v.readErr):
		return false, ReasonRead, err
	case errors.Is(err, jetstream.ErrObjectConflict):
		return false, ReasonConflict, err
	case errors.Is(err, jetstream.ErrNotDurable):
		return false, ReasonNotDurable, err
	default:
		return false, ReasonUnavailable, err
	}
	if err := o.Queue.Placed(rec, o.Bucket.Name(), name); err != nil {
		return existed, ReasonAnnounce, err
	}
	return existed, "", nil
}
