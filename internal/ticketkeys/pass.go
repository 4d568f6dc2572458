package ticketkeys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Name is the name of the file that carries the ring to the new process of an
// upgrade through tableflip: the read end of a pipe holding one message.
const Name = "hawk-ticket-keys"

// The message: magic, version, the time keys[0] started encrypting (Unix
// nanoseconds, u64), the count of keys (u8), the keys. Big endian.
var magic = [4]byte{'H', 'W', 'K', 'T'}

const (
	version    = 1
	headerSize = 4 + 1 + 8 + 1
)

// Pass writes the ring into a new pipe and passes its read end through pass
// (upgrade.PassFile, under Name). The message is far below a pipe's buffer, so the
// write never waits for the reader.
func Pass(r *Ring, pass func(name string, f *os.File) error) error {
	keys, rotated := r.Keys()
	msg := encode(keys, rotated)
	defer clear(msg)
	clear(keys)
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("ticket keys: pipe: %w", err)
	}
	defer pr.Close() // the upgrader holds its own duplicate
	_, err = pw.Write(msg)
	pw.Close()
	if err != nil {
		return fmt.Errorf("ticket keys: write: %w", err)
	}
	return pass(Name, pr)
}

// Inherit reads the ring the previous process passed in f and closes f. It
// reads the message's length only, never waiting for an end of file.
func Inherit(f *os.File) ([]Key, time.Time, error) {
	defer f.Close()
	var hdr [headerSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return nil, time.Time{}, fmt.Errorf("ticket keys from the previous process: %w", err)
	}
	n, rotated, err := decodeHeader(hdr)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ticket keys from the previous process: %w", err)
	}
	keys := make([]Key, n)
	for i := range keys {
		if _, err := io.ReadFull(f, keys[i][:]); err != nil {
			clear(keys)
			return nil, time.Time{}, fmt.Errorf("ticket keys from the previous process: %w", err)
		}
	}
	return keys, rotated, nil
}

func encode(keys []Key, rotated time.Time) []byte {
	msg := make([]byte, 0, headerSize+len(keys)*len(Key{}))
	msg = append(msg, magic[:]...)
	msg = append(msg, version)
	msg = binary.BigEndian.AppendUint64(msg, uint64(rotated.UnixNano()))
	msg = append(msg, byte(len(keys)))
	for _, k := range keys {
		msg = append(msg, k[:]...)
	}
	return msg
}

func decodeHeader(hdr [headerSize]byte) (int, time.Time, error) {
	if [4]byte(hdr[:4]) != magic {
		return 0, time.Time{}, errors.New("not a ticket keys message")
	}
	if hdr[4] != version {
		return 0, time.Time{}, fmt.Errorf("version %d, not %d", hdr[4], version)
	}
	n := int(hdr[13])
	if n == 0 || n > MaxKeys {
		return 0, time.Time{}, fmt.Errorf("%d keys", n)
	}
	return n, time.Unix(0, int64(binary.BigEndian.Uint64(hdr[5:13]))), nil
}
