package upload

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hawk-agents/hawk/internal/spool"
)

// FileRecord is what the report stream learns of a published file, and the
// .json beside it in files/.
type FileRecord struct {
	ClientID string `json:"client_id"`
	UploadID string `json:"upload_id"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	// Path is where the file is on the server; announced only while the file
	// stays there (the record of a file in a bucket says Bucket and Object).
	Path string `json:"path,omitempty"`
	// Bucket and Object say where a file put into a JetStream Object Store bucket
	// is (destination: jetstream); the server's copy is removed then.
	Bucket string `json:"bucket,omitempty"`
	Object string `json:"object,omitempty"`
	// Complete is Checked (JSON true) for an upload whose size and sha256 the
	// client announced and the server checked, and Unknown (JSON "unknown") for a
	// naive sender's file: it ends with EOF, which a sender killed midway sends too.
	Complete  Completeness `json:"complete"`
	Published time.Time    `json:"published"`
	// Announced is true once the record is durable in the report stream; it is
	// kept in the .json only, never announced.
	Announced bool `json:"announced,omitempty"`
	// Seq is the seq of the record's line in the report stream, chosen at publish
	// and kept in the .json only: announcing the file again after a death between
	// the announce and the .json makes the same line (the same Nats-Msg-Id, which
	// JetStream drops within its duplicate window).
	Seq uint64 `json:"seq,omitempty"`
}

// Completeness says what is known of a published file's completeness.
type Completeness uint8

const (
	Checked Completeness = iota // size and sha256 checked against the client's
	Unknown                     // ended by EOF: whole, or its sender died
)

// MarshalJSON writes true for Checked and "unknown" for Unknown.
func (c Completeness) MarshalJSON() ([]byte, error) {
	if c == Unknown {
		return []byte(`"unknown"`), nil
	}
	return []byte("true"), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Completeness) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*c = Checked
	case `"unknown"`:
		*c = Unknown
	default:
		return fmt.Errorf("complete: %s is neither true nor \"unknown\"", b)
	}
	return nil
}

// partialMeta is the .json of a partial upload: what its open announced.
type partialMeta struct {
	ClientID string    `json:"client_id"`
	UploadID string    `json:"upload_id"`
	Name     string    `json:"name"`
	Size     int64     `json:"size"` // -1: not announced
	SHA256   string    `json:"sha256,omitempty"`
	Created  time.Time `json:"created"`
}

func readJSON[T any](path string) (T, error) {
	var v T
	b, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// writeJSON replaces path with v atomically (a temporary file renamed over it),
// synced with its directory when sync is set.
func writeJSON(path string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if sync {
		return spool.SyncDir(filepath.Dir(path))
	}
	return nil
}
