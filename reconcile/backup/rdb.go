package backup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"math/bits"
	"os"
	"strconv"
)

// Redis's CRC-64 is the Jones polynomial 0xad93d23594c935a9, reflected,
// with no initial or final inversion. hash/crc64 implements the reflected
// algorithm (given the bit-reversed polynomial) but inverts the register
// before and after, which crc64Update undoes.
var jonesTable = crc64.MakeTable(bits.Reverse64(0xad93d23594c935a9))

func crc64Update(crc uint64, p []byte) uint64 { return ^crc64.Update(^crc, jonesTable, p) }

// crcWriter accumulates Redis's CRC-64 of what is written to it.
type crcWriter struct{ crc uint64 }

func (c *crcWriter) Write(p []byte) (int, error) { c.crc = crc64Update(c.crc, p); return len(p), nil }

// RDBInfo is what CheckRDB learnt from a file.
type RDBInfo struct {
	Version  int    `json:"version"`
	Keys     int64  `json:"keys"`           // keys read by the walk
	Checksum uint64 `json:"checksum"`       // stored CRC-64; 0 when written with rdbchecksum no
	Walked   bool   `json:"walked"`         // every record was parsed up to the EOF opcode
	Note     string `json:"note,omitempty"` // why the walk stopped early, when it did
	Size     int64  `json:"size"`

	seen map[byte]int64 // records read, by opcode or value type (tests)
}

// Summary says what was checked, in words: the key count read and what
// the checksum covers (nothing, when the file has none).
func (i RDBInfo) Summary() string {
	s := fmt.Sprintf("RDB version %d, %d keys read up to the EOF opcode", i.Version, i.Keys)
	if !i.Walked {
		s = fmt.Sprintf("RDB version %d, %d keys read before the walk stopped", i.Version, i.Keys)
	}
	if i.Checksum == 0 {
		return s + ", no checksum (written with rdbchecksum no): only the record walk checked the file"
	}
	return s + fmt.Sprintf(", CRC-64 %016x matches", i.Checksum)
}

// IncompleteError is returned by CheckRDB when the walk did not reach the
// EOF opcode: whatever the checksum says, the records after the point
// where it stopped were not read, so the file is not verified.
type IncompleteError struct{ Info RDBInfo }

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("NOT verified: %s (%d keys read before it)", e.Info.Note, e.Info.Keys)
}

// CheckRDB checks an RDB file before it is put in place of a server's
// dump.rdb: the REDIS magic and 4-digit version, every record up to the EOF
// opcode, and the trailing CRC-64 over all other bytes. A walk that stops
// before the EOF opcode (a record type it does not know) is an
// *IncompleteError, whatever the checksum says.
func CheckRDB(path string) (RDBInfo, error) { return checkRDB(path, false) }

// checkRDB is CheckRDB; rejectZero is set when the server runs rdbchecksum
// yes, so a zero stored checksum is damage. Otherwise a zero checksum
// (rdbchecksum no) leaves the walk as the only check.
func checkRDB(path string, rejectZero bool) (RDBInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return RDBInfo{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return RDBInfo{}, err
	}
	info := RDBInfo{Size: fi.Size()}
	head := make([]byte, 9)
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head[:5], []byte("REDIS")) {
		return info, errors.New("not an RDB file: no REDIS magic")
	}
	v, err := strconv.Atoi(string(head[5:9]))
	if err != nil || v < 1 || head[5] < '0' || head[5] > '9' {
		return info, fmt.Errorf("not an RDB file: bad version %q", head[5:9])
	}
	info.Version = v
	if v < 5 { // no checksum before RDB 5
		return walkRDB(f, info, false)
	}
	if info.Size < 9+1+8 {
		return info, fmt.Errorf("truncated RDB: %d bytes", info.Size)
	}
	// Pass 1: the checksum over everything but the last 8 bytes, whose
	// first byte before them must be the EOF opcode.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	var c crcWriter
	if _, err := io.CopyBuffer(&c, io.LimitReader(f, info.Size-8), make([]byte, 1<<20)); err != nil {
		return info, err
	}
	tail := make([]byte, 9)
	if _, err := f.ReadAt(tail, info.Size-9); err != nil {
		return info, err
	}
	if tail[0] != opEOF {
		return info, fmt.Errorf("truncated or corrupt RDB: byte %d before the checksum is 0x%02x, not the EOF opcode 0xff", info.Size-9, tail[0])
	}
	info.Checksum = binary.LittleEndian.Uint64(tail[1:])
	if info.Checksum == 0 && rejectZero {
		return info, errors.New("corrupt RDB: the checksum is zero but the server runs rdbchecksum yes")
	}
	if info.Checksum != 0 && info.Checksum != c.crc {
		return info, fmt.Errorf("corrupt RDB: CRC-64 is %016x, the file says %016x", c.crc, info.Checksum)
	}
	// Pass 2: the records.
	if _, err := f.Seek(9, io.SeekStart); err != nil {
		return info, err
	}
	return walkRDB(f, info, true)
}

// walkRDB parses the records after the header. A record type it does not
// know stops the walk: an *IncompleteError with the Note. Structural
// errors are errors.
func walkRDB(f io.Reader, info RDBInfo, checksum bool) (RDBInfo, error) {
	r := &rdbReader{r: bufio.NewReaderSize(f, 1<<16), off: 9, seen: map[byte]int64{}}
	keys, err := r.walk()
	info.Keys, info.seen = keys, r.seen
	var unsup *unsupportedError
	switch {
	case errors.As(err, &unsup):
		info.Note = unsup.Error()
		return info, &IncompleteError{info}
	case err != nil:
		return info, fmt.Errorf("corrupt RDB at byte %d: %w", r.off, err)
	}
	trailer := 0
	if checksum {
		trailer = 8
	}
	if n, _ := io.Copy(io.Discard, r.r); n != int64(trailer) {
		return info, fmt.Errorf("corrupt RDB: %d bytes after the EOF opcode, expected %d", n, trailer)
	}
	info.Walked = true
	return info, nil
}
