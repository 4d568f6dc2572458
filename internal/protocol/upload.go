package protocol

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Upload frames carry a file on the agent's connection, interleaved with reports:
// UPLOAD_OPEN names it, UPLOAD_CHUNKs carry its bytes at explicit offsets, and
// UPLOAD_COMMIT asks the server to check and publish it. The server answers each
// with UPLOAD_STATE, whose offset is the durable one (docs/PROTOCOL.md section 4.3).

// MaxUploadIDLen is the longest upload id, in bytes.
const MaxUploadIDLen = 64

// ChunkHeaderSize is the bytes an UPLOAD_CHUNK payload spends before its data,
// at most: the id's length byte and the id.
const ChunkHeaderSize = 1 + MaxUploadIDLen

// UploadOpen is the UPLOAD_OPEN payload: an upload the client names by an id it
// chose, so that it can resume it on another connection or after a restart.
type UploadOpen struct {
	UploadID string `json:"upload_id"`
	Name     string `json:"name"`
	// Size is the file's size in bytes, or -1 when the client does not know it yet.
	Size int64 `json:"size"`
	// SHA256 is the whole file's sha256 in lower-case hex, or "" when not known yet.
	SHA256 string `json:"sha256,omitempty"`
}

// ValidSHA256 reports whether h has the form the sha256 fields take: 64
// lower-case hex digits.
func ValidSHA256(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range []byte(h) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// UploadCommit is the UPLOAD_COMMIT payload: the client has sent every byte.
type UploadCommit struct {
	UploadID string `json:"upload_id"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

// UploadState is the server's answer to UPLOAD_OPEN, UPLOAD_CHUNK and
// UPLOAD_COMMIT; the frame's seq is the seq of the frame it answers.
type UploadState struct {
	UploadID string `json:"upload_id"`
	// Offset is the durable offset: every byte below it is on the server's disk.
	// After an upload_offset refusal it is the offset the next chunk must start at.
	Offset int64 `json:"offset"`
	// Done is true once the file is published (the answer to a commit, also to a
	// retried one, and to an open of an upload already published).
	Done bool `json:"done,omitempty"`
	// Code is empty on success, otherwise one of the upload codes of section 5.
	Code    Code   `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Upload codes: answers in UPLOAD_STATE, never ERRORs; the connection stays up.
const (
	CodeUploadOffset      Code = "upload_offset"       // a chunk not at the durable offset; offset says where to resume
	CodeUploadUnknown     Code = "upload_unknown"      // a chunk or commit for an upload not open on this connection
	CodeUploadBadName     Code = "upload_bad_name"     // the name is not a plain file name
	CodeUploadBadID       Code = "upload_bad_id"       // the upload id fails ValidUploadID
	CodeUploadConflict    Code = "upload_conflict"     // the id is open with another name, size or sha256
	CodeUploadTooLarge    Code = "upload_too_large"    // beyond uploads.max_file_size
	CodeUploadQuota       Code = "upload_quota"        // beyond the client's or the total quota
	CodeUploadMismatch    Code = "upload_mismatch"     // at commit, the size or the sha256 is not the file's
	CodeUploadWriteFailed Code = "upload_write_failed" // the disk refused the bytes (full): resend from offset
	CodeUploadDisabled    Code = "upload_disabled"     // this server does not take uploads
)

// ValidUploadID reports why id cannot be an upload id, or nil: 1..64 bytes of
// [A-Za-z0-9._-], not starting with a dot.
func ValidUploadID(id []byte) error {
	if len(id) == 0 || len(id) > MaxUploadIDLen {
		return fmt.Errorf("upload id is %d bytes, want 1..%d", len(id), MaxUploadIDLen)
	}
	if id[0] == '.' {
		// so that an id is always a plain file name ("." and ".." are not)
		return fmt.Errorf("upload id starts with a dot")
	}
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("upload id has byte %#02x at %d; allowed are A-Z a-z 0-9 . _ -", c, i)
		}
	}
	return nil
}

// AppendChunk appends an UPLOAD_CHUNK frame: data at offset of upload id. The
// caller keeps len(id) within MaxUploadIDLen (ValidUploadID).
func AppendChunk(dst []byte, id string, offset uint64, data []byte) []byte {
	start := len(dst)
	dst = appendChunkHead(dst, id, offset, len(data))
	dst = append(dst, data...)
	sum := crc32.Update(0, castagnoli(), dst[start+2:])
	return binary.BigEndian.AppendUint32(dst, sum)
}

// AppendChunkAround appends the UPLOAD_CHUNK frame AppendChunk does, less data
// itself: data's place is at, between the id and the trailer, whose CRC covers
// data. A sender writes dst[:at], data, dst[at:] (writev), so the chunk's bytes
// are not copied into its output.
func AppendChunkAround(dst []byte, id string, offset uint64, data []byte) (out []byte, at int) {
	start := len(dst)
	dst = appendChunkHead(dst, id, offset, len(data))
	sum := crc32.Update(crc32.Update(0, castagnoli(), dst[start+2:]), castagnoli(), data)
	return binary.BigEndian.AppendUint32(dst, sum), len(dst)
}

// appendChunkHead appends an UPLOAD_CHUNK frame's header and id, for n bytes of data.
func appendChunkHead(dst []byte, id string, offset uint64, n int) []byte {
	start := len(dst)
	dst = append(dst, Magic0, Magic1, Version, byte(TypeUploadChunk), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[start+4:], uint32(1+len(id)+n))
	binary.BigEndian.PutUint64(dst[start+8:], offset)
	dst = append(dst, byte(len(id)))
	return append(dst, id...)
}

// AppendChunkPayload appends an UPLOAD_CHUNK payload (id length, id, data) to dst.
func AppendChunkPayload(dst []byte, id string, data []byte) []byte {
	dst = append(dst, byte(len(id)))
	dst = append(dst, id...)
	return append(dst, data...)
}

// ParseChunk splits an UPLOAD_CHUNK frame into its upload id and data, which alias
// the frame's payload; the offset is the frame's seq. It does not allocate unless
// the payload is malformed.
func ParseChunk(f Frame) (id, data []byte, err error) {
	p := f.Payload
	if len(p) < 1 {
		return nil, nil, &DecodeError{Code: CodeBadPayload, Msg: "UPLOAD_CHUNK payload is empty; it starts with the upload id's length"}
	}
	n := int(p[0])
	if n == 0 || n > MaxUploadIDLen || 1+n > len(p) {
		return nil, nil, &DecodeError{Code: CodeBadPayload, Msg: fmt.Sprintf("UPLOAD_CHUNK upload id length %d, want 1..%d within the %d-byte payload", n, MaxUploadIDLen, len(p))}
	}
	id = p[1 : 1+n : 1+n]
	if err := ValidUploadID(id); err != nil {
		return nil, nil, &DecodeError{Code: CodeBadPayload, Msg: "UPLOAD_CHUNK: " + err.Error()}
	}
	return id, p[1+n:], nil
}
