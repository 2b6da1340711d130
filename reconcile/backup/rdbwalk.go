package backup

import (
	"bufio"
	"fmt"
	"io"
)

// RDB opcodes (rdb.h).
const (
	opSlotInfo      = 244
	opFunction2     = 245
	opFunctionPreGA = 246
	opModuleAux     = 247
	opIdle          = 248
	opFreq          = 249
	opAux           = 250
	opResizeDB      = 251
	opExpireMS      = 252
	opExpire        = 253
	opSelectDB      = 254
	opEOF           = 255
)

// unsupportedError stops the walk at a record this parser does not know.
// The records after it are unchecked, so such a file is never verified.
type unsupportedError struct {
	what string
	off  int64
}

func (e *unsupportedError) Error() string {
	return fmt.Sprintf("walk stopped at byte %d: %s is not known to this dbops, so the records after it were not read", e.off, e.what)
}

// rdbReader walks RDB records without keeping them: memory stays flat.
type rdbReader struct {
	r    *bufio.Reader
	off  int64
	seen map[byte]int64 // records read, by opcode or value type
}

func (r *rdbReader) byte() (byte, error) {
	b, err := r.r.ReadByte()
	if err != nil {
		return 0, unexpected(err)
	}
	r.off++
	return b, nil
}

func (r *rdbReader) skip(n uint64) error {
	if n > 1<<40 {
		return fmt.Errorf("implausible length %d", n)
	}
	d, err := r.r.Discard(int(n))
	r.off += int64(d)
	return unexpected(err)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// length reads a length; special is set for the string encodings
// (11xxxxxx), whose kind is then returned as the length.
func (r *rdbReader) length() (n uint64, special bool, err error) {
	b, err := r.byte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		b2, err := r.byte()
		return uint64(b&0x3f)<<8 | uint64(b2), false, err
	case 3:
		return uint64(b & 0x3f), true, nil
	}
	var size int
	switch b {
	case 0x80:
		size = 4
	case 0x81:
		size = 8
	default:
		return 0, false, fmt.Errorf("bad length encoding 0x%02x", b)
	}
	for range size {
		c, err := r.byte()
		if err != nil {
			return 0, false, err
		}
		n = n<<8 | uint64(c)
	}
	return n, false, nil
}

func (r *rdbReader) plainLength() (uint64, error) {
	n, special, err := r.length()
	if err == nil && special {
		err = fmt.Errorf("string encoding where a length was expected")
	}
	return n, err
}

func (r *rdbReader) lengths(k int) error {
	for range k {
		if _, err := r.plainLength(); err != nil {
			return err
		}
	}
	return nil
}

// skipString skips a string: raw, integer-encoded or LZF-compressed.
func (r *rdbReader) skipString() error {
	n, special, err := r.length()
	if err != nil {
		return err
	}
	if !special {
		return r.skip(n)
	}
	switch n {
	case 0, 1, 2: // int8, int16, int32
		return r.skip(1 << n)
	case 3: // LZF: compressed length, uncompressed length, data
		clen, err := r.plainLength()
		if err != nil {
			return err
		}
		if _, err := r.plainLength(); err != nil {
			return err
		}
		return r.skip(clen)
	}
	return fmt.Errorf("unknown string encoding %d", n)
}

func (r *rdbReader) strings(k uint64) error {
	for range k {
		if err := r.skipString(); err != nil {
			return err
		}
	}
	return nil
}

// walk reads records up to and including the EOF opcode, returning the
// number of keys.
func (r *rdbReader) walk() (keys int64, err error) {
	for {
		at := r.off
		op, err := r.byte()
		if err != nil {
			return keys, err
		}
		if r.seen != nil {
			r.seen[op]++
		}
		switch op {
		case opEOF:
			return keys, nil
		case opSelectDB, opIdle:
			err = r.lengths(1)
		case opResizeDB:
			err = r.lengths(2)
		case opSlotInfo:
			err = r.lengths(3)
		case opExpire:
			err = r.skip(4)
		case opExpireMS:
			err = r.skip(8)
		case opFreq:
			err = r.skip(1)
		case opAux:
			err = r.strings(2)
		case opFunction2:
			err = r.skipString()
		case opModuleAux:
			if err = r.lengths(3); err == nil {
				err = r.moduleValue()
			}
		case opFunctionPreGA: // Redis itself refuses to load it
			return keys, &unsupportedError{"a Redis 7.0 release-candidate function record (opcode 246)", at}
		default:
			if op > maxValueType {
				return keys, &unsupportedError{fmt.Sprintf("record type %d (from a newer Redis or a module)", op), at}
			}
			if err = r.skipString(); err == nil { // the key
				err = r.value(op, at)
			}
			keys++
		}
		if err != nil {
			return keys, err
		}
	}
}

