package main

// On-disk container log format.
//
// We use the CRI log format that kubelet reads from containerd/CRI-O log files,
// so the files look familiar and the semantics of `kubectl logs` carry over:
//
//	<RFC3339Nano UTC timestamp> <stream> <tag> <content>\n
//
// stream is "stdout" or "stderr"; tag is "F" for a full line (the process wrote
// a newline, which is not stored) or "P" for a partial one (a chunk of an
// over-long line, or the tail of the output when the process exited without a
// trailing newline). Reading a P entry back yields its content with no newline
// appended, so `logs` reproduces exactly the bytes the process wrote.

import (
	"bytes"
	"errors"
	"time"
)

const (
	// timeFormat is kubelet's RFC3339NanoFixed: always nine fractional digits,
	// so timestamps have a fixed width and sort lexically.
	timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

	tagFull    = 'F'
	tagPartial = 'P'

	// maxEntryContent bounds one entry's content; longer lines are split into
	// P entries (containerd uses 16 KiB too). It also bounds reader buffers.
	maxEntryContent = 16 * 1024
)

// logEntry is one parsed line of a log file.
type logEntry struct {
	ts      time.Time
	rawTS   []byte // the timestamp as stored, reused verbatim for output
	stream  []byte
	partial bool
	content []byte // without the trailing newline
}

// appendEntry formats one entry for the log file.
func appendEntry(dst []byte, ts time.Time, stream string, partial bool, content []byte) []byte {
	dst = ts.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, ' ')
	dst = append(dst, stream...)
	dst = append(dst, ' ')
	if partial {
		dst = append(dst, tagPartial)
	} else {
		dst = append(dst, tagFull)
	}
	dst = append(dst, ' ')
	dst = append(dst, content...)
	return append(dst, '\n')
}

var errBadEntry = errors.New("malformed log entry")

// parseEntry parses one file line (with or without its trailing newline).
// The returned slices alias line.
func parseEntry(line []byte) (logEntry, error) {
	var e logEntry
	line = bytes.TrimSuffix(line, []byte{'\n'})
	i := bytes.IndexByte(line, ' ')
	if i < 0 {
		return e, errBadEntry
	}
	ts, err := time.Parse(time.RFC3339Nano, string(line[:i]))
	if err != nil {
		return e, errBadEntry
	}
	e.ts, e.rawTS = ts, line[:i]
	line = line[i+1:]
	i = bytes.IndexByte(line, ' ')
	if i < 0 {
		return e, errBadEntry
	}
	e.stream = line[:i]
	line = line[i+1:]
	if len(line) < 1 || (line[0] != tagFull && line[0] != tagPartial) {
		return e, errBadEntry
	}
	e.partial = line[0] == tagPartial
	if len(line) > 1 {
		if line[1] != ' ' {
			return e, errBadEntry
		}
		e.content = line[2:]
	}
	return e, nil
}

// appendOutput renders an entry the way kubelet serves it: the content, a
// newline unless the entry is partial, and with timestamps "<ts> " in front.
func appendOutput(dst []byte, e logEntry, timestamps bool) []byte {
	if timestamps {
		dst = e.ts.UTC().AppendFormat(dst, timeFormat)
		dst = append(dst, ' ')
	}
	dst = append(dst, e.content...)
	if !e.partial {
		dst = append(dst, '\n')
	}
	return dst
}
