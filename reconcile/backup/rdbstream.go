package backup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// crcHoldback computes Redis's CRC-64 of everything written to it except
// the last 8 bytes, which it keeps: the checksum trailer of an RDB.
type crcHoldback struct {
	crc  uint64
	tail []byte // the last up to 8 bytes, not yet in crc
	n    int64
}

func (c *crcHoldback) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	buf := append(c.tail, p...)
	if len(buf) > 8 {
		c.crc = crc64Update(c.crc, buf[:len(buf)-8])
		buf = buf[len(buf)-8:]
	}
	c.tail = append([]byte(nil), buf...)
	return len(p), nil
}

// checkRDBStream is checkRDB on a stream, in one pass: the records are
// walked while the CRC-64 of every byte but the trailer is computed, so
// a backup read from object storage or decrypted needs no local copy.
// The checks and messages are checkRDB's.
func checkRDBStream(r io.Reader, rejectZero bool) (RDBInfo, error) {
	var c crcHoldback
	br := bufio.NewReaderSize(io.TeeReader(r, &c), 1<<16)
	info := RDBInfo{}
	head := make([]byte, 9)
	if _, err := io.ReadFull(br, head); err != nil || !bytes.Equal(head[:5], []byte("REDIS")) {
		return info, errors.New("not an RDB file: no REDIS magic")
	}
	v, err := strconv.Atoi(string(head[5:9]))
	if err != nil || v < 1 || head[5] < '0' || head[5] > '9' {
		return info, fmt.Errorf("not an RDB file: bad version %q", head[5:9])
	}
	info.Version = v
	info, werr := walkRDB(br, info, v >= 5)
	io.Copy(io.Discard, br) // the rest, so the size and checksum cover the whole stream
	info.Size = c.n
	if v < 5 {
		return info, werr
	}
	if c.n < 9+1+8 {
		return info, fmt.Errorf("truncated RDB: %d bytes", c.n)
	}
	info.Checksum = binary.LittleEndian.Uint64(c.tail)
	switch {
	case info.Checksum == 0 && rejectZero:
		return info, errors.New("corrupt RDB: the checksum is zero but the server runs rdbchecksum yes")
	case info.Checksum != 0 && info.Checksum != c.crc:
		return info, fmt.Errorf("corrupt RDB: CRC-64 is %016x, the file says %016x", c.crc, info.Checksum)
	}
	return info, werr
}
