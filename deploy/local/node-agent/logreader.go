package main

// Reading container log files for the kubelet containerLogs API.
//
// Reads stream: the reader holds one buffered file handle and formats entries
// only as fast as the HTTP response consumes them, so serving a 100,000-line
// log never holds it in memory. tailLines seeks backwards from the end of the
// file instead of scanning it from the start.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"
)

// logReadOptions mirrors kubelet's log options after the API has parsed them.
type logReadOptions struct {
	tail       int // number of trailing lines; negative means all
	limitBytes int // stop after this many output bytes; <= 0 means no limit
	timestamps bool
	since      time.Time // skip entries older than this; zero means no filter
	follow     bool
}

const readBufferSize = 64 * 1024

type logReader struct {
	ctx  context.Context
	f    *os.File
	br   *bufio.Reader
	opts logReadOptions
	live *liveLog // non-nil while following a file that is still written

	pending  []byte // formatted output not yet handed to the caller
	buf      []byte // backing store reused for pending
	frag     []byte // an incomplete line seen at EOF, completed by later reads
	written  int
	finished bool
	err      error
}

// openLogReader opens path for reading with opts. live, when non-nil and
// opts.follow is set, makes the reader wait for more data until the writer
// finishes.
func openLogReader(ctx context.Context, path string, opts logReadOptions, live *liveLog) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if opts.tail >= 0 {
		off, err := tailOffset(f, opts.tail)
		if err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	r := &logReader{ctx: ctx, f: f, br: bufio.NewReaderSize(f, readBufferSize), opts: opts}
	if opts.follow {
		r.live = live
	}
	return r, nil
}

func (r *logReader) Close() error { return r.f.Close() }

// Read fills p with as much formatted output as is available, blocking only
// when it has produced nothing yet and the log is still being written.
func (r *logReader) Read(p []byte) (int, error) {
	if r.ctx.Err() != nil {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		if len(r.pending) > 0 {
			c := copy(p[n:], r.pending)
			r.pending = r.pending[c:]
			n += c
			continue
		}
		if r.finished || r.err != nil {
			break
		}
		if !r.fill(n == 0) {
			break
		}
	}
	if n > 0 {
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}

// fill formats the next entry into r.pending. It returns false when nothing
// was produced: at the end of the output (r.finished), on error (r.err), or
// when block is false and no complete entry is available yet.
func (r *logReader) fill(block bool) bool {
	for {
		var done bool
		var changed <-chan struct{}
		if r.live != nil {
			// Taken before reading: if the writer was already done, the read
			// below sees all of its data; otherwise changed wakes us.
			done, changed = r.live.state()
		}
		line, err := r.br.ReadSlice('\n')
		switch {
		case err == nil:
			if len(r.frag) > 0 {
				r.frag = append(r.frag, line...)
				line, r.frag = r.frag, r.frag[:0]
			}
			if r.emit(line) {
				return true
			}
			if r.finished {
				return false
			}
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			r.frag = append(r.frag, line...)
			continue
		case errors.Is(err, io.EOF):
			r.frag = append(r.frag, line...)
		default:
			r.err = err
			return false
		}
		// At EOF.
		if r.live == nil || done {
			// A trailing fragment without newline can only be a write in
			// progress that will never complete; drop it.
			r.finished = true
			return false
		}
		if !block {
			return false
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			// The client went away: end quietly rather than make the HTTP
			// handler log a failed request.
			r.finished = true
			return false
		}
	}
}

// emit formats one file line into r.pending, applying since and limitBytes.
// It reports whether output was produced.
func (r *logReader) emit(line []byte) bool {
	e, err := parseEntry(line)
	if err != nil {
		slog.Warn("skipping malformed log line", "file", r.f.Name(), "line", string(bytes.TrimSpace(line)))
		return false
	}
	if !r.opts.since.IsZero() && e.ts.Before(r.opts.since) {
		return false
	}
	r.buf = appendOutput(r.buf[:0], e, r.opts.timestamps)
	r.pending = r.buf
	if r.opts.limitBytes > 0 {
		left := r.opts.limitBytes - r.written
		if len(r.pending) >= left {
			r.pending = r.pending[:left]
			r.finished = true
		}
	}
	r.written += len(r.pending)
	return len(r.pending) > 0
}

// tailOffset returns the offset at which the last n lines of f start, reading
// backwards in blocks from the end.
func tailOffset(f *os.File, n int) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if n == 0 {
		return size, nil
	}
	buf := make([]byte, readBufferSize)
	end := size
	// The file's final newline terminates the last line; it does not start one.
	skipLast := true
	for end > 0 {
		start := end - int64(len(buf))
		if start < 0 {
			start = 0
		}
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			if skipLast && start+int64(i) == size-1 {
				continue
			}
			n--
			if n == 0 {
				return start + int64(i) + 1, nil
			}
		}
		skipLast = false
		end = start
	}
	return 0, nil
}
