package main

// Writing container output to log files.
//
// Each container instance (each restart) gets its own file, filled by one
// goroutine per stream that reads the process's stdout/stderr pipe and stamps
// every line with its arrival time. A liveLog tracks a file that is still being
// written so that `follow` readers in the same agent can wait for new data and
// know when the instance's output has ended.

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// liveLog is the writer side of one log file, shared with follow readers.
type liveLog struct {
	mu      sync.Mutex
	f       *os.File
	changed chan struct{} // closed and replaced on every write and at finish
	done    bool
	buf     []byte
	now     func() time.Time
}

func newLiveLog(f *os.File) *liveLog {
	return &liveLog{f: f, changed: make(chan struct{}), now: time.Now}
}

// write appends one entry; timestamps are taken under the lock so that the
// file's entries are in time order across the two streams.
func (l *liveLog) write(stream string, partial bool, content []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = appendEntry(l.buf[:0], l.now(), stream, partial, content)
	_, err := l.f.Write(l.buf)
	l.signalLocked()
	return err
}

func (l *liveLog) signalLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// finish marks the end of the instance's output and closes the file.
func (l *liveLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.done = true
	l.f.Close()
	l.signalLocked()
}

// state returns whether writing has finished and a channel that is closed on
// the next change. Callers must take it before reading the file so a write
// that lands after their read still wakes them.
func (l *liveLog) state() (done bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.changed
}

// copyStream reads r until EOF and writes it as entries: F for every newline-
// terminated line, P for chunks of lines longer than maxEntryContent and for
// a final fragment without a newline.
func (l *liveLog) copyStream(r io.Reader, stream string) error {
	br := bufio.NewReaderSize(r, maxEntryContent)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if werr := l.write(stream, false, line[:len(line)-1]); werr != nil {
				return werr
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if werr := l.write(stream, true, line); werr != nil {
				return werr
			}
		default:
			if len(line) > 0 {
				if werr := l.write(stream, true, line); werr != nil {
					return werr
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// liveLogs maps file paths to the logs this agent is still writing.
type liveLogs struct {
	mu sync.Mutex
	m  map[string]*liveLog
}

func newLiveLogs() *liveLogs { return &liveLogs{m: map[string]*liveLog{}} }

func (r *liveLogs) add(path string, l *liveLog) {
	r.mu.Lock()
	r.m[path] = l
	r.mu.Unlock()
}

func (r *liveLogs) get(path string) *liveLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[path]
}

func (r *liveLogs) remove(path string) {
	r.mu.Lock()
	delete(r.m, path)
	r.mu.Unlock()
}