// maxValueType is the highest value type this walker parses: Redis 7.4 to
// 8.x (RDB 12) write at most RDB_TYPE_HASH_LISTPACK_EX.
const maxValueType = 25

// value skips the value of a key of type t (RDB_TYPE_* in rdb.h; the
// layouts are those of rdbSaveObject / rdbLoadObject in rdb.c).
func (r *rdbReader) value(t byte, at int64) error {
	switch t {
	case 0, 9, 10, 11, 12, 13, 16, 17, 20, 23: // string or one encoded blob
		return r.skipString()
	case 25: // HASH_LISTPACK_EX: min field expire time (ms), then the listpack
		if err := r.skip(8); err != nil {
			return err
		}
		return r.skipString()
	case 22, 24: // HASH_METADATA(_PRE_GA): [min expire (ms)], n × (ttl, field, value)
		if t == 24 {
			if err := r.skip(8); err != nil {
				return err
			}
		}
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		for range n {
			if err := r.lengths(1); err != nil {
				return err
			}
			if err := r.strings(2); err != nil {
				return err
			}
		}
		return nil
	case 1, 2, 14: // list, set, quicklist: n strings
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		return r.strings(n)
	case 4: // hash: n field/value pairs
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		return r.strings(2 * n)
	case 3, 5: // zset: member and score (text or binary double)
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		for range n {
			if err := r.skipString(); err != nil {
				return err
			}
			if t == 5 {
				err = r.skip(8)
			} else {
				err = r.textDouble()
			}
			if err != nil {
				return err
			}
		}
		return nil
	case 18: // quicklist 2: n (container, blob)
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		for range n {
			if err := r.lengths(1); err != nil {
				return err
			}
			if err := r.skipString(); err != nil {
				return err
			}
		}
		return nil
	case 7:
		if err := r.lengths(1); err != nil { // module id
			return err
		}
		return r.moduleValue()
	case 15, 19, 21:
		return r.stream(t)
	}
	return &unsupportedError{fmt.Sprintf("value type %d", t), at}
}

func (r *rdbReader) textDouble() error {
	n, err := r.byte()
	if err != nil || n >= 253 { // nan, +inf, -inf
		return err
	}
	return r.skip(uint64(n))
}

// moduleValue skips a module's opcode stream up to its EOF opcode.
func (r *rdbReader) moduleValue() error {
	for {
		op, err := r.plainLength()
		if err != nil {
			return err
		}
		switch op {
		case 0:
			return nil
		case 1, 2: // signed, unsigned
			err = r.lengths(1)
		case 3: // float
			err = r.skip(4)
		case 4: // double
			err = r.skip(8)
		case 5:
			err = r.skipString()
		default:
			err = fmt.Errorf("unknown module opcode %d", op)
		}
		if err != nil {
			return err
		}
	}
}

// stream skips a stream: listpacks, metadata, consumer groups.
func (r *rdbReader) stream(t byte) error {
	n, err := r.plainLength()
	if err != nil {
		return err
	}
	if err := r.strings(2 * n); err != nil { // node key, listpack
		return err
	}
	meta := 3 // length, last id
	if t >= 19 {
		meta += 5 // first id, max deleted id, entries added
	}
	if err := r.lengths(meta); err != nil {
		return err
	}
	groups, err := r.plainLength()
	if err != nil {
		return err
	}
	for range groups {
		if err := r.skipString(); err != nil {
			return err
		}
		ids := 2
		if t >= 19 {
			ids++ // entries read
		}
		if err := r.lengths(ids); err != nil {
			return err
		}
		pel, err := r.plainLength()
		if err != nil {
			return err
		}
		for range pel { // raw id, delivery time, delivery count
			if err := r.skip(16 + 8); err != nil {
				return err
			}
			if err := r.lengths(1); err != nil {
				return err
			}
		}
		consumers, err := r.plainLength()
		if err != nil {
			return err
		}
		for range consumers {
			if err := r.skipString(); err != nil {
				return err
			}
			times := uint64(8)
			if t >= 21 {
				times += 8 // active time
			}
			if err := r.skip(times); err != nil {
				return err
			}
			cpel, err := r.plainLength()
			if err != nil {
				return err
			}
			if err := r.skip(16 * cpel); err != nil {
				return err
			}
		}
	}
	return nil
}
